import { SocketFilterTypeError } from '../errors.js';
import { checkRule, METHOD_BITS } from './compile.js';
import { normalizeProtectHost } from './host/settings.js';
import { checkReadPolicy, combineRead } from './read/settings.js';
import type { Access, LabelRequirement, Method, Policy, ProtectHost, Rule } from './types.js';

/**
 * A rule in the notation of `definePolicy`: a string `"METHODS GLOB"` (`"GET /containers/json"`,
 * `"GET,HEAD /_ping"`, `"* /events"`), or an object for what a string cannot say.
 *
 * @example
 * ```ts
 * const rules: RuleSpec[] = ['GET /containers/*\/json', { methods: ['POST'], paths: ['/containers/*\/start'] }];
 * ```
 */
export type RuleSpec =
  | string
  | {
      readonly id?: string;
      readonly methods?: readonly Method[] | '*';
      readonly paths: string | readonly string[];
      readonly access?: Access;
      readonly reason?: string;
    };

/**
 * A custom policy: what to allow and what to deny, optionally on top of a preset.
 *
 * @example
 * ```ts
 * const spec: PolicySpec = { name: 'traefik', allow: ['GET /containers/json', 'GET /events'] };
 * ```
 */
export interface PolicySpec {
  /** Shown in logs and tables. Default: `custom`, or `<preset>+custom` when extending. */
  readonly name?: string;
  /** A policy (e.g. a preset) to extend with `allow` and narrow with `deny`. */
  readonly extends?: Policy;
  readonly allow?: readonly RuleSpec[];
  readonly deny?: readonly RuleSpec[];
  /**
   * Judge the configuration writes carry and refuse host escapes (see `ProtectHost`). Merged over
   * the extended policy's section, key by key; absent, the extended policy's section is kept.
   */
  readonly protectHost?: ProtectHost;
  /**
   * What a reading client may see (see `ReadPolicy`): `redactEnv`, and `visibleLabels` as
   * requirements, `"key=value"` / `"key"` strings, or one comma-separated string. With `extends`,
   * added to the extended policy's: redaction if either asks, every label of both.
   */
  readonly read?: {
    readonly redactEnv?: boolean;
    readonly visibleLabels?: string | readonly (string | LabelRequirement)[];
  };
}

const SPEC_KEYS = new Set(['name', 'extends', 'allow', 'deny', 'protectHost', 'read']);
const RULE_SPEC_KEYS = new Set(['id', 'methods', 'paths', 'access', 'reason']);

function invalid(where: string, message: string): never {
  throw new SocketFilterTypeError('ERR_DSF_INVALID_RULE', `Invalid rule \`${where}\`: ${message}`);
}

function parseMethods(text: string, where: string): Method[] | undefined {
  if (text === '*') return undefined;
  const methods = text.split(',').map((method) => method.trim());
  for (const method of methods) {
    if (!Object.hasOwn(METHOD_BITS, method)) {
      invalid(where, `${JSON.stringify(method)} is not a method of the Docker Engine API (GET, HEAD, POST, PUT, DELETE, or * for all)`);
    }
  }
  return methods as Method[];
}

function toRule(spec: RuleSpec, effect: 'allow' | 'deny', where: string): Rule {
  if (typeof spec === 'string') {
    const match = /^\s*(\S+)\s+(\S+)\s*$/.exec(spec);
    if (!match) invalid(where, `${JSON.stringify(spec)} must be "METHODS GLOB", e.g. "GET /containers/json" or "* /events"`);
    const methods = parseMethods(match[1] as string, where);
    const rule: Rule = { id: `${effect} ${spec.trim()}`, effect, paths: [match[2] as string], ...(methods ? { methods } : {}) };
    return checkRule(rule, where);
  }
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) invalid(where, 'must be a string or an object');
  for (const key of Object.keys(spec)) if (!RULE_SPEC_KEYS.has(key)) invalid(where, `unknown key \`${key}\``);
  const paths = typeof spec.paths === 'string' ? [spec.paths] : spec.paths;
  if (!Array.isArray(paths)) invalid(where, '`paths` must be a glob or an array of globs');
  const methods = spec.methods === '*' ? undefined : spec.methods;
  const rule: Rule = {
    id: spec.id ?? `${effect} ${methods ? methods.join(',') : '*'} ${paths.join(' ')}`,
    effect,
    paths,
    ...(methods !== undefined ? { methods } : {}),
    ...(spec.access !== undefined ? { access: spec.access } : {}),
    ...(spec.reason !== undefined ? { reason: spec.reason } : {}),
  };
  return checkRule(rule, where);
}

function toRules(specs: unknown, effect: 'allow' | 'deny'): Rule[] {
  if (specs === undefined) return [];
  if (!Array.isArray(specs)) {
    throw new SocketFilterTypeError('ERR_DSF_INVALID_OPTION', `The \`${effect}\` option must be an array of rules`);
  }
  return specs.map((spec: RuleSpec, index) => {
    const label = typeof spec === 'string' ? ` (${JSON.stringify(spec)})` : '';
    return toRule(spec, effect, `${effect}[${index}]${label}`);
  });
}

/**
 * Builds a policy from allow and deny rules. Deny rules win over allow rules; anything unmatched is
 * denied. With `extends`, the rules come before the extended policy's own: `deny` narrows it, `allow`
 * grants more (an explicit allow also passes that policy's write gate for what it names).
 *
 * Globs are picomatch globs over the canonical path without version prefix; `*` never crosses a `/`.
 * The checks that hold for every policy (canonical targets, methods, single-segment container names,
 * API version, start bodies, upgrades as writes) apply as well. Invalid rules throw a `TypeError` naming
 * the rule (`allow[2] ("PATCH /x")`). `protectHost` turns on the host checks (`protectHost: {}` refuses
 * every escape; its keys re-open them), validated with its path (`protectHost.allowBindMounts[1]`).
 *
 * @example
 * ```ts
 * const traefik = definePolicy({
 *   name: 'traefik',
 *   allow: ['GET /containers/json', 'GET /containers/*\/json', 'GET /events', 'GET,HEAD /_ping', 'GET /version'],
 * });
 * const deployer = definePolicy({
 *   extends: tecnativaPreset({ CONTAINERS: '1' }),
 *   allow: ['POST /containers/*\/start', 'POST /containers/*\/stop'],
 *   deny: ['* /containers/*\/exec', '* /containers/*\/archive'],
 * });
 * const portainer = definePolicy({
 *   extends: tecnativaPreset({ CONTAINERS: '1', IMAGES: '1', VOLUMES: '1', POST: '1' }),
 *   protectHost: { allowBindMounts: ['/srv', '/opt/appdata'] },
 * });
 * const reader = definePolicy({
 *   extends: tecnativaPreset({ CONTAINERS: '1' }),
 *   read: { redactEnv: true, visibleLabels: 'traefik.enable=true' },
 * });
 * ```
 */
export function definePolicy(spec: PolicySpec): Policy {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    throw new SocketFilterTypeError('ERR_DSF_INVALID_OPTION', 'The policy spec must be an object with `allow` and/or `deny`');
  }
  for (const key of Object.keys(spec)) {
    if (!SPEC_KEYS.has(key)) throw new SocketFilterTypeError('ERR_DSF_INVALID_OPTION', `The \`${key}\` option is not a known option`);
  }
  const base = spec.extends;
  if (base !== undefined && (typeof base !== 'object' || base === null || !Array.isArray(base.rules))) {
    throw new SocketFilterTypeError('ERR_DSF_INVALID_OPTION', 'The `extends` option must be a policy (e.g. tecnativaPreset())');
  }
  if (spec.name !== undefined && (typeof spec.name !== 'string' || spec.name.length === 0)) {
    throw new SocketFilterTypeError('ERR_DSF_INVALID_OPTION', 'The `name` option must be a non-empty string');
  }
  const rules = [...toRules(spec.deny, 'deny'), ...toRules(spec.allow, 'allow'), ...(base?.rules ?? [])];
  if (spec.protectHost !== undefined) normalizeProtectHost(spec.protectHost, 'protectHost');
  const protectHost =
    spec.protectHost === undefined
      ? base?.protectHost
      : normalizeProtectHost({ ...(base?.protectHost ?? {}), ...spec.protectHost }, 'protectHost');
  const read = combineRead(base?.read === undefined ? undefined : checkReadPolicy(base.read, 'extends.read'), checkReadPolicy(spec.read, 'read'));
  return Object.freeze({
    name: spec.name ?? (base ? `${base.name}+custom` : 'custom'),
    rules: Object.freeze(rules.map((rule) => Object.freeze(rule))),
    ...(base?.hints ? { hints: base.hints } : {}),
    ...(protectHost === undefined ? {} : { protectHost }),
    ...(read === undefined ? {} : { read }),
  });
}
