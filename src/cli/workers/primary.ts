import cluster, { type Worker } from 'node:cluster';
import { chmod } from 'node:fs/promises';
import createDebug from 'debug';
import { readConfigText } from '../../config/index.js';
import type { Logger } from '../../log.js';
import type { Metrics, MetricsSnapshot } from '../../metrics/index.js';
import { describeListenAddress, MIN_HELD_BYTES, type CliConfig, type ListenAddress } from '../args.js';
import type { Output } from '../commands.js';
import { clearStaleSocket, StartupError } from '../listen.js';
import {
  announce,
  checkDockerSocket,
  dockerdHealth,
  fatal,
  reloadedConfig,
  watchSignals,
  withLogger,
  type ServeContext,
} from '../serve.js';
import { isOurs, type ToPrimary, type ToWorker } from './messages.js';
import { canReusePort, shareOf } from './plan.js';

const debug = createDebug('docker-socket-filter:workers');

/** How long a worker may take to answer a reload or a scrape before it is left out. */
const ANSWER_MS = 5_000;
/** After the grace period and this much more, a worker that has not exited is killed. */
const KILL_AFTER_GRACE_MS = 10_000;
/** A worker that ran this long before it died is respawned at once; sooner, after a growing delay. */
const STEADY_MS = 30_000;
const MAX_RESPAWN_DELAY_MS = 10_000;

/**
 * Options of `runPrimary`.
 *
 * @example
 * ```ts
 * await runPrimary(config, context, { workers: 2, argv: process.argv.slice(2) });
 * ```
 */
export interface PrimaryOptions {
  readonly workers: number;
  /** The command line the workers run with (the primary's own). */
  readonly argv: readonly string[];
  /** The config file's text as read at start, if there is a file. */
  readonly configText?: string;
}

interface Slot {
  readonly index: number;
  worker: Worker | undefined;
  ready: boolean;
  startedAt: number;
  respawnDelayMs: number;
}

/**
 * The primary of `--workers N`: starts N workers (`node:cluster`) that each serve with a share of
 * the limits, the first alone so that a TCP port 0 becomes one port for all; logs the start;
 * forwards SIGTERM/SIGINT (a second one: stop now) and waits for every worker; on SIGHUP reads and
 * validates the config file once and hands its text to every worker; serves the metrics of all of
 * them; replaces a worker that dies. It handles no request itself.
 *
 * @example
 * ```ts
 * process.exitCode = await runPrimary(config, context, { workers: 2, argv });
 * ```
 */
export function runPrimary(config: CliConfig, context: ServeContext, options: PrimaryOptions): Promise<number> {
  return withLogger(config, context.io, undefined, (logger, io) => primary(config, { ...context, io }, options, logger));
}

async function primary(config: CliConfig, context: ServeContext, options: PrimaryOptions, logger: Logger): Promise<number> {
  const { io } = context;
  const count = options.workers;
  const shares = {
    maxConnections: shareOf(config.maxConnections, count, 'MAX_CONNECTIONS', '--max-connections'),
    maxUpstreamConnections: shareOf(config.maxUpstreamConnections, count, 'MAX_UPSTREAM_CONNECTIONS', '--max-upstream-connections'),
    // Each worker must still hold the largest body a host check reads, as a single guard does.
    maxHeldBytes: shareOf(config.maxHeldBytes, count, 'MAX_HELD_BYTES', '--max-held-bytes', { amount: MIN_HELD_BYTES, words: '1MiB' }),
  };
  if (typeof shares.maxConnections === 'string') return fatal(io, shares.maxConnections);
  if (typeof shares.maxUpstreamConnections === 'string') return fatal(io, shares.maxUpstreamConnections);
  if (typeof shares.maxHeldBytes === 'string') return fatal(io, shares.maxHeldBytes);
  if (process.argv[1] === undefined) return fatal(io, '--workers needs the CLI started as a program (node dist/cli.js), not evaluated');
  try {
    await checkDockerSocket(config.socketPath, logger);
    for (const address of config.listen) if (address.kind === 'unix') await clearStaleSocket(address.path);
  } catch (error) {
    if (error instanceof StartupError) return fatal(io, error.message);
    throw error;
  }

  const reusePort = canReusePort();
  // The workers' unix sockets are bound here, in the primary (node:cluster), when the first worker
  // listens: born 0600, as a single guard's, and opened up to the mode once every worker listens.
  const previousUmask = config.listen.some((address) => address.kind === 'unix') ? process.umask(0o177) : undefined;
  const slots: Slot[] = Array.from({ length: count }, (_, i) => ({ index: i + 1, worker: undefined, ready: false, startedAt: 0, respawnDelayMs: 100 }));
  const live = (): Slot[] => slots.filter((slot) => slot.ready && slot.worker?.isConnected() === true);
  let stopping = false;
  // Set once every worker has listened: a worker that dies before is a failed start, not a crash.
  let serving = false;
  let configText = options.configText;
  let running = config;
  // Where the workers listen: the first one's ports for port 0 (with SO_REUSEPORT each worker binds
  // its own socket, so they must all ask for the same port; through node:cluster they share one).
  let bound: readonly ListenAddress[] | undefined;
  let listen: readonly ListenAddress[] = config.listen;
  let asked = 0;
  const answers = new Map<number, (message: ToPrimary) => void>();

  cluster.setupPrimary({ exec: process.argv[1], args: [...options.argv], execArgv: process.execArgv, silent: false });
  // Spawns the worker of a slot; resolves when it listens, or with its exit code if it dies first.
  const spawn = (slot: Slot): Promise<number | undefined> =>
    new Promise((resolve) => {
      const worker = cluster.fork(context.env);
      slot.worker = worker;
      slot.ready = false;
      slot.startedAt = Date.now();
      worker.on('message', (message: unknown) => {
        if (!isOurs<ToPrimary>(message)) return;
        if (message.dsf === 'ready') {
          slot.ready = true;
          if (bound === undefined) {
            bound = withPorts(config.listen, message.ports);
            if (reusePort) listen = bound;
          }
          resolve(undefined);
        } else answers.get(message.id)?.(message);
      });
      worker.once('exit', (code, signal) => {
        slot.ready = false;
        resolve(code ?? 1);
        if (stopping || !serving || slot.worker !== worker) return;
        onCrash(slot, code, signal);
      });
      const start: ToWorker = {
        dsf: 'start',
        index: slot.index,
        listen,
        maxConnections: shares.maxConnections as number,
        maxUpstreamConnections: shares.maxUpstreamConnections as number,
        maxHeldBytes: shares.maxHeldBytes as number,
        reusePort,
        ...(configText !== undefined ? { configText } : {}),
      };
      worker.send(start);
    });
  const onCrash = (slot: Slot, code: number | null, signal: string | null): void => {
    const ranMs = Date.now() - slot.startedAt;
    slot.respawnDelayMs = ranMs >= STEADY_MS ? 100 : Math.min(slot.respawnDelayMs * 2, MAX_RESPAWN_DELAY_MS);
    logger.log('warning', 'worker exited; starting another', { worker: slot.index, code, signal, in_ms: slot.respawnDelayMs });
    setTimeout(() => {
      if (!stopping) void spawn(slot);
    }, slot.respawnDelayMs).unref();
  };
  // Asks the listening workers (or every one still starting as well); those that do not answer in
  // time are left out.
  const ask = (make: (id: number) => ToWorker, starting = false): Promise<{ slot: Slot; answer: ToPrimary | undefined }[]> =>
    Promise.all(
      (starting ? slots.filter((slot) => slot.worker?.isConnected() === true) : live()).map(
        (slot) =>
          new Promise<{ slot: Slot; answer: ToPrimary | undefined }>((resolve) => {
            const id = ++asked;
            const timer = setTimeout(() => done(undefined), ANSWER_MS);
            const done = (answer: ToPrimary | undefined): void => {
              clearTimeout(timer);
              answers.delete(id);
              resolve({ slot, answer });
            };
            answers.set(id, done);
            slot.worker?.send(make(id));
          }),
      ),
    );

  let metrics: Metrics | undefined;
  const tellAll = (message: ToWorker): void => {
    for (const slot of slots) if (slot.worker?.isConnected()) slot.worker.send(message);
  };
  const stopWorkers = async (): Promise<void> => {
    stopping = true;
    tellAll({ dsf: 'stop' });
    await Promise.all(slots.map((slot) => exited(slot.worker)));
  };
  const fail = async (message: string | undefined, code: number): Promise<number> => {
    await stopWorkers();
    await metrics?.close();
    if (previousUmask !== undefined) process.umask(previousUmask);
    return message === undefined ? code : fatal(io, message);
  };

  if (config.metricsListen !== undefined) {
    const { startMetrics } = await import('../../metrics/index.js');
    try {
      metrics = await startMetrics({
        address: config.metricsListen,
        socketMode: config.socketMode,
        workers: () => live().length,
        others: async () =>
          (await ask((id) => ({ dsf: 'metrics', id })))
            .map(({ answer }) => (answer?.dsf === 'metrics' ? answer.snapshot : undefined))
            .filter((snapshot): snapshot is MetricsSnapshot => snapshot !== undefined),
        health: async () => {
          if (stopping) return { ok: false, reason: 'the guard is stopping' };
          const running = live().length;
          if (running < count) return { ok: false, reason: `${running} of ${count} workers are running` };
          return dockerdHealth(config.socketPath);
        },
      });
    } catch (error) {
      return fatal(io, `cannot listen on ${describeListenAddress(config.metricsListen)} (metrics): ${(error as Error).message}`);
    }
  }

  // SIGHUP: read and validate once, then the same text to every worker. A worker that cannot apply
  // it (it validated here, so it should) is replaced: a new one starts with the new text, and no
  // worker goes on serving the old policy.
  let reloads: Promise<void> = Promise.resolve();
  const reload = async (): Promise<void> => {
    const path = running.configFile;
    if (path === undefined) {
      logger.log('notice', 'reload ignored', { reason: 'no config file: SIGHUP reloads the file of --config/CONFIG' });
      return;
    }
    let next: CliConfig;
    let text: string;
    try {
      text = await readConfigText(path);
      next = reloadedConfig(context, running, text);
    } catch (error) {
      logger.log('err', 'reload refused', { config: path, error: (error as Error).message });
      metrics?.reloaded(false);
      return;
    }
    configText = text;
    running = next;
    // Workers still starting too: they were sent the text as it was when they were forked.
    const results = await ask((id) => ({ dsf: 'reload', id, configText: text }), true);
    for (const { slot, answer } of results) {
      const error = answer === undefined ? 'no answer' : answer.dsf === 'reloaded' ? answer.error : undefined;
      if (error === undefined) continue;
      logger.log('err', 'worker could not apply the reload; replacing it', { worker: slot.index, error });
      slot.worker?.kill('SIGKILL');
    }
    logger.log('info', 'reloaded', { config: path, workers: count });
    metrics?.reloaded(true);
  };
  const onHup = (): void => {
    debug('SIGHUP received');
    reloads = reloads.then(reload);
  };
  context.signals.on('SIGHUP', onHup);
  // From before the first worker: a signal during the start must not kill the primary by its
  // default action and leave the workers to find out.
  const watcher = watchSignals(context.signals);
  try {
    // The first worker alone: where it listens (the port chosen for port 0) is where the others do.
    // A worker that cannot start has written why; its exit code is the guard's.
    const first = await spawn(slots[0] as Slot);
    if (first !== undefined) return fail(undefined, first);
    const rest = await Promise.all(slots.slice(1).map((slot) => spawn(slot)));
    const failed = rest.find((code) => code !== undefined);
    if (failed !== undefined) return fail(undefined, failed);
    try {
      for (const address of config.listen) if (address.kind === 'unix') await chmod(address.path, config.socketMode);
    } catch (error) {
      return fail(`cannot set the mode of a unix socket: ${(error as Error).message}`, 2);
    }
    serving = true;
    const descriptions = new Map(config.listen.map((address, i) => [address, describeListenAddress((bound ?? listen)[i] as ListenAddress)]));
    announce(config, context.env, logger, descriptions, { workers: count, ...(metrics !== undefined ? { metrics: metrics.description } : {}) });

    const signal = await watcher.first;
    stopping = true;
    logger.log('info', 'stopping', { signal, grace_s: config.graceMs / 1000, workers: count });
    tellAll({ dsf: 'stop' });
    // A second signal: each worker stops now, as a single guard does on its second.
    void watcher.second.then(() => tellAll({ dsf: 'stop' }));
    const killer = setTimeout(() => {
      for (const slot of slots) slot.worker?.process.kill('SIGKILL');
    }, config.graceMs + KILL_AFTER_GRACE_MS);
    const codes = await Promise.all(slots.map((slot) => exited(slot.worker)));
    clearTimeout(killer);
    await reloads;
    await metrics?.close();
    logger.log('info', 'stopped', { workers: count });
    return codes.every((code) => code === 0) ? 0 : 1;
  } finally {
    if (previousUmask !== undefined) process.umask(previousUmask);
    if (context.signals !== process) {
      watcher.dispose();
      context.signals.off('SIGHUP', onHup);
    }
  }
}

/** Resolves with a worker's exit code once it has exited (at once if it already has). */
function exited(worker: Worker | undefined): Promise<number> {
  if (worker === undefined) return Promise.resolve(0);
  if (worker.process.exitCode !== null) return Promise.resolve(worker.process.exitCode);
  if (worker.process.signalCode !== null) return Promise.resolve(1);
  return new Promise((resolve) => worker.once('exit', (code) => resolve(code ?? 1)));
}

/** The listen addresses with each TCP port 0 replaced by the port the first worker was given. */
function withPorts(listen: readonly ListenAddress[], ports: readonly (number | null)[]): readonly ListenAddress[] {
  return Object.freeze(listen.map((address, i) => (address.kind === 'tcp' && address.port === 0 ? { ...address, port: ports[i] ?? 0 } : address)));
}
