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

/**
 * The opt-in read variables of this preset (not Tecnativa's): `REDACT_ENV`, `STRICT_READ`, and
 * linuxserver's sub-resource gates, which take effect only with `STRICT_READ=1`.
 */
const READ_VARIABLES: Readonly<Record<string, boolean>> = Object.freeze({
  ...READ_DEFAULTS,
  ...Object.fromEntries(SUB_RESOURCES.map((resource) => [subResourceVariable(resource), false])),
});

const SECTION_PATHS: Readonly<Record<string, string>> = Object.freeze(
  Object.fromEntries(
    Object.entries({ ...DOCKER_SECTIONS, GRPC: 'grpc' }).map(([variable, segment]) => [variable, `/${segment}`]),
  ),
);

/**
 * Every variable of Tecnativa's docker-socket-proxy that decides permissions, with its default.
 *
 * @example
 * ```ts
 * TECNATIVA_DEFAULTS.EVENTS; // true
 * TECNATIVA_DEFAULTS.POST; // false
 * ```
 */
export const TECNATIVA_DEFAULTS: Readonly<Record<string, boolean>> = Object.freeze(
  Object.fromEntries(
    [...Object.keys(SECTION_PATHS), 'POST', 'ALLOW_START', 'ALLOW_STOP', 'ALLOW_RESTARTS']
      .sort()
      .map((variable) => [variable, DEFAULT_GRANTED.has(variable)]),
  ),
);

/**
 * Every variable `tecnativaPreset` reads, by kind (`switch` or `list`): Tecnativa's own
 * (`TECNATIVA_DEFAULTS`), `PROTECT_HOST` and its `ALLOW_*`, `REDACT_ENV`, `VISIBLE_LABELS`,
 * `STRICT_READ` and the sub-resource gates `STRICT_READ` turns on. What a policy file's `env` may
 * hold for this preset.
 *
 * @example
 * ```ts
 * TECNATIVA_VARIABLES.PROTECT_HOST; // 'switch'
 * TECNATIVA_VARIABLES.ALLOW_BIND_MOUNTS; // 'list'
 * ```
 */
export const TECNATIVA_VARIABLES: Readonly<Record<string, PresetVariableKind>> = presetVariables(TECNATIVA_DEFAULTS, READ_VARIABLES);

/**
 * Builds the policy of Tecnativa's docker-socket-proxy from its environment variables.
 *
 * Same variables, defaults and order as the original: the write gate (`POST`) first, so `ALLOW_*`
 * only work with `POST=1`; then the container actions; then one rule per section. Stricter where
 * the original can be walked around (see the README's "Differences from Tecnativa").
 *
 * Opt-in, stricter than the original (docs/reading.md): `REDACT_ENV=1` replaces environment values
 * in answers by a marker; `VISIBLE_LABELS=traefik.enable=true` hides every container, exec, service
 * and task whose labels do not satisfy the list; `STRICT_READ=1` denies
 * `/containers/<name>/archive|changes|export|logs|top` unless `ALLOW_ARCHIVE`, `ALLOW_CHANGES`,
 * `ALLOW_EXPORT`, `ALLOW_LOGS`, `ALLOW_TOP` (linuxserver's gates).
 *
 * @param env - variables to read (default `process.env`); unknown ones are ignored.
 * @throws TypeError (`ERR_DSF_INVALID_ENV`) naming the variable whose value is not understood.
 * @example
 * ```ts
 * const policy = tecnativaPreset({ CONTAINERS: '1' });
 * createSocketFilter({ policy }).evaluate('POST', '/v1.41/containers/create').allowed; // false
 * ```
 */
export function tecnativaPreset(env: EnvLike = process.env): Policy {
  const settings = readSettings(TECNATIVA_DEFAULTS, env);
  const hostSettings = readSettings(HOST_DEFAULTS, env);
  const protectHost = protectHostFromEnv(env, hostSettings);
  const readSwitches = readSettings(READ_VARIABLES, env);
  const read = presetRead(readSwitches, readVisibleLabels(env));
  // linuxserver's sub-resource gates (and its attach?logs=1 gate), opt-in here.
  const rules: Rule[] = readSwitches.STRICT_READ ? subResourceGates(readSwitches) : [];
  const execGate = execCreateGate(settings, '/containers', 'EXEC', ['POST', 'CONTAINERS', 'EXEC']);
  if (execGate !== undefined) rules.push(execGate);
  if (!settings.POST) rules.push(WRITE_GATE);
  if (settings.ALLOW_RESTARTS) rules.push(...actionRules('ALLOW_RESTARTS', '/containers', ['stop', 'restart', 'kill']));
  if (settings.ALLOW_START) rules.push(...actionRules('ALLOW_START', '/containers', ['start']));
  if (settings.ALLOW_STOP) rules.push(...actionRules('ALLOW_STOP', '/containers', ['stop']));
  for (const [variable, base] of Object.entries(SECTION_PATHS)) {
    if (settings[variable]) rules.push(sectionRule(variable, base));
  }
  return Object.freeze({
    name: 'tecnativa',
    rules: Object.freeze(rules),
    hints: Object.freeze({ sections: Object.freeze(sectionHints(SECTION_PATHS)), write: 'POST=1' }),
    source: Object.freeze({ preset: 'tecnativa', settings: Object.freeze({ ...settings, ...hostSettings, ...readSwitches }) }),
    ...(protectHost === undefined ? {} : { protectHost }),
    ...(read === undefined ? {} : { read }),
  });
}
