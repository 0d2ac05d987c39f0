import type { IncomingMessage, ServerResponse } from 'node:http';
import createDebug from 'debug';
import type { Decision } from '../policy/types.js';
import { SocketFilterError } from '../errors.js';
import { clientOf } from './client-info.js';
import { checkBeforeDeciding, clientFields, decideAndLog, loggablePath, report, reportWhenClosed, type ProxyContext } from './context.js';
import { sendJsonError } from './deny.js';
import { upstreamFailureMessage } from './upstream-error.js';
import { forwardRequest, type SinkFactory } from './forward.js';
import type { Hold } from './held.js';
import { inTurn, MAX_PIPELINED_REQUESTS } from './lane.js';
import { satisfyObligations } from './obligations.js';
import { fulfilReadObligations, hasReadObligations } from './read.js';

const log = createDebug('docker-socket-filter:proxy');

/**
 * A connect-style handler for the plain (non-upgrade) requests of the Docker Engine API.
 *
 * Every request is answered here: denials, and `502` JSON when dockerd fails before answering.
 * `next`, when given, is called only for what cannot be answered any more: dockerd failing after
 * the response started (a `SocketFilterError` with code `ERR_DSF_UPSTREAM`; the stream is cut).
 *
 * @example
 * ```ts
 * http.createServer({ requestTimeout: 0 }, proxy.handler);
 * ```
 */
export type WebHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  next?: (error?: unknown) => void,
) => void;

const UPGRADE_MESSAGE =
  'This request asks to upgrade the connection, which the request handler cannot do: ' +
  "attach the filter's `upgrade` function to the server's 'upgrade' event";

const BODY_CONSUMED_MESSAGE =
  'The request body was already read by middleware mounted before docker-socket-filter (a body parser?): ' +
  'mount the filter before any body parser, or on a path no body parser sees';

/**
 * A body parser (express.json, koa-body, …) mounted before the filter reads the body; forwarding
 * then waits forever for bytes that will never come. Detect it and answer instead of hanging:
 * body-parser marks `req._body`, others leave `req.body` or an ended stream behind.
 */
function bodyAlreadyConsumed(req: IncomingMessage, bodyLength: number): boolean {
  if ((req as { _body?: unknown })._body === true) return true;
  if (bodyLength === 0) return false;
  return req.readableEnded || (req as { body?: unknown }).body !== undefined;
}

/**
 * Builds the request handler of a proxy: decide on the request as received, answer denials with
 * Docker-style JSON, forward the rest (see `forwardRequest`) on exactly the decided path.
 *
 * @example
 * ```ts
 * const handler = createWebHandler(context);
 * server.on('request', handler);
 * ```
 */
export function createWebHandler(context: ProxyContext): WebHandler {
  let checkedRequestTimeout = false;
  return function handler(req, res, next) {
    if (!checkedRequestTimeout) {
      checkedRequestTimeout = true;
      // Node cuts a request whose body is still arriving after `requestTimeout` (300 s by default):
      // a large `docker load` or build context. The handler cannot lift it; say so once.
      const server = (req.socket as { server?: { requestTimeout?: unknown } }).server;
      if (typeof server?.requestTimeout === 'number' && server.requestTimeout > 0) {
        log(
          'warning: server.requestTimeout is %d ms; longer uploads are cut (create the server with requestTimeout: 0)',
          server.requestTimeout,
        );
      }
    }
    // One exchange at a time per client connection (see lane.ts).
    const queued = inTurn(req.socket, (done) => {
      res.once('close', done);
      handle(context, req, res, next);
    });
    if (!queued) {
      // No answer can be sent in order without holding what the bound is there to refuse.
      log('%s %s -> connection closed: more than %d pipelined requests waiting', req.method, loggablePath(req.url ?? ''), MAX_PIPELINED_REQUESTS);
      report(context, {
        method: req.method ?? '',
        path: null,
        allowed: false,
        rule: 'pipelining',
        reason: `docker-socket-filter closed a connection that pipelined more than ${MAX_PIPELINED_REQUESTS} requests ahead of their answers`,
        status: 503,
        durationMs: 0,
        upgrade: false,
        ...clientFields(clientOf(req.socket), undefined),
      });
      req.socket.destroy();
    }
  };
}

function handle(context: ProxyContext, req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): void {
  const method = req.method ?? '';
  const target = req.url ?? '';
  // Only the onRequest event needs the start time.
  const started = context.onRequest === undefined ? 0 : performance.now();
  let failedStatus = 0;
  let hijacked = false;
  // The peer address and listener of the connection, never a header: who the client is.
  const client = clientOf(req.socket);
  // One event per request, when the client's response is over (sent, streamed, or cut). Returns
  // the fields, which a decision that still has obligations updates once they are met.
  const reportWhenOver = (
    path: string | null,
    allowed: boolean,
    rule: string | null,
    reason: string,
    decidedFor?: string,
  ): { allowed: boolean; rule: string | null; reason: string } | undefined => {
    if (context.onRequest === undefined) return undefined;
    const fields = {
      method,
      path,
      ...(path === null ? { target } : {}),
      allowed,
      rule,
      reason,
      upgrade: false,
      ...clientFields(client, decidedFor),
    };
    reportWhenClosed(context, res, started, fields, () =>
      // 499 (nginx's "client closed request"): the client left before any answer was sent.
      hijacked ? 200 : res.headersSent ? res.statusCode : failedStatus !== 0 ? failedStatus : 499,
    );
    return fields;
  };
  const refuse = (status: number, message: string): void => {
    reportWhenOver(null, false, null, message);
    sendJsonError(res, status, message, { close: true });
  };

  const checked = checkBeforeDeciding(context, log, method, target, req);
  if ('message' in checked) {
    refuse(checked.status, checked.message);
    return;
  }
  const framing = checked;

  // dockerd treats the mere presence of `Upgrade` as a hijack request, so one that reaches the
  // request handler (no 'upgrade' listener, or no `Connection: Upgrade`) is refused rather than
  // forwarded with a decision made for a plain request.
  if (req.headers.upgrade !== undefined) {
    log('%s %s -> 400 upgrade reached the request handler', method, loggablePath(target));
    refuse(400, UPGRADE_MESSAGE);
    return;
  }

  // The policy this request is decided with, also when it is decided again on its body: a reload
  // in between applies to the next request, never to half of this one.
  const evaluate = context.pin();
  const request = {
    upgrade: false,
    bodyLength: framing.bodyLength,
    client,
    ...(req.headers.host === undefined ? {} : { host: req.headers.host }),
    ...(req.headers['content-type'] === undefined ? {} : { contentType: req.headers['content-type'] }),
  };
  const decision = decideAndLog(context, log, method, target, request, evaluate);
  const reported = reportWhenOver(decision.path, decision.allowed, decision.rule, decision.reason, decision.client);
  if (!decision.allowed || decision.path === null) {
    sendJsonError(res, decision.allowed ? 400 : decision.status, decision.reason);
    if (framing.bodyLength !== 0) boundDeniedBody(req);
    return;
  }

  if (bodyAlreadyConsumed(req, framing.bodyLength)) {
    log('%s %s -> 500 body consumed by earlier middleware', method, loggablePath(decision.path));
    sendJsonError(res, 500, BODY_CONSUMED_MESSAGE, { close: true });
    return;
  }

  // The decided canonical target goes upstream verbatim: what is forwarded is what was decided.
  const path = decision.path;

  const onError = (error: Error): void => {
    log('%s %s upstream error: %s', method, loggablePath(path), error.message);
    const status = failureStatus(error);
    failedStatus = status;
    if (!res.headersSent && !res.destroyed) {
      void upstreamFailureMessage(error, context.socketPath).then((message) => {
        // The client may have gone while the message was being worded.
        if (!res.headersSent && !res.destroyed) sendJsonError(res, status, message, { close: true });
        else res.destroy();
      });
      return;
    }
    // Too late for a status: cut the stream so the client cannot mistake it for a complete one,
    // and tell middleware (Express closes the connection and runs its error handlers).
    res.destroy();
    next?.(
      new SocketFilterError('ERR_DSF_UPSTREAM', 'The Docker daemon failed during the response', {
        cause: error,
      }),
    );
  };
  const hooks = {
    onError,
    onHijack: () => {
      hijacked = true;
    },
    // The response object was detached from its connection; its 'close' tells everyone who waits
    // for the end of this request (the report, the lane, middleware) that it is over.
    onHijackEnd: () => res.emit('close'),
  };
  // What is forwarded: on `to` (the decided path, or the full ID of a visible object in place of
  // the client's reference), with the body a check read (if one did), into `sink` (a rewrite).
  const forwarder =
    (body: Buffer | undefined, bodyHold?: Hold) =>
    (to: string, sink?: SinkFactory): void => {
      try {
        forwardRequest(context.pool, context.open, req, res, to, framing.bodyLength, hooks, {
          uploadIdleTimeoutMs: context.uploadIdleTimeoutMs,
          ...(body === undefined ? {} : { body }),
          ...(bodyHold === undefined ? {} : { onBodyWritten: bodyHold.release }),
          ...(sink === undefined ? {} : { sink }),
        });
      } catch (error) {
        // A path that cannot be sent (only a custom `evaluate` could decide one): nothing was sent.
        onError(error instanceof Error ? error : new Error(String(error)));
      }
    };
  // Then a policy's read section: a lookup first (visibility), a rewriting sink (redaction).
  const proceed = (final: Decision, body?: Buffer, bodyHold?: Hold): void => {
    const forward = forwarder(body, bodyHold);
    if (hasReadObligations(final)) {
      fulfilReadObligations({ socketPath: context.socketPath, agent: context.lookups, held: context.held }, method, final, res, forward, onError);
    } else forward(final.path ?? path);
  };
  if (!hasHostObligations(decision)) {
    proceed(decision);
    return;
  }
  // A body check or a question to dockerd first (see `Decision.obligations`). The body counts
  // against the budget of held bytes from its first byte until dockerd's socket has it, or the
  // request is over (refused, failed, the client gone).
  const hold = context.held.budget.hold();
  res.once('close', hold.release);
  void satisfyObligations(context, evaluate, req, method, target, request, decision, hold).then((outcome) => {
    const final = outcome.decision;
    if (reported !== undefined) Object.assign(reported, { allowed: outcome.forward, rule: final.rule, reason: final.reason });
    if (res.destroyed) {
      hold.release();
      return;
    }
    if (!outcome.forward) {
      hold.release();
      log('%s %s -> %d %s', method, loggablePath(path), outcome.status, final.rule);
      failedStatus = outcome.status;
      sendJsonError(res, outcome.status, outcome.message, { close: outcome.close });
      return;
    }
    if (outcome.body === undefined) hold.release();
    proceed(final, outcome.body, hold);
  });
}

/** Whether a decision asks for a body check, or for dockerd to be asked about volumes or networks. */
function hasHostObligations(decision: Decision): boolean {
  const obligations = decision.obligations;
  return (
    obligations !== undefined &&
    (obligations.body !== undefined || obligations.existingVolumes !== undefined || obligations.notHostNetworks !== undefined)
  );
}

/** The status of a request dockerd could not be asked, or did not answer properly. */
function failureStatus(error: Error): number {
  switch ((error as { code?: unknown }).code) {
    case 'ERR_DSF_SATURATED':
      return 503;
    case 'ERR_DSF_IDLE_UPLOAD':
      return 408;
    default:
      return 502;
  }
}

/**
 * The most of a refused request's body the guard reads (and drops) to keep the connection for the
 * client's next request, and how long it waits for it: beyond either, the connection is closed.
 * The answer was sent at once; a client that goes on sending a body nobody wants, or declares
 * one and sends nothing, does not keep a connection slot for it.
 */
export const DENIED_BODY_DRAIN = Object.freeze({ bytes: 256 * 1024, ms: 2_000 });

function boundDeniedBody(req: IncomingMessage): void {
  if (req.readableEnded) return;
  let drained = 0;
  const cut = (): void => {
    clearTimeout(timer);
    req.socket.destroy();
  };
  const timer = setTimeout(cut, DENIED_BODY_DRAIN.ms);
  timer.unref();
  req.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > DENIED_BODY_DRAIN.bytes) cut();
  });
  req.once('end', () => clearTimeout(timer));
  req.once('close', () => clearTimeout(timer));
  // Node dumps the body of a request whose answer is over; this reads it as it comes meanwhile.
  req.resume();
}
