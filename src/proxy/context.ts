import type { Agent, IncomingHttpHeaders } from 'node:http';
import type { Debugger } from 'debug';
import type { RequestEvent } from '../filter.js';
import type { Evaluate } from '../policy/evaluate.js';
import type { ClientInfo, Decision, RequestInfo } from '../policy/types.js';
import { MAX_TARGET_LENGTH, TARGET_TOO_LONG_MESSAGE } from './limits.js';
import type { HeldContext } from './held.js';
import type { UpstreamPool } from './pool.js';
import { headProblem, readRequestInfo, type RequestFraming } from './request-info.js';

export type { Evaluate };

/**
 * What the web and upgrade handlers of one proxy share. Internal; built by `createProxy`.
 *
 * @example
 * ```ts
 * const context: ProxyContext = { evaluate, pin, socketPath, pool, lookups, onRequest: undefined, uploadIdleTimeoutMs: 60_000, held, closed: false, open: new Set() };
 * ```
 */
export interface ProxyContext {
  readonly evaluate: Evaluate;
  /**
   * The decision function in force right now, not the indirection `evaluate` goes through: a
   * request keeps it for every decision it needs (a second one on its body), so that a reload
   * between the two never applies half a policy to it.
   */
  readonly pin: () => Evaluate;
  readonly socketPath: string;
  /** Keep-alive connections to dockerd for plain requests (upgrades get their own). */
  readonly pool: UpstreamPool;
  /** Keep-alive connections for the guard's own lookups (`askDockerd`: visibility). */
  readonly lookups: Agent;
  /** Told once per request when it is over; see `report`. */
  readonly onRequest: ((event: RequestEvent) => void) | undefined;
  /** Milliseconds a declared request body may stop arriving before dockerd has answered. */
  readonly uploadIdleTimeoutMs: number;
  /**
   * The budget of bytes held whole (checked bodies, lookups, rewritten answers) shared by every
   * connection, and how long a client may read nothing of a held answer (`uploadIdleTimeoutMs`).
   */
  readonly held: HeldContext;
  closed: boolean;
  /** Every client and upstream stream still open: hijacked pairs and in-flight responses. */
  readonly open: Set<{ destroy(): unknown }>;
}

/**
 * Asks `evaluate`, failing closed: `evaluate` must never throw, but if a custom one does the request
 * is refused rather than forwarded or left hanging.
 *
 * @example
 * ```ts
 * const decision = decide(context.evaluate, 'GET', '/_ping', { upgrade: false, bodyLength: 0 });
 * ```
 */
export function decide(
  evaluate: Evaluate,
  method: string,
  target: string,
  request: RequestInfo,
): Decision {
  try {
    return evaluate(method, target, request);
  } catch {
    return {
      allowed: false,
      status: 403,
      rule: null,
      reason: 'docker-socket-filter failed to decide on this request, so it is refused',
      path: null,
    };
  }
}

/**
 * `decide`, plus the one debug line per decision (`docker-socket-filter:proxy`, path without its
 * query). The line is only built when that namespace is enabled: this runs for every request.
 *
 * @example
 * ```ts
 * const decision = decideAndLog(context, log, 'GET', '/_ping', { upgrade: false, bodyLength: 0 });
 * ```
 */
export function decideAndLog(
  context: ProxyContext,
  log: Debugger,
  method: string,
  target: string,
  request: RequestInfo & { readonly upgrade: boolean; readonly bodyLength: number; readonly client: ClientInfo },
  evaluate: Evaluate = context.evaluate,
): Decision {
  const decision = decide(evaluate, method, target, request);
  if (log.enabled) {
    log(
      '%s%s %s -> %s %d rule=%s client=%s',
      request.upgrade ? 'upgrade ' : '',
      method,
      loggablePath(decision.path ?? target),
      decision.allowed ? 'allow' : 'deny',
      decision.status,
      decision.rule,
      decision.client ?? '-',
    );
  }
  return decision;
}

/**
 * The client fields of a request's `onRequest` event: the client it was decided for (when the
 * filter has clients and one matched), the connection's peer address and listener name.
 *
 * @example
 * ```ts
 * report(context, { ...fields, ...clientFields(clientOf(req.socket), decision.client) });
 * ```
 */
export function clientFields(
  info: ClientInfo,
  client: string | undefined,
): Pick<RequestEvent, 'client' | 'address' | 'listener'> {
  return {
    ...(client !== undefined ? { client } : {}),
    ...(info.address !== undefined ? { address: info.address } : {}),
    ...(info.listener !== undefined ? { listener: info.listener } : {}),
  };
}

/**
 * The part of a decided target that is safe to log: its path, never its query (build arguments and
 * filters travel there).
 *
 * @example
 * ```ts
 * loggablePath('/v1.41/build?buildargs=%7B%22TOKEN%22%3A%22x%22%7D'); // '/v1.41/build'
 * ```
 */
export function loggablePath(target: string): string {
  const query = target.indexOf('?');
  const path = query === -1 ? target : target.slice(0, query);
  return JSON.stringify(path.length > 200 ? `${path.slice(0, 200)}…` : path);
}

/**
 * Registers `stream` in `open` until it closes, so `close()` can end it.
 *
 * @example
 * ```ts
 * track(context.open, socket);
 * ```
 */
export function track(
  open: Set<{ destroy(): unknown }>,
  stream: { destroy(): unknown; once(event: 'close', listener: () => void): unknown },
): void {
  open.add(stream);
  stream.once('close', () => open.delete(stream));
}

/**
 * The short name of a socket error for a client-facing message: its code (`ECONNREFUSED`), never a
 * path.
 *
 * @example
 * ```ts
 * errorCode(Object.assign(new Error('connect ENOENT /var/run/docker.sock'), { code: 'ENOENT' })); // 'ENOENT'
 * ```
 */
export function errorCode(error: Error): string {
  const code = (error as NodeJS.ErrnoException).code;
  return typeof code === 'string' ? code : 'connection error';
}

/**
 * Tells `onRequest` about a request that is over. A throwing listener must not break the proxy:
 * its errors are ignored.
 *
 * @example
 * ```ts
 * report(context, {
 *   method: 'GET', path: '/_ping', allowed: true, rule: 'PING', reason, status: 200, durationMs: 1, upgrade: false,
 * });
 * ```
 */
export function report(context: ProxyContext, event: RequestEvent): void {
  if (context.onRequest === undefined) return;
  try {
    context.onRequest(event);
  } catch {
    // Ignored by contract: logging must not change what the client gets.
  }
}

/**
 * Arranges the one `onRequest` event of a request for when `stream` (the response, or the hijacked
 * client socket) closes: the end of the answer or of the stream. `status` is read then, since what the
 * client got is only known at the end. Nothing is arranged without an `onRequest`.
 *
 * @example
 * ```ts
 * reportWhenClosed(context, res, started, { method, path, allowed, rule, reason, upgrade: false }, () => res.statusCode);
 * ```
 */
export function reportWhenClosed(
  context: ProxyContext,
  stream: { once(event: 'close', listener: () => void): unknown },
  started: number,
  fields: Omit<RequestEvent, 'status' | 'durationMs'>,
  status: () => number,
): void {
  if (context.onRequest === undefined) return;
  stream.once('close', () => {
    report(context, { ...fields, status: status(), durationMs: performance.now() - started });
  });
}

/**
 * What a closed proxy answers (503) to every request and upgrade.
 *
 * @example
 * ```ts
 * await proxy.close(); // later requests get {"message":"docker-socket-filter is closed"}
 * ```
 */
export const CLOSED_MESSAGE = 'docker-socket-filter is closed';

/**
 * A request refused before it is decided, with the status and message to answer.
 *
 * @example
 * ```ts
 * const refusal: Refusal = { status: 414, message: TARGET_TOO_LONG_MESSAGE };
 * ```
 */
export interface Refusal {
  readonly status: 400 | 414 | 503;
  readonly message: string;
}

/**
 * The checks both handlers make before a request is decided: a closed proxy (503), a target over
 * the limit (414, before anything reads it: no Docker API call is that long, and neither `evaluate`
 * nor the log should spend time on one), and framing that cannot be trusted (400: the body boundary
 * is in doubt, so nothing more on the connection can be). Returns the request's framing, or why it
 * is refused.
 *
 * @example
 * ```ts
 * const checked = checkBeforeDeciding(context, log, req.method ?? '', req.url ?? '', req);
 * if ('message' in checked) refuse(checked.status, checked.message);
 * ```
 */
export function checkBeforeDeciding(
  context: ProxyContext,
  log: Debugger,
  method: string,
  target: string,
  req: { readonly headers: IncomingHttpHeaders; readonly rawHeaders: readonly string[] },
): RequestFraming | Refusal {
  if (context.closed) return { status: 503, message: CLOSED_MESSAGE };
  if (target.length > MAX_TARGET_LENGTH) {
    log('%s (target of %d bytes) -> 414', method, target.length);
    return { status: 414, message: TARGET_TOO_LONG_MESSAGE };
  }
  const framing = readRequestInfo(req.headers);
  const problem = framing.problem ?? headProblem(method, req.rawHeaders, framing.bodyLength);
  if (problem !== null) {
    log('%s %s -> 400 framing: %s', method, loggablePath(target), problem);
    return { status: 400, message: problem };
  }
  return framing;
}
