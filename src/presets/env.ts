import { SocketFilterTypeError } from '../errors.js';
import { parseLabelRequirements } from '../policy/read/labels.js';
import type { LabelRequirement, ReadPolicy } from '../policy/types.js';

/**
 * An environment-like object: variable name to value. `process.env` is one.
 *
 * @example
 * ```ts
 * const env: EnvLike = { CONTAINERS: '1', POST: '0' };
 * ```
 */
export type EnvLike = Readonly<Record<string, string | undefined>>;

const LEADING_INTEGER = /^[+-]?[0-9]+/;
const UNDERSTOOD_DENIALS = new Set(['', 'false', 'no', 'off']);
const MEANT_AS_GRANTS = new Set(['true', 'yes', 'on']);

/**
 * Reads one variable the way Tecnativa's HAProxy does (`env(X) -m bool`): a leading integer, and any
 * non-zero number grants (`1`, `2`, `-1`, `+1`, `01`, `1abc`, `1 `). Values HAProxy would silently
 * read as "denied" although they read like something else (`true`, `yes`, `on`, `0x1`, ` 1`, `0abc`)
 * are refused with a `TypeError` instead, so a typo never changes permissions without a word.
 *
 * @example
 * ```ts
 * parseGrant('CONTAINERS', '1'); // true
 * parseGrant('CONTAINERS', '0'); // false
 * parseGrant('CONTAINERS', 'true'); // throws TypeError: `CONTAINERS=true` is not understood…
 * ```
 */
export function parseGrant(name: string, value: string): boolean {
  const leading = LEADING_INTEGER.exec(value);
  if (leading) {
    if (/[1-9]/.test(leading[0])) return true;
    // A zero followed by nothing but trailing blanks is a plain "0"; "0x1" or "0abc" is a mistake.
    if (value.slice(leading[0].length).trim() === '') return false;
  } else if (UNDERSTOOD_DENIALS.has(value.toLowerCase())) {
    return false;
  }
  const hint = MEANT_AS_GRANTS.has(value.trim().toLowerCase())
    ? ` Tecnativa's HAProxy reads a leading integer, so \`${name}=${value}\` would silently deny there;`
    : '';
  throw new SocketFilterTypeError(
    'ERR_DSF_INVALID_ENV',
    `\`${name}=${value}\` is not understood.${hint} use ${name}=1 to grant or ${name}=0 to deny.`,
  );
}

/**
 * Reads every variable a preset knows from `env`, with the preset's defaults for unset ones.
 * Variables the preset does not know are ignored: an environment holds many.
 *
 * @example
 * ```ts
 * readSettings({ EVENTS: true, POST: false }, { POST: '1' }); // { EVENTS: true, POST: true }
 * ```
 */
export function readSettings(defaults: Readonly<Record<string, boolean>>, env: unknown): Record<string, boolean> {
  if (typeof env !== 'object' || env === null || Array.isArray(env)) {
    throw new SocketFilterTypeError('ERR_DSF_INVALID_OPTION', 'The `env` argument must be an object of variables (such as `process.env`)');
  }
  const settings: Record<string, boolean> = {};
  for (const [name, fallback] of Object.entries(defaults)) {
    const value: unknown = (env as Record<string, unknown>)[name];
    if (value === undefined) settings[name] = fallback;
    else if (typeof value !== 'string') {
      throw new SocketFilterTypeError('ERR_DSF_INVALID_ENV', `\`${name}\` must be a string such as "1" or "0"`);
    } else settings[name] = parseGrant(name, value);
  }
  return settings;
}

/**
 * The list variables both presets read for what a reading client may see, each with the key of
 * the `read` section it sets (as `HOST_LISTS` for `protectHost`).
 *
 * @example
 * ```ts
 * READ_LISTS.visibleLabels; // 'VISIBLE_LABELS'
 * ```
 */
export const READ_LISTS = Object.freeze({ visibleLabels: 'VISIBLE_LABELS' } as const);

/**
 * Reads `VISIBLE_LABELS`: comma-separated label requirements (`traefik.enable=true`, `key` alone
 * for "has the label"). Unset or empty: no requirement (`undefined`). A value that cannot be used
 * throws a `TypeError` (`ERR_DSF_INVALID_ENV`) naming the variable and the item.
 *
 * @example
 * ```ts
 * readVisibleLabels({ VISIBLE_LABELS: 'traefik.enable=true' }); // [{ key: 'traefik.enable', value: 'true' }]
 * readVisibleLabels({}); // undefined
 * ```
 */
export function readVisibleLabels(env: unknown): readonly LabelRequirement[] | undefined {
  const value: unknown = (env as Record<string, unknown> | null)?.[READ_LISTS.visibleLabels];
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string') {
    throw new SocketFilterTypeError('ERR_DSF_INVALID_ENV', '`VISIBLE_LABELS` must be a string such as "traefik.enable=true"');
  }
  const parsed = parseLabelRequirements(value);
  if (parsed.problem !== null) {
    throw new SocketFilterTypeError(
      'ERR_DSF_INVALID_ENV',
      `\`VISIBLE_LABELS=${value}\` is not understood: ${parsed.problem}. Write comma-separated labels, each key=value or a key alone, e.g. VISIBLE_LABELS=traefik.enable=true`,
    );
  }
  const keys = new Set<string>();
  for (const { key } of parsed.requirements) {
    if (keys.has(key)) {
      throw new SocketFilterTypeError('ERR_DSF_INVALID_ENV', `\`VISIBLE_LABELS=${value}\` is not understood: it names the label ${JSON.stringify(key)} twice`);
    }
    keys.add(key);
  }
  return parsed.requirements;
}

/**
 * The variables both presets read for what a reading client may see, with their defaults.
 *
 * @example
 * ```ts
 * READ_DEFAULTS.REDACT_ENV; // false
 * ```
 */
export const READ_DEFAULTS: Readonly<Record<string, boolean>> = Object.freeze({ REDACT_ENV: false, STRICT_READ: false });

/**
 * The read section of a preset's policy from `REDACT_ENV` and `VISIBLE_LABELS`, or `undefined`
 * when neither is set.
 *
 * @example
 * ```ts
 * presetRead({ REDACT_ENV: true }, undefined); // { redactEnv: true }
 * ```
 */
export function presetRead(settings: Readonly<Record<string, boolean>>, labels: readonly LabelRequirement[] | undefined): ReadPolicy | undefined {
  if (!settings.REDACT_ENV && labels === undefined) return undefined;
  return Object.freeze({
    ...(settings.REDACT_ENV ? { redactEnv: true } : {}),
    ...(labels === undefined ? {} : { visibleLabels: labels }),
  });
}
