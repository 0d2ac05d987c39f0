import type { Server } from 'node:http';
import { unlink } from 'node:fs/promises';
import type { Socket } from 'node:net';
import createDebug from 'debug';
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { http } from '../node-http.js';
import type { ListenAddress } from '../cli/args.js';
import type { RequestEvent, SocketFilter } from '../filter.js';
import type { RejectEvent } from '../proxy/server.js';

const { createServer } = http;

const debug = createDebug('docker-socket-filter:metrics');

/**
 * What `/healthz` reports: healthy, or why not.
 *
 * @example
 * ```ts
 * const health: Health = { ok: false, reason: 'dockerd does not answer /_ping' };
 * ```
 */
export interface Health {
  readonly ok: boolean;
  readonly reason?: string;
}

/**
 * Options of `startMetrics`.
 *
 * @example
 * ```ts
 * const options: MetricsOptions = { address: { kind: 'tcp', host: '127.0.0.1', port: 9180 }, health: async () => ({ ok: true }) };
 * ```
 */
export interface MetricsOptions {
  readonly address: ListenAddress;
  /** Answers `/healthz`: the guard is serving and dockerd answers. */
  readonly health: () => Promise<Health>;
  /** File mode of a unix socket address. Default `0660`. */
  readonly socketMode?: number;
  /**
   * What `/metrics` serves besides this process's own metrics: the snapshots of the CLI's worker
   * processes (`MetricsRecorder.snapshot` in each), summed into one exposition.
   */
  readonly others?: () => Promise<readonly MetricsSnapshot[]>;
  /** With `others`: how many worker processes are running (the `docker_socket_filter_workers` gauge). */
  readonly workers?: () => number;
}

/**
 * One process's metrics as `prom-client` JSON (`registry.getMetricsAsJSON()`), plain data that
 * crosses an IPC channel.
 *
 * @example
 * ```ts
 * const snapshot: MetricsSnapshot = await recorder.snapshot();
 * ```
 */
export type MetricsSnapshot = readonly object[];

/**
 * What a process records: the guard's counters and gauges, without a listener (a worker process
 * of the CLI records, its primary serves them).
 *
 * @example
 * ```ts
 * const recorder = await createMetricsRecorder();
 * const filter = createSocketFilter({ onRequest: recorder.onRequest });
 * process.send?.({ metrics: await recorder.snapshot() });
 * ```
 */
export interface MetricsRecorder {
  readonly onRequest: (event: RequestEvent) => void;
  readonly onReject: (event: RejectEvent) => void;
  /** Counts the connections and open requests (upgraded streams included) of a Docker API server. */
  watch(server: Server, listener: string): void;
  /** Counts a reload of the config file, applied or refused. */
  reloaded(applied: boolean): void;
  /**
   * Reports the filter's bounds at each scrape: connections to dockerd (open, idle, hijacked,
   * requests waiting for one) and the budget of held bytes (held, its size, requests refused).
   */
  watchFilter(filter: Pick<SocketFilter, 'upstreamStats' | 'heldStats'>): void;
  /** This process's metrics, for a primary to add up. */
  snapshot(): Promise<MetricsSnapshot>;
}

/**
 * The guard's Prometheus metrics and their listener (`/metrics`, `/healthz`), apart from every
 * Docker API listener. Label values are bounded: client names and rule ids come from the
 * configuration, statuses are HTTP statuses, listeners are configured; never a path.
 *
 * @example
 * ```ts
 * const metrics = await startMetrics({ address, health });
 * const filter = createSocketFilter({ onRequest: metrics.onRequest });
 * ```
 */
export interface Metrics extends MetricsRecorder {
  /** Where it listens (the port the OS chose for port 0). */
  readonly description: string;
  close(): Promise<void>;
}

/** Seconds: a `/_ping` takes a millisecond, `docker events` hours. */
const DURATION_BUCKETS = [0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10, 60, 600, 3600];

/**
 * Creates the guard's metrics in a registry of their own. `prom-client` is loaded here, so a guard
 * without `--metrics-listen` never loads it.
 *
 * @example
 * ```ts
 * const recorder = await createMetricsRecorder();
 * recorder.reloaded(true);
 * ```
 */
export async function createMetricsRecorder(options: { readonly workers?: () => number } = {}): Promise<MetricsRecorder & { readonly register: Registry }> {
  const prom = await import('prom-client');
  const register: Registry = new prom.Registry();
  prom.collectDefaultMetrics({ register });
  const prefix = 'docker_socket_filter_';
  const requests: Counter<string> = new prom.Counter({
    name: `${prefix}requests_total`,
    help: 'Requests decided, by client, decision, rule and the status the client got (counted when the request is over)',
    labelNames: ['client', 'decision', 'rule', 'status'],
    registers: [register],
  });
  const durations: Histogram<string> = new prom.Histogram({
    name: `${prefix}request_duration_seconds`,
    help: 'Time from a request to the end of its answer or stream',
    labelNames: ['client', 'decision'],
    buckets: DURATION_BUCKETS,
    registers: [register],
  });
  const rejected: Counter<string> = new prom.Counter({
    name: `${prefix}rejected_total`,
    help: 'Requests refused before a decision (unparseable 400, slow 408, 414, 431, over the connection limit 503)',
    labelNames: ['status'],
    registers: [register],
  });
  const upstreamFailures: Counter<string> = new prom.Counter({
    name: `${prefix}upstream_failures_total`,
    help: 'Allowed requests dockerd could not answer (502)',
    labelNames: ['client'],
    registers: [register],
  });
  const connections: Gauge<string> = new prom.Gauge({
    name: `${prefix}connections`,
    help: 'Client connections open, by listener',
    labelNames: ['listener'],
    registers: [register],
  });
  const connectionsTotal: Counter<string> = new prom.Counter({
    name: `${prefix}connections_total`,
    help: 'Client connections accepted, by listener',
    labelNames: ['listener'],
    registers: [register],
  });
  const openRequests: Gauge<string> = new prom.Gauge({
    name: `${prefix}open_requests`,
    help: 'Requests in progress, streams (events, logs -f) and hijacked sessions (attach, exec) included, by listener',
    labelNames: ['listener'],
    registers: [register],
  });
  const reloads: Counter<string> = new prom.Counter({
    name: `${prefix}reloads_total`,
    help: 'Reloads of the config file (SIGHUP), by result: applied or refused',
    labelNames: ['result'],
    registers: [register],
  });
  const lastReload: Gauge<string> = new prom.Gauge({
    name: `${prefix}config_last_reload_successful`,
    help: '1 when the last reload was applied (or none was asked), 0 when it was refused',
    registers: [register],
    // With workers only the primary reloads; theirs stay 1, and the sum would say N+1.
    aggregator: 'min',
  });
  lastReload.set(1);
  // Every label set is there from the start, so a rate() over a counter that has not moved yet
  // is 0 rather than missing.
  reloads.inc({ result: 'applied' }, 0);
  reloads.inc({ result: 'refused' }, 0);
  const workers = options.workers;
  if (workers !== undefined) {
    new prom.Gauge({
      name: `${prefix}workers`,
      help: 'Worker processes running (--workers)',
      registers: [register],
      collect() {
        this.set(workers());
      },
    });
  }

  // Read at each scrape, so the numbers are the filter's own and nothing is counted twice.
  let watched: Pick<SocketFilter, 'upstreamStats' | 'heldStats'> | undefined;
  new prom.Gauge({
    name: `${prefix}upstream_connections`,
    help: 'Connections to dockerd, by state: open (all, counted against --max-upstream-connections), idle, hijacked (attach, exec)',
    labelNames: ['state'],
    registers: [register],
    collect() {
      const stats = watched?.upstreamStats();
      this.set({ state: 'open' }, stats?.open ?? 0);
      this.set({ state: 'idle' }, stats?.idle ?? 0);
      this.set({ state: 'hijacked' }, stats?.detached ?? 0);
    },
  });
  new prom.Gauge({
    name: `${prefix}upstream_waiting`,
    help: 'Requests waiting for a connection to dockerd (past 10 s they get 503)',
    registers: [register],
    collect() {
      this.set(watched?.upstreamStats().waiting ?? 0);
    },
  });
  new prom.Gauge({
    name: `${prefix}held_bytes`,
    help: 'Bytes held whole now: bodies PROTECT_HOST checks and answers REDACT_ENV/VISIBLE_LABELS rewrite',
    registers: [register],
    collect() {
      this.set(watched?.heldStats().held ?? 0);
    },
  });
  new prom.Gauge({
    name: `${prefix}held_bytes_max`,
    help: 'The budget of held bytes (--max-held-bytes; with workers, the sum of their shares)',
    registers: [register],
    collect() {
      this.set(watched?.heldStats().max ?? 0);
    },
  });
  // A counter that follows the filter's own count: it only ever grows by what the filter refused.
  let refusedSeen = 0;
  new prom.Counter({
    name: `${prefix}held_refused_total`,
    help: 'Requests refused with 503 because their bytes did not fit the budget of held bytes',
    registers: [register],
    collect() {
      const refused = watched?.heldStats().refused ?? 0;
      if (refused > refusedSeen) this.inc(refused - refusedSeen);
      refusedSeen = refused;
    },
  });

  return {
    register,
    onRequest(event) {
      const client = event.client ?? '';
      const decision = event.allowed ? 'allowed' : 'denied';
      requests.inc({ client, decision, rule: event.rule ?? '', status: String(event.status) });
      durations.observe({ client, decision }, event.durationMs / 1000);
      if (event.allowed && event.status === 502) upstreamFailures.inc({ client });
    },
    onReject(event) {
      rejected.inc({ status: String(event.status) });
    },
    watch(watched, listener) {
      connections.set({ listener }, 0);
      connectionsTotal.inc({ listener }, 0);
      openRequests.set({ listener }, 0);
      watched.on('connection', (socket: Socket) => {
        connections.inc({ listener });
        connectionsTotal.inc({ listener });
        socket.once('close', () => connections.dec({ listener }));
      });
      watched.on('request', (_req, res: { once(event: 'close', listener: () => void): unknown }) => {
        openRequests.inc({ listener });
        res.once('close', () => openRequests.dec({ listener }));
      });
      watched.on('upgrade', (_req, socket: Socket) => {
        openRequests.inc({ listener });
        socket.once('close', () => openRequests.dec({ listener }));
      });
    },
    reloaded(applied) {
      reloads.inc({ result: applied ? 'applied' : 'refused' });
      lastReload.set(applied ? 1 : 0);
    },
    watchFilter(filter) {
      watched = filter;
    },
    snapshot: () => register.getMetricsAsJSON() as Promise<MetricsSnapshot>,
  };
}

/**
 * Starts the metrics listener, with the metrics of `createMetricsRecorder` (and, for a primary of
 * workers, theirs added up).
 *
 * @example
 * ```ts
 * const metrics = await startMetrics({ address: { kind: 'tcp', host: '127.0.0.1', port: 9180 }, health: async () => ({ ok: true }) });
 * await metrics.close();
 * ```
 */
export async function startMetrics(options: MetricsOptions): Promise<Metrics> {
  const recorder = await createMetricsRecorder(options.workers !== undefined ? { workers: options.workers } : {});
  const { register } = recorder;
  const others = options.others;
  const exposition = async (): Promise<{ text: string; contentType: string }> => {
    if (others === undefined) return { text: await register.metrics(), contentType: register.contentType };
    // Counters and histograms add up; so do the gauges (connections, open requests, memory):
    // the guard's total is what an operator watches. A worker that did not answer is left out.
    const { AggregatorRegistry } = await import('prom-client');
    const all = [await recorder.snapshot(), ...(await others())];
    const sum = AggregatorRegistry.aggregate(all as Parameters<typeof AggregatorRegistry.aggregate>[0]);
    return { text: await sum.metrics(), contentType: sum.contentType };
  };
  const server = createServer(async (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('Method Not Allowed\n');
      return;
    }
    try {
      if (path === '/metrics') {
        const { text, contentType } = await exposition();
        res.writeHead(200, { 'Content-Type': contentType }).end(req.method === 'HEAD' ? undefined : text);
      } else if (path === '/healthz') {
        const health = await options.health();
        res
          .writeHead(health.ok ? 200 : 503, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-store' })
          .end(req.method === 'HEAD' ? undefined : health.ok ? 'ok\n' : `unhealthy: ${health.reason ?? 'unknown'}\n`);
      } else {
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not Found: try /metrics or /healthz\n');
      }
    } catch (error) {
      debug('metrics request failed: %s', (error as Error).message);
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' }).end('error\n');
      else res.destroy();
    }
  });
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const address = options.address;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (address.kind === 'unix') server.listen({ path: address.path }, resolve);
    else server.listen({ host: address.host, port: address.port, ipv6Only: false }, resolve);
  });
  server.removeAllListeners('error');
  server.on('error', (error) => debug('metrics server error: %s', error.message));
  let description: string;
  if (address.kind === 'unix') {
    const { chmod } = await import('node:fs/promises');
    await chmod(address.path, options.socketMode ?? 0o660);
    description = `unix:${address.path}`;
  } else {
    const bound = server.address() as { port: number };
    const host = address.host === undefined ? '*' : address.host.includes(':') ? `[${address.host}]` : address.host;
    description = `${host}:${bound.port}`;
  }

  return {
    ...recorder,
    description,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const socket of sockets) socket.destroy();
      await closed;
      if (address.kind === 'unix') await unlink(address.path).catch(() => undefined);
    },
  };
}
