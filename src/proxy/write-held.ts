import type { ServerResponse } from 'node:http';
import createDebug from 'debug';
import type { Hold } from './held.js';

const log = createDebug('docker-socket-filter:proxy');

/**
 * The most of a held answer handed to the client's socket at once. One write of the whole answer
 * would copy all of it into the socket's queue however slowly the client reads; slices are views
 * of the one buffer, each written when the socket has taken the previous ones.
 */
export const HELD_SLICE_BYTES = 64 * 1024;

/**
 * Writes the body of an answer held whole (its head already given to `res.writeHead`) in slices
 * with backpressure, then ends it, and gives `hold` back once the client's socket has taken it all
 * or the response is gone. A client that takes nothing for `idleTimeoutMs` while a slice waits is
 * cut: a client that never reads would otherwise keep the answer, and its share of the budget, for
 * as long as it stays connected.
 *
 * @example
 * ```ts
 * res.writeHead(200, 'OK', ['Content-Type', 'application/json', 'Content-Length', String(body.length)]);
 * writeHeld(res, body, hold, 60_000);
 * ```
 */
export function writeHeld(res: ServerResponse, body: Buffer, hold: Hold, idleTimeoutMs: number): void {
  let offset = 0;
  let timer: NodeJS.Timeout | undefined;
  const over = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    hold.release();
  };
  res.once('finish', over);
  res.once('close', over);
  if (res.destroyed) {
    over();
    return;
  }
  // Waiting on the client: for a drain, or for the last slices to leave once the answer is ended.
  const waiting = (): void => {
    if (timer !== undefined) {
      timer.refresh();
      return;
    }
    timer = setTimeout(() => {
      timer = undefined;
      log('client read nothing of a held answer for %d ms: cut', idleTimeoutMs);
      res.destroy();
    }, idleTimeoutMs);
    timer.unref();
  };
  const pump = (): void => {
    while (offset < body.length) {
      if (res.destroyed) return;
      const end = Math.min(offset + HELD_SLICE_BYTES, body.length);
      const flowing = res.write(body.subarray(offset, end));
      offset = end;
      if (!flowing) {
        waiting();
        res.once('drain', pump);
        return;
      }
    }
    if (res.destroyed) return;
    res.end();
    if (!res.writableFinished) waiting();
  };
  pump();
}
