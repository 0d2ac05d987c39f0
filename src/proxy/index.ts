import { http } from '../node-http.js';
import type { RequestEvent } from '../filter.js';
import type { Evaluate, ProxyContext } from './context.js';
import { createHeldBytes, type HeldBytesStats } from './held.js';
import { createUpstreamPool, type UpstreamPoolStats } from './pool.js';
import { createUpgradeHandler, type UpgradeHandler } from './upgrade.js';
import { createWebHandler, type WebHandler } from './web.js';

export type { Evaluate } from './context.js';
export type { UpgradeHandler } from './upgrade.js';
export type { WebHandler } from './web.js';
export type { HeldBytesStats } from './held.js';
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

const { Agent } = http;

/** How long an idle pooled connection to dockerd is kept for the next request. */
const UPSTREAM_IDLE_TIMEOUT_MS = 5_000;
/** Idle connections to dockerd kept at most (Node's agent keeps 256 too). */
const UPSTREAM_MAX_IDLE = 256;
/** Connections to dockerd for the guard's own lookups (visibility, body checks), at most. */
const LOOKUP_SOCKETS = 32;

/**
 * Defaults of the proxy's bounds.
 *
 * - `maxUpstreamConnections`: connections to dockerd at once, long-lived streams (`events`,
 *   `logs -f`, attach, exec) included; well below what a stock dockerd's descriptor limit allows.
 * - `upstreamWaitTimeoutMs`: how long a request waits for one of them when all are busy; then `503`.
 * - `uploadIdleTimeoutMs`: how long a declared request body may stop arriving before dockerd has
 *   answered anything; then `408` and the connection is closed. nginx's `client_body_timeout` is
 *   60 s too; a `docker load` or build context on a slow link sends something far more often.
 *   It is also how long a client may read nothing of an answer held whole before it is cut.
 * - `maxHeldBytes`: the bytes all connections together may hold whole (checked request bodies
 *   and the lookups of `protectHost`, rewritten answers of `read`); beyond, a request gets `503`.
 *   A create body is a few KiB and an inspect rarely more than a few hundred; 16 MiB holds a
 *   thousand creates at once, or one 12 MB inspect, and bounds what many connections can pin.
 */
export const PROXY_DEFAULTS = Object.freeze({
  maxUpstreamConnections: 512,
  upstreamWaitTimeoutMs: 10_000,
  uploadIdleTimeoutMs: 60_000,
  maxHeldBytes: 16 * 1024 * 1024,
});

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
  /**
   * The decision function in force at the moment it is called, when `evaluate` delegates to one
   * that can be replaced (`filter.update`). Default: `evaluate` itself.
   */
  readonly pin?: (() => Evaluate) | undefined;
  /** The dockerd unix socket. */
  readonly socketPath: string;
  /** Called once per request when it is over (answered, streamed to the end, or cut). */
  readonly onRequest?: ((event: RequestEvent) => void) | undefined;
  /** Connections to dockerd at once (default `PROXY_DEFAULTS.maxUpstreamConnections`). */
  readonly maxUpstreamConnections?: number | undefined;
  /** See `PROXY_DEFAULTS.upstreamWaitTimeoutMs`. */
  readonly upstreamWaitTimeoutMs?: number | undefined;
  /** See `PROXY_DEFAULTS.uploadIdleTimeoutMs`. */
  readonly uploadIdleTimeoutMs?: number | undefined;
  /** See `PROXY_DEFAULTS.maxHeldBytes`. */
  readonly maxHeldBytes?: number | undefined;
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
  /** The upstream pool's counts: open, idle, hijacked connections and waiting requests. */
  upstreamStats(): UpstreamPoolStats;
  /** The budget of bytes held whole: held now, its size, requests refused for it. */
  heldStats(): HeldBytesStats;
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
  // Connections to dockerd are kept alive and reused: opening one per request costs dockerd a
  // goroutine and us a connect. Idle ones are closed after a while, since dockerd 20.10 never closes
  // them itself and a burst would otherwise leave its connections open for as long as the guard runs.
  const maxConnections = options.maxUpstreamConnections ?? PROXY_DEFAULTS.maxUpstreamConnections;
  const pool = createUpstreamPool(options.socketPath, {
    idleTimeoutMs: UPSTREAM_IDLE_TIMEOUT_MS,
    maxIdle: Math.min(UPSTREAM_MAX_IDLE, maxConnections),
    maxConnections,
    // As many may wait as may be served: beyond, a request is refused at once.
    maxWaiting: maxConnections,
    waitTimeoutMs: options.upstreamWaitTimeoutMs ?? PROXY_DEFAULTS.upstreamWaitTimeoutMs,
  });
  // The guard's own lookups (visibility) reuse their connections too, and close them when idle.
  // Bounded as well: at most LOOKUP_SOCKETS connections to dockerd for them, beside the pool's.
  const lookups = new Agent({ keepAlive: true, maxSockets: LOOKUP_SOCKETS, maxFreeSockets: 16, timeout: UPSTREAM_IDLE_TIMEOUT_MS });
  const uploadIdleTimeoutMs = options.uploadIdleTimeoutMs ?? PROXY_DEFAULTS.uploadIdleTimeoutMs;
  // One budget for every connection of this proxy: what one client holds, the others cannot.
  const budget = createHeldBytes(options.maxHeldBytes ?? PROXY_DEFAULTS.maxHeldBytes);
  const context: ProxyContext = {
    evaluate: options.evaluate,
    pin: options.pin ?? ((): Evaluate => options.evaluate),
    socketPath: options.socketPath,
    onRequest: options.onRequest,
    uploadIdleTimeoutMs,
    held: { budget, idleTimeoutMs: uploadIdleTimeoutMs },
    pool,
    lookups,
    closed: false,
    open: new Set(),
  };

  return {
    handler: createWebHandler(context),
    upgrade: createUpgradeHandler(context),
    upstreamStats: () => pool.stats(),
    heldStats: () => budget.stats(),
    close() {
      context.closed = true;
      pool.destroy();
      lookups.destroy();
      for (const stream of context.open) stream.destroy();
      context.open.clear();
      return new Promise((resolve) => setImmediate(resolve));
    },
  };
}
