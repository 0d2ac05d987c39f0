import type { ServerResponse } from 'node:http';
import createDebug from 'debug';
import { parseDockerJson, stringifyDockerJson } from '../policy/read/json.js';
import { rewriteEvent, rewriteResponse } from '../policy/read/rewrite.js';
import { MISSING_REF } from '../policy/read/target.js';
import type { ResponseRewrite } from '../policy/types.js';
import { sendJsonError } from './deny.js';
import { flushHeldWrites, type ResponseSink, type SinkFactory } from './forward.js';
import { refusalOf, type HeldContext } from './held.js';
import { writeHeld } from './write-held.js';

const log = createDebug('docker-socket-filter:read');

/**
 * The largest answer rewritten whole (an inspect, a list): larger ones get `502`. A list of a
 * thousand containers is a few megabytes.
 */
export const MAX_REWRITTEN_BYTES = 32 * 1024 * 1024;
/** The largest single event of `/events` rewritten; a longer one cuts the stream. */
export const MAX_EVENT_BYTES = 1024 * 1024;
/** The largest error answer whose quoted reference is written back (see `missingRefSink`). */
const MAX_ERROR_BYTES = 64 * 1024;

/** What a buffering sink does with the whole answer: the headers and body to send instead. */
type Finish = (status: number, headers: string[], body: Buffer) => { readonly headers: string[]; readonly body: Buffer };

function withLength(headers: readonly string[], length: number): string[] {
  const result: string[] = [];
  for (let index = 0; index + 1 < headers.length; index += 2) {
    if ((headers[index] as string).toLowerCase() !== 'content-length') result.push(headers[index] as string, headers[index + 1] as string);
  }
  result.push('Content-Length', String(length));
  return result;
}

function headerValue(headers: readonly string[], name: string): string | undefined {
  for (let index = 0; index + 1 < headers.length; index += 2) {
    if ((headers[index] as string).toLowerCase() === name) return headers[index + 1] as string;
  }
  return undefined;
}

const isJson = (headers: readonly string[]): boolean => /^application\/json\b/i.test(headerValue(headers, 'content-type') ?? '');

/**
 * A sink that holds the whole answer (at most `maxBytes`, else `502`), when `applies` says so for
 * its status and headers, and sends what `finish` makes of it with a correct `Content-Length` and
 * dockerd's status, reason and other headers. Other answers pass straight through.
 *
 * What it holds counts against the proxy's budget (`held`) from the first byte of dockerd's body
 * until the client's socket has taken the last byte of the answer (or the client is gone): an
 * answer that does not fit gets `503` before a byte of its head is sent, and dockerd's exchange is
 * dropped. The answer is written in slices with backpressure (`writeHeld`).
 */
function bufferingSink(
  res: ServerResponse,
  abandon: () => void,
  held: HeldContext,
  maxBytes: number,
  applies: (status: number, headers: readonly string[]) => boolean,
  finish: Finish,
): ResponseSink {
  let mode: 'head' | 'through' | 'buffer' | 'done' = 'head';
  let status = 0;
  let reason = '';
  let headers: string[] = [];
  let chunks: Buffer[] = [];
  let length = 0;
  const hold = held.budget.hold();
  res.once('close', hold.release);

  const fail = (why: string, answer: { status: number; message: string } = { status: 502, message: `The Docker socket filter could not rewrite the Docker daemon's answer: ${why}` }): void => {
    mode = 'done';
    chunks = [];
    hold.release();
    log('answer not rewritten: %s', why);
    abandon();
    if (res.headersSent) {
      flushHeldWrites(res);
      res.destroy();
    }
    else sendJsonError(res, answer.status, answer.message, { close: true });
  };
  const saturated = (more: number): void => {
    const error = refusalOf(hold, more);
    fail('it does not fit the budget of held bytes', { status: 503, message: error.message });
  };
  /** Keeps `chunk`, or refuses the answer; whether it was kept. */
  const keep = (chunk: Buffer): boolean => {
    length += chunk.length;
    if (length > maxBytes) fail(`it is larger than ${maxBytes} bytes`);
    else if (!hold.grow(chunk.length)) saturated(chunk.length);
    else {
      chunks.push(chunk);
      return true;
    }
    return false;
  };

  return {
    writeHead(givenStatus, givenReason, givenHeaders) {
      if (mode !== 'head') return;
      if (!applies(givenStatus, givenHeaders)) {
        mode = 'through';
        res.writeHead(givenStatus, givenReason, givenHeaders);
        return;
      }
      mode = 'buffer';
      status = givenStatus;
      reason = givenReason;
      headers = givenHeaders;
    },
    write(chunk) {
      if (mode === 'through') return res.write(chunk);
      if (mode === 'buffer') keep(chunk);
      return true;
    },
    end(last) {
      if (mode === 'through') {
        if (last === undefined) res.end();
        else res.end(last);
        return;
      }
      if (mode !== 'buffer') return;
      if (last !== undefined && !keep(last)) return;
      mode = 'done';
      const whole = Buffer.concat(chunks, length);
      // The pieces are garbage from here: only `whole`, then the rewritten answer, is held.
      chunks = [];
      let result: { readonly headers: string[]; readonly body: Buffer };
      try {
        result = finish(status, headers, whole);
      } catch (error) {
        fail((error as Error).message);
        return;
      }
      if (res.destroyed) {
        hold.release();
        return;
      }
      // What is held from here is the answer to send, in place of dockerd's.
      if (!hold.resize(result.body.length)) {
        saturated(result.body.length - hold.bytes);
        return;
      }
      try {
        res.writeHead(status, reason, result.headers);
      } catch (error) {
        fail((error as Error).message);
        return;
      }
      writeHeld(res, result.body, hold, held.idleTimeoutMs);
    },
    flushHeaders() {
      if (mode === 'through') res.flushHeaders();
    },
    once(event, listener) {
      // A buffering sink never refuses a write, so only a pass-through one can need a drain.
      if (mode === 'through') res.once(event, listener);
    },
  };
}

/**
 * The sink that rewrites a JSON answer (`container-inspect`, lists, …) with `rewriteResponse`:
 * only a `200` answer is rewritten; errors pass untouched. An answer that is not JSON, or over
 * `MAX_REWRITTEN_BYTES`, gets `502` (and a debug line; the request's log line says 502); one that
 * does not fit what is left of the budget of held bytes (`held`), `503`.
 *
 * @example
 * ```ts
 * forwardRequest(pool, open, req, res, path, 0, onError, jsonRewriteSink({ kind: 'container-inspect', redactEnv: true }, held));
 * ```
 */
export function jsonRewriteSink(rewrite: ResponseRewrite, held: HeldContext, maxBytes = MAX_REWRITTEN_BYTES): SinkFactory {
  return (res, abandon) =>
    bufferingSink(res, abandon, held, maxBytes, (status) => status === 200, (_status, headers, body) => {
      if (!isJson(headers)) throw new Error('it is not JSON');
      let value: unknown;
      try {
        value = parseDockerJson(body.toString('utf8'));
      } catch {
        throw new Error('it is not valid JSON');
      }
      const text = Buffer.from(stringifyDockerJson(rewriteResponse(rewrite, value)), 'utf8');
      return { headers: withLength(headers, text.length), body: text };
    });
}

/**
 * The sink for a request forwarded with `MISSING_REF` in place of a reference the client may not
 * see: dockerd's answer (its own for a missing object) is sent with the client's reference written
 * back where dockerd quoted the stand-in (JSON-escaped in a JSON body), and the length corrected,
 * also for a `HEAD` answer, whose length is that of the body it would have had.
 *
 * @example
 * ```ts
 * forwardRequest(pool, open, req, res, withVisibleRef(path, MISSING_REF), 0, onError, missingRefSink('web', 'GET', held));
 * ```
 */
export function missingRefSink(ref: string, method: string, held: HeldContext): SinkFactory {
  return (res, abandon) =>
    bufferingSink(res, abandon, held, MAX_ERROR_BYTES, () => true, (_status, headers, body) => {
      const quoted = isJson(headers) ? JSON.stringify(ref).slice(1, -1) : ref;
      if (method === 'HEAD') {
        const declared = headerValue(headers, 'content-length');
        if (declared === undefined) return { headers, body };
        // dockerd's message quotes the reference once ("No such container: <ref>").
        return { headers: withLength(headers, Number(declared) - MISSING_REF.length + Buffer.byteLength(quoted)), body };
      }
      const text = Buffer.from(body.toString('utf8').split(MISSING_REF).join(quoted), 'utf8');
      return { headers: withLength(headers, text.length), body: text };
    });
}

/**
 * The sink that rewrites the `/events` stream one event at a time as it streams (`rewriteEvent`):
 * each complete line is parsed, kept, changed or dropped, and written on; nothing beyond the event
 * being read is held (at most `MAX_EVENT_BYTES`; a longer line or one that is not JSON cuts the
 * stream: dropping it silently could drop a hidden container's event into the next one). A
 * non-`200` answer passes untouched.
 *
 * What the stream holds, the event being read and the rewritten events its client has not taken
 * yet, counts against the budget of held bytes (`held`): events of a megabyte (a container with
 * large labels) sent to clients that never read held several megabytes per connection, outside
 * every bound. When they do not fit, the stream is cut, as for an event too long.
 *
 * @example
 * ```ts
 * forwardRequest(pool, open, req, res, path, 0, onError, eventsSink({ kind: 'events', redactEnv: true }, held));
 * ```
 */
export function eventsSink(rewrite: ResponseRewrite, held: HeldContext, maxEventBytes = MAX_EVENT_BYTES): SinkFactory {
  return (res, abandon) => {
    let mode: 'head' | 'through' | 'events' | 'done' = 'head';
    let pending: Buffer | null = null;
    const hold = held.budget.hold();
    res.once('close', hold.release);

    const cut = (why: string): void => {
      mode = 'done';
      hold.release();
      log('events stream cut: %s', why);
      abandon();
      // What was relayed reaches the client before the cut (Node holds a response's first writes).
      flushHeldWrites(res);
      res.destroy();
    };

    // The bytes this stream keeps now: the partial event, and what the client has yet to take.
    const account = (): boolean => hold.resize((pending?.length ?? 0) + res.writableLength);
    res.on('drain', () => {
      if (mode === 'events') account();
    });

    /**
     * The rewritten text of the complete lines in `data` (all of it when `final`), keeping the rest
     * in `pending`; `failed` says why the stream must be cut after that text.
     */
    const lines = (data: Buffer, final: boolean): { readonly out: string; readonly failed: string | null } => {
      const buffer = pending === null ? data : Buffer.concat([pending, data]);
      pending = null;
      let out = '';
      let start = 0;
      for (;;) {
        const newline = buffer.indexOf(0x0a, start);
        const end = newline === -1 ? (final ? buffer.length : -1) : newline;
        if (end === -1) break;
        const line = buffer.toString('utf8', start, end);
        start = end + 1;
        if (line.trim() !== '') {
          let event: unknown;
          try {
            event = parseDockerJson(line);
          } catch {
            return { out, failed: 'an event is not JSON' };
          }
          const shown = rewriteEvent(rewrite, event);
          if (shown !== null) out += stringifyDockerJson(shown);
        }
        if (newline === -1) break;
      }
      if (start < buffer.length) {
        if (buffer.length - start > maxEventBytes) return { out, failed: `an event is longer than ${maxEventBytes} bytes` };
        pending = Buffer.from(buffer.subarray(start));
      }
      return { out, failed: null };
    };

    return {
      writeHead(status, reason, headers) {
        if (mode !== 'head') return;
        mode = status === 200 ? 'events' : 'through';
        res.writeHead(status, reason, headers);
      },
      write(chunk) {
        if (mode === 'through') return res.write(chunk);
        if (mode !== 'events') return true;
        const { out, failed } = lines(chunk, false);
        const flowing = out === '' ? true : res.write(out);
        if (failed !== null) cut(failed);
        else if (!account()) cut('the events held for a client that does not take them do not fit the budget of held bytes (maxHeldBytes, MAX_HELD_BYTES)');
        return flowing;
      },
      end(last) {
        if (mode === 'through') {
          if (last === undefined) res.end();
          else res.end(last);
          return;
        }
        if (mode !== 'events') return;
        const { out, failed } = lines(last ?? Buffer.alloc(0), true);
        if (failed !== null) {
          if (out !== '') res.write(out);
          cut(failed);
          return;
        }
        mode = 'done';
        res.end(out);
      },
      flushHeaders() {
        if (mode !== 'done') res.flushHeaders();
      },
      once(event, listener) {
        res.once(event, listener);
      },
    };
  };
}
