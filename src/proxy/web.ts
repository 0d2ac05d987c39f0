import type { IncomingMessage, ServerResponse } from 'node:http';
import createDebug from 'debug';
import { SocketFilterError } from '../errors.js';
import { checkBeforeDeciding, decideAndLog, loggablePath, reportWhenClosed, type ProxyContext } from './context.js';
import { sendJsonError } from './deny.js';
import { upstreamFailureMessage } from './upstream-error.js';
import { forwardRequest, type SinkFactory } from './forward.js';
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
    const method = req.method ?? '';
    const target = req.url ?? '';
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
    // Only the onRequest event needs the start time.
    const started = context.onRequest === undefined ? 0 : performance.now();
    let upstreamFailed = false;
    // One event per request, when the client's response is over (sent, streamed, or cut).
    const reportWhenOver = (path: string | null, allowed: boolean, rule: string | null, reason: string): void => {
      if (context.onRequest === undefined) return;
      reportWhenClosed(context, res, started, { method, path, allowed, rule, reason, upgrade: false }, () =>
        // 499 (nginx's "client closed request"): the client left before any answer was sent.
        res.headersSent ? res.statusCode : upstreamFailed ? 502 : 499,
      );
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

    const decision = decideAndLog(context, log, method, target, {
      upgrade: false,
      bodyLength: framing.bodyLength,
    });
    reportWhenOver(decision.path, decision.allowed, decision.rule, decision.reason);
    if (!decision.allowed || decision.path === null) {
      // A refused request's body is drained by Node, keeping the connection usable for the next one.
      sendJsonError(res, decision.allowed ? 400 : decision.status, decision.reason);
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
      upstreamFailed = true;
      if (!res.headersSent && !res.destroyed) {
        void upstreamFailureMessage(error, context.socketPath).then((message) => {
          // The client may have gone while the message was being worded.
          if (!res.headersSent && !res.destroyed) sendJsonError(res, 502, message, { close: true });
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
    const forward = (target: string, sink?: SinkFactory): void => {
      try {
        forwardRequest(context.pool, context.open, req, res, target, framing.bodyLength, onError, sink);
      } catch (error) {
        // A path that cannot be sent (only a custom `evaluate` could decide one): nothing was sent.
        onError(error instanceof Error ? error : new Error(String(error)));
      }
    };
    // A policy's read section: a lookup first (visibility), a rewriting sink (redaction).
    if (hasReadObligations(decision)) fulfilReadObligations({ socketPath: context.socketPath, agent: context.lookups }, method, decision, res, forward, onError);
    else forward(path);
  };
}
