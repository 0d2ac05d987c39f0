import { connect, type Socket } from 'node:net';

/**
 * The party using a connection to dockerd: one request/response exchange at a time, or, once it
 * `detach`es the connection, a hijacked stream. The pool installs its socket listeners once, for
 * the socket's whole life, and passes the events to the current user; an idle connection that
 * receives anything is destroyed (nobody asked dockerd).
 *
 * @example
 * ```ts
 * const user: UpstreamUser = { onConnection() {}, onData() {}, onEnd() {}, onError() {}, onClose() {} };
 * ```
 */
export interface UpstreamUser {
  /**
   * The pool lends `connection` to this user: at once when one is free, later when the pool was
   * saturated and one became free. Not called after `onError` with a saturation error, nor after
   * the user was `cancel`led.
   */
  onConnection(connection: UpstreamConnection): void;
  /**
   * Bytes from dockerd. `chunk` is a view of a buffer shared by every connection and overwritten by
   * the next read: copy whatever must outlive the call (see `createUpstreamPool`).
   */
  onData(chunk: Buffer): void;
  /** dockerd ended its side. */
  onEnd(): void;
  /** A socket error, or (code `ERR_DSF_SATURATED`, before any `onConnection`) no connection in time. */
  onError(error: Error): void;
  /** The socket is gone; the connection is out of the pool already. */
  onClose(): void;
}

/**
 * One connection to dockerd's socket, lent to one user at a time.
 *
 * @example
 * ```ts
 * pool.acquire({ ...user, onConnection: (connection) => connection.socket.write('GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n') });
 * ```
 */
export interface UpstreamConnection {
  readonly socket: Socket;
  user: UpstreamUser | null;
  /** When it was last released, for the idle timeout. */
  idleSince: number;
  /** Set once it left HTTP (a hijack): it never returns to the pool, and holds its slot until it closes. */
  detached: boolean;
}

/**
 * How busy a pool is, for metrics, logs and tests.
 *
 * @example
 * ```ts
 * const { open, idle, waiting } = pool.stats();
 * ```
 */
export interface UpstreamPoolStats {
  /** Connections to dockerd open (busy, idle and hijacked), counted against the maximum. */
  readonly open: number;
  readonly idle: number;
  /** Hijacked streams (attach, exec, websocket, h2c) among `open`. */
  readonly detached: number;
  /** Requests waiting for a connection. */
  readonly waiting: number;
  readonly max: number;
}

/**
 * A bounded keep-alive pool of connections to dockerd's unix socket.
 *
 * @example
 * ```ts
 * const pool = createUpstreamPool('/var/run/docker.sock', { idleTimeoutMs: 5_000, maxIdle: 256, maxConnections: 512, maxWaiting: 1024, waitTimeoutMs: 10_000 });
 * ```
 */
export interface UpstreamPool {
  /**
   * Lends `user` a connection: the most recently released idle one, or a new one while fewer than
   * `maxConnections` are open; otherwise the user waits (at most `maxWaiting` users, at most
   * `waitTimeoutMs`), and gets `onError` with code `ERR_DSF_SATURATED` when none came in time.
   */
  acquire(user: UpstreamUser): void;
  /** Forgets a waiting user (its client left). No effect once it has its connection. */
  cancel(user: UpstreamUser): void;
  /** Gives back a connection whose exchange ended exactly where its framing said. */
  release(connection: UpstreamConnection): void;
  /** The connection leaves HTTP (a hijack): never pooled again, counted until it closes. */
  detach(connection: UpstreamConnection): void;
  stats(): UpstreamPoolStats;
  /** Destroys every connection, idle or in use, and fails every waiting user. */
  destroy(): void;
}

/**
 * Settings of `createUpstreamPool`.
 *
 * @example
 * ```ts
 * const settings: UpstreamPoolSettings = { idleTimeoutMs: 5_000, maxIdle: 256, maxConnections: 512, maxWaiting: 1024, waitTimeoutMs: 10_000 };
 * ```
 */
export interface UpstreamPoolSettings {
  /** An idle connection is closed after about this long (dockerd 20.10 never closes idle ones). */
  readonly idleTimeoutMs: number;
  /** Idle connections kept at most; more are closed when released. */
  readonly maxIdle: number;
  /** Connections to dockerd open at once, whatever they carry (long-lived streams included). */
  readonly maxConnections: number;
  /** Users waiting for a connection at most; more are refused at once. */
  readonly maxWaiting: number;
  /** How long a user waits for a connection before it is refused. */
  readonly waitTimeoutMs: number;
}

/**
 * The error a user gets when the pool had no connection for it in time: the proxy answers `503`.
 *
 * @example
 * ```ts
 * saturated(512).code; // 'ERR_DSF_SATURATED'
 * ```
 */
export function saturated(max: number): Error & { code: string } {
  return Object.assign(
    new Error(`docker-socket-filter is saturated: all ${max} of its connections to the Docker daemon are in use; retry later`),
    { code: 'ERR_DSF_SATURATED' },
  );
}

// One read buffer for every connection (Node's `onread`): a read is handled synchronously before the
// next one, so one suffices. Without it each read allocates a fresh 64 KiB buffer and goes through the
// stream machinery; with it, only what is kept is copied (a small response head, the body pieces
// handed to the client's socket).
const READ_BUFFER_BYTES = 64 * 1024;
let sharedReadBuffer: Buffer | undefined;

interface Waiter {
  readonly user: UpstreamUser;
  readonly deadline: number;
}

/**
 * Creates the pool. Connections are opened on demand up to `maxConnections`; idle ones are reused
 * last-in first-out (the warmest first) and closed by one sweep timer rather than a timer per
 * connection, since a release and an acquire happen for every request. Waiting users are served in
 * order as connections are released or close, and timed out by the same kind of sweep.
 *
 * Why a bound at all: every connection is a descriptor and a goroutine in dockerd. Without one, a
 * single client pipelining thousands of `events` requests, or a few thousand clients holding
 * streams, would run dockerd out of descriptors, and that locks out every client of dockerd, not
 * only the guard's.
 *
 * @example
 * ```ts
 * const pool = createUpstreamPool(socketPath, settings);
 * pool.acquire(exchange);
 * ```
 */
export function createUpstreamPool(socketPath: string, settings: UpstreamPoolSettings): UpstreamPool {
  const idle: UpstreamConnection[] = [];
  const all = new Set<UpstreamConnection>();
  const waiters: Waiter[] = [];
  let detachedCount = 0;
  let idleSweeper: NodeJS.Timeout | undefined;
  let waitSweeper: NodeJS.Timeout | undefined;
  let destroyed = false;

  const sweepIdle = (): void => {
    const cutoff = performance.now() - settings.idleTimeoutMs;
    // Oldest first: the bottom of the stack.
    while (idle.length > 0 && (idle[0] as UpstreamConnection).idleSince <= cutoff) {
      (idle.shift() as UpstreamConnection).socket.destroy();
    }
    if (idle.length === 0 && idleSweeper !== undefined) {
      clearInterval(idleSweeper);
      idleSweeper = undefined;
    }
  };

  const sweepWaiters = (): void => {
    const now = performance.now();
    while (waiters.length > 0 && (waiters[0] as Waiter).deadline <= now) {
      (waiters.shift() as Waiter).user.onError(saturated(settings.maxConnections));
    }
    if (waiters.length === 0 && waitSweeper !== undefined) {
      clearInterval(waitSweeper);
      waitSweeper = undefined;
    }
  };

  const open = (user: UpstreamUser): UpstreamConnection => {
    sharedReadBuffer ??= Buffer.allocUnsafe(READ_BUFFER_BYTES);
    const connection: UpstreamConnection = { socket: undefined as unknown as Socket, user, idleSince: 0, detached: false };
    const socket = connect({
      path: socketPath,
      onread: {
        buffer: sharedReadBuffer,
        callback(bytes: number, buffer: Uint8Array): boolean {
          if (connection.user !== null) connection.user.onData((buffer as Buffer).subarray(0, bytes));
          else socket.destroy();
          // Never pause here: backpressure is the user's, with pause() and resume().
          return true;
        },
      },
    });
    (connection as { socket: Socket }).socket = socket;
    all.add(connection);
    socket.on('end', () => {
      if (connection.user !== null) connection.user.onEnd();
      else socket.destroy();
    });
    // Always listened to, idle or not: an unhandled 'error' would end the process.
    socket.on('error', (error) => connection.user?.onError(error));
    socket.on('close', () => {
      all.delete(connection);
      if (connection.detached) detachedCount -= 1;
      const index = idle.indexOf(connection);
      if (index !== -1) idle.splice(index, 1);
      const current = connection.user;
      connection.user = null;
      current?.onClose();
      // A slot is free: the first waiting user gets a new connection.
      serveWaiter();
    });
    return connection;
  };

  /** Hands a free slot (or a released connection) to the first waiting user, if any. */
  const serveWaiter = (released?: UpstreamConnection): boolean => {
    if (destroyed) return false;
    const waiter = waiters.shift();
    if (waiter === undefined) return false;
    if (released !== undefined) {
      released.user = waiter.user;
      waiter.user.onConnection(released);
    } else if (all.size < settings.maxConnections) {
      waiter.user.onConnection(open(waiter.user));
    } else {
      waiters.unshift(waiter);
      return false;
    }
    return true;
  };

  return {
    acquire(user) {
      if (destroyed) {
        user.onError(saturated(settings.maxConnections));
        return;
      }
      let connection = idle.pop();
      while (connection !== undefined && (connection.socket.destroyed || !connection.socket.writable)) {
        connection = idle.pop();
      }
      if (connection !== undefined) {
        connection.user = user;
        user.onConnection(connection);
        return;
      }
      if (all.size < settings.maxConnections && waiters.length === 0) {
        user.onConnection(open(user));
        return;
      }
      if (waiters.length >= settings.maxWaiting) {
        user.onError(saturated(settings.maxConnections));
        return;
      }
      waiters.push({ user, deadline: performance.now() + settings.waitTimeoutMs });
      if (waitSweeper === undefined) {
        waitSweeper = setInterval(sweepWaiters, Math.max(1, Math.min(1_000, settings.waitTimeoutMs / 4)));
        waitSweeper.unref();
      }
    },
    cancel(user) {
      const index = waiters.findIndex((waiter) => waiter.user === user);
      if (index !== -1) waiters.splice(index, 1);
    },
    release(connection) {
      connection.user = null;
      if (connection.socket.destroyed || connection.detached) return;
      if (serveWaiter(connection)) return;
      if (idle.length >= settings.maxIdle) {
        connection.socket.destroy();
        return;
      }
      connection.idleSince = performance.now();
      idle.push(connection);
      if (idleSweeper === undefined) {
        idleSweeper = setInterval(sweepIdle, Math.max(1, settings.idleTimeoutMs / 2));
        idleSweeper.unref();
      }
    },
    detach(connection) {
      if (connection.detached) return;
      connection.detached = true;
      detachedCount += 1;
    },
    stats() {
      return { open: all.size, idle: idle.length, detached: detachedCount, waiting: waiters.length, max: settings.maxConnections };
    },
    destroy() {
      destroyed = true;
      if (idleSweeper !== undefined) clearInterval(idleSweeper);
      if (waitSweeper !== undefined) clearInterval(waitSweeper);
      idleSweeper = undefined;
      waitSweeper = undefined;
      idle.length = 0;
      for (const waiter of waiters.splice(0)) waiter.user.onError(saturated(settings.maxConnections));
      for (const connection of all) connection.socket.destroy();
      all.clear();
    },
  };
}
