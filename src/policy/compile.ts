import picomatch from 'picomatch';
import { SocketFilterTypeError } from '../errors.js';
import { resolveProtectHost, type HostSettings } from './host/settings.js';
import { checkReadPolicy } from './read/settings.js';
import type { Access, Method, Policy, ReadPolicy, Rule } from './types.js';

/** Bit per method so a rule's method set is one integer test. */
export const METHOD_BITS: Readonly<Record<Method, number>> = Object.freeze({
  GET: 1,
  HEAD: 2,
  POST: 4,
  PUT: 8,
  DELETE: 16,
});
const ALL_METHODS = 31;

export const ACCESS_ANY = 0;
export const ACCESS_READ = 1;
export const ACCESS_WRITE = 2;
const ACCESS_CODES: Readonly<Record<Access, number>> = { any: ACCESS_ANY, read: ACCESS_READ, write: ACCESS_WRITE };

/** One rule as it is tried for one section: everything precomputed. */
export interface CompiledEntry {
  readonly rule: Rule;
  /** Position of the rule in the policy, for order-preserving merges. */
  readonly index: number;
  readonly allow: boolean;
  readonly methods: number;
  readonly access: number;
  /**
   * Whether the path `text.slice(start, end)` (after the version prefix) matches the rule, for a
   * path of the entry's own bucket only: in a section's entries, the first segment is known to be
   * that section and is not compared again.
   */
  readonly matches: PathMatcher;
  /** `rule.query` as a set, or null for a rule that accepts any query. */
  readonly query: ReadonlySet<string> | null;
  /**
   * What follows `METHOD PATH` in the reason of a decision by this rule: ` is allowed by X` for an
   * allow rule, `: <why>` (after `docker-socket-filter denied METHOD PATH`) for a deny rule.
   */
  readonly reasonSuffix: string;
}

/** A policy compiled for evaluation: rules bucketed by the first path segment they can match. */
export interface CompiledPolicy {
  readonly policy: Policy;
  /**
   * Entries for a request whose first segment (after the version) is the key, and only for such a
   * request: their matchers take that segment as read.
   */
  readonly bySection: ReadonlyMap<string, readonly CompiledEntry[]>;
  /** Entries for any other first segment: rules whose globs do not start with a literal segment. */
  readonly otherSections: readonly CompiledEntry[];
  /** The policy's `protectHost` section, resolved; undefined without one. */
  readonly protectHost: HostSettings | undefined;
  /** The policy's read section, validated (requirements given as strings parsed). */
  readonly read?: ReadPolicy;
}

const GLOB_CHARS = /[*?[\]{}()!+@|]/;
const RULE_KEYS = new Set(['id', 'effect', 'methods', 'access', 'paths', 'query', 'whenQueryTrue', 'reason']);
const POLICY_KEYS = new Set(['name', 'rules', 'hints', 'source', 'protectHost', 'read']);
const HINT_KEYS = new Set(['sections', 'write']);

function invalidRule(where: string, message: string, cause?: unknown): never {
  throw new SocketFilterTypeError('ERR_DSF_INVALID_RULE', `Invalid rule \`${where}\`: ${message}`, { cause });
}

function invalidPolicy(where: string, message: string): never {
  throw new SocketFilterTypeError('ERR_DSF_INVALID_OPTION', `The \`${where}\` option ${message}`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Tests the path `text.slice(start, end)` without slicing it: `evaluate` keeps the request-target
 * whole and passes indices, so the common rules cost a `startsWith`, not an allocation.
 */
export type PathMatcher = (text: string, start: number, end: number) => boolean;

interface CompiledGlob {
  /** The literal first segment, or null when the first segment is itself a pattern. */
  readonly section: string | null;
  /**
   * Tests a path whose first segment is already known to be `section` (the evaluator only tries a
   * section's rules on such paths), so literal globs compare only what follows it. When `section`
   * is null, tests any path.
   */
  readonly matchesInSection: PathMatcher;
}

const matchesEverything: PathMatcher = () => true;

/**
 * A literal as its UTF-16 code units, for `regionEquals`.
 *
 * @example
 * ```ts
 * codeUnits('/a'); // [47, 97]
 * ```
 */
export function codeUnits(literal: string): readonly number[] {
  return Array.from({ length: literal.length }, (_, i) => literal.charCodeAt(i));
}

/**
 * `text.startsWith(literal, offset)` for `offset >= 0`, with the literal given by `codeUnits`. On
 * the hot path, calling the built-in and reading the literal's characters cost more than comparing
 * the few characters of a path literal. Past the end of `text`, `charCodeAt` is NaN: no match.
 *
 * @example
 * ```ts
 * regionEquals('/v1.41/containers/json', 6, codeUnits('/containers/')); // true
 * ```
 */
export function regionEquals(text: string, offset: number, literal: readonly number[]): boolean {
  for (let i = 0; i < literal.length; i++) {
    if (text.charCodeAt(offset + i) !== literal[i]) return false;
  }
  return true;
}

/** The matcher of a literal glob, for paths whose first segment is `section`. */
function literalInSection(glob: string, section: string): PathMatcher {
  const tailOffset = 1 + section.length;
  const tail = codeUnits(glob.slice(tailOffset));
  if (tail.length === 0) return (_text, start, end) => end - start === glob.length;
  return (text, start, end) => end - start === glob.length && regionEquals(text, start + tailOffset, tail);
}

/**
 * The matcher of `base/**` (which also matches `base` itself), for paths whose first segment is
 * `section`: when `base` is just `/section`, every such path matches.
 */
function subtreeInSection(base: string, section: string): PathMatcher {
  if (base.length === 1 + section.length) return matchesEverything;
  const tailOffset = 1 + section.length;
  const baseTail = codeUnits(base.slice(tailOffset));
  const underTail = codeUnits(`${base.slice(tailOffset)}/`);
  const underLength = base.length + 1;
  return (text, start, end) =>
    end - start >= underLength
      ? regionEquals(text, start + tailOffset, underTail)
      : end - start === base.length && regionEquals(text, start + tailOffset, baseTail);
}

/**
 * Compiles one glob. Literal globs and `literal/**` globs (every preset section) become string
 * comparisons; only real patterns pay for a regular expression.
 */
function compileGlob(glob: string, where: string): CompiledGlob {
  if (typeof glob !== 'string' || glob.length === 0) invalidRule(where, 'a path glob must be a non-empty string');
  if (glob.charCodeAt(0) !== 0x2f) invalidRule(where, `the path glob "${glob}" must start with /`);
  if (glob.includes('\\')) invalidRule(where, `the path glob "${glob}" must not contain a backslash`);
  if (glob === '/**') return { section: null, matchesInSection: matchesEverything };
  const segments = glob.slice(1).split('/');
  for (const segment of segments) {
    if (segment === '' || segment === '.' || segment === '..') {
      invalidRule(where, `the path glob "${glob}" has an empty or dot segment; it could never match a canonical path`);
    }
    if (segment.includes('**') && segment !== '**') {
      invalidRule(where, `the path glob "${glob}" uses ** inside a segment; ** must be a whole segment`);
    }
  }
  const literalCount = segments.findIndex((segment) => GLOB_CHARS.test(segment));
  const firstLiteral = literalCount === 0 ? null : (segments[0] as string);

  // A literal or `**` glob always has a literal first segment: `/**` alone is handled above.
  if (literalCount === -1) {
    return { section: firstLiteral, matchesInSection: literalInSection(glob, firstLiteral as string) };
  }
  if (literalCount === segments.length - 1 && segments[literalCount] === '**') {
    const base = '/' + segments.slice(0, literalCount).join('/');
    return { section: firstLiteral, matchesInSection: subtreeInSection(base, firstLiteral as string) };
  }
  let regex: RegExp;
  try {
    regex = picomatch.makeRe(glob, { dot: true, strictBrackets: true, nonegate: true });
  } catch (error) {
    invalidRule(where, `the path glob "${glob}" is not a valid glob (${(error as Error).message})`, error);
  }
  return {
    section: firstLiteral,
    matchesInSection: (text, start, end) => regex.test(start === 0 && end === text.length ? text : text.slice(start, end)),
  };
}

function validateRule(rule: unknown, where: string): Rule {
  if (!isPlainObject(rule)) invalidRule(where, 'a rule must be an object');
  for (const key of Object.keys(rule)) {
    if (!RULE_KEYS.has(key)) invalidRule(where, `unknown key \`${key}\``);
  }
  const { id, effect, methods, access, paths, query, whenQueryTrue, reason } = rule;
  if (typeof id !== 'string' || id.length === 0) invalidRule(where, '`id` must be a non-empty string');
  if (effect !== 'allow' && effect !== 'deny') invalidRule(where, '`effect` must be "allow" or "deny"');
  if (methods !== undefined) {
    if (!Array.isArray(methods) || methods.length === 0) invalidRule(where, '`methods` must be a non-empty array');
    for (const method of methods) {
      if (typeof method !== 'string' || !Object.hasOwn(METHOD_BITS, method)) {
        invalidRule(where, `\`methods\` has ${JSON.stringify(method)}; the Docker Engine API uses GET, HEAD, POST, PUT and DELETE`);
      }
    }
  }
  if (access !== undefined && !Object.hasOwn(ACCESS_CODES, access as string)) {
    invalidRule(where, '`access` must be "read", "write" or "any"');
  }
  if (!Array.isArray(paths) || paths.length === 0) invalidRule(where, '`paths` must be a non-empty array of globs');
  if (reason !== undefined && typeof reason !== 'string') invalidRule(where, '`reason` must be a string');
  for (const [key, names] of [['query', query], ['whenQueryTrue', whenQueryTrue]] as const) {
    if (names === undefined) continue;
    if (!Array.isArray(names) || names.some((name) => typeof name !== 'string' || name === '')) {
      invalidRule(where, `\`${key}\` must be an array of query parameter names`);
    }
  }
  if (whenQueryTrue !== undefined && (whenQueryTrue as unknown[]).length === 0) invalidRule(where, '`whenQueryTrue` must name at least one parameter');
  return rule as unknown as Rule;
}

function validateHints(hints: unknown, at: string): void {
  if (hints === undefined) return;
  if (!isPlainObject(hints)) invalidPolicy(`${at}.hints`, 'must be an object');
  for (const key of Object.keys(hints)) {
    if (!HINT_KEYS.has(key)) invalidPolicy(`${at}.hints.${key}`, 'is not a known option');
  }
  if (hints.write !== undefined && typeof hints.write !== 'string') invalidPolicy(`${at}.hints.write`, 'must be a string');
  if (hints.sections !== undefined) {
    if (!isPlainObject(hints.sections)) invalidPolicy(`${at}.hints.sections`, 'must be an object');
    for (const [key, value] of Object.entries(hints.sections)) {
      if (typeof value !== 'string') invalidPolicy(`${at}.hints.sections.${key}`, 'must be a string');
    }
  }
}

/**
 * Validates one rule and its globs, naming it as `where` in errors. For callers that build rules
 * from another notation and want errors in that notation's terms.
 *
 * @example
 * ```ts
 * checkRule({ id: 'x', effect: 'allow', paths: ['/containers/*'] }, 'allow[0]');
 * ```
 */
export function checkRule(rule: unknown, where: string): Rule {
  const checked = validateRule(rule, where);
  for (const glob of checked.paths) compileGlob(glob, where);
  return checked;
}

/**
 * Validates a policy and compiles it for `evaluate`. Throws a `TypeError` (code
 * `ERR_DSF_INVALID_RULE` or `ERR_DSF_INVALID_OPTION`) naming the rule or option that is wrong, under
 * `at` (`policy`, or `clients[1].policy` for a client's).
 *
 * @example
 * ```ts
 * const compiled = compilePolicy(tecnativaPreset({ CONTAINERS: '1' }));
 * ```
 */
export function compilePolicy(policy: Policy, at = 'policy'): CompiledPolicy {
  if (!isPlainObject(policy)) invalidPolicy(at, 'must be a policy object (e.g. tecnativaPreset())');
  for (const key of Object.keys(policy)) {
    if (!POLICY_KEYS.has(key)) invalidPolicy(`${at}.${key}`, 'is not a known option');
  }
  if (typeof policy.name !== 'string' || policy.name.length === 0) invalidPolicy(`${at}.name`, 'must be a non-empty string');
  if (!Array.isArray(policy.rules)) invalidPolicy(`${at}.rules`, 'must be an array of rules');
  validateHints(policy.hints, at);
  // Reasons name the preset's variables for a preset's policy, the option paths for a custom one.
  const protectHost =
    policy.protectHost === undefined ? undefined : resolveProtectHost(policy.protectHost, `${at}.protectHost`, policy.source === undefined ? 'options' : 'env');
  const read = checkReadPolicy(policy.read, `${at}.read`);

  interface RuleGlobs {
    readonly rule: Rule;
    readonly index: number;
    readonly globs: readonly CompiledGlob[];
  }
  const compiledRules: RuleGlobs[] = policy.rules.map((candidate, index) => {
    const label = typeof (candidate as Rule | undefined)?.id === 'string' ? ` (${(candidate as Rule).id})` : '';
    const where = `${at}.rules[${index}]${label}`;
    const rule = validateRule(candidate, where);
    return { rule, index, globs: rule.paths.map((glob) => compileGlob(glob, where)) };
  });

  const sections = new Set<string>();
  for (const { globs } of compiledRules) {
    for (const glob of globs) if (glob.section !== null) sections.add(glob.section);
  }

  const entriesFor = (section: string | null): CompiledEntry[] => {
    const entries: CompiledEntry[] = [];
    for (const { rule, index, globs } of compiledRules) {
      const relevant = globs.filter((glob) => glob.section === null || glob.section === section);
      if (relevant.length === 0) continue;
      const tests = relevant.map((glob) => glob.matchesInSection);
      // A section rule (`/x` and `/x/**`) matches every path of its own section: no test at all.
      const matches: PathMatcher = tests.includes(matchesEverything)
        ? matchesEverything
        : tests.length === 1
          ? (tests[0] as PathMatcher)
          : (text, start, end) => {
              for (const test of tests) if (test(text, start, end)) return true;
              return false;
            };
      let methods = ALL_METHODS;
      if (rule.methods) {
        methods = 0;
        for (const method of rule.methods) methods |= METHOD_BITS[method];
      }
      entries.push(
        Object.freeze({
          rule,
          index,
          allow: rule.effect === 'allow',
          methods,
          access: ACCESS_CODES[rule.access ?? 'any'],
          matches,
          query: rule.query === undefined ? null : new Set(rule.query),
          reasonSuffix:
            rule.effect === 'allow' ? ' ' + (rule.reason ?? `is allowed by ${rule.id}`) : ': ' + (rule.reason ?? `the rule ${rule.id} denies it`),
        }),
      );
    }
    return entries;
  };

  const bySection = new Map<string, readonly CompiledEntry[]>();
  for (const section of sections) bySection.set(section, Object.freeze(entriesFor(section)));
  return Object.freeze({
    policy,
    bySection,
    otherSections: Object.freeze(entriesFor(null)),
    protectHost,
    ...(read === undefined ? {} : { read }),
  });
}
