import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import createDebug from 'debug';
import { checkBeforeDeciding, decideAndLog, loggablePath, reportWhenClosed, track, type ProxyContext } from './context.js';
import { writeRawJsonError } from './deny.js';
import { fulfilUpgradeVisibility } from './read.js';
import { upstreamFailureMessage } from './upstream-error.js';

const log = createDebug('docker-socket-filter:upgrade');

/**
 * An `'upgrade'` listener for Node's HTTP server: Docker's hijacked streams (`docker run`, `attach`,
 * `exec`), websocket attach and BuildKit's `h2c` sessions.
 *
 * @example
 * ```ts
 * server.on('upgrade', proxy.upgrade);
 * ```
 */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

// Request headers that belong to the client's connection. The `Connection` header is rewritten
// (see below); `Expect` would make dockerd send an interim 100 this relay does not expect.
const DROPPED_REQUEST_HEADERS = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'expect',
  'transfer-encoding',
]);

// Bytes a client may send after its request body before dockerd has answered; more and the client
// socket is paused. Docker clients send nothing until they have read `101`.
const MAX_PENDING_BYTES = 64 * 1024;
// A response head larger than this is not dockerd's.
const MAX_RESPONSE_HEAD_BYTES = 64 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');

/**
 * Builds the upgrade handler of a proxy. Unlike http-proxy-3's websocket path, which only knows
 * `GET` + `Upgrade: websocket` and never sends a body, this relays any upgrade dockerd offers, body
 * first, and joins the two sockets **only** when dockerd answers `101`.
 *
 * Why the care: until dockerd has switched protocols, the connection is still HTTP. Anything the
 * client sent after the declared body would be read by dockerd as the next request, one the filter
 * never saw. So only the declared body is forwarded before the answer; the rest waits, and is
 * dropped with the connection if dockerd answers anything but `101`.
 *
 * @example
 * ```ts
 * const upgrade = createUpgradeHandler(context);
 * server.on('upgrade', upgrade);
 * ```
 */
export function createUpgradeHandler(context: ProxyContext): UpgradeHandler {
  return function upgrade(req, socket, head) {
    const method = req.method ?? '';
    const target = req.url ?? '';
    const started = performance.now();
    // What the client got: set when an answer is written or dockerd's is relayed.
    const outcome: Outcome = { status: null };
    socket.on('error', (error) => {
      log('client socket error: %s', error.message);
      socket.destroy();
    });
    // One event per request, when the client's connection is over (for a joined stream: its end).
    const reportWhenOver = (path: string | null, allowed: boolean, rule: string | null, reason: string): void => {
      if (context.onRequest === undefined) return;
      reportWhenClosed(context, socket, started, { method, path, allowed, rule, reason, upgrade: true }, () =>
        // 499 (nginx's "client closed request"): the client left before any answer.
        outcome.status ?? 499,
      );
    };
    const refuse = (status: number, message: string): void => {
      outcome.status = status;
      writeRawJsonError(socket, status, message);
    };

    const checked = checkBeforeDeciding(context, log, method, target, req);
    if ('message' in checked) {
      reportWhenOver(null, false, null, checked.message);
      refuse(checked.status, checked.message);
      return;
    }
    const framing = checked;

    // Node only emits 'upgrade' for what it parsed as an upgrade, so this is always an upgrade:
    // decide on it as one (an upgrade is a write), whatever the headers' exact spelling.
    const decision = decideAndLog(context, log, method, target, {
      upgrade: true,
      bodyLength: framing.bodyLength,
    });
    reportWhenOver(decision.path, decision.allowed, decision.rule, decision.reason);
    if (!decision.allowed || decision.path === null) {
      refuse(decision.allowed ? 400 : decision.status, decision.reason);
      return;
    }
    if (framing.bodyLength < 0) {
      // Without a Content-Length this relay cannot tell the body from what follows it, and guessing
      // is how requests get smuggled. Docker clients always send a length.
      refuse(400, 'An upgrade request must declare its body with Content-Length');
      return;
    }

    if (decision.obligations?.visible === undefined) {
      relay(context, req, socket, head, decision.path, framing.bodyLength, outcome);
      return;
    }
    fulfilUpgradeVisibility(
      { socketPath: context.socketPath, agent: context.lookups },
      decision,
      socket,
      (path, rewriteRefusal) => relay(context, req, socket, head, path, framing.bodyLength, outcome, rewriteRefusal),
      (error) => void upstreamFailureMessage(error, context.socketPath).then((message) => refuse(502, message)),
      (status) => (outcome.status = status),
    );
  };
}

interface Outcome {
  status: number | null;
}

function requestHead(req: IncomingMessage, path: string): string {
  let text = `${req.method} ${path} HTTP/1.1\r\n`;
  const raw = req.rawHeaders;
  for (let index = 0; index + 1 < raw.length; index += 2) {
    const name = raw[index] as string;
    if (!DROPPED_REQUEST_HEADERS.has(name.toLowerCase())) text += `${name}: ${raw[index + 1]}\r\n`;
  }
  // `close` makes dockerd end the connection after a non-101 answer, so nothing on this
  // connection is ever read as a second request; dockerd checks only for the `Upgrade` header
  // and the websocket handshake only for the `upgrade` token, so `101` still happens.
  return `${text}Connection: Upgrade, close\r\n\r\n`;
}

function contentLengthOf(head: string): number | null {
  const match = /\r\ncontent-length:[ \t]*(\d+)[ \t]*(?:\r\n|$)/i.exec(head);
  return match === null ? null : Number(match[1]);
}

function relay(
  context: ProxyContext,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  path: string,
  bodyLength: number,
  outcome: Outcome,
  rewriteRefusal?: (answer: Buffer) => Buffer,
): void {
  const upstream: Socket = connect({ path: context.socketPath });
  track(context.open, socket);
  track(context.open, upstream);
  // Hijacked streams (attach, exec, logs) idle for as long as the container is quiet.
  if ('setTimeout' in socket && typeof socket.setTimeout === 'function') {
    (socket as Socket).setTimeout(0);
    (socket as Socket).setNoDelay(true);
  }
  upstream.setNoDelay(true);

  let phase: 'request' | 'joined' | 'refused' = 'request';
  let bodyLeft = bodyLength;
  let answered = false;
  let clientEnded = false;
  const pending: Buffer[] = [];
  let pendingBytes = 0;
  let response: Buffer = Buffer.alloc(0);

  const onClientData = (chunk: Buffer): void => {
    let rest = chunk;
    if (bodyLeft > 0) {
      const body = rest.subarray(0, bodyLeft);
      bodyLeft -= body.length;
      rest = rest.subarray(body.length);
      if (!upstream.write(body)) {
        socket.pause();
        upstream.once('drain', () => {
          if (phase === 'request' && pendingBytes <= MAX_PENDING_BYTES) socket.resume();
        });
      }
    }
    if (rest.length > 0) {
      pending.push(rest);
      pendingBytes += rest.length;
      if (pendingBytes > MAX_PENDING_BYTES) socket.pause();
    }
  };
  const onClientEnd = (): void => {
    clientEnded = true;
  };

  const fail = (status: number, message: string): void => {
    phase = 'refused';
    upstream.destroy();
    // Nothing more goes upstream; writeRawJsonError drains what the client still sends.
    socket.off('data', onClientData);
    pending.length = 0;
    if (answered) {
      socket.destroy();
    } else {
      outcome.status = status;
      writeRawJsonError(socket, status, message);
    }
  };

  const join = (): void => {
    phase = 'joined';
    socket.off('data', onClientData);
    socket.off('end', onClientEnd);
    if (pending.length > 0) upstream.write(Buffer.concat(pending));
    pending.length = 0;
    upstream.pipe(socket);
    if (clientEnded) upstream.end();
    else socket.pipe(upstream);
  };

  const refuse = (headEnd: number, headText: string): void => {
    phase = 'refused';
    socket.off('data', onClientData);
    pending.length = 0;
    // Whatever else the client sends on this connection is never forwarded; drain and drop it.
    socket.resume();
    const length = contentLengthOf(headText);
    let bodyLeftToRelay = length === null ? Number.POSITIVE_INFINITY : length;
    const finish = (): void => {
      upstream.destroy();
      socket.end();
      setTimeout(() => socket.destroy(), 5_000).unref();
    };
    if (rewriteRefusal !== undefined) {
      // The answer for a stand-in reference: held whole (it is short), then written with the
      // client's reference back in it.
      let collected = response;
      const total = length === null ? Number.POSITIVE_INFINITY : headEnd + length;
      let sent = false;
      const send = (): void => {
        if (sent) return;
        sent = true;
        socket.write(rewriteRefusal(collected.subarray(0, Math.min(collected.length, total))));
        finish();
      };
      if (collected.length >= total) send();
      else {
        upstream.on('data', (chunk: Buffer) => {
          collected = Buffer.concat([collected, chunk]);
          if (collected.length >= total || collected.length > MAX_RESPONSE_HEAD_BYTES) send();
        });
        upstream.once('end', send);
        upstream.once('close', send);
      }
      return;
    }
    const forward = (chunk: Buffer): void => {
      const part = chunk.subarray(0, Math.min(chunk.length, bodyLeftToRelay));
      bodyLeftToRelay -= part.length;
      if (part.length > 0) socket.write(part);
      if (bodyLeftToRelay <= 0) finish();
    };
    socket.write(response.subarray(0, headEnd));
    forward(response.subarray(headEnd));
    if (bodyLeftToRelay > 0) {
      upstream.on('data', forward);
      // dockerd closes after the answer (we asked for `Connection: close`).
      upstream.once('end', finish);
    }
  };

  const onUpstreamData = (chunk: Buffer): void => {
    response = response.length === 0 ? chunk : Buffer.concat([response, chunk]);
    const end = response.indexOf(HEAD_END);
    if (end === -1) {
      if (response.length > MAX_RESPONSE_HEAD_BYTES) fail(502, 'The Docker daemon sent an invalid response');
      return;
    }
    upstream.off('data', onUpstreamData);
    const headEnd = end + HEAD_END.length;
    const headText = response.subarray(0, end).toString('latin1');
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(headText)?.[1];
    log('upgrade %s %s <- %s', req.method, loggablePath(path), status ?? 'invalid');
    if (status === undefined) {
      fail(502, 'The Docker daemon sent an invalid response');
      return;
    }
    answered = true;
    outcome.status = Number(status);
    if (status === '101') {
      // The bytes dockerd sent right after its head (stream output) go out with it.
      socket.write(response);
      response = Buffer.alloc(0);
      join();
    } else {
      refuse(headEnd, headText);
    }
  };

  upstream.on('data', onUpstreamData);
  upstream.on('error', (error) => {
    log('upgrade %s %s upstream error: %s', req.method, loggablePath(path), error.message);
    if (phase !== 'request') {
      socket.destroy();
      return;
    }
    // Settled now, so the 'close' that follows does not answer a second time while the message
    // is being worded.
    phase = 'refused';
    upstream.destroy();
    void upstreamFailureMessage(error, context.socketPath).then((message) => fail(502, message));
  });
  upstream.on('close', () => {
    if (phase === 'request') fail(502, 'The Docker daemon closed the connection without answering');
  });
  socket.on('close', () => {
    // Without its client a hijacked stream has nobody to serve (a half-closed stdin keeps the
    // socket open, so this only cuts streams the client abandoned).
    upstream.destroy();
  });

  upstream.write(requestHead(req, path));
  socket.on('data', onClientData);
  socket.on('end', onClientEnd);
  if (head.length > 0) onClientData(head);
  socket.resume();
}
