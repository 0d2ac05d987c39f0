import { Agent, type ClientRequest, type IncomingMessage } from 'node:http';
import createDebug from 'debug';
import { ProxyServer } from 'http-proxy-3';
import type { RequestEvent } from '../filter.js';
import type { Evaluate, ProxyContext } from './context.js';
import { createUpgradeHandler, type UpgradeHandler } from './upgrade.js';
import { createWebHandler, relayResponse, type WebHandler } from './web.js';

export type { Evaluate } from './context.js';
export type { UpgradeHandler } from './upgrade.js';
export type { WebHandler } from './web.js';
export { readRequestInfo, type RequestFraming } from './request-info.js';
export { dockerErrorBody, sendJsonError, writeRawJsonError } from './deny.js';
export { MAX_TARGET_LENGTH } from './limits.js';
export {
  createFilterServer,
  FILTER_SERVER_DEFAULTS,
  OVERLOADED_MESSAGE,
  type FilterHandlers,
  type FilterServerOptions,
  type RejectEvent,
} from './server.js';

const log = createDebug('docker-socket-filter:proxy');

/**
 * Whether the upstream request declares the body the client declared: the same `Content-Length`,
 * or chunked for chunked, or no body for none. The body is streamed as received, so a request
 * whose declared framing changed on the way (http-proxy-3 rewrites some) would let body bytes
 * reach dockerd as a request of their own. `web.ts` refuses the known cases up front; this is the
 * check that holds whatever a future version of the library rewrites.
 */
function framingKept(req: IncomingMessage, proxyReq: ClientRequest): boolean {
  // From the raw headers: http-proxy-3's passes rewrite `req.headers` itself.
  let length: string | undefined;
  let chunked = false;
  const raw = req.rawHeaders;
  for (let index = 0; index + 1 < raw.length; index += 2) {
    const name = (raw[index] as string).toLowerCase();
    if (name === 'content-length') length ??= (raw[index + 1] as string).trim();
    else if (name === 'transfer-encoding') chunked = true;
  }
  const upstreamLength = proxyReq.getHeader('content-length');
  const upstreamEncoding = proxyReq.getHeader('transfer-encoding');
  if (chunked) return upstreamLength === undefined && upstreamEncoding !== undefined;
  if (length !== undefined) return upstreamEncoding === undefined && String(upstreamLength) === length;
  return upstreamEncoding === undefined && (upstreamLength === undefined || String(upstreamLength) === '0');
}

const FRAMING_CHANGED = 'ERR_DSF_FRAMING_CHANGED';
const FRAMING_CHANGED_MESSAGE = 'The filter refused to forward a request whose body framing would change on the way';

/** How long an idle pooled connection to dockerd is kept for the next request. */
const UPSTREAM_IDLE_TIMEOUT_MS = 5_000;

/**
 * Options of `createProxy`.
 *
 * @example
 * ```ts
 * const options: ProxyOptions = { evaluate: filter.evaluate, socketPath: '/var/run/docker.sock' };
 * ```
 */
export interface ProxyOptions {
  /** Decides every request; only allowed requests reach dockerd, on exactly `Decision.path`. */
  readonly evaluate: Evaluate;
  /** The dockerd unix socket. */
  readonly socketPath: string;
  /** Called once per request when it is over (answered, streamed to the end, or cut). */
  readonly onRequest?: ((event: RequestEvent) => void) | undefined;
}

/**
 * The socket-facing half of a filter: a request handler, an upgrade handler and `close`.
 *
 * @example
 * ```ts
 * const server = http.createServer({ requestTimeout: 0 }, proxy.handler);
 * server.on('upgrade', proxy.upgrade);
 * ```
 */
export interface Proxy {
  /** Handles plain requests (`server.on('request')`, or as connect/Express middleware). */
  readonly handler: WebHandler;
  /** Handles upgrades (`server.on('upgrade')`): hijacks, websocket attach, BuildKit h2c. */
  readonly upgrade: UpgradeHandler;
  /**
   * Destroys the upstream connections, hijacked streams and streaming responses still open, and
   * refuses (503) whatever arrives afterwards. Does not close the caller's server.
   */
  close(): Promise<void>;
}

/**
 * Creates the proxy that forwards what `evaluate` allows to dockerd's unix socket and answers the
 * rest with Docker-style JSON errors.
 *
 * Embedding servers should be created with `requestTimeout: 0`: Node's default (300 s) cuts uploads
 * that take longer (large `docker load`, build contexts), and this handler cannot lift it per
 * request. Long-lived responses (`events`, `logs -f`, `wait`) and hijacked streams carry no timeout.
 *
 * @example
 * ```ts
 * import http from 'node:http';
 * const proxy = createProxy({ evaluate, socketPath: '/var/run/docker.sock' });
 * const server = http.createServer({ requestTimeout: 0 }, proxy.handler);
 * server.on('upgrade', proxy.upgrade);
 * server.listen(2375, '127.0.0.1');
 * ```
 */
export function createProxy(options: ProxyOptions): Proxy {
  // Without an agent http-proxy-3 sends `Connection: close`; dockerd then answers and closes before
  // a streamed request body is finished, and Node reports EPIPE for a request dockerd carried out.
  // `timeout` closes a pooled connection after it has been idle that long (Node's agent applies it
  // to free sockets only; a request in flight just gets a 'timeout' event nobody acts on, so
  // `events` and `logs -f` are not cut). Without it, the connections opened for a burst of requests
  // stay open for as long as the guard runs: dockerd 20.10 never closes idle ones.
  const agent = new Agent({ keepAlive: true, timeout: UPSTREAM_IDLE_TIMEOUT_MS });
  const proxy = new ProxyServer({
    target: { host: 'localhost', port: 80, socketPath: options.socketPath },
    agent,
    // Take `req.url` verbatim: without it, http-proxy-3 re-parses it with the URL parser, which
    // resolves `..` and turns `\` into `/`, forwarding a path other than the one decided on.
    toProxy: true,
    prependPath: false,
    // Write the response head ourselves, at once (see relayResponse).
    selfHandleResponse: true,
    // No `timeout`/`proxyTimeout`: they would cut `events`, `logs -f` and slow `stop` calls.
  });
  proxy.on('proxyRes', relayResponse);
  // Emitted when the upstream request gets its socket, before any of it is written.
  proxy.on('proxyReq', (proxyReq, req) => {
    if (framingKept(req, proxyReq)) return;
    log('%s: the upstream request would be framed differently; not sent', req.method);
    proxyReq.destroy(Object.assign(new Error(FRAMING_CHANGED_MESSAGE), { code: FRAMING_CHANGED }));
  });
  // Errors arrive through the per-request callback; this listener only keeps the ProxyServer from
  // re-throwing one that slips past it (its default `error` handling throws).
  proxy.on('error', (error) => log('proxy error: %s', error.message));

  const context: ProxyContext = {
    evaluate: options.evaluate,
    socketPath: options.socketPath,
    onRequest: options.onRequest,
    agent,
    proxy,
    closed: false,
    open: new Set(),
  };

  return {
    handler: createWebHandler(context),
    upgrade: createUpgradeHandler(context),
    close() {
      context.closed = true;
      agent.destroy();
      for (const stream of context.open) stream.destroy();
      context.open.clear();
      return new Promise((resolve) => setImmediate(resolve));
    },
  };
}
