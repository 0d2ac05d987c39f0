import type { IncomingMessage, ServerResponse } from 'node:http';
import createDebug from 'debug';
import { CHUNKED_INVALID, CHUNKED_NEED_MORE, createChunkedDecoder, type ChunkedDecoder } from './chunked.js';
import { takeOverConnection } from './hijack.js';
import type { UpstreamConnection, UpstreamPool, UpstreamUser } from './pool.js';
import { joinStreams } from './relay.js';
import { MAX_RESPONSE_HEAD_BYTES, parseResponseHead, type ResponseFraming, type ResponseHead } from './response-head.js';

const log = createDebug('docker-socket-filter:proxy');

// Hop-by-hop request headers describe the client's connection to us, not ours to dockerd. `expect`
// is answered by Node's server already; forwarding it would make dockerd send a second 100. The
// body's framing is written by the forwarder itself, from the length the request was decided on.
const NOT_FORWARDED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'expect',
  'te',
  'content-length',
  'transfer-encoding',
]);
// Only a name of one of these lengths is lower-cased and looked up (this runs for every header of
// every request).
const NOT_FORWARDED_LENGTHS = new Set([...NOT_FORWARDED].map((name) => name.length));

// What may appear in a request target on the wire: visible ASCII. The decided path always is
// (canonicalisation refuses the rest); this is the last line should a custom `evaluate` return
// something else.
const SENDABLE_PATH = /^[\x21-\x7e]+$/;

const HEAD_END = '\r\n\r\n';
const CHUNK_END = Buffer.from('\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');

/**
 * Hands what Node still holds of a response to the kernel: writes corked in the message (Node >=
 * 24.22) and in its socket. Used before a response is destroyed, so that what was relayed is not
 * lost with it.
 *
 * @example
 * ```ts
 * flushHeldWrites(res);
 * res.destroy();
 * ```
 */
export function flushHeldWrites(res: ServerResponse): void {
  while (res.writableCorked > 0) res.uncork();
  const socket = res.socket;
  if (socket !== null) while (socket.writableCorked > 0) socket.uncork();
}

/**
 * The error a forwarder reports for a response it cannot relay; `upstreamFailureMessage` words it.
 *
 * @example
 * ```ts
 * badResponse('The Docker daemon sent an invalid status line').code; // 'ERR_DSF_BAD_RESPONSE'
 * ```
 */
export function badResponse(message: string): Error & { code: string } {
  return Object.assign(new Error(message), { code: 'ERR_DSF_BAD_RESPONSE' });
}

/**
 * The error of a request whose declared body stopped arriving before dockerd answered anything:
 * the proxy answers `408` and closes the connection.
 *
 * @example
 * ```ts
 * idleUpload(60_000).code; // 'ERR_DSF_IDLE_UPLOAD'
 * ```
 */
export function idleUpload(timeoutMs: number): Error & { code: string } {
  return Object.assign(new Error(`The request body stopped arriving for ${timeoutMs / 1000} s before the Docker daemon answered`), {
    code: 'ERR_DSF_IDLE_UPLOAD',
  });
}

// Routes dockerd and Podman hijack even without `Upgrade` headers (attach, exec start), answering
// `200` with a raw stream and no framing: the connection is theirs from then on.
const HIJACKING_ROUTE = /^(?:\/v[0-9.]+)?(?:\/libpod)?\/(?:containers\/[^/?]+\/attach|exec\/[^/?]+\/start)(?:\?|$)/;
const RAW_STREAM = /^application\/vnd\.docker\.(?:raw|multiplexed)-stream\s*(?:;|$)/i;

/**
 * Whether dockerd's answer to a plain request took the connection over: a `200` raw or multiplexed
 * stream, with no length, to a `POST` on an attach or exec start route.
 *
 * @example
 * ```ts
 * isHijack('POST', '/v1.41/exec/abc/start', head); // true for `200`, raw-stream, no framing
 * ```
 */
export function isHijack(method: string, path: string, head: ResponseHead): boolean {
  if (method !== 'POST' || head.status !== 200 || head.framing !== 'close' || !HIJACKING_ROUTE.test(path)) return false;
  for (let index = 0; index + 1 < head.headers.length; index += 2) {
    if ((head.headers[index] as string).toLowerCase() === 'content-type' && RAW_STREAM.test(head.headers[index + 1] as string)) return true;
  }
  return false;
}

function hangUp(): Error & { code: string } {
  // The words and code Node's http client uses, so operators see the same thing they always did.
  return Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
}

/**
 * The request head sent to dockerd: the decided path verbatim, the client's headers as received
 * (Node's parser has already refused control characters in them) minus the hop-by-hop ones, and
 * exactly one framing header derived from `bodyLength` (the number the request was decided on):
 * `Content-Length` for a known length, `Transfer-Encoding: chunked` for an unknown one, none for no
 * body. So dockerd reads the body exactly where Node's parser did.
 */
function requestHead(req: IncomingMessage, path: string, bodyLength: number): string {
  let head = `${req.method} ${path} HTTP/1.1\r\n`;
  const raw = req.rawHeaders;
  for (let index = 0; index + 1 < raw.length; index += 2) {
    const name = raw[index] as string;
    if (!NOT_FORWARDED_LENGTHS.has(name.length) || !NOT_FORWARDED.has(name.toLowerCase())) {
      head += `${name}: ${raw[index + 1] as string}\r\n`;
    }
  }
  // An HTTP/1.0 request may come without `Host`; it is forwarded as HTTP/1.1, which needs one
  // (dockerd answers 400 without it). The value is not read by dockerd.
  if (req.headers.host === undefined) head += 'Host: docker\r\n';
  if (bodyLength === -1) head += 'Transfer-Encoding: chunked\r\n';
  else if (bodyLength > 0 || req.headers['content-length'] !== undefined) head += `Content-Length: ${bodyLength}\r\n`;
  return `${head}\r\n`;
}

/**
 * What the caller of `forwardRequest` is told: at most one failure, and that the connection was
 * taken over by a hijack (the response object is out of the picture then).
 *
 * @example
 * ```ts
 * const hooks: ForwardHooks = { onError: (error) => fail(error), onHijack: () => (hijacked = true), onHijackEnd: report };
 * ```
 */
export interface ForwardHooks {
  /** A failure before dockerd's head (answer it), or during the body (the stream is cut). */
  readonly onError: (error: Error) => void;
  /** dockerd took the connection over (a raw stream to an attach or exec start). */
  readonly onHijack?: () => void;
  /** The hijacked stream is over, both connections closed. */
  readonly onHijackEnd?: () => void;
}

/**
 * Settings of one forwarded request.
 *
 * @example
 * ```ts
 * const options: ForwardOptions = { uploadIdleTimeoutMs: 60_000 };
 * ```
 */
export interface ForwardOptions {
  /**
   * The whole body, already read (a body check inspected it): forwarded as is, with its length.
   * Without it the body streams from the client as it comes.
   */
  readonly body?: Buffer;
  /**
   * Called once dockerd's socket has taken all of `body` (the kernel has it) or failed to: the
   * guard holds it no longer. Not called when the exchange ends before it was written.
   */
  readonly onBodyWritten?: () => void;
  /** Milliseconds a declared body may stop arriving before dockerd has answered. */
  readonly uploadIdleTimeoutMs: number;
  /** Builds what the answer is written into instead of `res` (a rewrite of it). */
  readonly sink?: SinkFactory;
}

/**
 * Where the forwarder writes dockerd's answer: the client's response itself, or a sink in front of
 * it that rewrites the answer (src/proxy/read-sinks.ts). `write` receives a copy it may keep.
 *
 * @example
 * ```ts
 * const sink: ResponseSink = res; // a ServerResponse is one
 * ```
 */
export interface ResponseSink {
  writeHead(status: number, reason: string, headers: string[]): unknown;
  write(chunk: Buffer): boolean;
  end(last?: Buffer): unknown;
  flushHeaders(): void;
  once(event: 'drain', listener: () => void): unknown;
}

/**
 * Builds the sink of one response, given the client's response and `abandon`, which drops the
 * exchange with dockerd (for a sink that has answered already, e.g. 502 for an answer over its
 * bound).
 *
 * @example
 * ```ts
 * const passThrough: SinkFactory = (res) => res;
 * ```
 */
export type SinkFactory = (res: ServerResponse, abandon: () => void) => ResponseSink;

const enum Phase {
  Head,
  Body,
  Done,
}

/**
 * One request to dockerd and its response, on a pooled connection. The connection goes back to the
 * pool only when both the request body and the response body ended exactly where their framing
 * said; every other ending (an error, a client gone, a malformed or over-long response) destroys
 * it, so no byte of one exchange is ever read as part of another client's.
 */
class Exchange implements UpstreamUser {
  private phase = Phase.Head;
  private head: Buffer | null = null;
  private framing: ResponseFraming = 'none';
  private remaining = 0;
  private decoder: ChunkedDecoder | null = null;
  private keepAlive = false;
  private requestSent: boolean;
  private waitingForDrain = false;
  private wroteBody = false;
  /** While the declared body is still arriving and dockerd has answered nothing. */
  private uploadTimer: NodeJS.Timeout | undefined;
  connection: UpstreamConnection | null = null;
  /** Where the answer goes: `res`, or a rewriting sink in front of it. */
  out: ResponseSink;
  /**
   * A checked body not yet handed to dockerd's socket. Dropped once it is: the exchange lives as
   * long as the client's response, which a client that does not read can keep unfinished for as
   * long as it stays connected, and the budget of held bytes stopped counting the body then.
   */
  private body: Buffer | undefined;

  constructor(
    private readonly pool: UpstreamPool,
    private readonly open: Set<{ destroy(): unknown }>,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly path: string,
    private readonly bodyLength: number,
    private readonly hooks: ForwardHooks,
    private readonly options: Omit<ForwardOptions, 'body'>,
    body: Buffer | undefined,
  ) {
    this.requestSent = bodyLength === 0;
    this.out = res;
    this.body = body;
  }

  onConnection(connection: UpstreamConnection): void {
    this.connection = connection;
    if (this.phase === Phase.Done || this.res.destroyed) {
      // The client left while this exchange waited for a connection.
      this.dropConnection();
      return;
    }
    const body = this.body;
    this.body = undefined;
    const socket = connection.socket;
    socket.write(requestHead(this.req, this.path, body === undefined ? this.bodyLength : body.length), 'latin1');
    if (body !== undefined) {
      const written = this.options.onBodyWritten;
      if (body.length > 0) socket.write(body, written === undefined ? undefined : () => written());
      else written?.();
      this.requestSent = true;
    } else if (this.bodyLength !== 0) this.sendBody();
  }

  /** Writes a piece of the body to the client; `data` is a view of the shared read buffer. */
  readonly write = (data: Buffer): void => {
    this.wroteBody = true;
    if (!this.out.write(Buffer.from(data)) && !this.waitingForDrain && this.connection !== null) {
      // The client reads slower than dockerd writes: stop reading dockerd until it catches up.
      this.waitingForDrain = true;
      const socket = this.connection.socket;
      socket.pause();
      this.out.once('drain', () => {
        this.waitingForDrain = false;
        socket.resume();
      });
    }
  };

  onData(chunk: Buffer): void {
    if (this.phase === Phase.Head) this.readHead(chunk);
    else if (this.phase === Phase.Body) this.readBody(chunk);
    else this.dropConnection();
  }

  onEnd(): void {
    if (this.phase === Phase.Body && this.framing === 'close') {
      this.finish();
      return;
    }
    this.failUpstream(hangUp());
  }

  onError(error: Error): void {
    if (this.connection === null && this.phase === Phase.Head) {
      // No connection came (the pool is saturated): nothing was sent.
      this.phase = Phase.Done;
      this.stopUploadTimer();
      if (!this.requestSent) this.req.resume();
      this.hooks.onError(error);
      return;
    }
    this.failUpstream(error);
  }

  onClose(): void {
    this.connection = null;
    this.failUpstream(hangUp());
  }

  /** The client went away before its response was complete: dockerd's work is abandoned too. */
  abandon(): void {
    if (this.phase === Phase.Done) return;
    this.phase = Phase.Done;
    this.stopUploadTimer();
    if (this.connection === null) this.pool.cancel(this);
    this.dropConnection();
  }

  private sendBody(): void {
    const req = this.req;
    const chunked = this.bodyLength === -1;
    this.armUploadTimer();
    req.on('data', (data: Buffer) => {
      const connection = this.connection;
      if (connection === null || this.phase === Phase.Done) return;
      if (this.phase === Phase.Head) this.armUploadTimer();
      const socket = connection.socket;
      let flushed: boolean;
      if (chunked) {
        socket.cork();
        socket.write(`${data.length.toString(16)}\r\n`, 'latin1');
        socket.write(data);
        flushed = socket.write(CHUNK_END);
        socket.uncork();
      } else {
        flushed = socket.write(data);
      }
      if (!flushed) {
        req.pause();
        socket.once('drain', () => req.resume());
      }
    });
    req.on('end', () => {
      this.stopUploadTimer();
      if (chunked && this.connection !== null && this.phase !== Phase.Done) this.connection.socket.write(LAST_CHUNK);
      this.requestSent = true;
    });
    req.on('error', (error) => {
      if (this.phase === Phase.Done) return;
      this.phase = Phase.Done;
      this.stopUploadTimer();
      this.dropConnection();
      this.hooks.onError(error);
    });
  }

  /**
   * An upload that stops before dockerd answers holds a connection to dockerd and a client slot
   * for nothing: after `uploadIdleTimeoutMs` without a byte of it, the exchange is cut. Once
   * dockerd answers, the stream is the client's and dockerd's business (no timeout).
   */
  private armUploadTimer(): void {
    if (this.uploadTimer !== undefined) {
      this.uploadTimer.refresh();
      return;
    }
    const timeoutMs = this.options.uploadIdleTimeoutMs;
    this.uploadTimer = setTimeout(() => {
      this.uploadTimer = undefined;
      if (this.phase !== Phase.Head || this.requestSent) return;
      log('%s upload idle for %d ms before any answer: cut', this.req.method, timeoutMs);
      this.failUpstream(idleUpload(timeoutMs));
    }, timeoutMs);
    this.uploadTimer.unref();
  }

  private stopUploadTimer(): void {
    if (this.uploadTimer !== undefined) clearTimeout(this.uploadTimer);
    this.uploadTimer = undefined;
  }

  private readHead(chunk: Buffer): void {
    // `chunk` is a view of the shared read buffer: a partial head is kept as a copy.
    const buffer = this.head === null ? chunk : Buffer.concat([this.head, chunk]);
    // The terminator may straddle two reads: search from just before the new bytes.
    const from = this.head === null ? 0 : Math.max(0, this.head.length - 3);
    const end = buffer.indexOf(HEAD_END, from, 'latin1');
    if (end > MAX_RESPONSE_HEAD_BYTES || (end === -1 && buffer.length > MAX_RESPONSE_HEAD_BYTES)) {
      this.failUpstream(badResponse('The Docker daemon sent a response head that is too large'));
      return;
    }
    if (end === -1) {
      this.head = this.head === null ? Buffer.from(buffer) : buffer;
      return;
    }
    this.head = null;
    this.stopUploadTimer();
    const head = parseResponseHead(buffer, end, this.req.method ?? '');
    if (typeof head === 'string') {
      this.failUpstream(badResponse(head));
      return;
    }
    const res = this.res;
    if (res.destroyed) {
      this.abandon();
      return;
    }
    if (isHijack(this.req.method ?? '', this.path, head)) {
      this.hijack(buffer.subarray(0, end + HEAD_END.length), buffer.subarray(end + HEAD_END.length));
      return;
    }
    try {
      this.out.writeHead(head.status, head.reason, head.headers);
    } catch (error) {
      // Node refuses a header it cannot send (an invalid value): nothing was written yet.
      this.failUpstream(badResponse(`The Docker daemon sent a response the filter cannot relay (${(error as Error).message})`));
      return;
    }
    this.phase = Phase.Body;
    this.framing = head.framing;
    this.keepAlive = head.keepAlive;
    const rest = buffer.subarray(end + HEAD_END.length);
    switch (head.framing) {
      case 'none':
        if (rest.length > 0) this.keepAlive = false;
        this.finish();
        return;
      case 'length':
        this.remaining = head.length;
        if (head.length === 0 || rest.length > 0) this.readBody(rest);
        return;
      case 'chunked':
        this.decoder = createChunkedDecoder();
        break;
      case 'close':
        break;
    }
    // What came with the head goes out with it: Node sends the head with the first body write.
    if (rest.length > 0) this.readBody(rest);
    // A response without a length is a stream (`events`, `logs -f`, and `wait`, which sends its head
    // and then nothing until the container exits): the client must get the head now, or it deadlocks.
    if (!this.wroteBody && this.phase === Phase.Body) this.out.flushHeaders();
  }

  /**
   * dockerd took the connection over (see `isHijack`): the client's connection leaves Node's HTTP
   * server, gets dockerd's head and what followed it byte for byte (never re-framed), and the two
   * are joined. The body the client declared was read whole before dockerd answered, so nothing
   * the client sends from here on is an HTTP request to anyone.
   */
  private hijack(rawHead: Buffer, rest: Buffer): void {
    const connection = this.connection as UpstreamConnection;
    const client = this.requestSent ? takeOverConnection(this.req, this.res) : null;
    if (client === null) {
      this.failUpstream(badResponse('The Docker daemon took the connection over in a way the filter cannot relay'));
      return;
    }
    this.phase = Phase.Done;
    this.connection = null;
    this.open.delete(this.res);
    this.open.add(client);
    client.once('close', () => this.open.delete(client));
    this.hooks.onHijack?.();
    client.write(Buffer.concat([rawHead, rest]));
    joinStreams(client, connection, this.pool, () => this.hooks.onHijackEnd?.());
  }

  private readBody(chunk: Buffer): void {
    switch (this.framing) {
      case 'length': {
        const remaining = this.remaining;
        if (chunk.length < remaining) {
          this.remaining = remaining - chunk.length;
          this.write(chunk);
          return;
        }
        // Bytes past the declared length answer nothing this connection asked: never reuse it.
        if (chunk.length > remaining) this.keepAlive = false;
        this.remaining = 0;
        this.finish(chunk.length === remaining ? chunk : chunk.subarray(0, remaining));
        return;
      }
      case 'chunked': {
        const result = (this.decoder as ChunkedDecoder).feed(chunk, this.write);
        if (result === CHUNKED_NEED_MORE) return;
        if (result === CHUNKED_INVALID) {
          this.failUpstream(badResponse('The Docker daemon sent an invalid chunked body'));
          return;
        }
        if (result < chunk.length) this.keepAlive = false;
        this.finish();
        return;
      }
      default:
        this.write(chunk);
    }
  }

  /**
   * The response is complete: end the client's response, and return the connection to the pool or
   * drop it. A read-until-close answer never has `keepAlive`.
   */
  private finish(last?: Buffer): void {
    this.phase = Phase.Done;
    this.stopUploadTimer();
    const connection = this.connection;
    if (connection !== null && this.keepAlive && this.requestSent && !this.waitingForDrain) {
      this.connection = null;
      this.pool.release(connection);
    } else {
      this.dropConnection();
    }
    if (last === undefined || last.length === 0) this.out.end();
    else this.out.end(Buffer.from(last));
  }

  /** dockerd failed, or sent what cannot be relayed: 502 if nothing was sent, else a cut stream. */
  private failUpstream(error: Error): void {
    if (this.phase === Phase.Done) return;
    // The caller destroys the response now: hand over what was relayed first. The client then
    // sees the head and a cut body, not a connection that closed without an answer.
    if (this.phase === Phase.Body) flushHeldWrites(this.res);
    this.phase = Phase.Done;
    this.stopUploadTimer();
    log('%s upstream failure: %s', this.req.method, error.message);
    this.dropConnection();
    this.hooks.onError(error);
  }

  private dropConnection(): void {
    // A body dockerd answered (or failed) before reading it all is drained into the void, so the
    // client's connection moves on to its next request.
    if (!this.requestSent) this.req.resume();
    const connection = this.connection;
    this.connection = null;
    if (connection !== null) {
      connection.user = null;
      connection.socket.destroy();
    }
  }
}

/**
 * Forwards one decided request to dockerd on `path` (the decided canonical target, verbatim) over a
 * pooled keep-alive connection, and streams the answer back through `res`.
 *
 * This is the whole upstream path of the request handler, written on `node:net` rather than Node's
 * http client: the profile of the first version (http-proxy-3, then `http.request` on a keep-alive
 * agent) showed the client machinery (ClientRequest, the agent's bookkeeping, a second parser, stream
 * piping) costing several times what the checks cost, and HAProxy doing the whole job in a third
 * of the CPU. The head is written from the decided path and the client's validated headers; the
 * body's framing from the decided length; dockerd's response is parsed strictly (see
 * `parseResponseHead`) and relayed with Node's server response, which frames it for the client.
 * When the pool is saturated the request waits for a connection, or fails with code
 * `ERR_DSF_SATURATED` (the caller answers 503).
 *
 * `hooks.onError` is called at most once: for a failure before dockerd's head (the caller answers),
 * or during the body (the caller cuts the response). Throws synchronously for a path that cannot be
 * sent; nothing was sent then.
 *
 * `options.body`, when given, is the request's whole body, already read from the client for a body
 * check: it is sent with `Content-Length` (whatever the client's framing was), so the bytes dockerd
 * reads are exactly the bytes that were judged. Without it the body streams from `req`.
 *
 * @example
 * ```ts
 * forwardRequest(pool, open, req, res, decision.path, framing.bodyLength, { onError: fail }, { uploadIdleTimeoutMs: 60_000 });
 * ```
 *
 * `sink`, when given, builds what the answer is written into instead of `res` (a rewrite of it).
 */
export function forwardRequest(
  pool: UpstreamPool,
  open: Set<{ destroy(): unknown }>,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  bodyLength: number,
  hooks: ForwardHooks,
  options: ForwardOptions,
): void {
  if (!SENDABLE_PATH.test(path)) throw new TypeError(`The decided path cannot be sent: ${JSON.stringify(path.slice(0, 100))}`);
  // The body goes to the exchange alone, not with the options it keeps to the end.
  const { body, ...kept } = options;
  const exchange = new Exchange(pool, open, req, res, path, bodyLength, hooks, kept, body);
  if (options.sink !== undefined) exchange.out = options.sink(res, () => exchange.abandon());
  // Registered in `open` until it closes, so the proxy's close() can end it. A client that goes
  // away aborts the upstream request (and, through it, dockerd's work). One listener for both: this
  // runs for every request.
  open.add(res);
  res.once('close', () => {
    open.delete(res);
    if (!res.writableFinished) exchange.abandon();
  });
  pool.acquire(exchange);
}
