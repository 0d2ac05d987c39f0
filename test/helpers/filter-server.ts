import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { createFilterServer } from '../../src/proxy/server.js';

/** The part of a filter (or a bare proxy) a test server needs. */
export interface Servable {
  handler(req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): void;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  close(): Promise<void>;
}

/**
 * A filter served on 127.0.0.1, port chosen by the OS.
 *
 * @example
 * ```ts
 * const served = await serve(createSocketFilter({ policy, socketPath }));
 * // DOCKER_HOST=tcp://127.0.0.1:${served.port}
 * await served.close();
 * ```
 */
export interface ServedFilter {
  readonly server: Server;
  readonly port: number;
  readonly dockerHost: string;
  close(): Promise<void>;
}

/**
 * Serves `filter` the way the README tells embedders to: with `createFilterServer` (the handler on
 * `request`, the upgrade handler on `upgrade`, `requestTimeout: 0`, the header timeout and limits).
 * `close` ends every connection, upgraded ones included.
 */
export async function serve(filter: Servable): Promise<ServedFilter> {
  const server = createFilterServer(filter);
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  server.unref();
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    dockerHost: `tcp://127.0.0.1:${port}`,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const socket of sockets) socket.destroy();
      await filter.close();
      await closed;
    },
  };
}
