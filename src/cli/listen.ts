import { chmod, lstat, unlink } from 'node:fs/promises';
import type { Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import createDebug from 'debug';
import type { SocketFilter } from '../filter.js';
import { createFilterServer, type FilterServerOptions } from '../proxy/server.js';
import { describeListenAddress, type ListenAddress } from './args.js';

const debug = createDebug('docker-socket-filter:cli');

/**
 * A start-up failure the CLI reports as one line and exit code 2 (bad configuration, address in
 * use, a file in the way of a unix socket).
 *
 * @example
 * ```ts
 * throw new StartupError('127.0.0.1:2375 is already in use');
 * ```
 */
export class StartupError extends Error {
  override name = 'StartupError';
}

/**
 * One listening server and the connections it holds, upgraded ones included (an upgraded socket
 * leaves the HTTP server's bookkeeping, so it is tracked here to be destroyed at shutdown).
 *
 * @example
 * ```ts
 * const listener = await startListener(address, filter, 0o660);
 * console.log(listener.description, listener.connections.size);
 * ```
 */
export interface Listener {
  readonly address: ListenAddress;
  /** Where it actually listens (the port the OS chose for port 0). */
  readonly description: string;
  readonly server: Server;
  readonly connections: ReadonlySet<Socket>;
  /** Stops accepting; resolves when every connection of this server has closed. */
  close(): Promise<void>;
}

/** Whether something accepts connections on the unix socket at `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ path });
    const done = (live: boolean): void => {
      socket.destroy();
      resolve(live);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.setTimeout(1_000, () => done(true));
  });
}

/**
 * Makes room for a unix socket at `path`: nothing there is fine; a socket nobody answers on (left
 * by a killed run) is removed; anything else is refused rather than deleted.
 *
 * @throws StartupError when something else is in the way.
 * @example
 * ```ts
 * await clearStaleSocket('/run/dsf/docker.sock');
 * ```
 */
export async function clearStaleSocket(path: string): Promise<void> {
  let stats;
  try {
    stats = await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new StartupError(`cannot listen on unix:${path}: ${(error as Error).message}`);
  }
  if (!stats.isSocket()) {
    throw new StartupError(`cannot listen on unix:${path}: a file that is not a socket is in the way (not removed)`);
  }
  // A timeout counts as live: better refuse to start than take a socket from a busy server.
  if (await answers(path)) {
    throw new StartupError(`cannot listen on unix:${path}: a running server answers there`);
  }
  debug('removing stale socket %s', path);
  await unlink(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw new StartupError(`cannot remove stale socket ${path}: ${error.message}`);
  });
}

function listenError(address: ListenAddress, error: NodeJS.ErrnoException): StartupError {
  const where = describeListenAddress(address);
  switch (error.code) {
    case 'EADDRINUSE':
      return new StartupError(`cannot listen on ${where}: address already in use`);
    case 'EACCES':
      return new StartupError(`cannot listen on ${where}: permission denied`);
    case 'EADDRNOTAVAIL':
      return new StartupError(`cannot listen on ${where}: address not available on this host`);
    default:
      return new StartupError(`cannot listen on ${where}: ${error.message}`);
  }
}

/**
 * How a worker process of `--workers` listens beside the others: a TCP address with `SO_REUSEPORT`
 * (each worker its own socket, the kernel spreading connections) or through `node:cluster` (the
 * primary's socket); a unix socket always through `node:cluster`, the primary having made room
 * for it and setting its mode.
 *
 * @example
 * ```ts
 * const shared: SharedListen = { reusePort: true };
 * ```
 */
export interface SharedListen {
  readonly reusePort: boolean;
}

/**
 * Creates the HTTP server for `filter` with `createFilterServer` (no request timeout, a header
 * timeout, header and connection limits, JSON answers to unparseable requests) and listens on
 * `address`. A unix socket is created with mode `socketMode`, replacing a stale socket left by a
 * killed run.
 *
 * @throws StartupError when the address cannot be used.
 * @example
 * ```ts
 * const listener = await startListener({ kind: 'tcp', host: '127.0.0.1', port: 2375 }, filter, 0o660, { maxConnections: 4096 });
 * ```
 */
export async function startListener(
  address: ListenAddress,
  filter: SocketFilter,
  socketMode: number,
  serverOptions: FilterServerOptions = {},
  shared?: SharedListen,
): Promise<Listener> {
  const server = createFilterServer(filter, serverOptions);
  const connections = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
  });

  // A worker's unix socket is the primary's to create (node:cluster binds it there).
  const ownsUnixSocket = address.kind === 'unix' && shared === undefined;
  if (ownsUnixSocket) await clearStaleSocket(address.path);

  // The accept queue: Node's default (511) overflows when a burst of clients connects while the
  // guard is busy, and the kernel then drops handshakes; clients retry after seconds, by which time
  // their connection looks like a silent one to the header timeout. The kernel caps it at
  // net.core.somaxconn.
  const backlog = Math.min(Math.max(serverOptions.maxConnections || 4096, 511), 65_535);

  // The socket is born 0600 and only then opened up to `socketMode`: a wider umask would leave a
  // moment in which anyone on the host could connect.
  const previousUmask = ownsUnixSocket ? process.umask(0o177) : undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      if (address.kind === 'unix') server.listen({ path: address.path, backlog }, resolve);
      else server.listen({ host: address.host, port: address.port, ipv6Only: false, backlog, reusePort: shared?.reusePort === true }, resolve);
    });
  } catch (error) {
    throw listenError(address, error as NodeJS.ErrnoException);
  } finally {
    if (previousUmask !== undefined) process.umask(previousUmask);
  }
  server.removeAllListeners('error');
  server.on('error', (error) => debug('server error on %s: %s', describeListenAddress(address), error.message));

  let description = describeListenAddress(address);
  if (ownsUnixSocket) {
    try {
      await chmod(address.path, socketMode);
    } catch (error) {
      server.close();
      throw new StartupError(`cannot set mode of unix:${address.path}: ${(error as Error).message}`);
    }
  } else if (address.kind === 'tcp') {
    const bound = server.address() as AddressInfo;
    description = describeListenAddress({ kind: 'tcp', host: address.host, port: bound.port });
  }

  const closed = new Promise<void>((resolve) => server.once('close', () => resolve()));
  return {
    address,
    description,
    server,
    connections,
    close() {
      if (server.listening) server.close();
      return closed;
    },
  };
}
