import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { SocketFilterTypeError } from './errors.js';
import { parseVersionSetting } from './policy/canonical.js';
import { compilePolicy } from './policy/compile.js';
import { createEvaluator, type Evaluate } from './policy/evaluate.js';
import type { Policy } from './policy/types.js';
import { tecnativaPreset } from './presets/tecnativa.js';
import { createProxy, PROXY_DEFAULTS } from './proxy/index.js';
import type { UpstreamPoolStats } from './proxy/pool.js';

/**
 * Options of `createSocketFilter`. Every key is optional; unknown keys are refused.
 *
 * @example
 * ```ts
 * const options: SocketFilterOptions = {
 *   policy: tecnativaPreset({ CONTAINERS: '1' }),
 *   socketPath: '/var/run/docker.sock',
 *   minApiVersion: '1.24',
 * };
 * ```
 */
export interface SocketFilterOptions {
  /** The policy to enforce. Default: `tecnativaPreset({})` (only `EVENTS`, `PING`, `VERSION`). */
  readonly policy?: Policy;
  /** dockerd's unix socket. Default `/var/run/docker.sock`. */
  readonly socketPath?: string;
  /**
   * Oldest API version prefix (`/v1.xx/…`) let through, as `"major.minor"`. Default `"1.24"`: below
   * it dockerd applies a HostConfig sent to `POST /containers/<id>/start`.
   */
  readonly minApiVersion?: string;
  /**
   * Called once per request when it is over (answered, streamed to the end, or cut): one event per
   * decision, for logging and metrics. Never receives bodies or headers. Errors it throws are ignored.
   */
  readonly onRequest?: (event: RequestEvent) => void;
  /**
   * Connections to dockerd open at once, long-lived streams (`events`, `logs -f`, attach, exec)
   * included. When all are busy a request waits up to `upstreamWaitTimeoutMs`, then gets `503`.
   * Default `512`. Size it above the number of streams your clients hold at once.
   */
  readonly maxUpstreamConnections?: number;
  /** Milliseconds a request waits for a connection to dockerd when all are busy. Default `10_000`. */
  readonly upstreamWaitTimeoutMs?: number;
  /**
   * Milliseconds a declared request body may stop arriving before dockerd has answered anything;
   * then the client gets `408` and the connection is closed. Default `60_000`.
   */
  readonly uploadIdleTimeoutMs?: number;
}

/**
 * What `onRequest` receives when a request is over.
 *
 * @example
 * ```ts
 * createSocketFilter({ onRequest: (e) => console.log(e.method, e.path, e.rule, e.status, e.durationMs) });
 * ```
 */
export interface RequestEvent {
  readonly method: string;
  /** The canonical target that was decided on (and forwarded when allowed); null when malformed. */
  readonly path: string | null;
  /**
   * When `path` is null (the request was refused before a decision, its target malformed): the
   * request-target as the client sent it, so that a log can say what was refused.
   */
  readonly target?: string;
  readonly allowed: boolean;
  readonly rule: string | null;
  readonly reason: string;
  /** What the client got: the denial status, dockerd's status (101 for a joined upgrade), or 502. */
  readonly status: number;
  /** Milliseconds from the request to its end (for streams: to the end of the stream). */
  readonly durationMs: number;
  readonly upgrade: boolean;
}

/**
 * The validated options a filter runs with (a new frozen object; the caller's is never kept).
 *
 * @example
 * ```ts
 * createSocketFilter().options.socketPath; // '/var/run/docker.sock'
 * ```
 */
export interface ResolvedSocketFilterOptions {
  readonly policy: Policy;
  readonly socketPath: string;
  readonly minApiVersion: string;
  readonly onRequest: ((event: RequestEvent) => void) | undefined;
  readonly maxUpstreamConnections: number;
  readonly upstreamWaitTimeoutMs: number;
  readonly uploadIdleTimeoutMs: number;
}

/**
 * A request handler for `http.createServer`, Express (`app.use`) or Connect. `next` is called only
 * for errors the handler cannot answer itself.
 *
 * @example
 * ```ts
 * http.createServer({ requestTimeout: 0 }, filter.handler);
 * ```
 */
export type SocketFilterHandler = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void;

/**
 * A handler for the server's `upgrade` event: Docker's hijacked streams (attach, exec), websocket
 * attach and BuildKit sessions.
 *
 * @example
 * ```ts
 * server.on('upgrade', filter.upgrade);
 * ```
 */
export type SocketFilterUpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/**
 * What `createSocketFilter` returns.
 *
 * @example
 * ```ts
 * const { evaluate, handler, upgrade, close } = createSocketFilter();
 * ```
 */
export interface SocketFilter {
  /** The pure decision function; see `Evaluate`. */
  readonly evaluate: Evaluate;
  readonly handler: SocketFilterHandler;
  readonly upgrade: SocketFilterUpgradeHandler;
  /** Destroys the upstream connections and open streams of this filter. */
  readonly close: () => Promise<void>;
  /** How many connections to dockerd are open, idle, hijacked, and how many requests wait for one. */
  readonly upstreamStats: () => UpstreamPoolStats;
  readonly policy: Policy;
  readonly options: ResolvedSocketFilterOptions;
}

/** Defaults of `createSocketFilter`'s options, for documentation and tests. */
export const DEFAULT_SOCKET_PATH = '/var/run/docker.sock';
export const DEFAULT_MIN_API_VERSION = '1.24';

const OPTION_KEYS = new Set([
  'policy',
  'socketPath',
  'minApiVersion',
  'onRequest',
  'maxUpstreamConnections',
  'upstreamWaitTimeoutMs',
  'uploadIdleTimeoutMs',
]);

function positiveInteger(given: Record<string, unknown>, name: keyof typeof PROXY_DEFAULTS): number {
  const value = given[name] ?? PROXY_DEFAULTS[name];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) invalidOption(name, 'must be a whole number of at least 1');
  return value;
}

function invalidOption(path: string, message: string): never {
  throw new SocketFilterTypeError('ERR_DSF_INVALID_OPTION', `The \`${path}\` option ${message}`);
}

function resolveOptions(options: unknown): ResolvedSocketFilterOptions {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new SocketFilterTypeError('ERR_DSF_INVALID_OPTION', 'The options of `createSocketFilter` must be an object');
  }
  const given = options as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!OPTION_KEYS.has(key)) invalidOption(key, 'is not a known option');
  }
  const socketPath = given.socketPath ?? DEFAULT_SOCKET_PATH;
  if (typeof socketPath !== 'string' || socketPath.length === 0 || socketPath.includes('\0')) {
    invalidOption('socketPath', 'must be a non-empty path to dockerd\'s unix socket');
  }
  const minApiVersion = given.minApiVersion ?? DEFAULT_MIN_API_VERSION;
  if (typeof minApiVersion !== 'string' || parseVersionSetting(minApiVersion) < 0) {
    invalidOption('minApiVersion', 'must be a version such as "1.24"');
  }
  const onRequest = given.onRequest;
  if (onRequest !== undefined && typeof onRequest !== 'function') invalidOption('onRequest', 'must be a function');
  const policy = (given.policy ?? tecnativaPreset({})) as Policy;
  return Object.freeze({
    policy,
    socketPath,
    minApiVersion,
    onRequest: onRequest as ((event: RequestEvent) => void) | undefined,
    maxUpstreamConnections: positiveInteger(given, 'maxUpstreamConnections'),
    upstreamWaitTimeoutMs: positiveInteger(given, 'upstreamWaitTimeoutMs'),
    uploadIdleTimeoutMs: positiveInteger(given, 'uploadIdleTimeoutMs'),
  });
}

/**
 * Creates a Docker socket filter: a pure `evaluate` decision function and the handlers that proxy
 * allowed requests to dockerd.
 *
 * Options are validated and the policy compiled once, here: an unknown key, a bad value or an
 * invalid rule throws a `TypeError` naming it.
 *
 * @example
 * ```ts
 * import http from 'node:http';
 * import { createSocketFilter, tecnativaPreset } from 'docker-socket-filter';
 *
 * const filter = createSocketFilter({ policy: tecnativaPreset(process.env) });
 * filter.evaluate('POST', '/v1.41/containers/create').allowed; // false by default
 * const server = http.createServer({ requestTimeout: 0 }, filter.handler);
 * server.on('upgrade', filter.upgrade);
 * server.listen(2375);
 * ```
 */
export function createSocketFilter(options?: SocketFilterOptions): SocketFilter {
  const resolved = resolveOptions(options);
  const evaluate = createEvaluator(compilePolicy(resolved.policy), {
    minApiVersion: parseVersionSetting(resolved.minApiVersion),
  });
  const proxy = createProxy({
    evaluate,
    socketPath: resolved.socketPath,
    onRequest: resolved.onRequest,
    maxUpstreamConnections: resolved.maxUpstreamConnections,
    upstreamWaitTimeoutMs: resolved.upstreamWaitTimeoutMs,
    uploadIdleTimeoutMs: resolved.uploadIdleTimeoutMs,
  });
  return Object.freeze({
    evaluate,
    handler: proxy.handler,
    upgrade: proxy.upgrade,
    close: proxy.close,
    upstreamStats: proxy.upstreamStats,
    policy: resolved.policy,
    options: resolved,
  });
}
