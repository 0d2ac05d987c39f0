import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import createDebug from 'debug';
import { http } from '../node-http.js';
import { SocketFilterTypeError } from '../errors.js';
import { nameConnection } from './client-info.js';
import { dockerErrorBody, sendJsonError, writeRawJsonError } from './deny.js';
import { MAX_TARGET_LENGTH, TARGET_TOO_LONG_MESSAGE } from './limits.js';

const { createServer, STATUS_CODES } = http;

const log = createDebug('docker-socket-filter:server');

/**
 * The two handlers a filter server serves (what `createSocketFilter` returns has both).
 *
 * @example
 * ```ts
 * const servable: FilterHandlers = createSocketFilter({ policy });
 * ```
 */
export interface FilterHandlers {
  handler(req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): void;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

/**
 * Something the server refused before the filter saw a request: a head Node's parser rejected
 * (`400`), headers over the limit (`431`), a request line over the limit (`414`), a client that did
 * not finish its headers in time (`408`), or a connection over `maxConnections` (`503`).
 *
 * @example
 * ```ts
 * createFilterServer(filter, { onReject: (event) => console.warn(event.status, event.reason) });
 * ```
 */
export interface RejectEvent {
  readonly status: number;
  readonly reason: string;
}

/**
 * Options of `createFilterServer`. Every key is optional.
 *
 * @example
 * ```ts
 * const options: FilterServerOptions = { headersTimeout: 10_000, maxHeaderSize: 16_384, maxConnections: 4096 };
 * ```
 */
export interface FilterServerOptions {
  /**
   * Milliseconds a client has to send a complete request head, counted from its first byte, or
   * from the connection when it sends nothing: slowloris clients are cut (`408`) after it.
   * Default `10_000` (Tecnativa's HAProxy `timeout http-request`). Streams, once their head is
   * in, have no timeout.
   */
  readonly headersTimeout?: number;
  /** Largest request head (request line and headers) in bytes; over it, `431`. Default `16_384` (Node's and HAProxy's). */
  readonly maxHeaderSize?: number;
  /** Milliseconds an idle keep-alive client connection is kept. Default `5_000`. */
  readonly keepAliveTimeout?: number;
  /**
   * Connections served at once; further connections get `503` to their request and are closed,
   * nothing of theirs reaches dockerd. `0` for no limit. Default `4096`.
   */
  readonly maxConnections?: number;
  /** Told about every refusal made by the server rather than by the filter. Errors it throws are ignored. */
  readonly onReject?: (event: RejectEvent) => void;
  /**
   * The name of this listener: the filter sees it as `request.client.listener` of every request
   * that arrives on this server, so clients can be matched by the listener they came in on (a unix
   * socket has no peer address). Letters, digits, `_`, `.` and `-`.
   */
  readonly listener?: string;
}

/** Defaults of `createFilterServer`'s options. */
export const FILTER_SERVER_DEFAULTS = Object.freeze({
  headersTimeout: 10_000,
  maxHeaderSize: 16 * 1024,
  keepAliveTimeout: 5_000,
  maxConnections: 4096,
});

/** What a connection over `maxConnections` is told (`503`). */
export const OVERLOADED_MESSAGE = 'docker-socket-filter is serving its maximum number of connections; retry later';

const OPTION_KEYS = new Set(['headersTimeout', 'maxHeaderSize', 'keepAliveTimeout', 'maxConnections', 'onReject', 'listener']);

function integerOption(value: unknown, name: string, minimum: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < minimum) {
    throw new SocketFilterTypeError('ERR_DSF_INVALID_OPTION', `The \`${name}\` option must be an integer of at least ${minimum}`);
  }
  return value;
}

// Node hands the bytes its parser choked on to 'clientError'. A head whose first line is already
// over the target limit there is a request-target too long (414), not a header problem (431).
function requestLineTooLong(rawPacket: unknown): boolean {
  if (!Buffer.isBuffer(rawPacket)) return false;
  const lineEnd = rawPacket.indexOf(0x0a);
  return (lineEnd === -1 ? rawPacket.length : lineEnd) > MAX_TARGET_LENGTH;
}

function rejection(error: NodeJS.ErrnoException & { rawPacket?: unknown }): RejectEvent | undefined {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return requestLineTooLong(error.rawPacket)
        ? { status: 414, reason: TARGET_TOO_LONG_MESSAGE }
        : { status: 431, reason: 'The request headers are too large' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, reason: 'The request headers did not arrive in time' };
    case 'ECONNRESET':
    case 'EPIPE':
    case 'ETIMEDOUT':
      // The client is gone: nobody to answer.
      return undefined;
    default:
      return { status: 400, reason: 'The request could not be parsed as HTTP/1.1' };
  }
}

/**
 * Creates the HTTP server a filter should be served with: the handler on `request`, the upgrade
 * handler on `upgrade`, and settings that bound what a slow or hostile client can hold:
 *
 * - `requestTimeout: 0` (always): Node's 300 s default cuts long `docker load` uploads;
 * - `headersTimeout` (10 s): a client that trickles its head (slowloris), or opens a connection and
 *   sends nothing, is answered `408` and closed; other clients are not affected;
 * - `maxHeaderSize` (16 KiB): a larger head is answered `431` (`414` when the request line alone is
 *   over 8 KiB; the handlers also answer `414` for a shorter head whose target is over 8 KiB);
 * - `maxConnections` (4096): connections beyond it are answered `503` and closed;
 * - heads Node's parser refuses (bad framing, bare LF, NUL bytes, …) get `400` and the connection is
 *   closed; none of them reaches the filter, so none reaches dockerd.
 *
 * Every refusal is a Docker-style JSON error (`{"message": …}`), so the docker CLI prints it. The
 * server is returned unlistened; `close()` it, `closeAllConnections()`, then `filter.close()` to end
 * everything (hijacked streams are the filter's).
 *
 * @example
 * ```ts
 * import { createFilterServer, createSocketFilter, tecnativaPreset } from 'docker-socket-filter';
 *
 * const filter = createSocketFilter({ policy: tecnativaPreset(process.env) });
 * createFilterServer(filter).listen(2375, '127.0.0.1');
 * ```
 */
export function createFilterServer(filter: FilterHandlers, options: FilterServerOptions = {}): Server {
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new SocketFilterTypeError('ERR_DSF_INVALID_OPTION', `The \`${key}\` option is not a known option`);
  }
  const headersTimeout = integerOption(options.headersTimeout ?? FILTER_SERVER_DEFAULTS.headersTimeout, 'headersTimeout', 1);
  const maxHeaderSize = integerOption(options.maxHeaderSize ?? FILTER_SERVER_DEFAULTS.maxHeaderSize, 'maxHeaderSize', 1024);
  const keepAliveTimeout = integerOption(options.keepAliveTimeout ?? FILTER_SERVER_DEFAULTS.keepAliveTimeout, 'keepAliveTimeout', 1);
  const maxConnections = integerOption(options.maxConnections ?? FILTER_SERVER_DEFAULTS.maxConnections, 'maxConnections', 0);
  const onReject = options.onReject;
  if (onReject !== undefined && typeof onReject !== 'function') {
    throw new SocketFilterTypeError('ERR_DSF_INVALID_OPTION', 'The `onReject` option must be a function');
  }
  const listener = options.listener;
  if (listener !== undefined && (typeof listener !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(listener))) {
    throw new SocketFilterTypeError('ERR_DSF_INVALID_OPTION', 'The `listener` option must be 1 to 64 letters, digits, `_`, `.` or `-`');
  }
  const tell = (event: RejectEvent): void => {
    log('rejected %d: %s', event.status, event.reason);
    try {
      onReject?.(event);
    } catch {
      // Ignored by contract: logging must not change what the client gets.
    }
  };

  // Connections over the limit are still read, so that they can be answered: a docker client
  // shown "Error response from daemon: … maximum number of connections" knows what happened,
  // one whose connection is dropped at accept does not.
  const overLimit = new WeakSet<Socket>();
  let connections = 0;

  const server = createServer(
    {
      requestTimeout: 0,
      headersTimeout,
      maxHeaderSize,
      keepAliveTimeout,
      // Node checks `headersTimeout` on this period (30 s by default, which would let a slowloris
      // client hold its connection three times as long as configured).
      connectionsCheckingInterval: Math.min(1_000, headersTimeout),
      // The strict parser (the default, stated so a NODE_OPTIONS flag cannot turn it off here).
      insecureHTTPParser: false,
    },
    (req, res) => {
      if (overLimit.has(req.socket)) {
        tell({ status: 503, reason: OVERLOADED_MESSAGE });
        sendJsonError(res, 503, OVERLOADED_MESSAGE, { close: true });
        return;
      }
      filter.handler(req, res);
    },
  );
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (overLimit.has(socket as Socket)) {
      tell({ status: 503, reason: OVERLOADED_MESSAGE });
      writeRawJsonError(socket, 503, OVERLOADED_MESSAGE);
      return;
    }
    filter.upgrade(req, socket, head);
  });
  server.on('connection', (socket: Socket) => {
    if (listener !== undefined) nameConnection(socket, listener);
    connections += 1;
    if (maxConnections > 0 && connections > maxConnections) overLimit.add(socket);
    socket.once('close', () => {
      connections -= 1;
    });
  });
  server.on('clientError', (error: NodeJS.ErrnoException & { rawPacket?: unknown }, socket: Duplex) => {
    const event = rejection(error);
    // As Node does by default: answer only when no response is under way on this connection, so a
    // refusal never lands in the middle of another response.
    const response = (socket as { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
    if (event !== undefined && socket.writable && (response == null || response.headersSent !== true)) {
      tell(event);
      const body = dockerErrorBody(event.reason);
      socket.write(
        `HTTP/1.1 ${event.status} ${STATUS_CODES[event.status] ?? 'Error'}\r\n` +
          'Content-Type: application/json\r\n' +
          `Content-Length: ${Buffer.byteLength(body)}\r\n` +
          'Connection: close\r\n\r\n' +
          body,
      );
    }
    // Whatever follows an unparseable head cannot be framed, so nothing more is read from it.
    socket.destroy();
  });
  return server;
}
