import type { IncomingHttpHeaders } from 'node:http';
import type { RequestInfo } from '../policy/types.js';

/**
 * How a request is framed, as far as the filter cares: whether it asks to upgrade the connection,
 * how long its body is, and why its framing cannot be trusted (`problem`), if it cannot.
 *
 * @example
 * ```ts
 * const framing: RequestFraming = readRequestInfo(req.headers);
 * if (framing.problem === null) evaluate(req.method, req.url, framing);
 * ```
 */
export interface RequestFraming extends RequestInfo {
  readonly upgrade: boolean;
  readonly bodyLength: number;
  /** Why the framing is refused (answer 400 and forward nothing), or `null` when it is sound. */
  readonly problem: string | null;
}

// RFC 9110 token lists are comma separated, optional whitespace around each element.
function hasToken(value: string | string[] | undefined, token: string): boolean {
  if (value === undefined) return false;
  const values = Array.isArray(value) ? value : [value];
  return values.some((item) =>
    item.split(',').some((element) => element.trim().toLowerCase() === token),
  );
}

const DIGITS = /^\d{1,15}$/;

/**
 * Reads the parts of a request's headers the policy decides on.
 *
 * `upgrade` is true when `Connection` lists the `upgrade` token and an `Upgrade` header is present
 * (what Node's parser and dockerd both treat as an upgrade). `bodyLength` is the `Content-Length`,
 * `-1` when a `Transfer-Encoding` makes the length unknown, `0` without either. A request that
 * declares both, or a length that is not a plain number, is a `problem`: two framings are the
 * classic way to make a proxy and the server behind it disagree on where a request ends.
 *
 * @example
 * ```ts
 * readRequestInfo({ 'content-length': '30', connection: 'Upgrade', upgrade: 'tcp' });
 * // { upgrade: true, bodyLength: 30, problem: null }
 * readRequestInfo({ 'content-length': '5', 'transfer-encoding': 'chunked' }).problem;
 * // 'Content-Length and Transfer-Encoding must not both be set'
 * ```
 */
export function readRequestInfo(headers: IncomingHttpHeaders): RequestFraming {
  const upgrade = hasToken(headers.connection, 'upgrade') && headers.upgrade !== undefined;
  const transferEncoding = headers['transfer-encoding'];
  const contentLength = headers['content-length'];

  if (transferEncoding !== undefined) {
    if (contentLength !== undefined) {
      return {
        upgrade,
        bodyLength: -1,
        problem: 'Content-Length and Transfer-Encoding must not both be set',
      };
    }
    // Only a final `chunked` delimits the body; anything else would mean "read until close".
    const codings = transferEncoding.split(',').map((coding) => coding.trim().toLowerCase());
    if (codings.at(-1) !== 'chunked') {
      return { upgrade, bodyLength: -1, problem: 'Transfer-Encoding must end with chunked' };
    }
    // A coding before `chunked` (`gzip, chunked`) would reach dockerd as a body labelled plain:
    // the forwarder re-chunks the decoded body and names only `chunked`. dockerd refuses such
    // codings itself (501); refusing here keeps what is forwarded exactly what was received.
    if (codings.length !== 1) {
      return { upgrade, bodyLength: -1, problem: 'Transfer-Encoding must be chunked alone' };
    }
    return { upgrade, bodyLength: -1, problem: null };
  }

  if (contentLength !== undefined) {
    // Node joins repeated identical Content-Length headers and rejects differing ones; anything
    // but a plain decimal number here is refused rather than guessed at.
    if (!DIGITS.test(contentLength)) {
      return { upgrade, bodyLength: -1, problem: 'Content-Length must be a decimal number' };
    }
    return { upgrade, bodyLength: Number(contentLength), problem: null };
  }

  return { upgrade, bodyLength: 0, problem: null };
}

/**
 * Why a request's head is refused beyond its framing, or `null`: more than one `Host` header (RFC
 * 9112 requires a 400; Node keeps the first, dockerd refuses the request, a relay that copies raw
 * headers would send both), and a chunked body on a `DELETE` or `OPTIONS` (the Docker API has no
 * DELETE with a body, and proxies disagree on such bodies: http-proxy-3 rewrote them to
 * `Content-Length: 0` while still streaming the body, which then reached dockerd as a request of its
 * own).
 *
 * @example
 * ```ts
 * headProblem('GET', ['Host', 'a', 'Host', 'b'], 0); // 'A request must not carry more than one Host header'
 * headProblem('DELETE', ['Host', 'a', 'Transfer-Encoding', 'chunked'], -1); // 'A DELETE request must not carry a chunked body'
 * ```
 */
export function headProblem(method: string, rawHeaders: readonly string[], bodyLength: number): string | null {
  let hosts = 0;
  for (let index = 0; index < rawHeaders.length; index += 2) {
    const name = rawHeaders[index] as string;
    if (name.length === 4 && name.toLowerCase() === 'host') hosts += 1;
  }
  if (hosts > 1) return 'A request must not carry more than one Host header';
  if (bodyLength === -1 && (method === 'DELETE' || method === 'OPTIONS')) {
    return `A ${method} request must not carry a chunked body`;
  }
  return null;
}
