import { parseQuery } from '../query.js';
import type { LabelRequirement } from '../types.js';
import { formatRequirement } from './labels.js';

/**
 * Docker's `filters` query parameter, read as moby's `filters.FromJSON` reads it, and merged with
 * label requirements so that dockerd itself returns only what a client may see. Pure: no `node:`
 * imports.
 *
 * `FromJSON` accepts two forms: `{"key":{"value":true,…},…}` (a set per key; every list and
 * `/events` ranges over the set's *keys*, only `ExactMatch` reads the booleans) and the legacy
 * `{"key":["value",…],…}`. Every filter key narrows the answer (the keys are ANDed), and `label`
 * holds when *every* value holds (`MatchKVList`), so adding the requirements to `label` yields
 * exactly the objects that satisfy both the client's filters and the requirements. What this module
 * cannot merge that exactly is refused, never guessed: malformed or ambiguous JSON (duplicate keys,
 * lone surrogates, values of other types), keys the endpoint does not know, keys that name another
 * object (whose error would tell a hidden one from a missing one), repeated `filters` parameters.
 */

/** A parsed `filters` value: key -> set of values with the boolean the client gave each. */
export type FilterArgs = Map<string, Map<string, boolean>>;

/**
 * The list endpoints whose filters are merged: `containers` (`GET /containers/json`),
 * `containers-prune` (`POST /containers/prune`), `services`, `tasks` and `events`.
 *
 * @example
 * ```ts
 * const kind: FilterKind = 'events';
 * ```
 */
export type FilterKind = 'containers' | 'containers-prune' | 'services' | 'tasks' | 'events';

// The keys each endpoint of dockerd 20.10 accepts (daemon/list.go, daemon/cluster/filters.go and
// services.go, daemon/prune.go, daemon/events/filter.go). `/events` ignores unknown keys; refusing
// them here is stricter, and no client sends one.
const KNOWN_KEYS: Readonly<Record<FilterKind, ReadonlySet<string>>> = {
  containers: new Set(['ancestor', 'exited', 'id', 'isolation', 'label', 'name', 'status', 'health', 'volume', 'network', 'is-task', 'publish', 'expose']),
  'containers-prune': new Set(['label', 'label!', 'until']),
  services: new Set(['name', 'id', 'label', 'mode', 'runtime']),
  tasks: new Set(['name', 'id', 'label', 'service', 'node', 'desired-state', '_up-to-date', 'runtime']),
  events: new Set(['config', 'container', 'daemon', 'event', 'image', 'label', 'network', 'node', 'plugin', 'scope', 'secret', 'service', 'type', 'volume']),
};

// Keys dockerd resolves to another object by name or id, answering an error when there is none:
// with them a client could tell a hidden container from a missing one.
const NAMING_OTHER_OBJECTS: Readonly<Partial<Record<FilterKind, Readonly<Record<string, string>>>>> = {
  containers: {
    before: 'the `before` filter names another container, and dockerd answers differently whether it exists',
    since: 'the `since` filter names another container, and dockerd answers differently whether it exists',
  },
};

class FiltersSyntaxError extends Error {}

/** A strict reader of the JSON subset `FromJSON` accepts: objects, arrays, strings, booleans. */
class Reader {
  index = 0;
  constructor(private readonly text: string) {}

  fail(what: string): never {
    throw new FiltersSyntaxError(`${what} at character ${this.index + 1}`);
  }

  blank(): void {
    const text = this.text;
    while (this.index < text.length) {
      const code = text.charCodeAt(this.index);
      if (code !== 0x20 && code !== 0x09 && code !== 0x0a && code !== 0x0d) return;
      this.index++;
    }
  }

  peek(): string {
    this.blank();
    return this.text.charAt(this.index);
  }

  expect(char: string): void {
    if (this.peek() !== char) this.fail(`expected "${char}"`);
    this.index++;
  }

  end(): void {
    if (this.peek() !== '') this.fail('unexpected text after the value');
  }

  string(): string {
    this.expect('"');
    const text = this.text;
    let out = '';
    for (;;) {
      if (this.index >= text.length) this.fail('unterminated string');
      const code = text.charCodeAt(this.index++);
      if (code === 0x22) return out;
      if (code < 0x20) this.fail('control character in a string');
      if (code >= 0xd800 && code <= 0xdfff) {
        // Only a parameter decoded from UTF-8 reaches here, so this is a proper pair; keep it.
        out += String.fromCharCode(code);
        continue;
      }
      if (code !== 0x5c) {
        out += String.fromCharCode(code);
        continue;
      }
      const escape = text.charAt(this.index++);
      switch (escape) {
        case '"':
        case '\\':
        case '/':
          out += escape;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          const unit = this.hex4();
          if (unit >= 0xdc00 && unit <= 0xdfff) this.fail('lone surrogate escape');
          if (unit >= 0xd800 && unit <= 0xdbff) {
            // Go replaces a lone high surrogate by U+FFFD, JavaScript keeps it: refuse it instead.
            if (text.charAt(this.index) !== '\\' || text.charAt(this.index + 1) !== 'u') this.fail('lone surrogate escape');
            this.index += 2;
            const low = this.hex4();
            if (low < 0xdc00 || low > 0xdfff) this.fail('lone surrogate escape');
            out += String.fromCharCode(unit, low);
          } else out += String.fromCharCode(unit);
          break;
        }
        default:
          this.fail('invalid escape');
      }
    }
  }

  hex4(): number {
    const digits = this.text.slice(this.index, this.index + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(digits)) this.fail('invalid \\u escape');
    this.index += 4;
    return Number.parseInt(digits, 16);
  }

  boolean(): boolean {
    this.blank();
    if (this.text.startsWith('true', this.index)) {
      this.index += 4;
      return true;
    }
    if (this.text.startsWith('false', this.index)) {
      this.index += 5;
      return false;
    }
    return this.fail('expected true or false');
  }

  /** Reads `{ "k": <value>, … }`, refusing a key given twice. */
  object<T>(value: () => T): Map<string, T> {
    const result = new Map<string, T>();
    this.expect('{');
    if (this.peek() === '}') {
      this.index++;
      return result;
    }
    for (;;) {
      const key = this.string();
      if (result.has(key)) this.fail(`the key ${JSON.stringify(key)} is given twice`);
      this.expect(':');
      result.set(key, value());
      const next = this.peek();
      this.index++;
      if (next === '}') return result;
      if (next !== ',') this.fail('expected "," or "}"');
    }
  }

  array<T>(value: () => T): T[] {
    const result: T[] = [];
    this.expect('[');
    if (this.peek() === ']') {
      this.index++;
      return result;
    }
    for (;;) {
      result.push(value());
      const next = this.peek();
      this.index++;
      if (next === ']') return result;
      if (next !== ',') this.fail('expected "," or "]"');
    }
  }
}

/**
 * Parses a `filters` value as `filters.FromJSON` does, strictly: the empty string is no filter; an
 * object of objects of booleans (the current form), or an object of arrays of strings (the legacy
 * form, whose values all count as `true`). Anything else, duplicate keys at any level, a value
 * given twice in the legacy form and lone surrogates are refused with the reason.
 *
 * @example
 * ```ts
 * parseFilters('{"label":{"traefik.enable=true":true}}'); // { args: Map { 'label' => Map { 'traefik.enable=true' => true } } }
 * parseFilters('{"label":["a=b"]}'); // the legacy form: the same, with `true`
 * parseFilters('{"label":{"a":true},"label":{"b":true}}').problem; // 'the key "label" is given twice at character 35'
 * ```
 */
export function parseFilters(text: string): { readonly args: FilterArgs; readonly problem: null } | { readonly args: null; readonly problem: string } {
  const args: FilterArgs = new Map();
  if (text === '') return { args, problem: null };
  const reader = new Reader(text);
  try {
    if (reader.peek() !== '{') reader.fail('expected an object');
    // Which form is decided by the first value; the two cannot mix (Go refuses a mixture as well).
    const probe = new Reader(text);
    probe.expect('{');
    let legacy = false;
    if (probe.peek() !== '}') {
      probe.string();
      probe.expect(':');
      legacy = probe.peek() === '[';
    }
    if (legacy) {
      const raw = reader.object(() =>
        reader.array(() => {
          if (reader.peek() !== '"') reader.fail('expected a string in the legacy form');
          return reader.string();
        }),
      );
      for (const [key, values] of raw) {
        const set = new Map<string, boolean>();
        for (const value of values) {
          if (set.has(value)) reader.fail(`the value ${JSON.stringify(value)} of ${JSON.stringify(key)} is given twice`);
          set.set(value, true);
        }
        args.set(key, set);
      }
    } else {
      const raw = reader.object(() => {
        if (reader.peek() !== '{') reader.fail('expected an object of booleans');
        return reader.object(() => reader.boolean());
      });
      for (const [key, set] of raw) args.set(key, set);
    }
    reader.end();
  } catch (error) {
    if (error instanceof FiltersSyntaxError) return { args: null, problem: `the \`filters\` parameter is not valid Docker filters JSON: ${error.message}` };
    throw error;
  }
  return { args, problem: null };
}

/**
 * Encodes filters in the current form, keys and values in the order given.
 *
 * @example
 * ```ts
 * encodeFilters(new Map([['label', new Map([['a=b', true]])]])); // '{"label":{"a=b":true}}'
 * ```
 */
export function encodeFilters(args: FilterArgs): string {
  const out: Record<string, Record<string, boolean>> = {};
  for (const [key, set] of args) {
    const values: Record<string, boolean> = {};
    // Own properties in insertion order: keys that look like integers would be reordered by a
    // plain object, which changes nothing for dockerd (a set) but is avoided all the same.
    for (const [value, flag] of set) Object.defineProperty(values, value, { value: flag, enumerable: true, writable: true, configurable: true });
    Object.defineProperty(out, key, { value: values, enumerable: true, writable: true, configurable: true });
  }
  return JSON.stringify(out);
}

/** `label` as swarm reads it (`ConvertKVStringsToMap`): key -> value, `""` for a key alone. */
function swarmLabel(value: string): [string, string] {
  const equals = value.indexOf('=');
  return equals === -1 ? [value, ''] : [value.slice(0, equals), value.slice(equals + 1)];
}

/**
 * Merges label requirements into parsed filters for one endpoint (a new map; `args` is not changed).
 * Refuses keys the endpoint does not know or that name other objects, and, for services and tasks
 * (whose `label` values collapse into one value per key in swarm), a client label on a required
 * key with another meaning than the requirement.
 *
 * @example
 * ```ts
 * const { args } = mergeLabelFilter('containers', parseFilters('{"status":{"running":true}}').args!, [{ key: 'traefik.enable', value: 'true' }]);
 * encodeFilters(args!); // '{"status":{"running":true},"label":{"traefik.enable=true":true}}'
 * ```
 */
export function mergeLabelFilter(
  kind: FilterKind,
  args: FilterArgs,
  requirements: readonly LabelRequirement[],
): { readonly args: FilterArgs; readonly problem: null } | { readonly args: null; readonly problem: string } {
  const known = KNOWN_KEYS[kind];
  const naming = NAMING_OTHER_OBJECTS[kind];
  for (const key of args.keys()) {
    const why = naming === undefined ? undefined : Object.hasOwn(naming, key) ? naming[key] : undefined;
    if (why !== undefined) return { args: null, problem: `${why}; it cannot be used while visibility is limited by labels` };
    if (!known.has(key)) return { args: null, problem: `the filter ${JSON.stringify(key)} is not one this endpoint knows, so it cannot be merged with the visibility labels` };
  }
  const merged: FilterArgs = new Map();
  for (const [key, set] of args) merged.set(key, new Map(set));
  const labels = merged.get('label') ?? new Map<string, boolean>();
  if (kind === 'services' || kind === 'tasks') {
    const required = new Map(requirements.map((requirement) => [requirement.key, requirement.value ?? '']));
    for (const value of labels.keys()) {
      const [key, wanted] = swarmLabel(value);
      const ours = required.get(key);
      if (ours !== undefined && ours !== wanted) {
        return {
          args: null,
          problem: `the label filter ${JSON.stringify(value)} names the label ${JSON.stringify(key)} that visibility requires, with another meaning; swarm keeps one value per label key, so the two cannot both hold`,
        };
      }
    }
  }
  for (const requirement of requirements) {
    const text = formatRequirement(requirement);
    if (!labels.has(text)) labels.set(text, true);
  }
  merged.set('label', labels);
  return { args: merged, problem: null };
}

/**
 * What `mergeQuery` returns: the query to forward (with the merged `filters`), and for a task list,
 * the one service its `service` filter names (whose visibility the proxy must check).
 *
 * @example
 * ```ts
 * const merged: MergedQuery = { query: 'all=1&filters=%7B%7D', problem: null };
 * ```
 */
export type MergedQuery =
  | { readonly query: string; readonly service?: string; readonly problem: null }
  | { readonly query: null; readonly problem: string };

/**
 * Rewrites a raw query (without `?`) so that its `filters` also require the labels: every other
 * parameter is kept byte for byte, the `filters` parameter (one at most) is replaced by the merged
 * filters, encoded. Refuses a query Go releases read differently, a repeated `filters`, filters that
 * cannot be merged exactly, and for tasks more than one `service` filter value.
 *
 * @example
 * ```ts
 * mergeQuery('containers', 'all=1', [{ key: 'traefik.enable', value: 'true' }]).query;
 * // 'all=1&filters=%7B%22label%22%3A%7B%22traefik.enable%3Dtrue%22%3Atrue%7D%7D'
 * mergeQuery('containers', 'filters=a&filters=b', []).problem; // 'the `filters` parameter is given 2 times …'
 * ```
 */
export function mergeQuery(kind: FilterKind, rawQuery: string, requirements: readonly LabelRequirement[]): MergedQuery {
  const parsed = parseQuery(rawQuery);
  if (parsed.problem !== null) return { query: null, problem: parsed.problem };
  const given = parsed.params.get('filters') ?? [];
  if (given.length > 1) {
    return { query: null, problem: `the \`filters\` parameter is given ${given.length} times, and only one can be merged with the visibility labels` };
  }
  const filters = parseFilters(given[0] ?? '');
  if (filters.problem !== null) return { query: null, problem: filters.problem };
  const merged = mergeLabelFilter(kind, filters.args, requirements);
  if (merged.problem !== null) return { query: null, problem: merged.problem };
  let service: string | undefined;
  if (kind === 'tasks') {
    const services = [...(merged.args.get('service')?.keys() ?? [])];
    if (services.length > 1) return { query: null, problem: 'a task list may name one service only while visibility is limited by labels' };
    service = services[0];
  }
  const kept = rawQuery === '' ? [] : rawQuery.split('&').filter((pair) => pair !== '' && !parseQuery(pair).params.has('filters'));
  kept.push(`filters=${encodeURIComponent(encodeFilters(merged.args))}`);
  const query = kept.join('&');
  return service === undefined ? { query, problem: null } : { query, service, problem: null };
}
