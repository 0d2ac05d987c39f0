import { HOST_LISTS } from '../policy/host/settings.js';
import { READ_LISTS } from './env.js';
import { HOST_DEFAULTS } from './host.js';

/**
 * What a preset variable takes: a switch is read by `parseGrant` (`1` grants, `0` denies), a list
 * is a comma-separated string (`ALLOW_BIND_MOUNTS=/srv,/opt/appdata`, `VISIBLE_LABELS=a=b,c`).
 *
 * @example
 * ```ts
 * const kind: PresetVariableKind = TECNATIVA_VARIABLES.ALLOW_BIND_MOUNTS; // 'list'
 * ```
 */
export type PresetVariableKind = 'switch' | 'list';

/**
 * Every variable a preset reads, by kind, sorted by name: its own switches (`own`, its
 * `*_DEFAULTS`), `PROTECT_HOST` and the `ALLOW_*` switches of its checks, its read switches
 * (`read`), and the list variables of both (`HOST_LISTS`, `READ_LISTS`). Built from the very
 * tables the preset reads with, so that a policy file (`env:`) knows exactly what the environment
 * could say. `SOCKET_PATH`, which the presets also read, is the guard's setting, not a variable.
 *
 * @example
 * ```ts
 * presetVariables({ POST: false }, { REDACT_ENV: false }).VISIBLE_LABELS; // 'list'
 * ```
 */
export function presetVariables(
  own: Readonly<Record<string, boolean>>,
  read: Readonly<Record<string, boolean>>,
): Readonly<Record<string, PresetVariableKind>> {
  const kinds: Record<string, PresetVariableKind> = {};
  for (const name of [...Object.keys(own), ...Object.keys(HOST_DEFAULTS), ...Object.keys(read)]) kinds[name] = 'switch';
  for (const name of [...Object.values(HOST_LISTS), ...Object.values(READ_LISTS)]) kinds[name] = 'list';
  return Object.freeze(Object.fromEntries(Object.entries(kinds).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
}
