import { LINUXSERVER_DEFAULTS } from '../presets/linuxserver.js';
import { TECNATIVA_DEFAULTS } from '../presets/tecnativa.js';

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
    'shutdownGrace',
    'socketMode',
  ]),
  listen: Object.freeze(['name', 'address']),
  client: Object.freeze(['name', 'match', 'policy']),
  match: Object.freeze(['address', 'listener']),
  // A preset with its variables: `{ preset, env }`.
  presetPolicy: Object.freeze(['preset', 'env']),
  // What definePolicy holds: `{ name, extends: { preset, env }, allow, deny }`.
  // Issue 14 adds `protectHost` here (a section mirroring definePolicy's), issue 16 the response
  // settings (`response`): add them to this list, to the schema and to `buildPolicy`.
  customPolicy: Object.freeze(['name', 'extends', 'allow', 'deny']),
  rule: Object.freeze(['id', 'methods', 'paths', 'access', 'reason']),
});

/**
 * The presets a policy file may name, and the variables each reads (`env` keys).
 *
 * Issues 14 and 16 add variables (`PROTECT_HOST` and its `ALLOW_*`, `REDACT_ENV`,
 * `VISIBLE_LABELS`, `STRICT_READ`): when they are in the presets' `*_DEFAULTS` tables they are
 * known here too; variables a preset reads outside those tables go in `EXTRA_VARIABLES`.
 *
 * @example
 * ```ts
 * PRESET_VARIABLES.linuxserver.includes('ALLOW_LOGS'); // true
 * ```
 */
export const PRESET_VARIABLES: Readonly<Record<'tecnativa' | 'linuxserver', readonly string[]>> = Object.freeze({
  tecnativa: Object.freeze(Object.keys(TECNATIVA_DEFAULTS).sort()),
  linuxserver: Object.freeze(Object.keys(LINUXSERVER_DEFAULTS).sort()),
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
