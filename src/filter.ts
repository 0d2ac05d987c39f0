import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { SocketFilterTypeError } from './errors.js';
import { parseVersionSetting } from './policy/canonical.js';
import { compileClients, createClientsEvaluator, type ClientSpec } from './policy/clients.js';
import { compilePolicy } from './policy/compile.js';
import { createEvaluator, type Evaluate } from './policy/evaluate.js';
import type { Policy } from './policy/types.js';
import { tecnativaPreset } from './presets/tecnativa.js';
import { createProxy, PROXY_DEFAULTS } from './proxy/index.js';
import type { HeldBytesStats } from './proxy/held.js';
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
  /**
   * The policy to enforce for every request. Default: `tecnativaPreset({})` (only `EVENTS`, `PING`,
   * `VERSION`). Not with `clients`.
   */
  readonly policy?: Policy;
  /**
   * A policy per client instead of one for everyone: the first client whose `match` holds (peer
   * address, listener name) decides with its own policy; a request no client matches is refused
   * (`403`, rule `clients`). Not with `policy`.
   */
  readonly clients?: readonly ClientSpec[];
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
   * then the client gets `408` and the connection is closed. Default `60_000`. Also how long a
   * client may read nothing of an answer held whole (a rewritten one) before it is cut.
   */
  readonly uploadIdleTimeoutMs?: number;
  /**
   * Bytes all connections of this filter together may hold whole: request bodies a policy's
   * `protectHost` checks (read whole before they are judged) and the lookups it makes, and answers
   * its `read` section rewrites (read whole, then written to the client). A request whose bytes do
   * not fit gets `503` (`docker-socket-filter is saturated: …`), before anything of it is
   * forwarded or any of the answer is sent. Default `16 MiB` (`16 * 1024 * 1024`). Without
   * `protectHost` or `read`, nothing is held whole and this bounds nothing.
   */
  readonly maxHeldBytes?: number;
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
  /** The `name` of the client the request was decided for (filters with `clients`). */
  readonly client?: string;
  /** The peer address of the connection (TCP), IPv4-mapped IPv6 read as IPv4. */
  readonly address?: string;
  /** The name of the listener the connection came in on (`createFilterServer`'s `listener`). */
  readonly listener?: string;
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
  /** The policy, or `undefined` when the filter has `clients`. */
  readonly policy: Policy | undefined;
  /** The clients, or `undefined` when the filter has one `policy`. */
  readonly clients: readonly ClientSpec[] | undefined;
  readonly socketPath: string;
  readonly minApiVersion: string;
  readonly onRequest: ((event: RequestEvent) => void) | undefined;
  readonly maxUpstreamConnections: number;
  readonly upstreamWaitTimeoutMs: number;
  readonly uploadIdleTimeoutMs: number;
  readonly maxHeldBytes: number;
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
  /** The bytes held whole now (`held`), the budget (`max`: `maxHeldBytes`), requests refused for it. */
  readonly heldStats: () => HeldBytesStats;
  /**
   * Replaces the policy (`{ policy }`) or the clients (`{ clients }`) for the requests decided from
   * now on, validated exactly as `createSocketFilter` validates them; a bad value throws the same
   * `TypeError` and changes nothing. Requests and streams already decided keep their decision.
   */
  readonly update: (options: SocketFilterUpdate) => void;
  /** The current policy; `undefined` when the filter has `clients`. */
  readonly policy: Policy | undefined;
  /** The current clients; `undefined` when the filter has one `policy`. */
  readonly clients: readonly ClientSpec[] | undefined;
  /** The current options (a new frozen object after each `update`). */
  readonly options: ResolvedSocketFilterOptions;
}

/**
 * What `filter.update` takes: a new policy, or new clients (exactly one of the two).
 *
 * @example
 * ```ts
 * filter.update({ policy: tecnativaPreset({ CONTAINERS: '1' }) });
 * filter.update({ clients: [{ name: 'traefik', match: { address: ['172.25.0.2'] }, policy }] });
 * ```
 */
export type SocketFilterUpdate = { readonly policy: Policy } | { readonly clients: readonly ClientSpec[] };

/** Defaults of `createSocketFilter`'s options, for documentation and tests. */
export const DEFAULT_SOCKET_PATH = '/var/run/docker.sock';
export const DEFAULT_MIN_API_VERSION = '1.24';

const OPTION_KEYS = new Set([
  'policy',
  'clients',
  'socketPath',
  'minApiVersion',
  'onRequest',
  'maxUpstreamConnections',
  'upstreamWaitTimeoutMs',
  'uploadIdleTimeoutMs',
  'maxHeldBytes',
]);
const UPDATE_KEYS = new Set(['policy', 'clients']);

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
  if (given.clients !== undefined && given.policy !== undefined) {
    throw new SocketFilterTypeError(
      'ERR_DSF_INVALID_OPTION',
      'The `clients` and `policy` options cannot both be given: with `clients`, each client has its own policy',
    );
  }
  if (given.clients !== undefined && (!Array.isArray(given.clients) || given.clients.length === 0)) {
    invalidOption('clients', 'must be a non-empty list of clients ({ name, match, policy })');
  }
  const clients = given.clients === undefined ? undefined : (Object.freeze([...(given.clients as ClientSpec[])]) as readonly ClientSpec[]);
  const policy = clients === undefined ? ((given.policy ?? tecnativaPreset({})) as Policy) : undefined;
  return Object.freeze({
    policy,
    clients,
    socketPath,
    minApiVersion,
    onRequest: onRequest as ((event: RequestEvent) => void) | undefined,
    maxUpstreamConnections: positiveInteger(given, 'maxUpstreamConnections'),
    upstreamWaitTimeoutMs: positiveInteger(given, 'upstreamWaitTimeoutMs'),
    uploadIdleTimeoutMs: positiveInteger(given, 'uploadIdleTimeoutMs'),
    maxHeldBytes: positiveInteger(given, 'maxHeldBytes'),
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
  let resolved = resolveOptions(options);
  const settings = { minApiVersion: parseVersionSetting(resolved.minApiVersion) };
  const compile = (from: ResolvedSocketFilterOptions): Evaluate =>
    from.clients !== undefined
      ? createClientsEvaluator(compileClients(from.clients, settings))
      : createEvaluator(compilePolicy(from.policy as Policy), settings);
  let current = compile(resolved);
  // One indirection, so that `update` swaps the decision for every request decided after it while
  // each request keeps the decision it was given (a stream is decided once, at its start).
  const evaluate: Evaluate = (method, target, request) => current(method, target, request);
  const proxy = createProxy({
    evaluate,
    pin: () => current,
    socketPath: resolved.socketPath,
    onRequest: resolved.onRequest,
    maxUpstreamConnections: resolved.maxUpstreamConnections,
    upstreamWaitTimeoutMs: resolved.upstreamWaitTimeoutMs,
    uploadIdleTimeoutMs: resolved.uploadIdleTimeoutMs,
    maxHeldBytes: resolved.maxHeldBytes,
  });
  const update = (next: SocketFilterUpdate): void => {
    if (typeof next !== 'object' || next === null || Array.isArray(next)) {
      throw new SocketFilterTypeError('ERR_DSF_INVALID_OPTION', 'The argument of `update` must be `{ policy }` or `{ clients }`');
    }
    for (const key of Object.keys(next)) {
      if (!UPDATE_KEYS.has(key)) invalidOption(key, 'is not an option `update` takes (only `policy` or `clients`)');
    }
    const given = next as { policy?: Policy; clients?: readonly ClientSpec[] };
    if (given.policy === undefined && given.clients === undefined) {
      throw new SocketFilterTypeError('ERR_DSF_INVALID_OPTION', 'The argument of `update` must give `policy` or `clients`');
    }
    // Validated and compiled in full before anything is replaced: a failed update changes nothing.
    const candidate = resolveOptions({
      ...(given.policy !== undefined ? { policy: given.policy } : {}),
      ...(given.clients !== undefined ? { clients: given.clients } : {}),
      socketPath: resolved.socketPath,
      minApiVersion: resolved.minApiVersion,
      ...(resolved.onRequest !== undefined ? { onRequest: resolved.onRequest } : {}),
      maxUpstreamConnections: resolved.maxUpstreamConnections,
      upstreamWaitTimeoutMs: resolved.upstreamWaitTimeoutMs,
      uploadIdleTimeoutMs: resolved.uploadIdleTimeoutMs,
      maxHeldBytes: resolved.maxHeldBytes,
    });
    const compiled = compile(candidate);
    resolved = candidate;
    current = compiled;
  };
  return Object.freeze({
    evaluate,
    handler: proxy.handler,
    upgrade: proxy.upgrade,
    close: proxy.close,
    upstreamStats: proxy.upstreamStats,
    heldStats: proxy.heldStats,
    update,
    get policy() {
      return resolved.policy;
    },
    get clients() {
      return resolved.clients;
    },
    get options() {
      return resolved;
    },
  });
}
