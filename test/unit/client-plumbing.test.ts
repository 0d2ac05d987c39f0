import { mkdtemp, rm } from 'node:fs/promises';
import { request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { RequestEvent } from '../../src/filter.js';
import { createFilterServer, createSocketFilter, tecnativaPreset, type SocketFilter } from '../../src/index.js';
import { fakeDockerd, type FakeDockerd } from '../helpers/fake-dockerd.js';

// The proxy learns who a client is from its connection: the peer address and the name of the
// listener (createFilterServer's `listener`), never from a header. A fake dockerd answers.
describe('the client of a request comes from its connection', () => {
  let dir: string;
  let fake: FakeDockerd;
  let filter: SocketFilter;
  const servers: Server[] = [];
  const events: RequestEvent[] = [];
  let tcpPort: number;
  let roSocket: string;

  const listen = (server: Server, ...args: unknown[]): Promise<void> =>
    new Promise((resolve, reject) => {
      servers.push(server);
      server.once('error', reject);
      (server.listen as (...a: unknown[]) => void)(...args, () => resolve());
    });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dsf-plumb-'));
    fake = await fakeDockerd(dir, 'd.sock');
    fake.onRequest = (socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK');
    filter = createSocketFilter({
      socketPath: fake.socketPath,
      onRequest: (event) => events.push(event),
      clients: [
        { name: 'local', match: { address: ['127.0.0.1'], listener: 'tcp' }, policy: tecnativaPreset({}) },
        { name: 'ro', match: { listener: 'ro' }, policy: tecnativaPreset({ PING: '0', VERSION: '1' }) },
      ],
    });
    const tcp = createFilterServer(filter, { listener: 'tcp' });
    await listen(tcp, 0, '127.0.0.1');
    tcpPort = (tcp.address() as AddressInfo).port;
    roSocket = join(dir, 'ro.sock');
    await listen(createFilterServer(filter, { listener: 'ro' }), roSocket);
    await listen(createFilterServer(filter), join(dir, 'anonymous.sock'));
  });
  afterAll(async () => {
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    await filter.close();
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  const get = (target: { port: number } | { socketPath: string }, path: string, headers: Record<string, string> = {}) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      request({ host: '127.0.0.1', ...target, path, headers, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
        .on('error', reject)
        .end();
    });

  const lastEvent = async (): Promise<RequestEvent> => {
    await new Promise((resolve) => setImmediate(resolve));
    return events.at(-1) as RequestEvent;
  };

  test('TCP: the peer address and the listener name pick the client', async () => {
    expect(await get({ port: tcpPort }, '/_ping')).toEqual({ status: 200, body: 'OK' });
    expect(await lastEvent()).toMatchObject({ allowed: true, client: 'local', address: '127.0.0.1', listener: 'tcp' });
  });

  test('a unix socket: the listener alone', async () => {
    expect((await get({ socketPath: roSocket }, '/_ping')).status).toBe(403);
    expect(await lastEvent()).toMatchObject({ allowed: false, client: 'ro', rule: 'default-deny', listener: 'ro' });
    expect((await lastEvent()).address).toBeUndefined();
    expect((await get({ socketPath: roSocket }, '/version')).status).toBe(200);
  });

  test('a server without a listener name, on a unix socket: no client information, refused', async () => {
    const answer = await get({ socketPath: join(dir, 'anonymous.sock') }, '/_ping', { 'X-Forwarded-For': '127.0.0.1' });
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.body)).toEqual({
      message: 'docker-socket-filter denied GET /_ping: no client matches a request without client information (no peer address, no listener)',
    });
    expect(await lastEvent()).toMatchObject({ rule: 'clients' });
    expect((await lastEvent()).client).toBeUndefined();
  });

  test('an update applies to the next request on the same connection pool', async () => {
    filter.update({ clients: [{ name: 'ro', match: { listener: 'ro' }, policy: tecnativaPreset({}) }] });
    expect((await get({ socketPath: roSocket }, '/_ping')).status).toBe(200);
    expect((await get({ port: tcpPort }, '/_ping')).status).toBe(403);
  });

  test('a bad listener name is refused at creation', () => {
    expect(() => createFilterServer(filter, { listener: 'a b' })).toThrow('The `listener` option must be 1 to 64 letters');
  });
});
