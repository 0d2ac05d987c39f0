import { SocketFilterTypeError } from './errors.js';

/**
 * Defaults of the repeat gate: a count line per key every 10 s, at most 4,096 keys and 1 MiB of
 * key text remembered (a key holds at most one 8 KiB path, so the bytes only bind on long paths).
 *
 * @example
 * ```ts
 * createLogger({ level: 'info', repeats: { ...REPEAT_DEFAULTS, intervalMs: 60_000 } });
 * ```
 */
export const REPEAT_DEFAULTS = Object.freeze({ intervalMs: 10_000, maxKeys: 4096, maxKeyBytes: 1024 * 1024 });

/**
 * Options of `createRepeatGate`; every number a positive integer.
 *
 * @example
 * ```ts
 * const options: RepeatOptions = { intervalMs: 10_000, maxKeys: 4096 };
 * ```
 */
export interface RepeatOptions {
  /** How often the count of the lines held back is written, per key. */
  readonly intervalMs?: number;
  /** How many distinct keys are remembered; the least recently seen is forgotten first. */
  readonly maxKeys?: number;
  /** How many characters of keys are remembered in all. */
  readonly maxKeyBytes?: number;
}

/**
 * Decides which of a flood of identical log lines are written. The first line of a key is written
 * at once; the same key again is counted, and every interval one line `<key> repeated=N` reports
 * how many were held back since. A key not seen during a whole interval is forgotten, so its next
 * line is written at once again.
 *
 * @example
 * ```ts
 * const gate = createRepeatGate({ write: (line) => process.stderr.write(line), now: () => new Date() });
 * if (gate.admit('level=info msg=request method=GET path=/v1.41/info status=403')) writeTheFullLine();
 * ```
 */
export interface RepeatGate {
  /** True for the first line of `key` (write it); false when it was counted instead. */
  admit(key: string): boolean;
  /** Writes the counts held back now, forgets every key and stops the timer (shutdown, exit). */
  flush(): void;
  /** How many keys are remembered now. */
  readonly size: number;
}

function positiveInteger(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new SocketFilterTypeError('ERR_DSF_INVALID_OPTION', `The \`repeats.${name}\` option must be a positive integer`);
  }
  return value;
}

/**
 * Creates a repeat gate (see `RepeatGate`). Its interval timer runs only while it remembers a key,
 * and never keeps the process alive.
 *
 * Why: a denial is logged at `info`, so without this a client that repeats a refused request makes
 * the guard write (and the disk keep) a line per request, as fast as it can send them.
 *
 * @example
 * ```ts
 * const gate = createRepeatGate({ write, now: () => new Date(), intervalMs: 10_000 });
 * ```
 */
export function createRepeatGate(
  options: RepeatOptions & { readonly write: (line: string) => void; readonly now: () => Date },
): RepeatGate {
  const intervalMs = positiveInteger(options.intervalMs, 'intervalMs', REPEAT_DEFAULTS.intervalMs);
  const maxKeys = positiveInteger(options.maxKeys, 'maxKeys', REPEAT_DEFAULTS.maxKeys);
  const maxKeyBytes = positiveInteger(options.maxKeyBytes, 'maxKeyBytes', REPEAT_DEFAULTS.maxKeyBytes);
  const { write, now } = options;

  // Key -> lines held back since its last line. A Map iterates in insertion order, and a key is
  // re-inserted when seen, so the first key is the least recently seen one.
  const held = new Map<string, number>();
  let bytes = 0;
  // Counts of keys forgotten (for the bounds) while they still had lines held back: reported as
  // one line rather than lost.
  let droppedKeys = 0;
  let droppedLines = 0;
  let timer: NodeJS.Timeout | undefined;

  const forget = (key: string): number => {
    const count = held.get(key) ?? 0;
    held.delete(key);
    bytes -= key.length;
    return count;
  };

  const report = (forgetAll: boolean): void => {
    const time = now().toISOString();
    for (const [key, count] of held) {
      if (count > 0) write(`time=${time} ${key} repeated=${count}\n`);
      // Quiet for a whole interval: the flood is over, the next one is news again.
      if (count === 0 || forgetAll) forget(key);
      else held.set(key, 0);
    }
    if (droppedKeys > 0) {
      write(`time=${time} level=info msg="repeated lines not itemised" keys_dropped=${droppedKeys} repeated=${droppedLines}\n`);
      droppedKeys = 0;
      droppedLines = 0;
    }
    if (held.size === 0 && timer !== undefined) {
      clearInterval(timer);
      timer = undefined;
    }
  };

  return {
    admit(key) {
      const count = held.get(key);
      if (count !== undefined) {
        held.delete(key);
        held.set(key, count + 1);
        return false;
      }
      held.set(key, 0);
      bytes += key.length;
      while (held.size > maxKeys || bytes > maxKeyBytes) {
        const oldest = held.keys().next().value as string;
        const lost = forget(oldest);
        if (lost > 0) {
          droppedKeys += 1;
          droppedLines += lost;
        }
      }
      if (timer === undefined) {
        timer = setInterval(() => report(false), intervalMs);
        timer.unref();
      }
      return true;
    },
    flush: () => report(true),
    get size() {
      return held.size;
    },
  };
}
