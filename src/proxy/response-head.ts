/**
 * How dockerd's response body is delimited (RFC 9112 §6.3): `none` (a `HEAD` answer, `204`, `304`),
 * `length` (`Content-Length`), `chunked`, or `close` (read until dockerd closes; the connection cannot
 * be reused).
 *
 * @example
 * ```ts
 * const framing: ResponseFraming = 'chunked';
 * ```
 */
export type ResponseFraming = 'none' | 'length' | 'chunked' | 'close';

/**
 * dockerd's response head, as the forwarder needs it.
 *
 * @example
 * ```ts
 * const head = parseResponseHead(buffer, end, 'GET');
 * if (typeof head !== 'string') res.writeHead(head.status, head.reason, head.headers);
 * ```
 */
export interface ResponseHead {
  readonly status: number;
  readonly reason: string;
  /** Name/value pairs, flat, as received, without the hop-by-hop headers. */
  readonly headers: string[];
  readonly framing: ResponseFraming;
  /** The body's length when `framing` is `length`. */
  readonly length: number;
  /** Whether dockerd keeps the connection open for another request after this response. */
  readonly keepAlive: boolean;
}

/** The largest response head accepted from dockerd. */
export const MAX_RESPONSE_HEAD_BYTES = 64 * 1024;

// Node frames the response to the client itself (chunked or Content-Length); copying dockerd's
// framing or connection headers would contradict it.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'trailer', 'upgrade']);
// The lengths of those names and of `content-length`: only a name of one of these lengths is
// lower-cased and looked up (this runs for every header of every response).
const INTERESTING_LENGTHS = new Set([...HOP_BY_HOP, 'content-length'].map((name) => name.length));

const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: ([^\r\n]*))?$/;
const DIGITS = /^\d{1,15}$/;
// RFC 9110 field names are tokens.
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Control characters other than tab, and CR or LF anywhere but in a CRLF pair: one scan of the
// whole head instead of one per value (field values are visible characters, spaces, tabs, obs-text).
const INVALID_HEAD_CHARACTER = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n/;

/**
 * Parses the response head in `buffer[0, end)` (`end` is where `\r\n\r\n` starts). Returns the head,
 * or why it is refused: the forwarder then answers 502 (nothing sent yet) and never reuses the
 * connection. Interim (`1xx`) answers are refused too: the request handler strips `Expect` and
 * refuses upgrades, so dockerd has no reason to send one; only an `upgrade` request may get `101`.
 *
 * Strict on purpose: the connection is reused for other clients' requests, so a response whose end
 * is in any doubt (two lengths, a length and a coding, a malformed line) must not leave bytes behind
 * that the next request would read as its answer.
 *
 * @example
 * ```ts
 * const text = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK';
 * const head = parseResponseHead(Buffer.from(text), text.indexOf('\r\n\r\n'), 'GET');
 * // { status: 200, reason: 'OK', headers: ['Content-Length', '2'], framing: 'length', length: 2, keepAlive: true }
 * ```
 */
export function parseResponseHead(buffer: Buffer, end: number, method: string, upgrade = false): ResponseHead | string {
  const text = buffer.toString('latin1', 0, end);
  if (INVALID_HEAD_CHARACTER.test(text)) return 'The Docker daemon sent an invalid header line';
  const lines = text.split('\r\n');
  const statusLine = STATUS_LINE.exec(lines[0] as string);
  if (statusLine === null) return 'The Docker daemon sent an invalid status line';
  const status = Number(statusLine[2]);
  // An upgrade asked for `101`; nothing asked for any other interim answer.
  if (status < 200 && !(upgrade && status === 101)) return 'The Docker daemon sent an interim response the filter did not ask for';
  let keepAlive = statusLine[1] === '1';
  const headers: string[] = [];
  let contentLength: string | undefined;
  let transferEncoding: string | undefined;

  for (let index = 1; index < lines.length; index++) {
    const line = lines[index] as string;
    const colon = line.indexOf(':');
    // No colon, or a name with whitespace: also catches obsolete line folding (a leading space).
    if (colon <= 0) return 'The Docker daemon sent an invalid header line';
    const name = line.slice(0, colon);
    if (!FIELD_NAME.test(name)) return 'The Docker daemon sent an invalid header line';
    const value = line.slice(colon + 1).trim();
    if (!INTERESTING_LENGTHS.has(name.length)) {
      headers.push(name, value);
      continue;
    }
    const lower = name.toLowerCase();
    if (lower === 'content-length') {
      if (contentLength !== undefined && contentLength !== value) return 'The Docker daemon sent two lengths';
      if (!DIGITS.test(value)) return 'The Docker daemon sent an invalid Content-Length';
      if (contentLength !== undefined) continue;
      contentLength = value;
    } else if (HOP_BY_HOP.has(lower)) {
      if (lower === 'transfer-encoding') {
        transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
      } else if (lower === 'connection') {
        const tokens = value.toLowerCase().split(',');
        for (const token of tokens) {
          const trimmed = token.trim();
          if (trimmed === 'close') keepAlive = false;
          else if (trimmed === 'keep-alive' && statusLine[1] === '0') keepAlive = true;
        }
      }
      continue;
    }
    headers.push(name, value);
  }

  if (transferEncoding !== undefined && contentLength !== undefined) {
    return 'The Docker daemon sent both Content-Length and Transfer-Encoding';
  }
  const reason = statusLine[3] ?? '';
  if (status === 101) return { status, reason, headers, framing: 'close', length: 0, keepAlive: false };
  // A HEAD answer, 204 and 304 have no body whatever their headers say (RFC 9112 §6.3).
  if (method === 'HEAD' || status === 204 || status === 304) {
    return { status, reason, headers, framing: 'none', length: 0, keepAlive };
  }
  if (transferEncoding !== undefined) {
    const codings = transferEncoding.toLowerCase().split(',');
    if ((codings.at(-1) as string).trim() === 'chunked') {
      return { status, reason, headers, framing: 'chunked', length: 0, keepAlive };
    }
    return { status, reason, headers, framing: 'close', length: 0, keepAlive: false };
  }
  if (contentLength !== undefined) {
    return { status, reason, headers, framing: 'length', length: Number(contentLength), keepAlive };
  }
  return { status, reason, headers, framing: 'close', length: 0, keepAlive: false };
}
