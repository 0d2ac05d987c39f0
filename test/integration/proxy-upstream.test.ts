import { get, request, type IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProxy } from '../../src/proxy/index.js';
import { createSocketFilter, tecnativaPreset } from '../../src/index.js';
import { allowAll, fakeProxies, type FakeDockerd } from '../helpers/fake-dockerd.js';
import { serve, type ServedFilter } from '../helpers/filter-server.js';
import { httpRequest, rawExchange } from '../helpers/raw-http.js';

// These tests put a scripted fake dockerd behind the proxy to reach the failure modes a real one
// does not produce on demand. The policy is a stand-in that allows everything as received.

function getResponse(port: number, path: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, agent: false }, resolve).on('error', reject);
  });
}

function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => (text += chunk));
    res.on('end', () => resolve(text));
    res.on('error', reject);
  });
}

describe('the proxy against a scripted fake dockerd', () => {
  let fake: FakeDockerd;
  let served: ServedFilter;
  const proxies = fakeProxies('dsf-fake-');

  async function setup(evaluate = allowAll): Promise<void> {
    ({ fake, served } = await proxies.start(evaluate));
  }

  it('forwards exactly the decided path: no re-parsing of `..`, `\\` or percent-escapes', async () => {
    await setup();
    fake.onRequest = (socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    const targets = [
      '/v1.41/containers/json?filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D&all=1',
      '/a/%2e%2e/b/%2F/c',
      '/a/b\\..\\c',
      '/a/./b/../c?x=../y&z=%00',
    ];
    for (const target of targets) {
      const res = await getResponse(served.port, target);
      expect(await readAll(res)).toBe('ok');
    }
    expect(fake.heads.map((head) => head.split('\r\n')[0])).toEqual(targets.map((t) => `GET ${t} HTTP/1.1`));
  });

  it('forwards the decision path, not the received target', async () => {
    await setup((method, target) => ({ ...allowAll(method, target), path: '/v1.41/_ping' }));
    fake.onRequest = (socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK');
    await readAll(await getResponse(served.port, '/v1.41/../_ping'));
    expect(fake.heads[0]?.split('\r\n')[0]).toBe('GET /v1.41/_ping HTTP/1.1');
  });

  it('a decided path that cannot be sent (a space) gives 502, nothing is sent, and the proxy lives on', async () => {
    await setup((method, target) => ({ ...allowAll(method, target), path: target === '/bad' ? '/a b' : target }));
    fake.onRequest = (socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK');
    const failed = await getResponse(served.port, '/bad');
    expect(failed.statusCode).toBe(502);
    await readAll(failed);
    expect(await readAll(await getResponse(served.port, '/_ping'))).toBe('OK');
  });

  it('sends the response head at once when dockerd sends a head and then nothing (wait)', async () => {
    await setup();
    fake.onRequest = (socket) =>
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
    const started = Date.now();
    const res = await getResponse(served.port, '/v1.41/containers/x/wait');
    expect(res.statusCode).toBe(200);
    expect(Date.now() - started).toBeLessThan(2_000);
    res.destroy();
  });

  it('keeps a silent stream open past Node keep-alive and header timeouts, then relays it', async () => {
    await setup();
    fake.onRequest = (socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
      setTimeout(() => socket.write('6\r\nevent1\r\n0\r\n\r\n'), 6_000);
    };
    const res = await getResponse(served.port, '/v1.41/events');
    expect(await readAll(res)).toBe('event1');
  }, 20_000);

  it('a client that goes away aborts the upstream request', async () => {
    await setup();
    fake.onRequest = (socket) =>
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
    const res = await getResponse(served.port, '/v1.41/events');
    await new Promise((resolve) => res.once('data', resolve));
    const upstreamsBefore = fake.closed.length;
    res.destroy();
    await expect.poll(() => fake.closed.length, { timeout: 3_000 }).toBeGreaterThan(upstreamsBefore);
  });

  it('dockerd dying mid-response breaks the client stream instead of ending it cleanly', async () => {
    await setup();
    fake.onRequest = (socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial');
      setTimeout(() => socket.destroy(), 100);
    };
    const res = await getResponse(served.port, '/v1.41/images/x/get');
    expect(res.statusCode).toBe(200);
    await expect(readAll(res)).rejects.toThrow();
  });

  it('dockerd closing without an answer gives 502 JSON, and the proxy keeps serving', async () => {
    await setup();
    let calls = 0;
    fake.onRequest = (socket) => {
      calls += 1;
      if (calls === 1) socket.destroy();
      else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK');
    };
    const failed = await getResponse(served.port, '/_ping');
    expect(failed.statusCode).toBe(502);
    expect(failed.headers['content-type']).toBe('application/json');
    expect(JSON.parse(await readAll(failed))).toMatchObject({ message: expect.stringContaining('Docker daemon') });
    const ok = await getResponse(served.port, '/_ping');
    expect(await readAll(ok)).toBe('OK');
  });

  it('an upgrade whose dockerd closes without answering gets 502 JSON', async () => {
    await setup();
    fake.onRequest = (socket) => socket.destroy();
    const exchange = await rawExchange(
      served.port,
      httpRequest('POST', '/v1.41/exec/x/start', { Connection: 'Upgrade', Upgrade: 'tcp', 'Content-Length': '0' }),
    );
    expect(exchange.statuses).toEqual([502]);
    expect(exchange.text).toContain('"message"');
  });

  it('the request body of an upgrade reaches dockerd before its answer; then both ways are joined', async () => {
    await setup();
    let received = '';
    fake.onRequest = (socket, head, rest) => {
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
      const take = (text: string) => {
        received += text;
        if (received.length === length) socket.write('HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nhello ');
        if (received.endsWith('ping')) socket.end('pong');
      };
      socket.on('data', (chunk: Buffer) => take(chunk.toString('latin1')));
      take(rest);
      return 'raw';
    };
    const body = '{"Detach":false,"Tty":true}';
    const exchange = await rawExchange(
      served.port,
      [httpRequest('POST', '/v1.41/exec/x/start', { Connection: 'Upgrade', Upgrade: 'tcp', 'Content-Length': String(body.length) }, body), 'ping'],
      { gapMs: 100, until: (text) => text.endsWith('pong') },
    );
    expect(fake.heads[0]).toMatch(/^POST \/v1.41\/exec\/x\/start HTTP\/1.1\r\n/);
    // Exactly `Connection: Upgrade` and the client's `Upgrade` (Podman answers 101 to nothing else).
    expect(fake.heads[0]).toMatch(/\r\nConnection: Upgrade\r\nUpgrade: tcp$/);
    expect(fake.heads[0]?.match(/^(connection|upgrade):/gim)).toHaveLength(2);
    expect(received).toBe(`${body}ping`);
    expect(exchange.statuses).toEqual([101]);
    expect(exchange.text.endsWith('hello pong')).toBe(true);
  });

  it('an h2c session (BuildKit) whose client never reads holds dockerd back: backpressure on the joined stream', async () => {
    await setup();
    let written = 0;
    let stop = false;
    fake.onRequest = (socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
      // dockerd speaking HTTP/2 as fast as the client takes it: 200 MB if nothing holds it back.
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      const pump = (): void => {
        while (!stop && written < 200 * 1024 * 1024) {
          written += chunk.length;
          if (!socket.write(chunk)) {
            socket.once('drain', pump);
            return;
          }
        }
      };
      pump();
      return 'raw';
    };
    const { connect } = await import('node:net');
    const client = connect({ host: '127.0.0.1', port: served.port });
    await new Promise((resolve) => client.once('connect', resolve));
    client.pause();
    client.write(httpRequest('POST', '/v1.41/session', { Connection: 'Upgrade', Upgrade: 'h2c', 'Content-Length': '0' }));
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    stop = true;
    // What the kernel buffers on both sides and the guard's bounded relay buffers: a few MB, not 200.
    expect(written).toBeLessThan(32 * 1024 * 1024);
    expect(written).toBeGreaterThan(0);
    client.destroy();
  });

  it('close() ends hijacked streams and open responses, then refuses with 503', async () => {
    await setup();
    fake.onRequest = (socket) =>
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
    const res = await getResponse(served.port, '/v1.41/events');
    const ended = new Promise((resolve) => res.on('close', resolve));
    const proxy = createProxy({ evaluate: allowAll, socketPath: fake.socketPath });
    const closedServed = await serve(proxy);
    try {
      await served.close();
      await ended;
      await proxy.close();
      const refused = await getResponse(closedServed.port, '/_ping');
      expect(refused.statusCode).toBe(503);
    } finally {
      await closedServed.close();
    }
  });
});

describe('dockerd unreachable', () => {
  let served: ServedFilter;
  beforeAll(async () => {
    served = await serve(
      createSocketFilter({ policy: tecnativaPreset({}), socketPath: '/tmp/dsf-nonexistent/docker.sock' }),
    );
  });
  afterAll(async () => {
    await served.close();
  });

  it('answers 502 with a Docker-style JSON message; the docker CLI-facing shape is kept', async () => {
    const res = await getResponse(served.port, '/_ping');
    expect(res.statusCode).toBe(502);
    expect(res.headers['content-type']).toBe('application/json');
    const body = JSON.parse(await readAll(res)) as { message: string };
    expect(body.message).toMatch(/Docker daemon is unreachable/);
    expect(body.message).not.toContain('/tmp/dsf-nonexistent');
  });

  it('a denied request is still answered 403 without touching dockerd', async () => {
    const res = await new Promise<IncomingMessage>((resolve, reject) =>
      request({ host: '127.0.0.1', port: served.port, method: 'POST', path: '/v1.41/containers/create', agent: false }, resolve)
        .on('error', reject)
        .end(),
    );
    expect(res.statusCode).toBe(403);
    await readAll(res);
  });
});
