import type { Policy, Rule } from '../policy/types.js';
import { presetRead, READ_DEFAULTS, readSettings, readVisibleLabels, type EnvLike } from './env.js';
import { HOST_DEFAULTS, protectHostFromEnv } from './host.js';
import { presetVariables, type PresetVariableKind } from './variables.js';
import {
  DEFAULT_GRANTED,
  DOCKER_SECTIONS,
  SUB_RESOURCES,
  WRITE_GATE,
  actionRules,
  execCreateGate,
  sectionHints,
  sectionRule,
  subResourceGates,
  subResourceVariable,
} from './sections.js';

/** Podman's API sections, each behind its own `LIBPOD_<NAME>` variable. */
const LIBPOD_SECTIONS = [
  'containers',
  'events',
  'exec',
  'generate',
  'images',
  'info',
  'manifests',
  'networks',
  '_ping',
  'play',
  'pods',
  'secrets',
  'system',
  'version',
  'volumes',
] as const;

const libpodVariable = (segment: string): string => `LIBPOD_${segment === '_ping' ? 'PING' : segment.toUpperCase()}`;

const SECTION_PATHS: Readonly<Record<string, string>> = Object.freeze({
  ...Object.fromEntries(Object.entries(DOCKER_SECTIONS).map(([variable, segment]) => [variable, `/${segment}`])),
  ...Object.fromEntries(LIBPOD_SECTIONS.map((segment) => [libpodVariable(segment), `/libpod/${segment}`])),
});

/** Action variables: variable -> [base path, actions]. Order is the image's rule order. */
const ACTIONS: ReadonlyArray<readonly [string, string, readonly string[]]> = [
  ['ALLOW_RESTARTS', '/containers', ['stop', 'restart', 'kill']],
  ['ALLOW_START', '/containers', ['start']],
  ['ALLOW_STOP', '/containers', ['stop']],
  ['ALLOW_PAUSE', '/containers', ['pause']],
  ['ALLOW_UNPAUSE', '/containers', ['unpause']],
  ['LIBPOD_ALLOW_RESTARTS', '/libpod/containers', ['stop', 'restart', 'kill']],
  ['LIBPOD_ALLOW_START', '/libpod/containers', ['start']],
  ['LIBPOD_ALLOW_STOP', '/libpod/containers', ['stop']],
  ['LIBPOD_ALLOW_PAUSE', '/libpod/containers', ['pause']],
  ['LIBPOD_ALLOW_UNPAUSE', '/libpod/containers', ['unpause']],
  ['LIBPOD_ALLOW_POD_RESTARTS', '/libpod/pods', ['stop', 'restart', 'kill']],
  ['LIBPOD_ALLOW_POD_START', '/libpod/pods', ['start']],
  ['LIBPOD_ALLOW_POD_STOP', '/libpod/pods', ['stop']],
  ['LIBPOD_ALLOW_POD_PAUSE', '/libpod/pods', ['pause']],
  ['LIBPOD_ALLOW_POD_UNPAUSE', '/libpod/pods', ['unpause']],
];

/**
 * Every variable of linuxserver's docker-socket-proxy that decides permissions, with its default.
 *
 * @example
 * ```ts
 * LINUXSERVER_DEFAULTS.LIBPOD_PING; // true
 * LINUXSERVER_DEFAULTS.ALLOW_LOGS; // false
 * ```
 */
export const LINUXSERVER_DEFAULTS: Readonly<Record<string, boolean>> = Object.freeze(
  Object.fromEntries(
    [
      ...Object.keys(SECTION_PATHS),
      'POST',
      ...ACTIONS.map(([variable]) => variable),
      ...SUB_RESOURCES.map(subResourceVariable),
    ]
      .sort()
      .map((variable) => [variable, DEFAULT_GRANTED.has(variable) || variable === 'LIBPOD_PING' || variable === 'LIBPOD_VERSION']),
  ),
);

/**
 * Every variable `linuxserverPreset` reads, by kind (`switch` or `list`): linuxserver's own
 * (`LINUXSERVER_DEFAULTS`), `PROTECT_HOST` and its `ALLOW_*`, `REDACT_ENV`, `VISIBLE_LABELS` and
 * `STRICT_READ`. What a policy file's `env` may hold for this preset.
 *
 * @example
 * ```ts
 * LINUXSERVER_VARIABLES.ALLOW_LOGS; // 'switch'
 * LINUXSERVER_VARIABLES.VISIBLE_LABELS; // 'list'
 * ```
 */
export const LINUXSERVER_VARIABLES: Readonly<Record<string, PresetVariableKind>> = presetVariables(LINUXSERVER_DEFAULTS, READ_DEFAULTS);

/**
 * Builds the policy of linuxserver's docker-socket-proxy fork from its environment variables.
 *
 * Its rule order differs from Tecnativa's: first the sub-resource denials (`ALLOW_LOGS`,
 * `ALLOW_ARCHIVE`, `ALLOW_CHANGES`, `ALLOW_EXPORT`, `ALLOW_TOP`), then the container and pod
 * actions (so `ALLOW_START=1` works with `POST=0`), then the write gate, then the sections, with
 * Podman's `/libpod/…` sections behind their `LIBPOD_*` variables. No `GRPC` section.
 *
 * What a reading client may see: `REDACT_ENV=1` and `VISIBLE_LABELS` as in `tecnativaPreset`
 * (under `VISIBLE_LABELS` the Podman API is refused but for `_ping` and `version`); `STRICT_READ`
 * is read and changes nothing, the sub-resource gates being always on here.
 *
 * @param env - variables to read (default `process.env`); unknown ones are ignored.
 * @throws TypeError (`ERR_DSF_INVALID_ENV`) naming the variable whose value is not understood.
 * @example
 * ```ts
 * const policy = linuxserverPreset({ ALLOW_START: '1' });
 * createSocketFilter({ policy }).evaluate('POST', '/v1.41/containers/web/start').allowed; // true
 * ```
 */
export function linuxserverPreset(env: EnvLike = process.env): Policy {
  const settings = readSettings(LINUXSERVER_DEFAULTS, env);
  const hostSettings = readSettings(HOST_DEFAULTS, env);
  const protectHost = protectHostFromEnv(env, hostSettings);
  const readSwitches = readSettings(READ_DEFAULTS, env);
  const read = presetRead(readSwitches, readVisibleLabels(env));
  const rules: Rule[] = subResourceGates(settings);
  for (const gate of [
    execCreateGate(settings, '/containers', 'EXEC', ['POST', 'CONTAINERS', 'EXEC']),
    execCreateGate(settings, '/libpod/containers', 'LIBPOD_EXEC', ['POST', 'LIBPOD_CONTAINERS', 'LIBPOD_EXEC']),
  ]) {
    if (gate !== undefined) rules.push(gate);
  }
  for (const [variable, base, actions] of ACTIONS) {
    if (settings[variable]) rules.push(...actionRules(variable, base, actions));
  }
  if (!settings.POST) rules.push(WRITE_GATE);
  for (const [variable, base] of Object.entries(SECTION_PATHS)) {
    if (settings[variable]) rules.push(sectionRule(variable, base));
  }
  return Object.freeze({
    name: 'linuxserver',
    rules: Object.freeze(rules),
    hints: Object.freeze({ sections: Object.freeze(sectionHints(SECTION_PATHS)), write: 'POST=1' }),
    source: Object.freeze({ preset: 'linuxserver', settings: Object.freeze({ ...settings, ...hostSettings, ...readSwitches }) }),
    ...(protectHost === undefined ? {} : { protectHost }),
    ...(read === undefined ? {} : { read }),
  });
}
