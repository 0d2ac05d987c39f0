import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import createDebug from 'debug';
import { parseConfigFile, readConfigText } from '../config/index.js';
import { createSocketFilter, type RequestEvent, type SocketFilter } from '../filter.js';
import { createBatchedWriter, createLogger, type Logger, type LogValue } from '../log.js';
import { askDockerd } from '../proxy/ask.js';
import type { MetricsRecorder } from '../metrics/index.js';
import { describeListenAddress, type CliConfig, type ListenAddress } from './args.js';
import { NAME, type Output } from './commands.js';
import { applyConfigFile, filterOptions, unreloadable } from './config-file.js';
import { startListener, StartupError, type Listener, type SharedListen } from './listen.js';
import { startupWarnings } from './warnings.js';

const debug = createDebug('docker-socket-filter:cli');

/**
 * What the serve command needs besides its configuration.
 *
 * @example
 * ```ts
 * await serve(config, { io, signals: process, base: parsed.config, ipv6Disabled: false });
 * ```
 */
export interface ServeContext {
  readonly io: Output;
  /** SIGTERM/SIGINT stop (a second one stops now), SIGHUP reloads the config file. */
  readonly signals: NodeJS.EventEmitter;
  /** The configuration from the command line and the environment alone, which a reload applies the file to again. */
  readonly base: CliConfig;
  /** The environment, for the start-up warnings. */
  readonly env: NodeJS.ProcessEnv;
  readonly ipv6Disabled: boolean;
  /** In a worker process of `--workers`: its link to the primary. */
  readonly worker?: WorkerRole;
}

/**
 * What a worker process of `--workers` does differently: the primary checked dockerd's socket,
 * serves the metrics, logs the start, reads the config file and forwards signals; the worker
 * listens beside the others and answers the primary.
 *
 * @example
 * ```ts
 * await serve(config, { ...context, worker: { index: 2, shared: { reusePort: true }, ready, record, onReload } });
 * ```
 */
export interface WorkerRole {
  /** 1 to N, written on each of its log lines (`worker=2`). */
  readonly index: number;
  readonly shared: SharedListen;
  /** It listens: tells the primary, with where (the port the OS chose for port 0). */
  ready(listeners: readonly Listener[]): void;
  /** Its metrics, which the primary collects for its `/metrics`. */
  record(recorder: MetricsRecorder): void;
  /** The primary's reloads: `apply` replaces the policy from the file's text, or throws why not. */
  onReload(apply: (text: string) => void): void;
}

/**
 * Writes the one line of a start-up failure; the exit code is 2 (bad configuration).
 *
 * @example
 * ```ts
 * return fatal(io, 'cannot listen on 127.0.0.1:2375: address already in use');
 * ```
 */
export function fatal(io: Output, message: string): number {
  io.stderr(`${NAME}: ${message}\n`);
  return 2;
}

/**
 * Serves until SIGTERM/SIGINT; resolves with the exit code after a graceful stop.
 *
 * @example
 * ```ts
 * process.exitCode = await serve(config, context);
 * ```
 */
export async function serve(config: CliConfig, context: ServeContext): Promise<number> {
  return withLogger(config, context.io, context.worker?.index, (logger, io) => serveWith(config, { ...context, io }, logger));
}

/**
 * Runs `run` with the CLI's logger: lines written once per turn of the event loop, in whole-line
 * pieces (see createBatchedWriter), identical denials counted rather than written each
 * (LoggerOptions.repeats), a worker's lines marked `worker=N`. What is held back goes out on every
 * way out, and before a message written directly (a fatal start-up error) to the `io` `run` gets.
 *
 * @example
 * ```ts
 * return withLogger(config, io, undefined, (logger, io) => runPrimary(config, logger, io));
 * ```
 */
export async function withLogger(
  config: CliConfig,
  io: Output,
  workerIndex: number | undefined,
  run: (logger: Logger, io: Output) => Promise<number>,
): Promise<number> {
  const lines = createBatchedWriter(io.stderr);
  const logger = createLogger({
    level: config.logLevel,
    write: workerIndex === undefined ? lines.write : (line) => lines.write(`${line.slice(0, -1)} worker=${workerIndex}\n`),
  });
  const flushAll = (): void => {
    logger.flush();
    lines.flush();
  };
  process.on('exit', flushAll);
  const stderr = (text: string): void => {
    flushAll();
    io.stderr(text);
  };
  try {
    return await run(logger, { ...io, stderr });
  } finally {
    flushAll();
    process.off('exit', flushAll);
  }
}

/**
 * Checks dockerd's socket at start-up: missing is a warning (dockerd may start later), anything else
 * wrong is a configuration error.
 */
export async function checkDockerSocket(socketPath: string, logger: Logger): Promise<void> {
  let stats;
  try {
    stats = await stat(socketPath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      logger.log('warning', 'dockerd socket does not exist yet; requests get 502 until it does', { socket: socketPath });
      return;
    }
    throw new StartupError(`SOCKET_PATH=${socketPath} cannot be read: ${(error as Error).message}`);
  }
  if (!stats.isSocket()) throw new StartupError(`SOCKET_PATH=${socketPath} is not a unix socket`);
  try {
    await access(socketPath, constants.R_OK | constants.W_OK);
  } catch {
    throw new StartupError(
      `SOCKET_PATH=${socketPath} is not accessible to uid ${process.getuid?.()}: add the socket's group (docker run --group-add <gid>)`,
    );
  }
}

/** What the start-up and reload lines say about the policy. */
export function policyFields(config: CliConfig): Record<string, LogValue> {
  if (config.clients !== undefined) return { clients: config.clients.map((client) => client.name).join(',') };
  const settings = config.policy?.source?.settings;
  if (settings === undefined) return { policy: config.policy?.name };
  return {
    preset: config.policy?.source?.preset ?? config.preset,
    granted: Object.keys(settings).filter((name) => settings[name]).join(',') || '-',
  };
}

async function serveWith(config: CliConfig, context: ServeContext, logger: Logger): Promise<number> {
  const { io, signals, worker } = context;
  if (worker === undefined) {
    try {
      await checkDockerSocket(config.socketPath, logger);
    } catch (error) {
      if (error instanceof StartupError) return fatal(io, error.message);
      throw error;
    }
  }
  let stopping = false;
  let metrics: MetricsRecorder | undefined;
  let closeMetrics = async (): Promise<void> => undefined;
  const announced: Record<string, LogValue> = {};
  if (config.metricsListen !== undefined && worker !== undefined) {
    const { createMetricsRecorder } = await import('../metrics/index.js');
    metrics = await createMetricsRecorder();
    worker.record(metrics);
  } else if (config.metricsListen !== undefined) {
    // Loaded only when asked for: a guard without metrics never loads prom-client.
    const { startMetrics } = await import('../metrics/index.js');
    try {
      const served = await startMetrics({
        address: config.metricsListen,
        socketMode: config.socketMode,
        health: () => (stopping ? Promise.resolve({ ok: false, reason: 'the guard is stopping' }) : dockerdHealth(config.socketPath)),
      });
      metrics = served;
      closeMetrics = () => served.close();
      announced.metrics = served.description;
    } catch (error) {
      return fatal(io, `cannot listen on ${describeListenAddress(config.metricsListen)} (metrics): ${(error as Error).message}`);
    }
  }
  const onRequest =
    metrics === undefined
      ? logger.request
      : (event: RequestEvent): void => {
          logger.request(event);
          metrics.onRequest(event);
        };
  const filter = createSocketFilter({ ...filterOptions(config), onRequest });
  metrics?.watchFilter(filter);
  // Watched from before the first listener until exit: a signal that arrives while no handler is
  // installed would kill the process with the default action instead of a graceful stop.
  const watcher = watchSignals(signals);
  const reloader =
    worker === undefined
      ? watchReloads(signals, config, context, filter, logger, () => metrics)
      : { idle: () => Promise.resolve(), dispose: () => undefined };
  worker?.onReload((text) => filter.update(policyUpdate(workerConfig(context, text))));
  try {
    const listeners: Listener[] = [];
    try {
      // Refusals made before the filter saw a request (unparseable heads, limits, slow clients)
      // are logged like denials: at info, never with a header or a body.
      const onReject = (event: { status: number; reason: string }): void => {
        logger.rejected(event);
        metrics?.onReject(event);
      };
      for (const address of config.listen) {
        const listener = await startListener(
          address,
          filter,
          config.socketMode,
          { maxConnections: config.maxConnections, onReject, ...(address.name !== undefined ? { listener: address.name } : {}) },
          worker?.shared,
        );
        listeners.push(listener);
        metrics?.watch(listener.server, address.name ?? listener.description);
      }
    } catch (error) {
      await Promise.all(listeners.map((listener) => closeNow(listener)));
      await filter.close();
      await closeMetrics();
      if (error instanceof StartupError) return fatal(io, error.message);
      throw error;
    }

    if (worker !== undefined) worker.ready(listeners);
    else {
      const descriptions = new Map(listeners.map((listener) => [listener.address, listener.description]));
      announce(config, context.env, logger, descriptions, announced);
    }

    const signal = await watcher.first;
    stopping = true;
    const code = await shutdown(signal, config, listeners, filter, logger, watcher.second);
    await reloader.idle();
    await closeMetrics();
    return code;
  } finally {
    // On the real process the handlers stay until exit: removing them would restore the default
    // action, and a late signal would end the process by signal instead of with this exit code.
    if (signals !== process) {
      watcher.dispose();
      reloader.dispose();
    }
  }
}

/**
 * The start-up lines: where the guard listens, with which policy, and the warnings about what it
 * exposes (written by the primary alone when there are workers).
 *
 * @example
 * ```ts
 * announce(config, process.env, logger, new Map([[address, '127.0.0.1:2375']]), { workers: 2 });
 * ```
 */
export function announce(
  config: CliConfig,
  env: NodeJS.ProcessEnv,
  logger: Logger,
  descriptions: ReadonlyMap<ListenAddress, string>,
  extra: Readonly<Record<string, LogValue>>,
): void {
  const bound = (address: ListenAddress): string => descriptions.get(address) ?? describeListenAddress(address);
  logger.log('info', 'listening', {
    listen: config.listen.map((address) => (address.name === undefined ? bound(address) : `${address.name}=${bound(address)}`)).join(','),
    ...(config.configFile !== undefined ? { config: config.configFile } : {}),
    ...policyFields(config),
    socket: config.socketPath,
    ...extra,
  });
  // With clients, who may connect is the file's to say (addresses, listeners): the exposure
  // warning is about one policy for everyone. With a file, the environment's preset variables
  // are not read, so none of them is misspelled.
  if (config.clients === undefined && config.policy !== undefined) {
    for (const warning of startupWarnings(config.listen, config.policy, config.configFile === undefined ? env : {}, bound)) {
      logger.log('warning', warning.message, warning.fields);
    }
  }
}

/**
 * `/healthz` beyond the guard's own state: dockerd answers `/_ping`.
 *
 * @example
 * ```ts
 * const health = await dockerdHealth('/var/run/docker.sock');
 * ```
 */
export async function dockerdHealth(socketPath: string): Promise<{ ok: boolean; reason?: string }> {
  try {
    const answer = await askDockerd(socketPath, 'GET', '/_ping', { timeoutMs: 2_000, maxBytes: 1024 });
    return answer.status === 200 ? { ok: true } : { ok: false, reason: `dockerd answered /_ping with ${answer.status}` };
  } catch (error) {
    return { ok: false, reason: `dockerd does not answer /_ping (${(error as NodeJS.ErrnoException).code ?? 'error'})` };
  }
}

/**
 * The configuration a reload of the config file's `text` gives, checked against the running one.
 *
 * @throws Error (the line to log) when the file is invalid, or changes what a reload cannot.
 * @example
 * ```ts
 * filter.update(policyUpdate(reloadedConfig(context, running, await readConfigText(path))));
 * ```
 */
export function reloadedConfig(context: ServeContext, running: CliConfig, text: string): CliConfig {
  const next = workerConfig(context, text);
  const changed = unreloadable(running, next);
  if (changed !== undefined) {
    throw new Error(`\`${changed}\` changed, which a reload cannot apply (it replaces \`clients\` or \`policy\`): restart the guard for it`);
  }
  return next;
}

/** The configuration of the command line and environment with the config file's `text` applied. */
function workerConfig(context: ServeContext, text: string): CliConfig {
  const path = context.base.configFile as string;
  return applyConfigFile(context.base, parseConfigFile(path, text, { socketPath: context.base.socketPath }), context.ipv6Disabled);
}

/**
 * What `filter.update` takes from a configuration: its clients, or its policy.
 *
 * @example
 * ```ts
 * filter.update(policyUpdate(next));
 * ```
 */
export function policyUpdate(config: CliConfig): Parameters<SocketFilter['update']>[0] {
  return config.clients !== undefined ? { clients: config.clients } : { policy: config.policy as NonNullable<CliConfig['policy']> };
}

/**
 * SIGHUP: reads and validates the config file once, then replaces the filter's clients or policy
 * for new requests (requests and streams in flight keep their decision). An invalid file, or one
 * that changes what a running guard cannot change (listeners, socket, limits), is refused whole and
 * the old policy stays. One log line says which. Reloads run one after another.
 *
 * (With workers, the primary reads and validates the file, and hands its text to each worker.)
 */
function watchReloads(
  signals: NodeJS.EventEmitter,
  started: CliConfig,
  context: ServeContext,
  filter: SocketFilter,
  logger: Logger,
  metrics: () => MetricsRecorder | undefined,
): { idle(): Promise<void>; dispose(): void } {
  let running = started;
  let queue: Promise<void> = Promise.resolve();
  const reload = async (): Promise<void> => {
    const path = running.configFile;
    if (path === undefined) {
      logger.log('notice', 'reload ignored', { reason: 'no config file: SIGHUP reloads the file of --config/CONFIG' });
      return;
    }
    try {
      const next = reloadedConfig(context, running, await readConfigText(path));
      filter.update(policyUpdate(next));
      running = next;
      logger.log('info', 'reloaded', { config: path, ...policyFields(next) });
      metrics()?.reloaded(true);
    } catch (error) {
      logger.log('err', 'reload refused', { config: path, error: (error as Error).message });
      metrics()?.reloaded(false);
    }
  };
  const onHup = (): void => {
    debug('SIGHUP received');
    queue = queue.then(reload);
  };
  signals.on('SIGHUP', onHup);
  return {
    idle: () => queue,
    dispose: () => signals.off('SIGHUP', onHup),
  };
}

/**
 * The first SIGTERM/SIGINT (stop gracefully) and the second one (stop now).
 *
 * @example
 * ```ts
 * const watcher = watchSignals(process);
 * const signal = await watcher.first;
 * ```
 */
export function watchSignals(signals: NodeJS.EventEmitter): { first: Promise<string>; second: Promise<void>; dispose(): void } {
  let onFirst: (name: string) => void = () => undefined;
  let onSecond: () => void = () => undefined;
  const first = new Promise<string>((resolve) => (onFirst = resolve));
  const second = new Promise<void>((resolve) => (onSecond = resolve));
  let count = 0;
  const received = (name: string): void => {
    count += 1;
    debug('%s received (%d)', name, count);
    if (count === 1) onFirst(name);
    else onSecond();
  };
  const onTerm = (): void => received('SIGTERM');
  const onInt = (): void => received('SIGINT');
  signals.on('SIGTERM', onTerm);
  signals.on('SIGINT', onInt);
  return {
    first,
    second,
    dispose() {
      signals.off('SIGTERM', onTerm);
      signals.off('SIGINT', onInt);
    },
  };
}

/** Closes a listener and cuts its connections at once. */
async function closeNow(listener: Listener): Promise<void> {
  const closed = listener.close();
  listener.server.closeAllConnections();
  for (const socket of listener.connections) socket.destroy();
  await closed;
}

async function shutdown(
  signal: string,
  config: CliConfig,
  listeners: readonly Listener[],
  filter: SocketFilter,
  logger: Logger,
  hurry: Promise<void>,
): Promise<number> {
  const closing = Promise.all(listeners.map((listener) => listener.close()));
  logger.log('info', 'stopping', { signal, grace_s: config.graceMs / 1000 });
  // A socket destroyed in this tick (closeIdleConnections, a client leaving) only leaves
  // `connections` on its 'close' event, a tick later: it is not open any more and must not count,
  // or the count logged below (and the end of the wait) depends on the timing of that tick.
  const open = (): number =>
    listeners.reduce((total, listener) => {
      let live = 0;
      for (const socket of listener.connections) if (!socket.destroyed) live += 1;
      return total + live;
    }, 0);

  // In-flight requests may finish; a keep-alive connection that becomes idle is closed as soon as
  // it does, so the wait ends when the last request ends rather than at the keep-alive timeout.
  const finished = await new Promise<boolean>((resolve) => {
    const poll = setInterval(() => {
      for (const listener of listeners) listener.server.closeIdleConnections();
      if (open() === 0) done(true);
    }, 50);
    const timer = setTimeout(() => done(false), config.graceMs);
    // A second signal means "now": skip what is left of the grace period.
    void hurry.then(() => done(false));
    function done(value: boolean): void {
      clearInterval(poll);
      clearTimeout(timer);
      resolve(value);
    }
    if (open() === 0) done(true);
  });

  if (!finished) debug('grace period over with %d connections open; cutting them', open());
  // Long-lived streams (events, logs -f, attach) end here: upstream first, then the clients.
  const cut = open();
  await filter.close();
  await Promise.all(listeners.map((listener) => closeNow(listener)));
  await closing;
  // No request can come any more: the counts of denials held back go before the last line.
  logger.flush();
  logger.log('info', 'stopped', { cut_connections: cut });
  return 0;
}
