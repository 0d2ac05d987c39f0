import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import createDebug from 'debug';
import { loadConfig } from '../config/index.js';
import { createSocketFilter, type RequestEvent, type SocketFilter } from '../filter.js';
import { createBatchedWriter, createLogger, type Logger, type LogValue } from '../log.js';
import { askDockerd } from '../proxy/ask.js';
import type { Metrics } from '../metrics/index.js';
import { describeListenAddress, type CliConfig, type ListenAddress } from './args.js';
import { NAME, type Output } from './commands.js';
import { applyConfigFile, filterOptions, unreloadable } from './config-file.js';
import { startListener, StartupError, type Listener } from './listen.js';
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
}

function fatal(io: Output, message: string): number {
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
  // One write per turn of the event loop, not one per line: see createBatchedWriter. Identical
  // denials are counted rather than written each (LoggerOptions.repeats).
  const lines = createBatchedWriter(context.io.stderr);
  const logger = createLogger({ level: config.logLevel, write: lines.write });
  // The counts held back go out before the last lines, on every way out.
  const flushAll = (): void => {
    logger.flush();
    lines.flush();
  };
  process.on('exit', flushAll);
  // A message written directly (a fatal start-up error) comes after the log lines before it.
  const stderr = (text: string): void => {
    flushAll();
    context.io.stderr(text);
  };
  try {
    return await serveWith(config, { ...context, io: { ...context.io, stderr } }, logger);
  } finally {
    flushAll();
    process.off('exit', flushAll);
  }
}

/**
 * Checks dockerd's socket at start-up: missing is a warning (dockerd may start later), anything else
 * wrong is a configuration error.
 */
async function checkDockerSocket(socketPath: string, logger: Logger): Promise<void> {
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
function policyFields(config: CliConfig): Record<string, LogValue> {
  if (config.clients !== undefined) return { clients: config.clients.map((client) => client.name).join(',') };
  const settings = config.policy?.source?.settings;
  if (settings === undefined) return { policy: config.policy?.name };
  return {
    preset: config.policy?.source?.preset ?? config.preset,
    granted: Object.keys(settings).filter((name) => settings[name]).join(',') || '-',
  };
}

async function serveWith(config: CliConfig, context: ServeContext, logger: Logger): Promise<number> {
  const { io, signals } = context;
  try {
    await checkDockerSocket(config.socketPath, logger);
  } catch (error) {
    if (error instanceof StartupError) return fatal(io, error.message);
    throw error;
  }
  let stopping = false;
  let metrics: Metrics | undefined;
  if (config.metricsListen !== undefined) {
    // Loaded only when asked for: a guard without metrics never loads prom-client.
    const { startMetrics } = await import('../metrics/index.js');
    try {
      metrics = await startMetrics({
        address: config.metricsListen,
        socketMode: config.socketMode,
        health: async () => {
          if (stopping) return { ok: false, reason: 'the guard is stopping' };
          try {
            const answer = await askDockerd(config.socketPath, 'GET', '/_ping', { timeoutMs: 2_000, maxBytes: 1024 });
            return answer.status === 200 ? { ok: true } : { ok: false, reason: `dockerd answered /_ping with ${answer.status}` };
          } catch (error) {
            return { ok: false, reason: `dockerd does not answer /_ping (${(error as NodeJS.ErrnoException).code ?? 'error'})` };
          }
        },
      });
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
  // Watched from before the first listener until exit: a signal that arrives while no handler is
  // installed would kill the process with the default action instead of a graceful stop.
  const watcher = watchSignals(signals);
  const reloader = watchReloads(signals, config, context, filter, logger, () => metrics);
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
        const listener = await startListener(address, filter, config.socketMode, {
          maxConnections: config.maxConnections,
          onReject,
          ...(address.name !== undefined ? { listener: address.name } : {}),
        });
        listeners.push(listener);
        metrics?.watch(listener.server, address.name ?? listener.description);
      }
    } catch (error) {
      await Promise.all(listeners.map((listener) => closeNow(listener)));
      await filter.close();
      await metrics?.close();
      if (error instanceof StartupError) return fatal(io, error.message);
      throw error;
    }

    logger.log('info', 'listening', {
      listen: listeners
        .map((listener) => (listener.address.name === undefined ? listener.description : `${listener.address.name}=${listener.description}`))
        .join(','),
      ...(config.configFile !== undefined ? { config: config.configFile } : {}),
      ...policyFields(config),
      socket: config.socketPath,
      ...(metrics !== undefined ? { metrics: metrics.description } : {}),
    });

    // With clients, who may connect is the file's to say (addresses, listeners): the exposure
    // warning is about one policy for everyone. With a file, the environment's preset variables
    // are not read, so none of them is misspelled.
    if (config.clients === undefined && config.policy !== undefined) {
      const bound = (address: ListenAddress): string =>
        listeners.find((listener) => listener.address === address)?.description ?? describeListenAddress(address);
      for (const warning of startupWarnings(config.listen, config.policy, config.configFile === undefined ? context.env : {}, bound)) {
        logger.log('warning', warning.message, warning.fields);
      }
    }

    const signal = await watcher.first;
    stopping = true;
    const code = await shutdown(signal, config, listeners, filter, logger, watcher.second);
    await reloader.idle();
    await metrics?.close();
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
 * SIGHUP: reads and validates the config file once, then replaces the filter's clients or policy
 * for new requests (requests and streams in flight keep their decision). An invalid file, or one
 * that changes what a running guard cannot change (listeners, socket, limits), is refused whole and
 * the old policy stays. One log line says which. Reloads run one after another.
 *
 * (With workers, a primary would do the read and validation here and hand the result, plain data,
 * to each worker's `filter.update`.)
 */
function watchReloads(
  signals: NodeJS.EventEmitter,
  started: CliConfig,
  context: ServeContext,
  filter: SocketFilter,
  logger: Logger,
  metrics: () => Metrics | undefined,
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
      const next = applyConfigFile(context.base, await loadConfig(path, { socketPath: context.base.socketPath }), context.ipv6Disabled);
      const changed = unreloadable(running, next);
      if (changed !== undefined) {
        throw new Error(`\`${changed}\` changed, which a reload cannot apply (it replaces \`clients\` or \`policy\`): restart the guard for it`);
      }
      filter.update(next.clients !== undefined ? { clients: next.clients } : { policy: next.policy as NonNullable<CliConfig['policy']> });
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

/** The first SIGTERM/SIGINT (stop gracefully) and the second one (stop now). */
function watchSignals(signals: NodeJS.EventEmitter): { first: Promise<string>; second: Promise<void>; dispose(): void } {
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
