import { PROTECT_HOST_KEYS } from '../policy/host/settings.js';
import { READ_POLICY_KEYS } from '../policy/read/settings.js';
import { LINUXSERVER_VARIABLES } from '../presets/linuxserver.js';
import { TECNATIVA_VARIABLES } from '../presets/tecnativa.js';
import type { PresetVariableKind } from '../presets/variables.js';

/**
 * Every key a policy file may hold, by where it stands. The validator refuses any other key, and
 * `test/unit/config-schema.test.ts` checks that `schema/config.schema.json` knows exactly these.
 *
 * @example
 * ```ts
 * CONFIG_KEYS.top.includes('clients'); // true
 * ```
 */
export const CONFIG_KEYS = Object.freeze({
  top: Object.freeze([
    '$schema',
    'listen',
    'clients',
    'policy',
    'socketPath',
    'minApiVersion',
    'logLevel',
    'metricsListen',
    'maxConnections',
    'maxUpstreamConnections',
    'maxHeldBytes',
    'shutdownGrace',
    'socketMode',
  ]),
  listen: Object.freeze(['name', 'address']),
  client: Object.freeze(['name', 'match', 'policy']),
  match: Object.freeze(['address', 'listener']),
  // A preset with its variables: `{ preset, env }`.
  presetPolicy: Object.freeze(['preset', 'env']),
  // What definePolicy holds: `{ name, extends: { preset, env }, allow, deny, protectHost, read }`.
  customPolicy: Object.freeze(['name', 'extends', 'allow', 'deny', 'protectHost', 'read']),
  rule: Object.freeze(['id', 'methods', 'paths', 'access', 'reason']),
  // definePolicy's own sections, with its keys.
  protectHost: PROTECT_HOST_KEYS,
  read: READ_POLICY_KEYS,
});

/**
 * The presets a policy file may name, and what each variable of theirs (`env` keys) takes: a
 * `switch` (`1`/`0`) or a `list` (a comma-separated string, or a list of strings). The presets'
 * own tables (`TECNATIVA_VARIABLES`, `LINUXSERVER_VARIABLES`), so a variable a preset gains is
 * known here at once.
 *
 * @example
 * ```ts
 * PRESET_VARIABLE_KINDS.tecnativa.ALLOW_BIND_MOUNTS; // 'list'
 * ```
 */
export const PRESET_VARIABLE_KINDS: Readonly<Record<'tecnativa' | 'linuxserver', Readonly<Record<string, PresetVariableKind>>>> = Object.freeze({
  tecnativa: TECNATIVA_VARIABLES,
  linuxserver: LINUXSERVER_VARIABLES,
});

/**
 * The presets a policy file may name, and the variables each reads (`env` keys), sorted.
 *
 * @example
 * ```ts
 * PRESET_VARIABLES.linuxserver.includes('ALLOW_LOGS'); // true
 * PRESET_VARIABLES.tecnativa.includes('PROTECT_HOST'); // true
 * ```
 */
export const PRESET_VARIABLES: Readonly<Record<'tecnativa' | 'linuxserver', readonly string[]>> = Object.freeze({
  tecnativa: Object.freeze(Object.keys(TECNATIVA_VARIABLES)),
  linuxserver: Object.freeze(Object.keys(LINUXSERVER_VARIABLES)),
});

/**
 * Names of the presets a policy file may name.
 *
 * @example
 * ```ts
 * CONFIG_PRESETS; // ['tecnativa', 'linuxserver']
 * ```
 */
export const CONFIG_PRESETS = Object.freeze(Object.keys(PRESET_VARIABLES)) as readonly ('tecnativa' | 'linuxserver')[];
