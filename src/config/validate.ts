import { checkMetricsApart, parseGrace, parseHeldBytes, parseMaxUpstreamConnections, parseListenAddress, parseMaxConnections, parseSocketMode, describeListenAddress, type ListenAddress } from '../cli/args.js';
import { SocketFilterTypeError } from '../errors.js';
import { LOG_LEVELS, type LogLevel } from '../log.js';
import { parseVersionSetting } from '../policy/canonical.js';
import { compileClients, type ClientSpec } from '../policy/clients.js';
import { definePolicy, type PolicySpec, type RuleSpec } from '../policy/define.js';
import { cleanAbsolutePath, DEFAULT_DOCKER_SOCKETS, normalizeProtectHost } from '../policy/host/settings.js';
import { checkReadPolicy } from '../policy/read/settings.js';
import type { Policy, ProtectHost } from '../policy/types.js';
import { linuxserverPreset } from '../presets/linuxserver.js';
import { tecnativaPreset } from '../presets/tecnativa.js';
import { CONFIG_KEYS, CONFIG_PRESETS, PRESET_VARIABLE_KINDS, PRESET_VARIABLES } from './keys.js';

/**
 * A listen entry of a policy file: a named address. The name is what `clients[].match.listener`
 * refers to.
 *
 * @example
 * ```ts
 * const ro: NamedListenAddress = { name: 'ro', kind: 'unix', path: '/run/docker-socket-filter/ro.sock' };
 * ```
 */
export type NamedListenAddress = ListenAddress & { readonly name: string };

/**
 * A policy file, validated and turned into what the library and the CLI take.
 *
 * Plain data (policies are data), so it can be handed to another process as it is.
 *
 * @example
 * ```ts
 * const config = parseConfig(text);
 * const filter = createSocketFilter(config.filter);
 * ```
 */
export interface SocketFilterConfig {
  /** Options for `createSocketFilter`: `clients` or `policy`, and `socketPath`/`minApiVersion` when the file sets them. */
  readonly filter: {
    readonly clients?: readonly ClientSpec[];
    readonly policy?: Policy;
    readonly socketPath?: string;
    readonly minApiVersion?: string;
  };
  /** The file's `listen` entries; `undefined` when it has none (the CLI then uses `--listen`/`LISTEN`). */
  readonly listen: readonly NamedListenAddress[] | undefined;
  /** The operational settings the file sets; each is absent when the file does not set it. */
  readonly settings: {
    readonly socketPath?: string;
    readonly logLevel?: LogLevel;
    readonly metricsListen?: ListenAddress;
    readonly maxConnections?: number;
    readonly maxUpstreamConnections?: number;
    readonly maxHeldBytes?: number;
    /** `shutdownGrace`, in milliseconds. */
    readonly graceMs?: number;
    readonly socketMode?: number;
  };
}

const LISTENER_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

class ConfigError extends Error {}

function fail(path: string, message: string): never {
  throw new ConfigError(`${path === '' ? '(top level)' : path}: ${message}`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function objectAt(value: unknown, path: string, keys: readonly string[], what: string): Record<string, unknown> {
  if (!isPlainObject(value)) fail(path, `must be ${what}`);
  for (const key of Object.keys(value)) {
    if (!keys.includes(key)) fail(path === '' ? key : `${path}.${key}`, `is not a known key (known here: ${keys.join(', ')})`);
  }
  return value;
}

function stringAt(value: unknown, path: string): string {
  if (typeof value !== 'string' || value === '') fail(path, 'must be a non-empty string');
  return value;
}

/** Runs a validator of another layer, whose messages are `The \`path\` option …`, `Invalid rule \`path\`: …` or bare. */
function rethrownAt<T>(path: string, run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    const option = /^The `([^`]+)` option (.*)$/s.exec(error.message);
    if (option) {
      const named = option[1] as string;
      fail(named.startsWith(path) ? named : `${path}.${named}`, option[2] as string);
    }
    const rule = /^Invalid rule `[^`]*`: (.*)$/s.exec(error.message);
    fail(path, rule ? (rule[1] as string) : error.message);
  }
}

/** What building a policy needs beyond the entry: dockerd's socket, which binds must not expose. */
interface Context {
  /** The effective `socketPath` (the file's, else the caller's), clean and absolute; or undefined. */
  readonly socket: string | undefined;
}

const PRESETS = { tecnativa: tecnativaPreset, linuxserver: linuxserverPreset } as const;

/** A list variable's value: a comma-separated string, or a list of strings joined as one. */
function listText(raw: unknown, at: string): string {
  if (typeof raw === 'string') return raw;
  if (!Array.isArray(raw)) fail(at, `must be a comma-separated string or a list of strings, not ${JSON.stringify(raw)}`);
  // Leaving the variable out is how to say "none": an empty list is more likely a mistake.
  if (raw.length === 0) fail(at, 'must list at least one entry (leave the variable out for none)');
  raw.forEach((entry: unknown, index) => {
    if (typeof entry !== 'string' || entry.trim() === '') fail(`${at}[${index}]`, 'must be a non-empty string');
    // The list is joined as the variable would hold it: a comma would split an entry in two.
    if (entry.includes(',')) fail(`${at}[${index}]`, `(${JSON.stringify(entry)}) contains a comma, which would split it into two entries`);
  });
  return raw.join(',');
}

function readEnv(value: unknown, path: string, preset: 'tecnativa' | 'linuxserver'): Record<string, string> {
  if (value === undefined) return {};
  const kinds = PRESET_VARIABLE_KINDS[preset];
  if (!isPlainObject(value)) fail(path, `must map the ${preset} preset's variables to their values (1 or 0, or a list)`);
  const env: Record<string, string> = {};
  for (const [name, raw] of Object.entries(value)) {
    const at = `${path}.${name}`;
    const kind = Object.hasOwn(kinds, name) ? kinds[name] : undefined;
    if (name === 'SOCKET_PATH') {
      fail(at, "is not a preset variable: dockerd's socket is the file's `socketPath` (or SOCKET_PATH in the environment), and binds of it are refused under PROTECT_HOST either way");
    }
    if (kind === undefined) fail(at, `is not a variable of the ${preset} preset (its variables: ${PRESET_VARIABLES[preset].join(', ')})`);
    let text: string;
    if (kind === 'list') text = listText(raw, at);
    else if (typeof raw === 'string') text = raw;
    else if (typeof raw === 'number' && Number.isSafeInteger(raw)) text = String(raw);
    else fail(at, `must be 1 or 0 (a number or a string), not ${JSON.stringify(raw)}`);
    // The preset judges each variable alone, so that a refusal names the variable's path.
    rethrownAt(at, () => PRESETS[preset]({ [name]: text }));
    env[name] = text;
  }
  return env;
}

function presetPolicy(value: unknown, path: string, context: Context): Policy {
  const entry = objectAt(value, path, CONFIG_KEYS.presetPolicy, 'an object `{ preset, env }`');
  const preset = entry.preset;
  if (typeof preset !== 'string' || !(CONFIG_PRESETS as readonly string[]).includes(preset)) {
    fail(`${path}.preset`, `must be ${CONFIG_PRESETS.join(' or ')}`);
  }
  const name = preset as 'tecnativa' | 'linuxserver';
  const env = readEnv(entry.env, `${path}.env`, name);
  // With a file the environment is not read: the socket the guard forwards to is passed the way
  // the presets read it, so PROTECT_HOST refuses binds of it as it does without a file.
  const socket = context.socket === undefined ? {} : { SOCKET_PATH: context.socket };
  return rethrownAt(`${path}.env`, () => PRESETS[name]({ ...env, ...socket }));
}

function rulesAt(value: unknown, path: string, effect: 'allow' | 'deny'): RuleSpec[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) fail(path, 'must be a list of rules ("METHODS GLOB" or { methods, paths, … })');
  return value.map((spec: unknown, index) => {
    const at = `${path}[${index}]`;
    if (typeof spec !== 'string') objectAt(spec, at, CONFIG_KEYS.rule, 'a rule: "METHODS GLOB" or { methods, paths, access, id, reason }');
    // One rule at a time, so that an error names it by its place in the file.
    rethrownAt(at, () => definePolicy({ [effect]: [spec as RuleSpec] }));
    return spec as RuleSpec;
  });
}

/**
 * A `protectHost` section, validated as `definePolicy` validates it, with the guard's socket added
 * to the sockets a bind must not expose (to the section's own `dockerSockets`, or to what it would
 * otherwise have: the extended policy's, or the defaults).
 */
function protectHostAt(value: unknown, path: string, base: Policy | undefined, context: Context): ProtectHost {
  const section = objectAt(value, path, CONFIG_KEYS.protectHost, 'an object of host-protection settings, such as `{ allowBindMounts: [/srv] }`');
  const normalized = rethrownAt(path, () => normalizeProtectHost(section, path));
  if (context.socket === undefined) return normalized;
  const sockets = normalized.dockerSockets ?? base?.protectHost?.dockerSockets ?? DEFAULT_DOCKER_SOCKETS;
  return Object.freeze({ ...normalized, dockerSockets: Object.freeze([...new Set([...sockets, context.socket])]) });
}

/** A `read` section, validated as `definePolicy` validates it. */
function readAt(value: unknown, path: string): NonNullable<PolicySpec['read']> {
  const section = objectAt(value, path, CONFIG_KEYS.read, 'an object such as `{ redactEnv: true, visibleLabels: traefik.enable=true }`');
  rethrownAt(path, () => checkReadPolicy(section, path));
  return section as NonNullable<PolicySpec['read']>;
}

/** A policy entry: `{ preset, env }`, or what `definePolicy` takes (`extends` being `{ preset, env }`). */
function buildPolicy(value: unknown, path: string, context: Context): Policy {
  if (isPlainObject(value) && 'preset' in value) return presetPolicy(value, path, context);
  const entry = objectAt(
    value,
    path,
    CONFIG_KEYS.customPolicy,
    'a policy: `{ preset, env }`, or `{ extends: { preset, env }, allow, deny, protectHost, read, name }`',
  );
  const allow = rulesAt(entry.allow, `${path}.allow`, 'allow');
  const deny = rulesAt(entry.deny, `${path}.deny`, 'deny');
  const base = entry.extends === undefined ? undefined : presetPolicy(entry.extends, `${path}.extends`, context);
  if (allow === undefined && deny === undefined && base === undefined) {
    // A section alone has no rule to grant anything: every request would be refused.
    fail(path, 'must give `preset`, or `extends`, `allow` or `deny` (`protectHost` and `read` only narrow a policy)');
  }
  const protectHost = entry.protectHost === undefined ? undefined : protectHostAt(entry.protectHost, `${path}.protectHost`, base, context);
  const read = entry.read === undefined ? undefined : readAt(entry.read, `${path}.read`);
  const name = entry.name === undefined ? undefined : stringAt(entry.name, `${path}.name`);
  return rethrownAt(path, () =>
    definePolicy({
      ...(name !== undefined ? { name } : {}),
      ...(base !== undefined ? { extends: base } : {}),
      ...(allow !== undefined ? { allow } : {}),
      ...(deny !== undefined ? { deny } : {}),
      ...(protectHost !== undefined ? { protectHost } : {}),
      ...(read !== undefined ? { read } : {}),
    }),
  );
}

/** An address of the file (`listen[].address`, `metricsListen`), as `--listen` reads it. */
function addressAt(value: unknown, path: string): ListenAddress {
  const text = stringAt(value, path);
  // Relative to what? The guard's working directory is not the file's: say it in full.
  if (/^unix:(?!\/)/.test(text.trim())) fail(path, 'a unix socket path must be absolute (unix:/run/…)');
  try {
    return parseListenAddress(text, 'address');
  } catch (error) {
    fail(path, (error as Error).message.replace(/^address `[^`]*`: /, ''));
  }
}

function readListen(value: unknown): NamedListenAddress[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length === 0) fail('listen', 'must be a non-empty list of { name, address }');
  const names = new Set<string>();
  const addresses = new Set<string>();
  return value.map((item: unknown, index) => {
    const path = `listen[${index}]`;
    const entry = objectAt(item, path, CONFIG_KEYS.listen, 'an object `{ name, address }`');
    const name = entry.name;
    if (typeof name !== 'string' || !LISTENER_NAME.test(name)) fail(`${path}.name`, 'must be 1 to 64 letters, digits, `_`, `.` or `-`');
    if (names.has(name)) fail(`${path}.name`, `repeats the name ${JSON.stringify(name)}`);
    names.add(name);
    const address = addressAt(entry.address, `${path}.address`);
    const described = describeListenAddress(address);
    if (addresses.has(described)) fail(`${path}.address`, `repeats ${described}`);
    addresses.add(described);
    return Object.freeze({ ...address, name });
  });
}

function readClients(value: unknown, listen: readonly NamedListenAddress[] | undefined, context: Context): ClientSpec[] {
  if (!Array.isArray(value) || value.length === 0) fail('clients', 'must be a non-empty list of { name, match, policy }');
  const clients = value.map((item: unknown, index): ClientSpec => {
    const path = `clients[${index}]`;
    const entry = objectAt(item, path, CONFIG_KEYS.client, 'an object `{ name, match, policy }`');
    const match = objectAt(entry.match, `${path}.match`, CONFIG_KEYS.match, 'an object with `address` and/or `listener`');
    if (typeof match.listener === 'string' && !listen?.some((entry) => entry.name === match.listener)) {
      fail(
        `${path}.match.listener`,
        listen === undefined
          ? `names the listener ${JSON.stringify(match.listener)}, but the file has no \`listen\` entries`
          : `names the listener ${JSON.stringify(match.listener)}, which is not a \`listen\` entry (${listen.map((entry) => entry.name).join(', ')})`,
      );
    }
    return Object.freeze({
      name: entry.name as string,
      match: Object.freeze({ ...match }) as ClientSpec['match'],
      policy: buildPolicy(entry.policy, `${path}.policy`, context),
    });
  });
  // Names, addresses and listeners as createSocketFilter checks them, with this file's paths.
  rethrownAt('clients', () => compileClients(clients, { minApiVersion: 0 }));
  return clients;
}

function validate(data: unknown, options: ValidateConfigOptions): SocketFilterConfig {
  const top = objectAt(data, '', CONFIG_KEYS.top, 'a mapping of settings (`listen`, `clients`, `policy`, …)');
  if (top.$schema !== undefined && typeof top.$schema !== 'string') fail('$schema', 'must be a string (the schema editors check the file with)');
  const socketPath = top.socketPath === undefined ? undefined : stringAt(top.socketPath, 'socketPath');
  if (socketPath?.includes('\0')) fail('socketPath', 'must be a path');
  const listen = readListen(top.listen);
  if (top.clients !== undefined && top.policy !== undefined) {
    fail('clients', 'cannot be given with `policy`: each client has its own policy (`clients[].policy`)');
  }
  if (top.clients === undefined && top.policy === undefined) {
    fail('', 'the file must give `clients` (a policy per client) or `policy` (one policy for every request)');
  }
  // The file's socketPath replaces the caller's (the CLI's SOCKET_PATH), as it does for the guard.
  const effective = socketPath ?? options.socketPath;
  const cleaned = effective === undefined ? undefined : cleanAbsolutePath(effective);
  // A relative socket path names no host path a bind could expose; the defaults still hold.
  const context: Context = { socket: typeof cleaned === 'string' ? cleaned : undefined };
  const clients = top.clients === undefined ? undefined : readClients(top.clients, listen, context);
  const policy = top.policy === undefined ? undefined : buildPolicy(top.policy, 'policy', context);
  const minApiVersion = top.minApiVersion === undefined ? undefined : stringAt(top.minApiVersion, 'minApiVersion');
  if (minApiVersion !== undefined && parseVersionSetting(minApiVersion) < 0) fail('minApiVersion', 'must be a version such as "1.24"');
  let logLevel: LogLevel | undefined;
  if (top.logLevel !== undefined) {
    if (typeof top.logLevel !== 'string' || !(LOG_LEVELS as readonly string[]).includes(top.logLevel)) {
      fail('logLevel', `must be one of ${LOG_LEVELS.join(', ')}`);
    }
    logLevel = top.logLevel as LogLevel;
  }
  const metricsListen = top.metricsListen === undefined ? undefined : addressAt(top.metricsListen, 'metricsListen');
  if (metricsListen !== undefined && listen !== undefined) {
    try {
      checkMetricsApart(metricsListen, listen);
    } catch {
      fail('metricsListen', 'must not be one of the `listen` addresses: metrics are never served on the Docker API port');
    }
  }
  // A number setting read by the CLI's own parser, so the file and the flag accept the same values;
  // `text` settings also take a string ("64MiB").
  const setting = (
    value: unknown,
    path: string,
    read: (text: string, source: string) => number,
    accepts: { readonly text: boolean; readonly expected: string } = { text: false, expected: 'must be a number' },
  ): number | undefined => {
    if (value === undefined) return undefined;
    const readable = (typeof value === 'number' && Number.isFinite(value)) || (accepts.text && typeof value === 'string');
    if (!readable) fail(path, accepts.expected);
    try {
      return read(String(value), path);
    } catch (error) {
      fail(path, (error as Error).message.replace(/^\S+ `[^`]*`: /, ''));
    }
  };
  const maxConnections = setting(top.maxConnections, 'maxConnections', parseMaxConnections);
  const maxUpstreamConnections = setting(top.maxUpstreamConnections, 'maxUpstreamConnections', parseMaxUpstreamConnections);
  const graceMs = setting(top.shutdownGrace, 'shutdownGrace', parseGrace);
  const maxHeldBytes = setting(top.maxHeldBytes, 'maxHeldBytes', parseHeldBytes, { text: true, expected: 'must be a number of bytes or a size such as "64MiB"' });
  let socketMode: number | undefined;
  if (top.socketMode !== undefined) {
    // A string: YAML 1.2 reads an unquoted 0660 as the decimal number 660.
    if (typeof top.socketMode !== 'string') fail('socketMode', 'must be a quoted octal mode such as "0660" (YAML reads 0660 unquoted as a decimal number)');
    try {
      socketMode = parseSocketMode(top.socketMode, 'socketMode');
    } catch (error) {
      fail('socketMode', (error as Error).message.replace(/^\S+ `[^`]*`: /, ''));
    }
  }

  return Object.freeze({
    filter: Object.freeze({
      ...(clients !== undefined ? { clients: Object.freeze(clients) } : {}),
      ...(policy !== undefined ? { policy } : {}),
      ...(socketPath !== undefined ? { socketPath } : {}),
      ...(minApiVersion !== undefined ? { minApiVersion } : {}),
    }),
    listen: listen === undefined ? undefined : Object.freeze(listen),
    settings: Object.freeze({
      ...(socketPath !== undefined ? { socketPath } : {}),
      ...(logLevel !== undefined ? { logLevel } : {}),
      ...(metricsListen !== undefined ? { metricsListen } : {}),
      ...(maxConnections !== undefined ? { maxConnections } : {}),
      ...(maxUpstreamConnections !== undefined ? { maxUpstreamConnections } : {}),
      ...(maxHeldBytes !== undefined ? { maxHeldBytes } : {}),
      ...(graceMs !== undefined ? { graceMs } : {}),
      ...(socketMode !== undefined ? { socketMode } : {}),
    }),
  });
}

/**
 * Options of `validateConfig` (and of `parseConfig`, `loadConfig`).
 *
 * @example
 * ```ts
 * validateConfig(data, { socketPath: process.env.SOCKET_PATH });
 * ```
 */
export interface ValidateConfigOptions {
  /**
   * dockerd's socket when the file has no `socketPath` (the CLI passes `SOCKET_PATH`): under
   * `PROTECT_HOST` or `protectHost`, a bind of it (or of a directory above it) is refused, as the
   * default Docker and containerd sockets are. The file's `socketPath` replaces it.
   */
  readonly socketPath?: string | undefined;
}

/**
 * Validates the data of a policy file (what YAML or JSON parsing gave) and builds its policies.
 * Throws a `TypeError` (code `ERR_DSF_INVALID_CONFIG`) whose message starts with the path of what
 * is wrong: `clients[1].policy.allow[2]: "PATCH" is not a method of the Docker Engine API …`.
 *
 * @example
 * ```ts
 * validateConfig({ policy: { preset: 'tecnativa', env: { CONTAINERS: 1 } } }).filter.policy?.name; // 'tecnativa'
 * validateConfig({ policy: { preset: 'tecnativa', env: { PROTECT_HOST: 1 } } }, { socketPath: '/run/user/1000/docker.sock' });
 * ```
 */
export function validateConfig(data: unknown, options: ValidateConfigOptions = {}): SocketFilterConfig {
  if (typeof options !== 'object' || options === null) throw new SocketFilterTypeError('ERR_DSF_INVALID_OPTION', 'The options of `validateConfig` must be an object');
  if (options.socketPath !== undefined && (typeof options.socketPath !== 'string' || options.socketPath.includes('\0'))) {
    throw new SocketFilterTypeError('ERR_DSF_INVALID_OPTION', 'The `socketPath` option must be a path');
  }
  try {
    return validate(data, options);
  } catch (error) {
    if (error instanceof ConfigError) throw new SocketFilterTypeError('ERR_DSF_INVALID_CONFIG', error.message);
    throw error;
  }
}
