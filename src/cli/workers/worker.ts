import { EventEmitter } from 'node:events';
import { parseConfigFile } from '../../config/index.js';
import type { MetricsRecorder } from '../../metrics/index.js';
import { ipv6Disabled, parseCli, type CliConfig } from '../args.js';
import type { Output } from '../commands.js';
import { applyConfigFile } from '../config-file.js';
import { serve, type WorkerRole } from '../serve.js';
import { isOurs, type ToPrimary, type ToWorker } from './messages.js';

const send = (message: ToPrimary): void => void process.send?.(message);

/** The primary's first message: this worker's part. */
function started(): Promise<Extract<ToWorker, { dsf: 'start' }>> {
  return new Promise((resolve) => {
    const onMessage = (message: unknown): void => {
      if (!isOurs<ToWorker>(message) || message.dsf !== 'start') return;
      process.off('message', onMessage);
      resolve(message);
    };
    process.on('message', onMessage);
  });
}

/**
 * Runs one worker process of `--workers`: waits for its part from the primary (where to listen, its
 * share of the limits, the config file's text), then serves like a single guard, taking stops and
 * reloads from the primary alone. A signal sent to the whole process group (Ctrl-C in a terminal)
 * reaches the worker too; it is left to the primary, which forwards it once.
 *
 * @example
 * ```ts
 * if (cluster.isWorker) process.exitCode = await runWorker(argv, env, out);
 * ```
 */
export async function runWorker(argv: readonly string[], env: NodeJS.ProcessEnv, io: Output): Promise<number> {
  for (const name of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(name, () => undefined);
  const start = await started();
  // The primary parsed the same command line and environment, and validated the same text.
  const parsed = parseCli(argv, env);
  if (!parsed.ok) throw new Error(parsed.message);
  const base = parsed.config;
  const fromFile: CliConfig =
    start.configText === undefined || base.configFile === undefined
      ? base
      : applyConfigFile(base, parseConfigFile(base.configFile, start.configText, { socketPath: base.socketPath }), ipv6Disabled(env));
  const config: CliConfig = Object.freeze({
    ...fromFile,
    listen: start.listen,
    maxConnections: start.maxConnections,
    maxUpstreamConnections: start.maxUpstreamConnections,
    maxHeldBytes: start.maxHeldBytes,
  });

  const signals = new EventEmitter();
  let recorder: MetricsRecorder | undefined;
  let reload: ((text: string) => void) | undefined;
  // A reload that arrives while the worker is still starting is applied as soon as it can be,
  // before the worker listens: it must not serve the file it was started with.
  let early: string | undefined;
  process.on('message', (message: unknown) => {
    if (!isOurs<ToWorker>(message)) return;
    switch (message.dsf) {
      case 'stop':
        signals.emit('SIGTERM');
        return;
      case 'reload':
        try {
          if (reload === undefined) early = message.configText;
          else reload(message.configText);
          send({ dsf: 'reloaded', id: message.id });
        } catch (error) {
          send({ dsf: 'reloaded', id: message.id, error: (error as Error).message });
        }
        return;
      case 'metrics':
        void (recorder?.snapshot() ?? Promise.resolve([])).then((snapshot) => send({ dsf: 'metrics', id: message.id, snapshot }));
        return;
      default:
        return;
    }
  });
  // The primary is gone (killed): nobody forwards signals or collects metrics any more, and a
  // guard nobody supervises must not keep the listen address. Stop gracefully, once.
  process.once('disconnect', () => signals.emit('SIGTERM'));

  const role: WorkerRole = {
    index: start.index,
    shared: { reusePort: start.reusePort },
    ready: (listeners) => send({ dsf: 'ready', ports: listeners.map((listener) => (listener.address.kind === 'tcp' ? (listener.server.address() as { port: number }).port : null)) }),
    record: (metrics) => void (recorder = metrics),
    onReload(apply) {
      reload = apply;
      if (early !== undefined) apply(early);
    },
  };
  return serve(config, { io, signals, base, env, ipv6Disabled: ipv6Disabled(env), worker: role });
}
