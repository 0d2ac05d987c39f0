import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Decision } from '../../src/policy/types.js';
import { createFilterServer, createProxy, type RejectEvent } from '../../src/proxy/index.js';
import { httpRequest, rawExchange } from '../helpers/raw-http.js';
import { recordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream.js';

// The library side of the guarantees: createFilterServer around a proxy whose `evaluate` misbehaves,
// in front of a recording fake dockerd.

let directory: string;
let upstream: RecordingUpstream;
const servers: { server: Server; close(): Promise<void> }[] = [];

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'dsf-failclosed-'));
  upstream = await recordingUpstream(directory);
});

afterEach(async () => {
  for (const served of servers.splice(0)) await served.close();
});

afterAll(async () => {
  await upstream.close();
  await rm(directory, { recursive: true, force: true });
});

async function serveProxy(evaluate: (method: string, target: string) => Decision, options: Parameters<typeof createFilterServer>[1] = {}) {
  const proxy = createProxy({ evaluate, socketPath: upstream.socketPath });
  const server = createFilterServer(proxy, options);
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const served = {
    server,
    port: (server.address() as AddressInfo).port,
    async close() {
      const closed = new Promise((resolve) => server.close(resolve));
      for (const socket of sockets) socket.destroy();
      await proxy.close();
      await closed;
    },
  };
  servers.push(served);
  return served;
}

describe('an evaluate that fails', () => {
  it('throwing: the request is refused with 403 (plain and upgrade), nothing is forwarded, the server lives on', async () => {
    const before = upstream.requests.length;
    const { port } = await serveProxy(() => {
      throw new Error('policy bug');
    });
    const plain = await rawExchange(port, httpRequest('GET', '/_ping', { Connection: 'close' }));
    expect(plain.statuses).toEqual([403]);
    expect(plain.text).toContain('{"message":"docker-socket-filter failed to decide on this request, so it is refused"}');
    const upgrade = await rawExchange(
      port,
      httpRequest('POST', '/v1.41/containers/x/attach', { Connection: 'Upgrade', Upgrade: 'tcp', 'Content-Length': '0' }),
    );
    expect(upgrade.statuses).toEqual([403]);
    expect(upstream.requests.length).toBe(before);
  });

  it('allowing without a path: refused with 400, nothing is forwarded', async () => {
    const before = upstream.requests.length;
    const { port } = await serveProxy(() => ({ allowed: true, status: 200, rule: 'x', reason: 'allowed', path: null }));
    expect((await rawExchange(port, httpRequest('GET', '/_ping', { Connection: 'close' }))).statuses).toEqual([400]);
    expect(upstream.requests.length).toBe(before);
  });
});

describe('FORCE_FETCH_PATH', () => {
  // http-proxy-3 (used before the forwarder was written on node:http) sent requests with fetch to
  // http://localhost:80 when this was set, ignoring the socket path, X-Registry-Auth included. The
  // forwarder only ever connects to the socket path: the variable changes nothing.
  it('has no effect: allowed requests still go to the socket, and only there', async () => {
    const before = upstream.requests.length;
    const { port } = await serveProxy((_method, target) => ({ allowed: true, status: 200, rule: 'x', reason: 'allowed', path: target }));
    process.env.FORCE_FETCH_PATH = 'true';
    try {
      const served = await rawExchange(port, httpRequest('GET', '/v1.41/containers/json', { 'X-Registry-Auth': 'c2VjcmV0', Connection: 'close' }));
      expect(served.statuses).toEqual([200]);
    } finally {
      delete process.env.FORCE_FETCH_PATH;
    }
    expect(upstream.requests.length).toBe(before + 1);
  });
});

describe('createFilterServer', () => {
  const allowAll = (_method: string, target: string): Decision => ({ allowed: true, status: 200, rule: 'test', reason: 'allowed', path: target });

  it('validates its options once, naming the option', () => {
    const proxy = createProxy({ evaluate: allowAll, socketPath: upstream.socketPath });
    for (const [options, name] of [
      [{ headersTimout: 1 }, 'headersTimout'],
      [{ headersTimeout: 0 }, 'headersTimeout'],
      [{ maxHeaderSize: 10 }, 'maxHeaderSize'],
      [{ maxConnections: -1 }, 'maxConnections'],
      [{ keepAliveTimeout: 1.5 }, 'keepAliveTimeout'],
      [{ onReject: 'log' }, 'onReject'],
    ] as const) {
      expect(() => createFilterServer(proxy, options as never)).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_DSF_INVALID_OPTION', message: expect.stringContaining(`\`${name}\``) }));
    }
  });

  it('tells onReject about what it refuses before the filter; a throwing listener changes nothing', async () => {
    const events: RejectEvent[] = [];
    const { port } = await serveProxy(allowAll, {
      onReject: (event) => {
        events.push(event);
        throw new Error('logger bug');
      },
    });
    expect((await rawExchange(port, httpRequest('GET', '/_ping', { 'X-Big': 'a'.repeat(20_000) }))).statuses).toEqual([431]);
    expect((await rawExchange(port, 'GET /_ping HTTP/1.1\r\nHost: x\r\nBad\0Header: y\r\n\r\n')).statuses).toEqual([400]);
    expect(events).toEqual([
      { status: 431, reason: 'The request headers are too large' },
      { status: 400, reason: 'The request could not be parsed as HTTP/1.1' },
    ]);
    expect((await rawExchange(port, httpRequest('GET', '/_ping', { Connection: 'close' }))).statuses).toEqual([200]);
  });

  it('a shorter header timeout and a smaller head limit are honoured', async () => {
    const { port } = await serveProxy(allowAll, { headersTimeout: 1_000, maxHeaderSize: 2_048 });
    const started = performance.now();
    const silent = await rawExchange(port, 'GET /_ping HTTP/1.1\r\n', { timeoutMs: 5_000 });
    expect(silent.statuses).toEqual([408]);
    expect(performance.now() - started).toBeLessThan(3_000);
    expect((await rawExchange(port, httpRequest('GET', '/_ping', { 'X-Big': 'a'.repeat(3_000) }))).statuses).toEqual([431]);
  });
});
