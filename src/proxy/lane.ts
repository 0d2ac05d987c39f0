import type { Duplex } from 'node:stream';

/**
 * Requests of one client connection waiting for their turn, beyond the one being answered, before
 * the guard stops reading the connection; and the most it holds before it closes the connection.
 *
 * Why: HTTP/1.1 answers pipelined requests in order anyway, so a connection gains nothing from
 * having several exchanges with dockerd at once; but Node's server hands the guard every request a
 * client pipelines, as fast as it can parse them (a single 64 KiB read can hold a thousand), and
 * forwarding each at once let one connection open thousands of connections to dockerd. One at a
 * time, a connection holds at most one upstream exchange; the queue bounds what it can make the
 * guard hold (about 1.6 KiB per parsed request). Docker clients do not pipeline at all.
 */
export const MAX_PIPELINED_REQUESTS = 64;
const PAUSE_AT = 8;

/**
 * What a lane runs: one request's handling. It calls `done` once its answer is over (sent, cut,
 * or handed over as a hijack, in which case `done` is never called: nothing follows a hijack).
 *
 * @example
 * ```ts
 * const job: LaneJob = (done) => { res.once('close', done); forward(); };
 * ```
 */
export type LaneJob = (done: () => void) => void;

interface Lane {
  busy: boolean;
  readonly waiting: LaneJob[];
  paused: boolean;
}

// On the socket itself rather than in a WeakMap: this is looked up for every request.
const LANE = Symbol('docker-socket-filter.lane');
type WithLane = Duplex & { [LANE]?: Lane };

/**
 * Runs `job` when every earlier request of the same client connection has been answered, so that
 * a connection has one exchange in progress at a time (plain, upgrade or hijack). Returns `false`,
 * running nothing, when the connection already has `MAX_PIPELINED_REQUESTS` waiting: the caller
 * closes it. While requests wait, the guard stops reading the connection (best effort: Node's
 * server may read on, which the bound covers).
 *
 * @example
 * ```ts
 * if (!inTurn(req.socket, (done) => handle(req, res, done))) req.socket.destroy();
 * ```
 */
export function inTurn(socket: Duplex, job: LaneJob): boolean {
  const holder = socket as WithLane;
  let lane = holder[LANE];
  if (lane === undefined) {
    lane = { busy: false, waiting: [], paused: false };
    holder[LANE] = lane;
  }
  if (!lane.busy) {
    lane.busy = true;
    runJob(socket, lane, job);
    return true;
  }
  if (lane.waiting.length >= MAX_PIPELINED_REQUESTS) return false;
  lane.waiting.push(job);
  if (!lane.paused && lane.waiting.length >= PAUSE_AT) {
    lane.paused = true;
    socket.pause();
  }
  return true;
}

function runJob(socket: Duplex, lane: Lane, job: LaneJob): void {
  let finished = false;
  job(() => {
    if (finished) return;
    finished = true;
    const next = lane.waiting.shift();
    if (lane.paused && lane.waiting.length < PAUSE_AT / 2) {
      lane.paused = false;
      if (!socket.destroyed) socket.resume();
    }
    if (next === undefined || socket.destroyed) {
      lane.busy = false;
      lane.waiting.length = 0;
      return;
    }
    runJob(socket, lane, next);
  });
}

/**
 * How many requests of this connection wait for their turn (for tests and metrics).
 *
 * @example
 * ```ts
 * waitingRequests(req.socket); // 0 for a client that does not pipeline
 * ```
 */
export function waitingRequests(socket: Duplex): number {
  return (socket as WithLane)[LANE]?.waiting.length ?? 0;
}
