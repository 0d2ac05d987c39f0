import type { Decision, LabelRequirement, Obligations, ReadPolicy, RequestInfo, ResponseKind, ResponseRewrite, VisibleKind } from '../types.js';
import { parseQuery, queryOf } from '../query.js';
import { mergeQuery, type FilterKind } from './filters.js';
import { psArgsShowEnvironment } from './ps-args.js';

/**
 * What the read section of a policy adds to a decision a rule allowed: the forwarded target with
 * merged filters, the `visible` and `response` obligations, or a refusal. Pure: no `node:` imports.
 */

/**
 * Completes an allowed decision for a policy's read section. `rest` is the decoded path after the
 * version prefix (`/containers/web/json`), `method` the request's method.
 *
 * @example
 * ```ts
 * const hook = createReadHook({ redactEnv: true });
 * hook?.(decision, 'GET', '/containers/web/json', undefined).obligations?.response; // { kind: 'container-inspect', redactEnv: true }
 * ```
 */
export type ReadHook = (decision: Decision, method: string, rest: string, request: RequestInfo | undefined) => Decision;

const VISIBLE_REASON = 'visibility is limited by labels (VISIBLE_LABELS, or read.visibleLabels)';
const DENIED_BY = 'docker-socket-filter denied ';

/**
 * The rule id of refusals made for the read section: `visible-labels` (what the client may see),
 * `redact-env` (an answer that carries environment values this filter cannot redact).
 *
 * @example
 * ```ts
 * filter.evaluate('GET', '/v1.41/system/df').rule; // 'visible-labels' under VISIBLE_LABELS
 * ```
 */
export type ReadRule = 'visible-labels' | 'redact-env';

function refuse(decision: Decision, status: 400 | 403, rule: ReadRule, reason: string): Decision {
  return { allowed: false, status, rule, reason, path: decision.path };
}

/**
 * Builds the hook for a read section, or `undefined` when the section does nothing (so that a
 * policy without one decides exactly as fast as before).
 *
 * @example
 * ```ts
 * createReadHook(undefined); // undefined
 * createReadHook({ visibleLabels: [{ key: 'traefik.enable', value: 'true' }] }); // a ReadHook
 * ```
 */
export function createReadHook(read: ReadPolicy | undefined): ReadHook | undefined {
  const redactEnv = read?.redactEnv === true;
  const labels: readonly LabelRequirement[] | undefined =
    read?.visibleLabels !== undefined && read.visibleLabels.length > 0 ? read.visibleLabels : undefined;
  if (!redactEnv && labels === undefined) return undefined;

  const response = (kind: ResponseKind): ResponseRewrite =>
    labels === undefined ? { kind, redactEnv } : { kind, redactEnv, labels };

  return function readHook(decision, method, rest, request) {
    const segments = rest.split('/');
    const section = segments[1] ?? '';
    const count = segments.length - 1;
    const second = segments[2] ?? '';
    const isGet = method === 'GET';

    // Added to what the decision already asks (a body check, volumes that must exist).
    const withObligations = (obligations: Obligations, path = decision.path): Decision => ({
      ...decision,
      path,
      obligations: { ...decision.obligations, ...obligations },
    });
    const visibleOnly = (kind: VisibleKind, id: string, extra?: ResponseRewrite): Decision => {
      if (labels === undefined) return extra === undefined ? decision : withObligations({ response: extra });
      const visible = { kind, id, labels };
      return withObligations(extra === undefined ? { visible } : { visible, response: extra });
    };
    const list = (kind: FilterKind, answer: ResponseKind | null): Decision => {
      const target = decision.path as string;
      const queryStart = target.indexOf('?');
      const path = queryStart === -1 ? target : target.slice(0, queryStart);
      const rewrite = answer === null ? undefined : response(answer);
      if (labels === undefined) return rewrite === undefined ? decision : withObligations({ response: rewrite });
      const merged = mergeQuery(kind, queryStart === -1 ? '' : target.slice(queryStart + 1), labels);
      if (merged.problem !== null) return refuse(decision, 400, 'visible-labels', `${DENIED_BY}${method} ${path}: ${merged.problem} (${VISIBLE_REASON})`);
      const obligations: Obligations = {
        ...(merged.service === undefined ? {} : { visible: { kind: 'service' as const, id: merged.service, labels } }),
        ...(rewrite === undefined ? {} : { response: rewrite }),
      };
      return withObligations(obligations, `${path}?${merged.query}`);
    };

    // `top` runs the host's ps with the client's options, and procps prints a process's
    // environment for the BSD option `e` (see ps-args.ts).
    const topShowsEnvironment = (): Decision | undefined => {
      const query = parseQuery(queryOf(decision.path ?? ''));
      if (query.problem !== null) return refuse(decision, 400, 'redact-env', `${DENIED_BY}${method} ${rest}: its query cannot be read one way only (${query.problem})`);
      if (!(query.params.get('ps_args') ?? []).some(psArgsShowEnvironment)) return undefined;
      return refuse(decision, 403, 'redact-env', `${DENIED_BY}${method} ${rest}: its ps_args can make ps print the environment values of the processes, which are redacted (REDACT_ENV)`);
    };

    switch (section) {
      case 'containers':
        if (count === 2) {
          if (isGet && second === 'json') return list('containers', labels === undefined ? null : 'container-list');
          if (method === 'POST' && second === 'prune') {
            if (labels === undefined) return decision;
            // Go reads a form body's `filters` before the query's: the merged query would not count.
            const body = request?.bodyLength ?? 0;
            if (body !== 0) return refuse(decision, 400, 'visible-labels', `${DENIED_BY}POST ${rest}: a body here may name containers the client may not see (${VISIBLE_REASON})`);
            return list('containers-prune', null);
          }
          return method === 'DELETE' ? visibleOnly('container', second) : decision;
        }
        if (count >= 3) {
          const top = redactEnv && isGet && count === 3 && segments[3] === 'top' ? topShowsEnvironment() : undefined;
          if (top !== undefined) return top;
          return visibleOnly('container', second, isGet && count === 3 && segments[3] === 'json' && redactEnv ? response('container-inspect') : undefined);
        }
        return decision;
      case 'exec':
        if (count >= 3) return visibleOnly('exec', second, isGet && count === 3 && segments[3] === 'json' && redactEnv ? response('exec-inspect') : undefined);
        return decision;
      case 'services':
        if (count === 1) return isGet ? list('services', 'service-list') : decision;
        if (count === 2) {
          if (method === 'POST' && second === 'create') return decision;
          if (isGet || method === 'DELETE') return visibleOnly('service', second, isGet && redactEnv ? response('service-inspect') : undefined);
          return decision;
        }
        return visibleOnly('service', second);
      case 'tasks':
        if (count === 1) return isGet ? list('tasks', redactEnv ? 'task-list' : null) : decision;
        return visibleOnly('task', second, isGet && count === 2 && redactEnv ? response('task-inspect') : undefined);
      case 'events':
        return isGet && count === 1 ? list('events', 'events') : decision;
      case 'networks':
        if (!isGet || labels === undefined) return decision;
        if (count === 2) return withObligations({ response: response('network-inspect') });
        // A list answered for API < 1.28 is detailed: every network with its containers.
        return count === 1 ? withObligations({ response: response('network-list') }) : decision;
      case 'system':
        if (labels !== undefined && second === 'df') return refuse(decision, 403, 'visible-labels', `${DENIED_BY}${method} ${rest}: it lists every container (${VISIBLE_REASON})`);
        return decision;
      case 'commit':
        if (labels !== undefined) return refuse(decision, 403, 'visible-labels', `${DENIED_BY}${method} ${rest}: it names its container in the query (${VISIBLE_REASON})`);
        return decision;
      case 'libpod':
        if (labels !== undefined) {
          if (count === 2 && (second === '_ping' || second === 'version')) return decision;
          return refuse(decision, 403, 'visible-labels', `${DENIED_BY}${method} ${rest}: the Podman API is not covered by visibility (${VISIBLE_REASON})`);
        }
        if (second === 'generate') return refuse(decision, 403, 'redact-env', `${DENIED_BY}${method} ${rest}: its answer carries environment values, which are redacted (REDACT_ENV)`);
        if (isGet && second === 'containers' && count === 4 && segments[4] === 'json') return withObligations({ response: response('container-inspect') });
        if (redactEnv && isGet && second === 'containers' && count === 4 && segments[4] === 'top') return topShowsEnvironment() ?? decision;
        return decision;
      default:
        return decision;
    }
  };
}
