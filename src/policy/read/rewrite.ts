import type { ResponseRewrite } from '../types.js';
import { labelsSatisfy } from './labels.js';

/**
 * What a reading client sees of dockerd's answers: pure functions over parsed JSON, one per answer
 * shape (`ResponseKind`). They never change their input; a changed part is copied. Pure: no
 * `node:` imports.
 */

/**
 * What replaces a redacted value: `DB_PASSWORD=hunter2` becomes `DB_PASSWORD=[redacted]`.
 *
 * @example
 * ```ts
 * `DB_PASSWORD=${REDACTED}`; // 'DB_PASSWORD=[redacted]'
 * ```
 */
export const REDACTED = '[redacted]';

type Json = unknown;

function isObject(value: Json): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * `value` with the member at `path` replaced by `change(member)`; `value` itself when the path does
 * not exist (nothing to redact) or nothing changed.
 */
function update(value: Json, path: readonly string[], change: (member: Json) => Json): Json {
  if (path.length === 0) return change(value);
  if (!isObject(value)) return value;
  const [head, ...rest] = path as [string, ...string[]];
  if (!Object.hasOwn(value, head)) return value;
  const before = value[head];
  const after = update(before, rest, change);
  if (after === before) return value;
  return { ...value, [head]: after };
}

/**
 * An environment list with every value replaced by `REDACTED`: `NAME=value` keeps its name; an
 * entry without `=` (a name passed through from the client's environment) carries no value and is
 * kept; anything that is not a string is kept.
 *
 * @example
 * ```ts
 * redactEnvList(['DB_PASSWORD=hunter2', 'PATH=/bin', 'PLAIN']); // ['DB_PASSWORD=[redacted]', 'PATH=[redacted]', 'PLAIN']
 * ```
 */
export function redactEnvList(env: Json): Json {
  if (!Array.isArray(env)) return env;
  return env.map((entry: Json) => {
    if (typeof entry !== 'string') return entry;
    const equals = entry.indexOf('=');
    return equals === -1 ? entry : `${entry.slice(0, equals + 1)}${REDACTED}`;
  });
}

const CONTAINER_ENV = ['Config', 'Env'];
const SERVICE_ENVS = [
  ['Spec', 'TaskTemplate', 'ContainerSpec', 'Env'],
  // A service that was updated carries its previous spec, environment and all.
  ['PreviousSpec', 'TaskTemplate', 'ContainerSpec', 'Env'],
];
const TASK_ENV = ['Spec', 'ContainerSpec', 'Env'];

function redactService(service: Json): Json {
  let result = service;
  for (const path of SERVICE_ENVS) result = update(result, path, redactEnvList);
  return result;
}

/** Exec inspect: its command line (dockerd 20.10 has no environment there; Podman's may). */
function redactExec(exec: Json): Json {
  let result = update(exec, ['ProcessConfig', 'arguments'], (args) => (Array.isArray(args) ? args.map(() => REDACTED) : args));
  result = update(result, ['ProcessConfig', 'env'], redactEnvList);
  result = update(result, ['ProcessConfig', 'Env'], redactEnvList);
  return result;
}

function labelsAt(value: Json, path: readonly string[]): Json {
  let current = value;
  for (const key of path) {
    if (!isObject(current) || !Object.hasOwn(current, key)) return undefined;
    current = current[key];
  }
  return current;
}

/** A list with the items whose labels (at `labelPath`) fail the rewrite's requirements dropped. */
function visibleItems(list: Json, rewrite: ResponseRewrite, labelPath: readonly string[] | null): Json[] | Json {
  if (!Array.isArray(list)) return list;
  const requirements = rewrite.labels;
  if (requirements === undefined || requirements.length === 0 || labelPath === null) return list;
  return list.filter((item: Json) => labelsSatisfy(labelsAt(item, labelPath), requirements));
}

/**
 * The verb of an exec event's action: `exec_create: sh -c echo DB_PASSWORD=…` -> `exec_create`.
 * Other actions (`start`, `health_status: healthy`) are returned as they are.
 */
function execVerb(action: Json): Json {
  if (typeof action !== 'string' || !action.startsWith('exec_')) return action;
  const colon = action.indexOf(':');
  return colon === -1 ? action : action.slice(0, colon);
}

/**
 * One event of `/events` as the client may see it, or `null` when it must be dropped. With label
 * requirements, only container events whose attributes (which carry the container's labels)
 * satisfy them are kept: events of other types are dropped, whatever their attributes (this is the
 * second line behind the merged `label` filter, with which dockerd already sends nothing else but
 * events of images and plugins labelled alike). With `redactEnv`, exec actions (`status` and
 * `Action`) are cut to their verb, since they carry the exec's command line.
 *
 * @example
 * ```ts
 * const event = { status: 'exec_create: env', Type: 'container', Action: 'exec_create: env',
 *   Actor: { ID: 'abc', Attributes: { 'traefik.enable': 'true', name: 'web' } } };
 * rewriteEvent({ kind: 'events', redactEnv: true, labels: [{ key: 'traefik.enable', value: 'true' }] }, event);
 * // { status: 'exec_create', Type: 'container', Action: 'exec_create', Actor: { … } }
 * rewriteEvent({ kind: 'events', redactEnv: false, labels: [{ key: 'other' }] }, event); // null
 * ```
 */
export function rewriteEvent(rewrite: ResponseRewrite, event: Json): Json | null {
  if (!isObject(event)) return rewrite.labels === undefined ? event : null;
  const requirements = rewrite.labels;
  if (requirements !== undefined && requirements.length > 0) {
    if (event.Type !== 'container' || !labelsSatisfy(labelsAt(event, ['Actor', 'Attributes']), requirements)) return null;
  }
  if (!rewrite.redactEnv) return event;
  let result: Json = update(event, ['Action'], execVerb);
  result = update(result, ['status'], execVerb);
  return result;
}

/** A network with its `Containers` and `Services` emptied: they would name hidden ones. */
function withoutMembers(network: Json): Json {
  const result = update(network, ['Containers'], (members) => (isObject(members) ? {} : members));
  return update(result, ['Services'], (members) => (isObject(members) ? {} : members));
}

/**
 * dockerd's answer (parsed JSON) as the client may see it, for the answer shape `rewrite.kind`:
 *
 * - `container-inspect`: `Config.Env` values redacted (`redactEnv`);
 * - `container-list`: items whose `Labels` fail `labels` dropped;
 * - `service-inspect` / `service-list`: `Spec` and `PreviousSpec` `TaskTemplate.ContainerSpec.Env`
 *   redacted; list items whose `Spec.Labels` fail `labels` dropped;
 * - `task-inspect` / `task-list`: `Spec.ContainerSpec.Env` redacted (a task's JSON does not carry its
 *   service's labels, which its visibility is judged on: the merged filter selects them);
 * - `exec-inspect`: `ProcessConfig.arguments` (and an `env`, where there is one) redacted;
 * - `network-inspect` / `network-list`: with `labels`, `Containers` and `Services` emptied (they
 *   would name hidden ones; a list answered for API < 1.28 carries them);
 * - `events`: one event, see `rewriteEvent` (`null` when dropped).
 *
 * Inspect answers are not judged on labels here: the request's `visible` obligation did that
 * before it was forwarded. The input is never changed.
 *
 * @example
 * ```ts
 * rewriteResponse({ kind: 'container-inspect', redactEnv: true }, { Id: 'abc', Config: { Env: ['TOKEN=s3cret'] } });
 * // { Id: 'abc', Config: { Env: ['TOKEN=[redacted]'] } }
 * ```
 */
export function rewriteResponse(rewrite: ResponseRewrite, body: Json): Json {
  const redact = rewrite.redactEnv;
  switch (rewrite.kind) {
    case 'container-inspect':
      return redact ? update(body, CONTAINER_ENV, redactEnvList) : body;
    case 'container-list':
      // List items carry no environment.
      return visibleItems(body, rewrite, ['Labels']);
    case 'service-inspect':
      return redact ? redactService(body) : body;
    case 'service-list': {
      const visible = visibleItems(body, rewrite, ['Spec', 'Labels']);
      return redact && Array.isArray(visible) ? visible.map(redactService) : visible;
    }
    case 'task-inspect':
      return redact ? update(body, TASK_ENV, redactEnvList) : body;
    case 'task-list':
      return redact && Array.isArray(body) ? body.map((task: Json) => update(task, TASK_ENV, redactEnvList)) : body;
    case 'exec-inspect':
      return redact ? redactExec(body) : body;
    case 'network-inspect':
      return rewrite.labels === undefined || rewrite.labels.length === 0 ? body : withoutMembers(body);
    case 'network-list':
      return rewrite.labels === undefined || rewrite.labels.length === 0 || !Array.isArray(body) ? body : body.map(withoutMembers);
    case 'events':
      return rewriteEvent(rewrite, body);
    default:
      return body;
  }
}
