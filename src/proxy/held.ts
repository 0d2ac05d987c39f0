/**
 * The memory budget of one proxy for the bytes it holds whole: a checked request body (read whole
 * before it is judged), the guard's own lookups for a request, and a rewritten answer (read whole,
 * rewritten, then written to a client that may read it slowly or never). Everything else streams
 * with backpressure and costs a connection a bounded few buffers; these are what many connections
 * could otherwise multiply into gigabytes. Every connection of one filter draws on the same
 * budget; what does not fit is refused with `503`, never forwarded undecided.
 */

/**
 * How much of a budget is held, for stats, logs and tests.
 *
 * @example
 * ```ts
 * const { held, max, refused } = filter.heldStats();
 * ```
 */
export interface HeldBytesStats {
  /** Bytes held right now. */
  readonly held: number;
  /** The budget: `maxHeldBytes`. */
  readonly max: number;
  /** Requests refused so far because their bytes did not fit. */
  readonly refused: number;
}

/**
 * What one request holds of a budget: it grows as its bytes arrive, and gives everything back at
 * once, exactly once, however many paths try (the answer was written, the client left, the body
 * was forwarded).
 *
 * @example
 * ```ts
 * const hold = budget.hold();
 * if (!hold.grow(chunk.length)) refuse(budgetRefusal(hold));
 * res.once('close', hold.release);
 * ```
 */
export interface Hold {
  /** Bytes this hold has now. */
  readonly bytes: number;
  /** The budget's size, for the refusal's words. */
  readonly max: number;
  /**
   * Takes `bytes` more if the budget has them and returns true; otherwise takes nothing and
   * returns false (and counts a refusal). A released hold takes nothing more.
   */
  grow(bytes: number): boolean;
  /**
   * Holds `bytes` in place of what it holds now (a rewritten answer replaces dockerd's): giving
   * back always works, taking more as `grow`.
   */
  resize(bytes: number): boolean;
  /** Gives back everything; later calls do nothing. */
  readonly release: () => void;
}

/**
 * A budget of `max` bytes shared by every hold taken from it.
 *
 * @example
 * ```ts
 * const budget = createHeldBytes(16 * 1024 * 1024);
 * const hold = budget.hold();
 * ```
 */
export interface HeldBytes {
  readonly max: number;
  /** A new hold, holding nothing yet. */
  hold(): Hold;
  stats(): HeldBytesStats;
}

/**
 * Creates a budget of `max` bytes (a whole number of at least 1).
 *
 * @example
 * ```ts
 * const budget = createHeldBytes(1024);
 * budget.hold().grow(2048); // false: more than the whole budget
 * ```
 */
export function createHeldBytes(max: number): HeldBytes {
  if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`A held-bytes budget must be a whole number of at least 1, not ${max}`);
  let held = 0;
  let refused = 0;
  return {
    max,
    hold() {
      let bytes = 0;
      let released = false;
      const take = (more: number): boolean => {
        if (released || held + more > max) {
          // Callers give the request up at its first refusal: this counts requests refused.
          if (!released) refused += 1;
          return false;
        }
        held += more;
        bytes += more;
        return true;
      };
      const hold: Hold = {
        get bytes() {
          return bytes;
        },
        max,
        grow(more) {
          return more <= 0 ? !released : take(more);
        },
        resize(size) {
          if (size >= bytes) return take(size - bytes);
          held -= bytes - size;
          bytes = size;
          return !released;
        },
        release() {
          if (released) return;
          released = true;
          held -= bytes;
          bytes = 0;
        },
      };
      return hold;
    },
    stats() {
      return { held, max, refused };
    },
  };
}

/** `16 MiB` for a whole number of MiB, else the bytes. */
function size(bytes: number): string {
  const mib = 1024 * 1024;
  return bytes % mib === 0 ? `${bytes / mib} MiB` : `${bytes} bytes`;
}

/**
 * The error of a request whose bytes do not fit the budget (code `ERR_DSF_SATURATED`, as a pool
 * with no connection free: the proxy answers `503` with its message). `needed` is what the request
 * alone asked to hold: more than the whole budget is worded apart, since retrying cannot help it.
 *
 * @example
 * ```ts
 * heldSaturated(16 * 1024 * 1024, 4096).message;
 * // 'docker-socket-filter is saturated: the 16 MiB it holds at most for checked request bodies and rewritten answers (maxHeldBytes, MAX_HELD_BYTES) are in use; retry later'
 * ```
 */
export function heldSaturated(max: number, needed: number): Error & { code: 'ERR_DSF_SATURATED' } {
  const what = `the ${size(max)} it holds at most for checked request bodies and rewritten answers (maxHeldBytes, MAX_HELD_BYTES)`;
  const message =
    needed > max
      ? `docker-socket-filter is saturated: this request needs more than ${what}; raise it`
      : `docker-socket-filter is saturated: ${what} are in use; retry later`;
  return Object.assign(new Error(message), { code: 'ERR_DSF_SATURATED' as const });
}

/**
 * `heldSaturated` for a hold that could not take `more` bytes.
 *
 * @example
 * ```ts
 * if (!hold.grow(chunk.length)) fail(refusalOf(hold, chunk.length));
 * ```
 */
export function refusalOf(hold: Hold, more: number): Error & { code: 'ERR_DSF_SATURATED' } {
  return heldSaturated(hold.max, hold.bytes + more);
}

/**
 * What a path that holds an answer whole needs: the proxy's budget, and how long a client may take
 * nothing of the answer before it is cut (`uploadIdleTimeoutMs`, see `writeHeld`).
 *
 * @example
 * ```ts
 * const held: HeldContext = { budget: createHeldBytes(16 * 1024 * 1024), idleTimeoutMs: 60_000 };
 * ```
 */
export interface HeldContext {
  readonly budget: HeldBytes;
  readonly idleTimeoutMs: number;
}
