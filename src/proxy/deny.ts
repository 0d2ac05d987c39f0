import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { http } from '../node-http.js';

const { STATUS_CODES } = http;

// Every answer the guard writes itself names it: a user reading `Error response from daemon: …`
// must be able to tell the guard's refusals from dockerd's own errors.
const FILTER_NAME = 'docker-socket-filter';

/**
 * The body dockerd itself sends with an error, so the docker CLI prints
 * `Error response from daemon: <message>` for a refusal as for a daemon error. A message that does
 * not name the filter already gets `docker-socket-filter: ` in front.
 *
 * @example
 * ```ts
 * dockerErrorBody('docker-socket-filter denied POST /v1.41/containers/create: it needs POST=1');
 * // '{"message":"docker-socket-filter denied POST /v1.41/containers/create: it needs POST=1"}'
 * dockerErrorBody('The request headers are too large');
 * // '{"message":"docker-socket-filter: The request headers are too large"}'
 * ```
 */
export function dockerErrorBody(message: string): string {
  return JSON.stringify({ message: message.startsWith(FILTER_NAME) ? message : `${FILTER_NAME}: ${message}` });
}

/**
 * Answers `res` with `status` and a Docker-style JSON error. With `close`, the connection is not
 * kept alive: used when the request still has an unread body or its framing is not trusted.
 *
 * @example
 * ```ts
 * sendJsonError(res, 403, 'GET /v1.41/info needs INFO=1');
 * ```
 */
export function sendJsonError(
  res: ServerResponse,
  status: number,
  message: string,
  options: { close?: boolean } = {},
): void {
  if (res.headersSent) {
    // Too late for a status line: the only honest signal left is a broken stream.
    res.destroy();
    return;
  }
  const body = dockerErrorBody(message);
  const headers: Record<string, string | number> = {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
  };
  if (options.close === true) {
    headers.Connection = 'close';
    // Node would otherwise keep the socket for the next request after draining the body.
    res.shouldKeepAlive = false;
  }
  res.writeHead(status, headers);
  res.end(body);
}

// A socket handed over by the 'upgrade' event may never have been told to stop sending: give the
// client a few seconds to read the answer, then let go of it.
const LINGER_MS = 5_000;

/**
 * Answers a raw socket (one handed to an `'upgrade'` listener) with `status` and a Docker-style JSON
 * error, then closes it. Nothing the client sent after the request head is ever forwarded.
 *
 * @example
 * ```ts
 * server.on('upgrade', (req, socket) => writeRawJsonError(socket, 403, 'attach needs POST=1'));
 * ```
 */
export function writeRawJsonError(socket: Duplex, status: number, message: string): void {
  if (socket.destroyed) return;
  const body = dockerErrorBody(message);
  socket.on('error', () => socket.destroy());
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
  // Discard whatever body is still arriving so the client is not blocked before reading the answer.
  socket.resume();
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}
