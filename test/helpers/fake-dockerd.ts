import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';

/**
 * A scripted fake dockerd on a unix socket, for what a real one does not produce on demand
 * (malformed answers, deaths mid-stream). `onRequest` answers each request head.
 */
export interface FakeDockerd {
  readonly socketPath: string;
  /** The request heads received, as text. */
  readonly heads: string[];
  /** For each head in `heads`, the number of the connection it came on (1, 2, …). */
  readonly connectionOfHead: number[];
  /** Sockets that closed, in order. */
  readonly closed: Socket[];
  /** Connections accepted so far. */
  accepted: number;
  /** Return `'raw'` to take over the socket: `rest` is what followed the head. */
  onRequest: (socket: Socket, head: string, rest: string) => unknown;
  close(): Promise<void>;
}

/**
 * Starts a fake dockerd listening on `<directory>/<name>`.
 *
 * @example
 * ```ts
 * const fake = await fakeDockerd(directory, 'd.sock');
 * fake.onRequest = (socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK');
 * ```
 */
export async function fakeDockerd(directory: string, name: string): Promise<FakeDockerd> {
  const socketPath = join(directory, name);
  const sockets = new Set<Socket>();
  const fake: FakeDockerd = {
    socketPath,
    heads: [],
    connectionOfHead: [],
    closed: [],
    accepted: 0,
    onRequest: () => undefined,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  const server: Server = createServer((socket) => {
    fake.accepted += 1;
    const connection = fake.accepted;
    sockets.add(socket);
    socket.on('close', () => {
      sockets.delete(socket);
      fake.closed.push(socket);
    });
    socket.on('error', () => undefined);
    let buffered = '';
    const parse = (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      let end = buffered.indexOf('\r\n\r\n');
      while (end !== -1) {
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        fake.heads.push(head);
        fake.connectionOfHead.push(connection);
        if (fake.onRequest(socket, head, buffered) === 'raw') {
          socket.off('data', parse);
          return;
        }
        end = buffered.indexOf('\r\n\r\n');
      }
    };
    socket.on('data', parse);
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return fake;
}
