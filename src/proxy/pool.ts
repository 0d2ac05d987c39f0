import { connect, type Socket } from 'node:net';

/**
 * The party using a pooled connection to dockerd: one request/response exchange at a time. The pool
 * installs its socket listeners once, for the socket's whole life, and passes the events to the
 * current user; an idle connection that receives anything is destroyed (nobody asked dockerd).
 *
 * @example
 * ```ts
 * const user: UpstreamUser = { onData() {}, onEnd() {}, onError() {}, onClose() {} };
 * ```
 */
export interface UpstreamUser {
  /**
   * Bytes from dockerd. `chunk` is a view of a buffer shared by every connection and overwritten by
   * the next read: copy whatever must outlive the call (see `createUpstreamPool`).
   */
  onData(chunk: Buffer): void;
  /** dockerd ended its side. */
  onEnd(): void;
  onError(error: Error): void;
  /** The socket is gone; the connection is out of the pool already. */
  onClose(): void;
}

/**
 * One connection to dockerd's socket, lent to one user at a time.
 *
 * @example
 * ```ts
 * const connection = pool.acquire(user);
 * connection.socket.write('GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n');
 * ```
 */
export interface UpstreamConnection {
  readonly socket: Socket;
  user: UpstreamUser | null;
  /** When it was last released, for the idle timeout. */
  idleSince: number;
}

/**
 * A keep-alive pool of connections to dockerd's unix socket.
 *
 * @example
 * ```ts
 * const pool = createUpstreamPool('/var/run/docker.sock', { idleTimeoutMs: 5_000, maxIdle: 256 });
 * ```
 */
export interface UpstreamPool {
  /** A connection for `user`: the most recently released idle one, or a new one. */
  acquire(user: UpstreamUser): UpstreamConnection;
  /** Gives back a connection whose exchange ended exactly where its framing said. */
  release(connection: UpstreamConnection): void;
  /** Destroys every connection, idle or in use. */
  destroy(): void;
}

/**
 * Settings of `createUpstreamPool`.
 *
 * @example
 * ```ts
 * const settings: UpstreamPoolSettings = { idleTimeoutMs: 5_000, maxIdle: 256 };
 * ```
 */
export interface UpstreamPoolSettings {
  /** An idle connection is closed after about this long (dockerd 20.10 never closes idle ones). */
  readonly idleTimeoutMs: number;
  /** Idle connections kept at most; more are closed when released. */
  readonly maxIdle: number;
}

// One read buffer for every connection (Node's `onread`): a read is handled synchronously before the
// next one, so one suffices. Without it each read allocates a fresh 64 KiB buffer and goes through the
// stream machinery; with it, only what is kept is copied (a small response head, the body pieces
// handed to the client's socket).
const READ_BUFFER_BYTES = 64 * 1024;
let sharedReadBuffer: Buffer | undefined;

/**
 * Creates the pool. Connections are opened on demand; idle ones are reused last-in first-out (the
 * warmest first) and closed by one sweep timer rather than a timer per connection, since a release
 * and an acquire happen for every request.
 *
 * @example
 * ```ts
 * const pool = createUpstreamPool(socketPath, { idleTimeoutMs: 5_000, maxIdle: 256 });
 * const connection = pool.acquire(exchange);
 * ```
 */
export function createUpstreamPool(socketPath: string, settings: UpstreamPoolSettings): UpstreamPool {
  const idle: UpstreamConnection[] = [];
  const all = new Set<UpstreamConnection>();
  let sweeper: NodeJS.Timeout | undefined;

  const sweep = (): void => {
    const cutoff = performance.now() - settings.idleTimeoutMs;
    // Oldest first: the bottom of the stack.
    while (idle.length > 0 && (idle[0] as UpstreamConnection).idleSince <= cutoff) {
      (idle.shift() as UpstreamConnection).socket.destroy();
    }
    if (idle.length === 0 && sweeper !== undefined) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  };

  const open = (user: UpstreamUser): UpstreamConnection => {
    sharedReadBuffer ??= Buffer.allocUnsafe(READ_BUFFER_BYTES);
    const connection: UpstreamConnection = { socket: undefined as unknown as Socket, user, idleSince: 0 };
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
      const index = idle.indexOf(connection);
      if (index !== -1) idle.splice(index, 1);
      const current = connection.user;
      connection.user = null;
      current?.onClose();
    });
    return connection;
  };

  return {
    acquire(user) {
      let connection = idle.pop();
      while (connection !== undefined && (connection.socket.destroyed || !connection.socket.writable)) {
        connection = idle.pop();
      }
      if (connection === undefined) return open(user);
      connection.user = user;
      return connection;
    },
    release(connection) {
      connection.user = null;
      if (connection.socket.destroyed) return;
      if (idle.length >= settings.maxIdle) {
        connection.socket.destroy();
        return;
      }
      connection.idleSince = performance.now();
      idle.push(connection);
      if (sweeper === undefined) {
        sweeper = setInterval(sweep, Math.max(1, settings.idleTimeoutMs / 2));
        sweeper.unref();
      }
    },
    destroy() {
      if (sweeper !== undefined) clearInterval(sweeper);
      sweeper = undefined;
      idle.length = 0;
      for (const connection of all) connection.socket.destroy();
      all.clear();
    },
  };
}
