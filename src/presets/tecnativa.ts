import type { Policy, Rule } from '../policy/types.js';
import { readSettings, type EnvLike } from './env.js';
import { HOST_DEFAULTS, protectHostFromEnv } from './host.js';
import { DEFAULT_GRANTED, DOCKER_SECTIONS, WRITE_GATE, actionRules, execCreateGate, sectionHints, sectionRule } from './sections.js';

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
 * Builds the policy of Tecnativa's docker-socket-proxy from its environment variables.
 *
 * Same variables, defaults and order as the original: the write gate (`POST`) first, so `ALLOW_*`
 * only work with `POST=1`; then the container actions; then one rule per section. Stricter where
 * the original can be walked around (see the README's "Differences from Tecnativa").
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
  const rules: Rule[] = [];
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
    source: Object.freeze({ preset: 'tecnativa', settings: Object.freeze({ ...settings, ...hostSettings }) }),
    ...(protectHost === undefined ? {} : { protectHost }),
  });
}
