import type { MetricsSnapshot } from '../../metrics/index.js';
import type { ListenAddress } from '../args.js';

/**
 * What the primary of `--workers` tells a worker over the IPC channel `node:cluster` opens: plain
 * data, never a function or a compiled policy (each worker compiles the same file text).
 *
 * @example
 * ```ts
 * worker.send({ dsf: 'stop' } satisfies ToWorker);
 * ```
 */
export type ToWorker =
  | {
      readonly dsf: 'start';
      readonly index: number;
      /** Where to listen, a TCP port 0 replaced by the port the first worker was given. */
      readonly listen: readonly ListenAddress[];
      /** The worker's share of the guard's limits. */
      readonly maxConnections: number;
      readonly maxUpstreamConnections: number;
      readonly maxHeldBytes: number;
      readonly reusePort: boolean;
      /** The config file's text as the primary read it (last reload included). */
      readonly configText?: string;
    }
  /** Stop gracefully; a second one: stop now (a second SIGTERM to the primary). */
  | { readonly dsf: 'stop' }
  | { readonly dsf: 'reload'; readonly id: number; readonly configText: string }
  | { readonly dsf: 'metrics'; readonly id: number };

/**
 * What a worker answers.
 *
 * @example
 * ```ts
 * process.send?.({ dsf: 'reloaded', id: 3 } satisfies ToPrimary);
 * ```
 */
export type ToPrimary =
  | { readonly dsf: 'ready'; readonly ports: readonly (number | null)[] }
  | { readonly dsf: 'reloaded'; readonly id: number; readonly error?: string }
  | { readonly dsf: 'metrics'; readonly id: number; readonly snapshot: MetricsSnapshot };

/**
 * Whether an IPC message is one of ours (node:cluster and prom-client send their own on the same
 * channel).
 *
 * @example
 * ```ts
 * process.on('message', (message) => { if (isOurs<ToWorker>(message)) handle(message); });
 * ```
 */
export function isOurs<T extends { dsf: string }>(message: unknown): message is T {
  return typeof message === 'object' && message !== null && typeof (message as { dsf?: unknown }).dsf === 'string';
}
