import type { EnvLike } from '../presets/env.js';
import { LINUXSERVER_VARIABLES } from '../presets/linuxserver.js';
import { TECNATIVA_VARIABLES } from '../presets/tecnativa.js';
import { compilePolicy } from '../policy/compile.js';
import { createEvaluator } from '../policy/evaluate.js';
import type { Policy } from '../policy/types.js';
import type { ListenAddress } from './args.js';

/**
 * One warning the CLI logs at start-up: a message and its fields (logfmt).
 *
 * @example
 * ```ts
 * const warning: StartupWarning = { message: 'unknown variable', fields: { variable: 'CONTAINRES', did_you_mean: 'CONTAINERS' } };
 * ```
 */
export interface StartupWarning {
  readonly message: string;
  readonly fields: Readonly<Record<string, string>>;
}

/**
 * The variables the CLI reads besides the presets' own. A name one edit away from a preset
 * variable but listed here is not a typo.
 */
const OPERATIONAL_VARIABLES = new Set([
  'PRESET',
  'SOCKET_PATH',
  'LOG_LEVEL',
  'DISABLE_IPV6',
  'LISTEN',
  'LISTEN_SOCKET_MODE',
  'SHUTDOWN_GRACE',
  'MAX_CONNECTIONS',
  'MAX_UPSTREAM_CONNECTIONS',
  'MAX_HELD_BYTES',
  'CONFIG',
  'METRICS_LISTEN',
  'WORKERS',
]);

/** Variables granted by both presets when unset: serving them to a network is what Tecnativa does. */
const DEFAULT_GRANTS = new Set(['EVENTS', 'PING', 'VERSION', 'LIBPOD_PING', 'LIBPOD_VERSION']);

/** Whether `a` and `b` are one insertion, deletion, substitution or swap of neighbours apart. */
function oneEditApart(a: string, b: string): boolean {
  if (a === b || Math.abs(a.length - b.length) > 1) return false;
  if (a.length === b.length) {
    let first = -1;
    let differences = 0;
    for (let i = 0; i < a.length; i++) {
      if (a[i] === b[i]) continue;
      differences += 1;
      if (first === -1) first = i;
    }
    if (differences === 1) return true;
    // A swap of two neighbours (`CONTAINRES`).
    return differences === 2 && a[first] === b[first + 1] && a[first + 1] === b[first];
  }
  const [shorter, longer] = a.length < b.length ? [a, b] : [b, a];
  for (let i = 0; i < longer.length; i++) {
    if (longer.slice(0, i) + longer.slice(i + 1) === shorter) return true;
  }
  return false;
}

/**
 * Variables of `env` that read like a misspelled preset variable (`CONTAINRES`, `CONTAINER`,
 * `EXECS`), each with the variable it probably means. Only upper-case names are considered, and a
 * name of four letters or fewer only when its value reads as a grant (`HOST=web` is not `POST`).
 *
 * @example
 * ```ts
 * misspelledVariables({ CONTAINRES: '1', PATH: '/bin' }); // [['CONTAINRES', 'CONTAINERS']]
 * ```
 */
export function misspelledVariables(env: EnvLike): Array<readonly [string, string]> {
  // Every variable the presets read: a `PROTECT_HOTS=1` that leaves host protection off is a typo too.
  const known = [...new Set([...Object.keys(TECNATIVA_VARIABLES), ...Object.keys(LINUXSERVER_VARIABLES)])];
  const knownSet = new Set(known);
  const found: Array<readonly [string, string]> = [];
  for (const [name, value] of Object.entries(env)) {
    if (!/^[A-Z][A-Z0-9_]*$/.test(name) || knownSet.has(name) || OPERATIONAL_VARIABLES.has(name)) continue;
    if (name.length <= 4 && !/^\s*[+-]?\d+\s*$/.test(value ?? '')) continue;
    const meant = known.find((candidate) => oneEditApart(name, candidate));
    if (meant !== undefined) found.push([name, meant]);
  }
  return found;
}

function createEvaluatorFor(policy: Policy): { evaluate: ReturnType<typeof createEvaluator> } {
  return { evaluate: createEvaluator(compilePolicy(policy), { minApiVersion: 10024 }) };
}

/** The writes that carry a configuration able to take the host, and that a policy grants. */
const HOST_TAKING_WRITES: ReadonlyArray<readonly [string, string]> = [
  ['containers', '/v1.41/containers/create'],
  ['services', '/v1.41/services/create'],
  ['volumes', '/v1.41/volumes/create'],
  ['plugins', '/v1.41/plugins/pull'],
];

/**
 * Which host-taking writes `policy` grants without reading their body (no `protectHost`): a
 * privileged container, a bind of `/`, a host namespace, … are then one request away.
 */
function hostTakingWrites(policy: Policy): string[] {
  if ((policy as { protectHost?: unknown }).protectHost !== undefined) return [];
  const { evaluate } = createEvaluatorFor(policy);
  return HOST_TAKING_WRITES.filter(([, target]) => evaluate('POST', target, { bodyLength: 2 }).allowed).map(([name]) => name);
}

/** Whether a TCP listen address is reachable from other hosts. */
function beyondLoopback(address: ListenAddress): boolean {
  if (address.kind === 'unix') return false;
  const host = address.host;
  if (host === undefined) return true;
  return !(host === 'localhost' || host === '::1' || /^127\./.test(host));
}

/**
 * Whether `policy` grants anything beyond what both presets grant by default (`EVENTS`, `PING`,
 * `VERSION`). A policy that is not a preset's counts as granting more: its rules are the user's.
 */
function grantsBeyondDefaults(policy: Policy): string[] | undefined {
  const settings = policy.source?.settings;
  if (settings === undefined) return ['(custom policy)'];
  const extra = Object.keys(settings).filter((name) => settings[name] === true && !DEFAULT_GRANTS.has(name));
  return extra.length > 0 ? extra : undefined;
}

/**
 * The warnings of a start: a network-reachable listener serving more than the defaults (on a
 * bare host, `CONTAINERS=1` on `0.0.0.0` hands every container's environment to the network), and
 * misspelled variables. Never a refusal: the environment holds many variables, and serving a
 * network is what the image is for.
 *
 * @example
 * ```ts
 * startupWarnings([{ kind: 'tcp', host: undefined, port: 2375 }], tecnativaPreset({ CONTAINERS: '1' }), {});
 * // [{ message: 'serving the Docker API beyond this host', fields: { listen: '*:2375', granted: 'CONTAINERS' } }]
 * ```
 */
export function startupWarnings(
  listen: readonly ListenAddress[],
  policy: Policy,
  env: EnvLike,
  describe: (address: ListenAddress) => string = (address) => (address.kind === 'unix' ? address.path : `${address.host ?? '*'}:${address.port}`),
): StartupWarning[] {
  const warnings: StartupWarning[] = [];
  const exposed = listen.filter(beyondLoopback);
  const granted = exposed.length > 0 ? grantsBeyondDefaults(policy) : undefined;
  if (granted !== undefined) {
    warnings.push({
      message: 'serving the Docker API beyond this host with more than the default grants; anyone who can reach it can use them',
      fields: { listen: exposed.map(describe).join(','), granted: granted.join(',') },
    });
  }
  const unprotected = hostTakingWrites(policy);
  if (unprotected.length > 0) {
    warnings.push({
      message: 'clients can take the host: they may create containers, services, volumes or plugins with any configuration; PROTECT_HOST=1 stops it',
      fields: { writes: unprotected.join(',') },
    });
  }
  for (const [variable, meant] of misspelledVariables(env)) {
    warnings.push({ message: 'unknown variable ignored; did you mean another?', fields: { variable, did_you_mean: meant } });
  }
  return warnings;
}
