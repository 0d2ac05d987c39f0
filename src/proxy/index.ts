import { Agent } from 'node:http';
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

const log = createDebug('docker-socket-filter:proxy');

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
  const agent = new Agent({ keepAlive: true });
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
