import { request, type Agent, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import createDebug from 'debug';

const log = createDebug('docker-socket-filter:proxy');

// Node frames the response to the client itself (chunked or Content-Length); copying dockerd's
// framing or connection headers would contradict it.
const HOP_BY_HOP_RESPONSE = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'trailer', 'upgrade']);

/**
 * Whether the upstream request declares the body the client declared: the same `Content-Length`,
 * or chunked for chunked, or no body for none. The body is streamed as received, so a request whose
 * declared framing changed on the way would let body bytes reach dockerd as a request of their own.
 * The handler refuses the known ambiguous cases up front; this holds whatever Node's client adds.
 */
function framingKept(req: IncomingMessage, upstream: ClientRequest): boolean {
  let length: string | undefined;
  let chunked = false;
  const raw = req.rawHeaders;
  for (let index = 0; index + 1 < raw.length; index += 2) {
    const name = (raw[index] as string).toLowerCase();
    if (name === 'content-length') length ??= (raw[index + 1] as string).trim();
    else if (name === 'transfer-encoding') chunked = true;
  }
  const upstreamLength = upstream.getHeader('content-length');
  const upstreamEncoding = upstream.getHeader('transfer-encoding');
  if (chunked) return upstreamLength === undefined && upstreamEncoding !== undefined;
  if (length !== undefined) return upstreamEncoding === undefined && String(upstreamLength) === length;
  return upstreamEncoding === undefined && (upstreamLength === undefined || String(upstreamLength) === '0');
}

const FRAMING_CHANGED_MESSAGE = 'The filter refused to forward a request whose body framing would change on the way';

/**
 * Forwards one decided request to dockerd on `path` (the decided canonical target, verbatim) over
 * the keep-alive `agent`, and streams the answer back. The request's headers must already be free
 * of hop-by-hop headers; its framing (`Content-Length`, `Transfer-Encoding`) is passed on as it is,
 * so dockerd reads the body exactly where Node's parser did.
 *
 * This is the whole upstream path of the request handler. It replaces http-proxy-3's `web` pass,
 * which the profile showed costing more CPU per request than the rest of the guard together
 * (events, listeners and a `pipeline`, whose AbortController builds a DOMException, per request;
 * see the README's Benchmarks). Same behaviour: the decided path verbatim, framing kept, the head
 * flushed for streams, errors to `onError`.
 *
 * `onError` is called at most once, for a failure of the upstream request or of the client's request
 * stream; the caller answers 502 or cuts the response.
 *
 * @example
 * ```ts
 * forwardRequest(agent, '/var/run/docker.sock', req, res, decision.path, (error) => fail(error));
 * ```
 */
export function forwardRequest(
  agent: Agent,
  socketPath: string,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  bodyLength: number,
  onError: (error: Error) => void,
): void {
  let failed = false;
  const fail = (error: Error): void => {
    if (failed) return;
    failed = true;
    onError(error);
  };
  // Throws synchronously for a path Node refuses to send; the caller catches it (no request made).
  const upstream = request({ socketPath, agent, method: req.method, path, headers: req.headers, setHost: false });
  upstream.on('error', fail);
  if (!framingKept(req, upstream)) {
    log('%s: the upstream request would be framed differently; not sent', req.method);
    upstream.destroy(Object.assign(new Error(FRAMING_CHANGED_MESSAGE), { code: 'ERR_DSF_FRAMING_CHANGED' }));
    return;
  }
  upstream.on('response', (response) => relayResponse(response, res));
  req.on('error', (error) => {
    upstream.destroy();
    fail(error);
  });
  // A client that goes away aborts the upstream request (and, through it, dockerd's work).
  res.on('close', () => {
    if (!res.writableFinished) upstream.destroy();
  });
  if (bodyLength === 0) upstream.end();
  else req.pipe(upstream);
}

/**
 * Writes dockerd's response head and streams its body. A head without `Content-Length` announces a
 * stream (`/containers/<id>/wait` sends it, then nothing until the container exits; `events`,
 * `logs -f`): it is flushed at once, or a client waiting for it deadlocks. A head with
 * `Content-Length` is followed by its body in the same write from dockerd, so it goes out with the
 * first body bytes, in one packet.
 *
 * @example
 * ```ts
 * upstream.on('response', (response) => relayResponse(response, res));
 * ```
 */
export function relayResponse(response: IncomingMessage, res: ServerResponse): void {
  if (res.destroyed) {
    response.destroy();
    return;
  }
  const headers: string[] = [];
  const raw = response.rawHeaders;
  let knownLength = false;
  for (let index = 0; index + 1 < raw.length; index += 2) {
    const name = raw[index] as string;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP_RESPONSE.has(lower)) continue;
    if (lower === 'content-length') knownLength = true;
    headers.push(name, raw[index + 1] as string);
  }
  res.writeHead(response.statusCode ?? 502, response.statusMessage, headers);
  if (!knownLength) res.flushHeaders();
  // dockerd dying mid-response: the client's stream is cut, never ended as if it were complete.
  response.on('close', () => {
    if (!response.complete) {
      log('response stream ended early');
      res.destroy();
    }
  });
  res.on('close', () => {
    if (!response.complete) response.destroy();
  });
  response.pipe(res);
}
