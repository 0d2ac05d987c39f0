import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';
import { SocketFilterTypeError } from '../errors.js';
import { repeatedJsonKey } from './json.js';
import { validateConfig, type SocketFilterConfig, type ValidateConfigOptions } from './validate.js';

export type { NamedListenAddress, SocketFilterConfig, ValidateConfigOptions } from './validate.js';
export { validateConfig } from './validate.js';
export { CONFIG_KEYS, CONFIG_PRESETS, PRESET_VARIABLE_KINDS, PRESET_VARIABLES } from './keys.js';

/**
 * The two notations a policy file may be written in.
 *
 * @example
 * ```ts
 * const format: ConfigFormat = 'yaml';
 * ```
 */
export type ConfigFormat = 'yaml' | 'json';

/**
 * Options of `parseConfig`: the format, and `socketPath` (see `ValidateConfigOptions`).
 *
 * @example
 * ```ts
 * parseConfig(text, { format: 'json', socketPath: '/run/docker.sock' });
 * ```
 */
export interface ParseConfigOptions extends ValidateConfigOptions {
  /** Default `yaml` (which is how a `.yaml`/`.yml` file is read); `json` for a `.json` file. */
  readonly format?: ConfigFormat;
}

// The `yaml` package costs 10 MB of resident memory once loaded (measured: docs/bench.md, "Idle
// RSS"); a guard configured by its environment, or by a JSON file, never needs it.
let yaml: typeof Yaml | undefined;
const loadYaml = (): typeof Yaml => (yaml ??= createRequire(import.meta.url)('yaml') as typeof Yaml);

function invalid(message: string): never {
  throw new SocketFilterTypeError('ERR_DSF_INVALID_CONFIG', message);
}

type Ranged = { range?: [number, number, number]; value?: unknown } | null;

const contains = (node: unknown, offset: number): boolean => {
  const range = (node as Ranged)?.range;
  return range !== undefined && range[0] <= offset && offset < range[2];
};

/**
 * The path (`clients[1].policy`) of the YAML mapping whose key starts at `offset`, and that key:
 * where a repeated key stands.
 */
function yamlKeyAt(document: Yaml.Document, offset: number): { path: string; key: string } {
  const { isMap, isSeq } = loadYaml();
  let path = '';
  let node: unknown = document.contents;
  for (;;) {
    if (isMap(node)) {
      const keyed = node.items.find((item) => contains(item.key, offset));
      if (keyed !== undefined) return { path, key: String((keyed.key as Ranged)?.value) };
      const pair = node.items.find((item) => contains(item.value, offset));
      if (pair === undefined) return { path, key: '?' };
      const key = String((pair.key as Ranged)?.value);
      path += path === '' ? key : `.${key}`;
      node = pair.value;
    } else if (isSeq(node)) {
      const index = node.items.findIndex((item) => contains(item, offset));
      if (index === -1) return { path, key: '?' };
      path += `[${index}]`;
      node = node.items[index];
    } else return { path, key: '?' };
  }
}

function parseYaml(text: string): unknown {
  // YAML 1.2 (the package's default): `yes`, `on` and `0660` are a string, a string and 660, not
  // YAML 1.1's true, true and 432. Repeated keys are errors; `<<` merge keys are plain keys (which
  // the validator refuses as unknown).
  const document = loadYaml().parseDocument(text, { uniqueKeys: true, merge: false, prettyErrors: true, strict: true });
  const error = document.errors[0];
  if (error !== undefined) {
    const where = error.linePos?.[0];
    const at = where === undefined ? '' : `line ${where.line}, column ${where.col}: `;
    if (error.code === 'DUPLICATE_KEY') {
      const { path, key } = yamlKeyAt(document, error.pos[0]);
      invalid(`${at}${path === '' ? '(top level)' : path}: the key ${JSON.stringify(key)} is given twice (a setting read two ways is refused)`);
    }
    invalid(`${at}${error.message.split('\n')[0]}`);
  }
  if (document.warnings.length > 0) invalid(document.warnings[0]?.message.split('\n')[0] ?? 'the YAML has warnings');
  return document.toJS({ maxAliasCount: 100 });
}

function parseJson(text: string): unknown {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    invalid(`not valid JSON: ${(error as Error).message}`);
  }
  const repeated = repeatedJsonKey(text);
  if (repeated !== undefined) {
    invalid(`${repeated.path === '' ? '(top level)' : repeated.path}: the key ${JSON.stringify(repeated.key)} is given twice (a setting read two ways is refused)`);
  }
  return data;
}

/**
 * Reads the text of a policy file (YAML by default, or JSON) and validates it: unknown keys,
 * repeated keys and bad values throw a `TypeError` (code `ERR_DSF_INVALID_CONFIG`) whose message
 * names the path, `clients[1].policy.allow[2]: …`. Returns what `createSocketFilter` takes
 * (`config.filter`) and the CLI's settings.
 *
 * @example
 * ```ts
 * import { createSocketFilter } from 'docker-socket-filter';
 * import { parseConfig } from 'docker-socket-filter/config';
 *
 * const config = parseConfig(`
 * clients:
 *   - name: traefik
 *     match: { address: ["172.25.0.2"] }
 *     policy: { preset: tecnativa, env: { CONTAINERS: 1 } }
 * `);
 * const filter = createSocketFilter(config.filter);
 * filter.evaluate('GET', '/v1.41/containers/json', { client: { address: '172.25.0.2' } }).allowed; // true
 * ```
 */
export function parseConfig(text: string, options: ParseConfigOptions = {}): SocketFilterConfig {
  if (typeof text !== 'string') throw new SocketFilterTypeError('ERR_DSF_INVALID_OPTION', 'The text of `parseConfig` must be a string');
  const format = options.format ?? 'yaml';
  if (format !== 'yaml' && format !== 'json') {
    throw new SocketFilterTypeError('ERR_DSF_INVALID_OPTION', 'The `format` option must be "yaml" or "json"');
  }
  if (text.trim() === '') invalid('the file is empty');
  return validateConfig(format === 'json' ? parseJson(text) : parseYaml(text), { socketPath: options.socketPath });
}

/**
 * The format of a policy file by its name: `.yaml`/`.yml` or `.json`; anything else is refused
 * rather than guessed.
 *
 * @example
 * ```ts
 * configFormatOf('/etc/docker-socket-filter/policy.yaml'); // 'yaml'
 * ```
 */
export function configFormatOf(path: string): ConfigFormat {
  const extension = extname(path).toLowerCase();
  if (extension === '.yaml' || extension === '.yml') return 'yaml';
  if (extension === '.json') return 'json';
  return invalid(`${path}: a policy file must end in .yaml, .yml or .json`);
}

/**
 * Reads the text of a policy file, for `parseConfigFile`. Apart from `loadConfig` so that a
 * process can read a file once and hand the text to others (the CLI's `--workers`: the primary
 * reads, every worker parses the same text, so they cannot each see a different file).
 *
 * @throws TypeError (code `ERR_DSF_INVALID_CONFIG`) naming the file when it cannot be read.
 * @example
 * ```ts
 * import { parseConfigFile, readConfigText } from 'docker-socket-filter/config';
 *
 * const text = await readConfigText('policy.yaml');
 * worker.send({ policy: text }); // in the worker: parseConfigFile('policy.yaml', message.policy)
 * ```
 */
export async function readConfigText(path: string): Promise<string> {
  configFormatOf(path);
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    return invalid(`${path}: cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}

/**
 * Validates the text of the policy file at `path`: `parseConfig` in the format the name says, the
 * error message starting with the path (`policy.yaml: clients[1].policy.allow[2]: …`). `socketPath`
 * is dockerd's socket when the file has none (see `ValidateConfigOptions`).
 *
 * @example
 * ```ts
 * import { parseConfigFile } from 'docker-socket-filter/config';
 *
 * const config = parseConfigFile('policy.json', '{"policy": {"preset": "tecnativa"}}');
 * parseConfigFile('policy.json', text, { socketPath: process.env.SOCKET_PATH });
 * ```
 */
export function parseConfigFile(path: string, text: string, options: ValidateConfigOptions = {}): SocketFilterConfig {
  const format = configFormatOf(path);
  try {
    return parseConfig(text, { format, socketPath: options.socketPath });
  } catch (error) {
    if (error instanceof SocketFilterTypeError) throw new SocketFilterTypeError(error.code, `${path}: ${error.message}`);
    throw error;
  }
}

/**
 * Reads and validates a policy file: `parseConfig` on its text, in the format its name says. The
 * error message starts with the file's path (`policy.yaml: clients[1].policy.allow[2]: …`).
 * `socketPath` is dockerd's socket when the file has none (see `ValidateConfigOptions`).
 *
 * @example
 * ```ts
 * import { createSocketFilter } from 'docker-socket-filter';
 * import { loadConfig } from 'docker-socket-filter/config';
 *
 * const filter = createSocketFilter((await loadConfig('policy.yaml')).filter);
 * const rootless = await loadConfig('policy.yaml', { socketPath: '/run/user/1000/docker.sock' });
 * ```
 */
export async function loadConfig(path: string, options: ValidateConfigOptions = {}): Promise<SocketFilterConfig> {
  return parseConfigFile(path, await readConfigText(path), options);
}
