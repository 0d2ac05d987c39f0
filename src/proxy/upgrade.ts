import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import createDebug from 'debug';
import { CHUNKED_INVALID, createChunkedDecoder } from './chunked.js';
import { clientOf } from './client-info.js';
import { checkBeforeDeciding, clientFields, decideAndLog, loggablePath, reportWhenClosed, track, type ProxyContext } from './context.js';
import { writeRawJsonError } from './deny.js';
import { isHijack } from './forward.js';
import { inTurn } from './lane.js';
import type { UpstreamConnection, UpstreamUser } from './pool.js';
import { joinStreams } from './relay.js';
import { MAX_RESPONSE_HEAD_BYTES, parseResponseHead, type ResponseHead } from './response-head.js';
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

// Request headers that belong to the client's connection. `Connection` and `Upgrade` are written
// anew (see below); `Expect` would make dockerd send an interim 100 this relay does not expect.
const DROPPED_REQUEST_HEADERS = new Set([
  'connection',
  'upgrade',
  'keep-alive',
  'proxy-connection',
  'expect',
  'transfer-encoding',
]);

// Bytes a client may send after its request body before dockerd has answered; more and the client
// socket is paused. Docker clients send nothing until they have read `101`.
const MAX_PENDING_BYTES = 64 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');

/**
 * Builds the upgrade handler of a proxy. Unlike http-proxy-3's websocket path, which only knows
 * `GET` + `Upgrade: websocket` and never sends a body, this relays any upgrade dockerd offers, body
 * first, and joins the two sockets **only** when dockerd took the connection over: it answered
 * `101`, or (Podman, and dockerd for some clients) `200` with a raw stream and no framing to an
 * attach or exec start.
 *
 * Why the care: until dockerd has switched protocols, the connection is still HTTP. Anything the
 * client sent after the declared body would be read by dockerd as the next request, one the filter
 * never saw. So only the declared body is forwarded before the answer; the rest waits, and is
 * dropped with the connection if dockerd answers anything else. That answer is relayed as dockerd
 * framed it, with backpressure, and then both connections are closed.
 *
 * @example
 * ```ts
 * const upgrade = createUpgradeHandler(context);
 * server.on('upgrade', upgrade);
 * ```
 */
export function createUpgradeHandler(context: ProxyContext): UpgradeHandler {
  return function upgrade(req, socket, head) {
    socket.on('error', (error) => {
      log('client socket error: %s', error.message);
      socket.destroy();
    });
    // Node hands an upgrade over while earlier requests of the connection may still be answered:
    // it waits for its turn, like every request (see lane.ts).
    const queued = inTurn(socket, () => handleUpgrade(context, req, socket, head));
    if (!queued) socket.destroy();
  };
}

function handleUpgrade(context: ProxyContext, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const method = req.method ?? '';
  const target = req.url ?? '';
  const started = performance.now();
  // What the client got: set when an answer is written or dockerd's is relayed.
  const outcome: Outcome = { status: null };
  // The peer address and listener of the connection, never a header: who the client is.
  const client = clientOf(socket);
  // One event per request, when the client's connection is over (for a joined stream: its end).
  const reportWhenOver = (path: string | null, allowed: boolean, rule: string | null, reason: string, decidedFor?: string): void => {
    if (context.onRequest === undefined) return;
    const fields = {
      method,
      path,
      ...(path === null ? { target } : {}),
      allowed,
      rule,
      reason,
      upgrade: true,
      ...clientFields(client, decidedFor),
    };
    reportWhenClosed(context, socket, started, fields, () =>
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
    client,
    ...(req.headers.host === undefined ? {} : { host: req.headers.host }),
    ...(req.headers['content-type'] === undefined ? {} : { contentType: req.headers['content-type'] }),
  });
  reportWhenOver(decision.path, decision.allowed, decision.rule, decision.reason, decision.client);
  if (!decision.allowed || decision.path === null) {
    refuse(decision.allowed ? 400 : decision.status, decision.reason);
    return;
  }
  // The endpoints whose body is checked are plain requests in the Docker API (exec create is a
  // plain POST; only exec start hijacks): one asked as an upgrade is refused, not forwarded with
  // its body unread.
  if (decision.obligations?.body !== undefined || decision.obligations?.existingVolumes !== undefined) {
    refuse(400, 'This request carries a configuration the filter checks; it must not ask to upgrade the connection');
    return;
  }
  // Likewise an answer the filter rewrites (inspect, lists, events under REDACT_ENV or
  // VISIBLE_LABELS): this relay passes dockerd's answer as it is, environment values and hidden
  // containers included. They are plain requests in the Docker API.
  if (decision.obligations?.response !== undefined) {
    refuse(400, 'The answer to this request is rewritten by the filter (REDACT_ENV, VISIBLE_LABELS); it must not ask to upgrade the connection');
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
  // An attach or exec of an object the client may not see: looked up first (see read.ts).
  fulfilUpgradeVisibility(
    { socketPath: context.socketPath, agent: context.lookups, held: context.held },
    decision,
    socket,
    (path, rewriteRefusal) => relay(context, req, socket, head, path, framing.bodyLength, outcome, rewriteRefusal),
    (error) =>
      void upstreamFailureMessage(error, context.socketPath).then((message) => refuse((error as { code?: unknown }).code === 'ERR_DSF_SATURATED' ? 503 : 502, message)),
    (status) => (outcome.status = status),
  );
}

interface Outcome {
  status: number | null;
}

/**
 * The request head for dockerd: the client's headers but its connection's, then exactly
 * `Connection: Upgrade` and the client's `Upgrade` value, as Go's reverse proxy sends them. Podman
 * answers `101` only to exactly that (to `Upgrade, close` it answers `200` and hijacks anyway);
 * no token that could change a daemon's choice is added.
 */
function requestHead(req: IncomingMessage, path: string): string {
  let text = `${req.method} ${path} HTTP/1.1\r\n`;
  const raw = req.rawHeaders;
  for (let index = 0; index + 1 < raw.length; index += 2) {
    const name = raw[index] as string;
    if (!DROPPED_REQUEST_HEADERS.has(name.toLowerCase())) text += `${name}: ${raw[index + 1]}\r\n`;
  }
  if (req.headers.host === undefined) text += 'Host: docker\r\n';
  return `${text}Connection: Upgrade\r\nUpgrade: ${req.headers.upgrade ?? ''}\r\n\r\n`;
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
  track(context.open, socket);
  // Hijacked streams (attach, exec, logs) idle for as long as the container is quiet.
  if ('setTimeout' in socket && typeof socket.setTimeout === 'function') {
    (socket as Socket).setTimeout(0);
    (socket as Socket).setNoDelay(true);
  }

  let phase: 'waiting' | 'request' | 'joined' | 'relaying' | 'over' = 'waiting';
  let connection: UpstreamConnection | null = null;
  let bodyLeft = bodyLength;
  let clientEnded = false;
  const pending: Buffer[] = [];
  let pendingBytes = 0;
  let response: Buffer | null = null;

  const upstreamSocket = (): Socket | undefined => connection?.socket;

  // The declared body goes upstream as it comes; what follows it waits for dockerd's answer.
  const onClientData = (chunk: Buffer): void => {
    let rest = chunk;
    if (bodyLeft > 0 && phase === 'request') {
      const body = rest.subarray(0, bodyLeft);
      bodyLeft -= body.length;
      rest = rest.subarray(body.length);
      const upstream = upstreamSocket() as Socket;
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

  const dropUpstream = (): void => {
    const current = connection;
    connection = null;
    if (current !== null) {
      current.user = null;
      current.socket.destroy();
    }
  };

  /** Nothing was relayed yet: answer with a JSON error and close. */
  const fail = (status: number, message: string): void => {
    if (phase === 'over') return;
    phase = 'over';
    context.pool.cancel(user);
    dropUpstream();
    // Nothing more goes upstream; writeRawJsonError drains what the client still sends.
    socket.off('data', onClientData);
    pending.length = 0;
    outcome.status = status;
    writeRawJsonError(socket, status, message);
  };

  const failWith = (error: Error): void => {
    const status = (error as { code?: unknown }).code === 'ERR_DSF_SATURATED' ? 503 : 502;
    if ((error as { code?: unknown }).code === 'ERR_DSF_BAD_RESPONSE' || status === 503) {
      fail(status, error.message);
      return;
    }
    // Settled now, so nothing answers a second time while the message is being worded.
    phase = 'over';
    dropUpstream();
    void upstreamFailureMessage(error, context.socketPath).then((message) => {
      phase = 'request';
      fail(502, message);
    });
  };

  const join = (joined: UpstreamConnection, answer: Buffer): void => {
    phase = 'joined';
    connection = null;
    socket.off('data', onClientData);
    socket.off('end', onClientEnd);
    // dockerd's head, and the stream output it sent right after, go out first.
    socket.write(answer);
    if (pending.length > 0) joined.socket.write(Buffer.concat(pending));
    pending.length = 0;
    joinStreams(socket, joined, context.pool, () => undefined);
    if (clientEnded) joined.socket.end();
  };

  /** Relays a refusal (any answer but a takeover) as dockerd framed it, then closes both. */
  const relayAnswer = (answer: ResponseHead, headBytes: Buffer, rest: Buffer): void => {
    phase = 'relaying';
    socket.off('data', onClientData);
    pending.length = 0;
    // Whatever else the client sends on this connection is never forwarded; drain and drop it.
    socket.resume();
    let bodyLeftToRelay = answer.framing === 'length' ? answer.length : answer.framing === 'none' ? 0 : Number.POSITIVE_INFINITY;
    const decoder = answer.framing === 'chunked' ? createChunkedDecoder() : null;
    const finish = (): void => {
      if (phase === 'over') return;
      phase = 'over';
      dropUpstream();
      socket.end();
      setTimeout(() => socket.destroy(), 5_000).unref();
    };
    if (rewriteRefusal !== undefined) {
      holdAndRewrite(answer, headBytes, rest, rewriteRefusal);
      return;
    }
    const forward = (chunk: Buffer): void => {
      let part = chunk;
      let ended = false;
      if (decoder !== null) {
        const used = decoder.feed(chunk, () => undefined);
        if (used === CHUNKED_INVALID) {
          // Nothing trustworthy follows: the client gets a cut answer.
          phase = 'over';
          dropUpstream();
          socket.destroy();
          return;
        }
        if (used >= 0) {
          part = chunk.subarray(0, used);
          ended = true;
        }
      } else {
        part = chunk.subarray(0, Math.min(chunk.length, bodyLeftToRelay));
        bodyLeftToRelay -= part.length;
        ended = bodyLeftToRelay <= 0;
      }
      if (part.length > 0 && !socket.write(Buffer.from(part))) {
        // A client that does not read holds dockerd's answer back, not the guard's memory.
        const upstream = upstreamSocket();
        if (upstream !== undefined && !upstream.isPaused()) {
          upstream.pause();
          socket.once('drain', () => upstream.resume());
        }
      }
      if (ended) finish();
    };
    socket.write(headBytes);
    if (rest.length > 0 || bodyLeftToRelay === 0) forward(rest);
    // A client that ends its side has left (an HTTP client does not half-close to read an answer;
    // a socket of Node's server stays half-open, so without this the connection to dockerd would
    // wait for dockerd's next byte, of an `events` stream for instance).
    if (clientEnded) finish();
    else socket.once('end', finish);
    relayUpstream = forward;
    // dockerd closing ends an answer read until close; any other answer it cut short is cut for
    // the client too, never ended as if complete.
    relayUpstreamEnd = () => {
      if (answer.framing === 'close') finish();
      else if (phase !== 'over') {
        phase = 'over';
        dropUpstream();
        socket.destroy();
      }
    };
  };

  let relayUpstream: ((chunk: Buffer) => void) | null = null;
  let relayUpstreamEnd: (() => void) | null = null;

  /**
   * dockerd's answer about a stand-in reference (an object the client may not see, asked as a
   * missing one): held whole, it is short, then written with the client's reference back in it.
   */
  const holdAndRewrite = (answer: ResponseHead, headBytes: Buffer, rest: Buffer, rewrite: (answer: Buffer) => Buffer): void => {
    const total =
      answer.framing === 'length' ? headBytes.length + answer.length : answer.framing === 'none' ? headBytes.length : Number.POSITIVE_INFINITY;
    let held = Buffer.concat([headBytes, rest]);
    const send = (): void => {
      if (phase === 'over') return;
      phase = 'over';
      dropUpstream();
      socket.end(rewrite(held.subarray(0, Math.min(held.length, total))));
      setTimeout(() => socket.destroy(), 5_000).unref();
    };
    if (held.length >= total) {
      send();
      return;
    }
    relayUpstream = (chunk) => {
      held = Buffer.concat([held, chunk]);
      // A missing object's answer is a short JSON error; anything longer is not one.
      if (held.length > MAX_RESPONSE_HEAD_BYTES) {
        phase = 'over';
        dropUpstream();
        socket.destroy();
      } else if (held.length >= total) send();
    };
    relayUpstreamEnd = send;
  };

  const onAnswerData = (chunk: Buffer): void => {
    if (phase === 'relaying') {
      relayUpstream?.(chunk);
      return;
    }
    if (phase !== 'request') return;
    // `chunk` is a view of the pool's shared buffer: keep a copy.
    response = response === null ? Buffer.from(chunk) : Buffer.concat([response, chunk]);
    const end = response.indexOf(HEAD_END);
    if (end === -1) {
      if (response.length > MAX_RESPONSE_HEAD_BYTES) fail(502, 'The Docker daemon sent an invalid response');
      return;
    }
    const answer = parseResponseHead(response, end, req.method ?? '', true);
    const headBytes = response.subarray(0, end + HEAD_END.length);
    const rest = response.subarray(end + HEAD_END.length);
    log('upgrade %s %s <- %s', req.method, loggablePath(path), typeof answer === 'string' ? 'invalid' : answer.status);
    if (typeof answer === 'string') {
      fail(502, answer);
      return;
    }
    outcome.status = answer.status;
    if (answer.status === 101 || isHijack(req.method ?? '', path, answer)) {
      join(connection as UpstreamConnection, response);
      response = null;
      return;
    }
    relayAnswer(answer, headBytes, rest);
  };

  const user: UpstreamUser = {
    onConnection(lent) {
      if (phase !== 'waiting' || socket.destroyed) {
        lent.user = null;
        lent.socket.destroy();
        return;
      }
      connection = lent;
      phase = 'request';
      lent.socket.setNoDelay(true);
      lent.socket.write(requestHead(req, path), 'latin1');
      // The body the client sent with its head, and what it sends next, up to its length.
      const early = Buffer.concat(pending);
      pending.length = 0;
      pendingBytes = 0;
      if (early.length > 0) onClientData(early);
      if (pendingBytes <= MAX_PENDING_BYTES) socket.resume();
    },
    onData: onAnswerData,
    onEnd() {
      if (phase === 'relaying') relayUpstreamEnd?.();
      else if (phase === 'request') fail(502, 'The Docker daemon closed the connection without answering');
    },
    onError(error) {
      log('upgrade %s %s upstream error: %s', req.method, loggablePath(path), error.message);
      if (phase === 'waiting' || phase === 'request') failWith(error);
      else if (phase === 'relaying') {
        phase = 'over';
        socket.destroy();
      }
    },
    onClose() {
      connection = null;
      if (phase === 'relaying') relayUpstreamEnd?.();
      else if (phase === 'request') fail(502, 'The Docker daemon closed the connection without answering');
    },
  };

  socket.on('data', onClientData);
  socket.on('end', onClientEnd);
  socket.on('close', () => {
    // Without its client, a pending upgrade or a refusal being relayed has nobody to serve: the
    // connection to dockerd goes at once (a joined stream is ended by joinStreams).
    if (phase === 'waiting') context.pool.cancel(user);
    if (phase !== 'joined') {
      phase = 'over';
      dropUpstream();
    }
  });
  // Until a connection to dockerd is lent, what the client sent waits (bounded).
  if (head.length > 0) {
    pending.push(Buffer.from(head));
    pendingBytes += head.length;
  }
  socket.pause();
  context.pool.acquire(user);
}
