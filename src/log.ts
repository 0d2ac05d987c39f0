import type { RequestEvent } from './filter.js';
import { createRepeatGate, type RepeatOptions } from './log-repeats.js';

/**
 * The log levels of Tecnativa's image (HAProxy's syslog levels), most verbose first.
 *
 * @example
 * ```ts
 * LOG_LEVELS.includes('warning'); // true
 * ```
 */
export const LOG_LEVELS = ['debug', 'info', 'notice', 'warning', 'err', 'crit', 'alert', 'emerg'] as const;

/**
 * One of `LOG_LEVELS`.
 *
 * @example
 * ```ts
 * const level: LogLevel = 'info';
 * ```
 */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Default `LOG_LEVEL`, as in Tecnativa's image. */
export const DEFAULT_LOG_LEVEL: LogLevel = 'info';

/**
 * Reads a `LOG_LEVEL` value (any case, surrounding blanks ignored). Returns `undefined` for a value
 * that is not a level, so the caller can refuse it with its own message.
 *
 * @example
 * ```ts
 * parseLogLevel('WARNING'); // 'warning'
 * parseLogLevel('verbose'); // undefined
 * ```
 */
export function parseLogLevel(value: string): LogLevel | undefined {
  const normalized = value.trim().toLowerCase();
  return (LOG_LEVELS as readonly string[]).includes(normalized) ? (normalized as LogLevel) : undefined;
}

/** A value of a log line: `null` and `undefined` fields are left out. */
export type LogValue = string | number | boolean | null | undefined;

/**
 * A line-oriented logger writing `key=value` (logfmt) lines.
 *
 * @example
 * ```ts
 * const logger = createLogger({ level: 'info' });
 * logger.log('warning', 'dockerd socket missing', { socket: '/var/run/docker.sock' });
 * ```
 */
export interface Logger {
  readonly level: LogLevel;
  /** Whether a line at `level` would be written. */
  enabled(level: LogLevel): boolean;
  log(level: LogLevel, message: string, fields?: Readonly<Record<string, LogValue>>): void;
  /**
   * The one line per request: denials at `info`, upstream failures at `warning`, the rest at `debug`.
   * Identical denials are written once, then counted (see `LoggerOptions.repeats`).
   */
  request(event: RequestEvent): void;
  /** A connection refused before the filter saw a request (`onReject`), at `info`, counted like denials. */
  rejected(event: { readonly status: number; readonly reason: string }): void;
  /** Writes the counts of the lines held back now (before exit). */
  flush(): void;
}

/**
 * Options of `createLogger`.
 *
 * @example
 * ```ts
 * const options: LoggerOptions = { level: 'debug', write: (line) => lines.push(line) };
 * ```
 */
export interface LoggerOptions {
  readonly level: LogLevel;
  /** Receives each line, newline included. Default: `process.stderr`. */
  readonly write?: (line: string) => void;
  /** Clock for the `time` field (tests). Default: `() => new Date()`. */
  readonly now?: () => Date;
  /**
   * Identical denials and rejections (same client when known, method, path without its query, rule
   * and status) are written once, then counted: one line with `repeated=N` per interval while they
   * go on. `false` writes every one. Default: on, with `REPEAT_DEFAULTS`.
   */
  readonly repeats?: RepeatOptions | false;
}

// Values made only of these characters are written bare; anything else is JSON-quoted, so a value
// can never break the line (no raw newline, quote or `=` from a client reaches the log).
const BARE = /^[A-Za-z0-9_.,:/@+*\-[\]]+$/;

function formatValue(value: string | number | boolean): string {
  const text = String(value);
  return BARE.test(text) ? text : JSON.stringify(text);
}

/**
 * The part of a target that may be logged: the path without its query. Build arguments
 * (`/build?buildargs=…`) and registry credentials' neighbours travel in the query.
 */
function pathWithoutQuery(target: string | null): string | null {
  if (target === null) return null;
  const query = target.indexOf('?');
  return query === -1 ? target : target.slice(0, query);
}

/**
 * What a log line shows of a target refused before it was decided: its path as the client sent it
 * (the query left out, as always), at most 200 characters, quoted and escaped by `formatValue`.
 */
function rawPath(target: string | undefined): string {
  if (target === undefined || target === '') return '-';
  const path = pathWithoutQuery(target) as string;
  return path.length > 200 ? `${path.slice(0, 200)}…` : path;
}

/**
 * Creates a logger honouring a `LOG_LEVEL`. Lines look like
 * `time=2025-01-01T00:00:00.000Z level=info msg=request method=GET path=/v1.41/containers/json
 * decision=denied rule=default-deny status=403 duration_ms=0.3 reason="…"`.
 *
 * Request lines carry the method, the canonical path without its query, the decision, the rule, the
 * status the client got and the duration, then the client's name, peer address and listener when
 * known; never a body or a header (so never `X-Registry-Auth`). Under a flood of one denial (the
 * same request refused the same way, for the same client), the first is written and then, every
 * interval while it lasts, `time=… level=info msg=request method=GET path=/v1.41/info
 * decision=denied rule=- status=403 repeated=1234`.
 *
 * @example
 * ```ts
 * const logger = createLogger({ level: 'info' });
 * const filter = createSocketFilter({ onRequest: logger.request });
 * ```
 */
export function createLogger(options: LoggerOptions): Logger {
  const threshold = LOG_LEVELS.indexOf(options.level);
  const write = options.write ?? ((line: string) => void process.stderr.write(line));
  const now = options.now ?? (() => new Date());

  const enabled = (level: LogLevel): boolean => LOG_LEVELS.indexOf(level) >= threshold;

  const log = (level: LogLevel, message: string, fields: Readonly<Record<string, LogValue>> = {}): void => {
    if (!enabled(level)) return;
    let line = `time=${now().toISOString()} level=${level} msg=${formatValue(message)}`;
    for (const [key, value] of Object.entries(fields)) {
      if (value === null || value === undefined) continue;
      line += ` ${key}=${formatValue(value)}`;
    }
    write(`${line}\n`);
  };

  const repeats = options.repeats === false ? undefined : createRepeatGate({ ...options.repeats, write, now });

  const request = (event: RequestEvent): void => {
    // A 502 on an allowed request means dockerd could not be reached: an operator wants that at
    // the default level even though allowed requests are otherwise only logged at `debug`.
    const level: LogLevel = !event.allowed ? 'info' : event.status === 502 ? 'warning' : 'debug';
    if (!enabled(level)) return;
    // The same line `log` would write for these fields, built directly: under a flood of denials
    // this runs for each one. What was decided, and for whom, is the line's identity for
    // `repeats` (a flood from one client must not hide another client's identical denial).
    const head =
      `level=${level} msg=request method=${formatValue(event.method)}` +
      ` path=${formatValue(pathWithoutQuery(event.path) ?? rawPath(event.target))} decision=${event.allowed ? 'allowed' : 'denied'}` +
      ` rule=${formatValue(event.rule ?? '-')} status=${event.status}`;
    // Who asked, after what was decided: the client the policy was chosen for, then the
    // connection's peer address and listener (a denial of an unknown client names them).
    let who = '';
    if (event.client !== undefined) who += ` client=${formatValue(event.client)}`;
    if (event.address !== undefined) who += ` address=${formatValue(event.address)}`;
    if (event.listener !== undefined) who += ` listener=${formatValue(event.listener)}`;
    if (!event.allowed && repeats !== undefined && !repeats.admit(head + who)) return;
    let line = `time=${now().toISOString()} ${head} duration_ms=${Math.round(event.durationMs * 10) / 10}`;
    if (event.upgrade) line += ' upgrade=true';
    if (!event.allowed) line += ` reason=${formatValue(event.reason)}`;
    write(`${line}${who}\n`);
  };

  const rejected = (event: { readonly status: number; readonly reason: string }): void => {
    if (!enabled('info')) return;
    const key = `level=info msg=rejected status=${event.status} reason=${formatValue(event.reason)}`;
    if (repeats !== undefined && !repeats.admit(key)) return;
    write(`time=${now().toISOString()} ${key}\n`);
  };

  const flush = (): void => repeats?.flush();

  return Object.freeze({ level: options.level, enabled, log, request, rejected, flush });
}

/**
 * The most bytes one `write` of the batched writer hands over: `PIPE_BUF` on Linux, the size up to
 * which the kernel writes to a pipe in one piece. Processes sharing one stderr (the CLI's workers)
 * then never interleave within a line.
 */
export const ATOMIC_WRITE_BYTES = 4096;

/**
 * A line writer that gathers what is written during one turn of the event loop and hands it to
 * `write` in pieces of whole lines, each at most `ATOMIC_WRITE_BYTES` (a longer line alone), at the
 * end of the turn (`setImmediate`) or as soon as a piece is full, with `flush()` to hand over what
 * is pending at once.
 *
 * Why: `process.stderr` is synchronous on pipes and files, so a denial logged under load costs a
 * `write` system call of its own, about as much as answering the denial. Batched, a burst of denials
 * costs one per 4 KiB. What a crash can lose is the current turn's lines; `flush` on `exit` keeps
 * them on every other way out.
 *
 * @example
 * ```ts
 * const lines = createBatchedWriter((text) => void process.stderr.write(text));
 * process.on('exit', lines.flush);
 * const logger = createLogger({ level: 'info', write: lines.write });
 * ```
 */
export function createBatchedWriter(write: (text: string) => void): { write(line: string): void; flush(): void } {
  let pending = '';
  let pendingBytes = 0;
  let scheduled: NodeJS.Immediate | undefined;
  const handOver = (): void => {
    if (pending === '') return;
    const text = pending;
    pending = '';
    pendingBytes = 0;
    write(text);
  };
  const flush = (): void => {
    if (scheduled !== undefined) clearImmediate(scheduled);
    scheduled = undefined;
    handOver();
  };
  return {
    write(line) {
      const bytes = Buffer.byteLength(line);
      if (pendingBytes + bytes > ATOMIC_WRITE_BYTES) handOver();
      pending += line;
      pendingBytes += bytes;
      scheduled ??= setImmediate(flush);
    },
    flush,
  };
}
