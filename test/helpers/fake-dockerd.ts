import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { Evaluate } from '../../src/policy/evaluate.js';
import type { Decision } from '../../src/policy/types.js';
import { createProxy, type Proxy, type ProxyOptions } from '../../src/proxy/index.js';
import { serve, type ServedFilter } from './filter-server.js';

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

/**
 * A stand-in policy for the tests of the proxy itself: allows every request, on its target as
 * received.
 */
export const allowAll = (_method: string, target: string): Decision => ({
  allowed: true,
  status: 200,
  rule: 'test',
  reason: 'allowed by the test',
  path: target,
});

/** A proxy in front of a fake dockerd, as `fakeProxies().start` returns it. */
export interface FakeProxy {
  readonly fake: FakeDockerd;
  readonly served: ServedFilter;
  /** The proxy itself, for its stats. */
  readonly proxy: Proxy;
}

/**
 * Registers, in the calling `describe`, a temp directory for fake dockerd sockets and the closing of
 * whatever `start` started after each test; `start` puts a bare proxy deciding with `evaluate` in
 * front of a fresh fake dockerd, with `options` of `createProxy` besides its `evaluate` and socket.
 *
 * @example
 * ```ts
 * const proxies = fakeProxies('dsf-fake-');
 * it('…', async () => {
 *   const { fake, served } = await proxies.start(allowAll);
 * });
 * ```
 */
export function fakeProxies(prefix: string): { start(evaluate: Evaluate, options?: Partial<ProxyOptions>): Promise<FakeProxy> } {
  let directory = '';
  const started: FakeProxy[] = [];
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), prefix));
  });
  afterEach(async () => {
    for (const { fake, served } of started.splice(0)) {
      await served.close();
      await fake.close();
    }
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });
  return {
    async start(evaluate, options = {}) {
      const fake = await fakeDockerd(directory, `d${Date.now()}${Math.random().toString(36).slice(2, 8)}.sock`);
      const proxy = createProxy({ ...options, evaluate, socketPath: fake.socketPath });
      const served = await serve(proxy);
      started.push({ fake, served, proxy });
      return { fake, served, proxy };
    },
  };
}
