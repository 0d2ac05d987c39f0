import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { REDACTED } from '../../src/index.js';
import type { Decision, ResponseRewrite } from '../../src/policy/types.js';
import { MAX_EVENT_BYTES, MAX_REWRITTEN_BYTES } from '../../src/proxy/read-sinks.js';
import { allowAll, fakeProxies } from '../helpers/fake-dockerd.js';

// The proxy half of the response obligations against a scripted dockerd: what a real one does not
// produce on demand (answers split anywhere, over-long, not JSON). test/integration/visibility.test.ts
// runs the same against the real dockerd.

const rewriting = (response: ResponseRewrite) => (method: string, target: string): Decision => ({
  ...allowAll(method, target),
  obligations: { response },
});

const DOCKERD_HEADERS = 'Api-Version: 1.41\r\nContent-Type: application/json\r\nDocker-Experimental: false\r\nOstype: linux\r\nServer: Docker/20.10.24+dfsg1 (linux)\r\n';

function get(port: number, path: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string; error?: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (error) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), error: error.message }));
      res.on('close', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), error: 'closed' }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Writes `text` as chunked body pieces of `size` characters, then the last chunk. */
function chunked(socket: Socket, text: string, size: number, end = true): void {
  for (let index = 0; index < text.length; index += size) {
    const piece = Buffer.from(text.slice(index, index + size), 'utf8');
    socket.write(`${piece.length.toString(16)}\r\n`);
    socket.write(piece);
    socket.write('\r\n');
  }
  if (end) socket.write('0\r\n\r\n');
}

describe('a rewritten JSON answer is framed as dockerd frames it', () => {
  const proxies = fakeProxies('dsf-read-');
  const inspectText = '{"Id":"abc","Config":{"Env":["DB_PASSWORD=hunter2","PLAIN"],"Labels":{"a":"b"}},"Memory":9223372036854775807}';

  it('dockerd’s status, headers, a correct length, the value redacted, big numbers kept, whatever the chunks', async () => {
    const { fake, served } = await proxies.start(rewriting({ kind: 'container-inspect', redactEnv: true }));
    fake.onRequest = (socket) => {
      socket.write(`HTTP/1.1 200 OK\r\n${DOCKERD_HEADERS}Date: x\r\nTransfer-Encoding: chunked\r\n\r\n`);
      chunked(socket, `${inspectText}\n`, 7);
    };
    const answer = await get(served.port, '/v1.41/containers/abc/json');
    expect(answer.status).toBe(200);
    expect(answer.body).toBe(`{"Id":"abc","Config":{"Env":["DB_PASSWORD=${REDACTED}","PLAIN"],"Labels":{"a":"b"}},"Memory":9223372036854775807}\n`);
    expect(answer.headers['content-length']).toBe(String(Buffer.byteLength(answer.body)));
    expect(answer.headers).toMatchObject({ 'api-version': '1.41', 'content-type': 'application/json', 'docker-experimental': 'false', ostype: 'linux', server: 'Docker/20.10.24+dfsg1 (linux)' });
    expect(answer.headers['transfer-encoding']).toBeUndefined();
  });

  it('an answer with a length is rewritten too, and the connection is reused after it', async () => {
    const { fake, served } = await proxies.start(rewriting({ kind: 'container-inspect', redactEnv: true }));
    fake.onRequest = (socket) => {
      const body = `${inspectText}\n`;
      socket.write(`HTTP/1.1 200 OK\r\n${DOCKERD_HEADERS}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    };
    for (let round = 0; round < 3; round++) {
      const answer = await get(served.port, '/v1.41/containers/abc/json');
      expect(answer.body).not.toContain('hunter2');
      expect(Number(answer.headers['content-length'])).toBe(Buffer.byteLength(answer.body));
    }
    expect(new Set(fake.connectionOfHead)).toEqual(new Set([1]));
  });

  it('an error answer passes untouched', async () => {
    const { fake, served } = await proxies.start(rewriting({ kind: 'container-inspect', redactEnv: true }));
    const body = '{"message":"No such container: abc"}\n';
    fake.onRequest = (socket) => socket.write(`HTTP/1.1 404 Not Found\r\n${DOCKERD_HEADERS}Content-Length: ${body.length}\r\n\r\n${body}`);
    const answer = await get(served.port, '/v1.41/containers/abc/json');
    expect(answer).toMatchObject({ status: 404, body });
  });

  it('an answer that is not JSON gets 502', async () => {
    const { fake, served } = await proxies.start(rewriting({ kind: 'container-list', redactEnv: false, labels: [{ key: 'a' }] }));
    fake.onRequest = (socket) => socket.write(`HTTP/1.1 200 OK\r\n${DOCKERD_HEADERS}Content-Length: 4\r\n\r\n[1,2`);
    const answer = await get(served.port, '/v1.41/containers/json');
    expect(answer.status).toBe(502);
    expect(JSON.parse(answer.body)).toEqual({ message: expect.stringContaining('not valid JSON') });
    expect(answer.body).not.toContain('[1,2');
  });

  it(`an answer over ${MAX_REWRITTEN_BYTES} bytes gets 502, and its connection is dropped`, async () => {
    // A budget above the bound, so that the bound is what refuses it.
    const { fake, served } = await proxies.start(rewriting({ kind: 'container-list', redactEnv: true, labels: [{ key: 'a' }] }), {
      maxHeldBytes: 2 * MAX_REWRITTEN_BYTES,
    });
    fake.onRequest = (socket) => {
      socket.write(`HTTP/1.1 200 OK\r\n${DOCKERD_HEADERS}Transfer-Encoding: chunked\r\n\r\n`);
      const piece = `[${'"x",'.repeat(256 * 1024)}`;
      let sent = 0;
      const more = (): void => {
        while (sent <= MAX_REWRITTEN_BYTES && !socket.destroyed) {
          sent += piece.length;
          if (!socket.write(`${piece.length.toString(16)}\r\n${piece}\r\n`)) {
            socket.once('drain', more);
            return;
          }
        }
      };
      more();
    };
    const answer = await get(served.port, '/v1.41/containers/json');
    expect(answer.status).toBe(502);
    expect(JSON.parse(answer.body)).toEqual({ message: expect.stringContaining(`larger than ${MAX_REWRITTEN_BYTES} bytes`) });
    await expect.poll(() => fake.closed.length).toBeGreaterThan(0);
  });
});

/** A JSON inspect of about `bytes` bytes: its size is in a label. */
const bigInspect = (bytes: number): string => `{"Id":"abc","Config":{"Env":["DB_PASSWORD=hunter2"],"Labels":{"big":"${'x'.repeat(bytes)}"}}}\n`;

/** Answers every request with `body`, chunked in pieces of 64 KiB, as dockerd writes a big answer. */
function answerChunked(body: string): (socket: Socket) => void {
  return (socket) => {
    socket.write(`HTTP/1.1 200 OK\r\n${DOCKERD_HEADERS}Transfer-Encoding: chunked\r\n\r\n`);
    let offset = 0;
    const more = (): void => {
      while (offset < body.length && !socket.destroyed) {
        const piece = body.slice(offset, offset + 64 * 1024);
        offset += piece.length;
        if (!socket.write(`${piece.length.toString(16)}\r\n${piece}\r\n${offset >= body.length ? '0\r\n\r\n' : ''}`)) {
          socket.once('drain', more);
          return;
        }
      }
    };
    more();
  };
}

/** Sends a request head on a raw connection that never reads its answer. */
function neverReads(port: number, path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.pause();
      socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

describe('the budget of held bytes', () => {
  const proxies = fakeProxies('dsf-read-held-');
  const sockets: Socket[] = [];
  afterEach(() => {
    for (const socket of sockets.splice(0)) socket.destroy();
  });

  it('an answer that does not fit gets 503 naming the setting, before any of it is sent; dockerd’s exchange is dropped and the budget given back', async () => {
    const { fake, served, proxy } = await proxies.start(rewriting({ kind: 'container-inspect', redactEnv: true }), { maxHeldBytes: 1024 * 1024 });
    fake.onRequest = answerChunked(bigInspect(2 * 1024 * 1024));
    const answer = await get(served.port, '/v1.41/containers/abc/json');
    expect(answer.status).toBe(503);
    expect(JSON.parse(answer.body)).toEqual({
      message: 'docker-socket-filter is saturated: this request needs more than the 1 MiB it holds at most for checked request bodies and rewritten answers (maxHeldBytes, MAX_HELD_BYTES); raise it',
    });
    expect(answer.body).not.toContain('xxxx');
    await expect.poll(() => fake.closed.length).toBeGreaterThan(0);
    expect(proxy.heldStats()).toEqual({ held: 0, max: 1024 * 1024, refused: 1 });
  });

  it('while other answers hold the budget, one more gets 503 (retry later); once they are read, it fits', async () => {
    const { fake, served, proxy } = await proxies.start(rewriting({ kind: 'container-inspect', redactEnv: true }), { maxHeldBytes: 20 * 1024 * 1024 });
    fake.onRequest = answerChunked(bigInspect(12 * 1024 * 1024));
    // A client that never reads holds its 12 MiB answer: the kernel's buffers take only part of it.
    sockets.push(await neverReads(served.port, '/v1.41/containers/abc/json'));
    await expect.poll(() => proxy.heldStats().held, { timeout: 10_000 }).toBeGreaterThan(12 * 1024 * 1024);
    const refused = await get(served.port, '/v1.41/containers/abc/json');
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body).message).toMatch(/^docker-socket-filter is saturated: the 20 MiB it holds at most .* \(maxHeldBytes, MAX_HELD_BYTES\) are in use; retry later$/);
    for (const socket of sockets.splice(0)) socket.destroy();
    await expect.poll(() => proxy.heldStats().held).toBe(0);
    const served2 = await get(served.port, '/v1.41/containers/abc/json');
    expect(served2.status).toBe(200);
    expect(served2.body.length).toBeGreaterThan(12 * 1024 * 1024);
    expect(served2.body).not.toContain('hunter2');
    expect(Number(served2.headers['content-length'])).toBe(Buffer.byteLength(served2.body));
    await expect.poll(() => proxy.heldStats().held).toBe(0);
  });

  it('a client that reads nothing of a held answer is cut after uploadIdleTimeoutMs, and the budget is given back', async () => {
    const { fake, served, proxy } = await proxies.start(rewriting({ kind: 'container-inspect', redactEnv: true }), { uploadIdleTimeoutMs: 500 });
    fake.onRequest = answerChunked(bigInspect(14 * 1024 * 1024));
    const socket = await neverReads(served.port, '/v1.41/containers/abc/json');
    sockets.push(socket);
    await expect.poll(() => proxy.heldStats().held, { timeout: 10_000 }).toBeGreaterThan(14 * 1024 * 1024);
    await expect.poll(() => proxy.heldStats().held, { timeout: 10_000 }).toBe(0);
    // The guard closed its side: the client, reading at last, gets part of the answer and an end.
    const got = await new Promise<number>((resolve) => {
      let length = 0;
      socket.on('data', (chunk: Buffer) => (length += chunk.length));
      socket.once('close', () => resolve(length));
      socket.resume();
    });
    expect(got).toBeLessThan(14 * 1024 * 1024);
  });

  it('a client that reads slowly, pausing less than uploadIdleTimeoutMs, gets the whole answer', async () => {
    const { fake, served, proxy } = await proxies.start(rewriting({ kind: 'container-inspect', redactEnv: true }), { uploadIdleTimeoutMs: 2_000 });
    const body = bigInspect(14 * 1024 * 1024);
    fake.onRequest = answerChunked(body);
    const socket = await neverReads(served.port, '/v1.41/containers/abc/json');
    sockets.push(socket);
    const received = await new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      let length = 0;
      socket.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        length += chunk.length;
        // A pause after every 4 MiB, each shorter than the idle timeout.
        if (Math.floor((length - chunk.length) / (4 << 20)) !== Math.floor(length / (4 << 20))) {
          socket.pause();
          setTimeout(() => socket.resume(), 300);
        }
        const text = Buffer.concat(chunks).toString('latin1');
        const end = text.indexOf('\r\n\r\n');
        const declared = /content-length: (\d+)/i.exec(text);
        if (end !== -1 && declared !== null && length >= end + 4 + Number(declared[1])) resolve(Buffer.concat(chunks).subarray(end + 4));
      });
      socket.resume();
    });
    expect(received.toString('utf8')).toBe(body.replace('hunter2', REDACTED));
    await expect.poll(() => proxy.heldStats().held).toBe(0);
  });

  it('a visible container’s inspect that does not fit gets 503, and nothing is forwarded', async () => {
    const { fake, served, proxy } = await proxies.start(
      (method, target) => ({ ...allowAll(method, target), obligations: { visible: { kind: 'container', id: 'abc', labels: [{ key: 'big' }] } } }),
      { maxHeldBytes: 1024 * 1024 },
    );
    fake.onRequest = answerChunked(bigInspect(2 * 1024 * 1024));
    const answer = await get(served.port, '/v1.41/containers/abc/json');
    expect(answer.status).toBe(503);
    expect(JSON.parse(answer.body).message).toContain('(maxHeldBytes, MAX_HELD_BYTES)');
    expect(fake.heads.map((head) => head.split('\r\n')[0])).toEqual(['GET /v1.41/containers/abc/json HTTP/1.1']);
    await expect.poll(() => proxy.heldStats().held).toBe(0);
  });
});

describe('a lookup dockerd cannot answer', () => {
  const proxies = fakeProxies('dsf-read-lk-');
  it('gets 502, and nothing is forwarded', async () => {
    const { fake, served } = await proxies.start((method, target) => ({
      ...allowAll(method, target),
      obligations: { visible: { kind: 'container', id: 'web', labels: [{ key: 'a' }] } },
    }));
    fake.onRequest = (socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc');
    const answer = await get(served.port, '/v1.41/containers/web/logs');
    expect(answer.status).toBe(502);
    expect(fake.heads.map((head) => head.split('\r\n')[0])).toEqual(['GET /containers/web/json HTTP/1.1']);
  });
});

describe('lookups', () => {
  const proxies = fakeProxies('dsf-read-ka-');
  it('reuse their connection, and survive dockerd closing it', async () => {
    const { fake, served } = await proxies.start((method, target) => ({
      ...allowAll(method, target),
      obligations: { visible: { kind: 'container', id: 'web', labels: [{ key: 'a' }] } },
    }));
    const sockets = new Set<Socket>();
    fake.onRequest = (socket, head) => {
      sockets.add(socket);
      const body = head.startsWith('GET /containers/web/json') ? '{"Id":"0123abc","Config":{"Labels":{"a":"1"}}}\n' : 'logs';
      socket.write(`HTTP/1.1 200 OK\r\n${DOCKERD_HEADERS}Content-Length: ${body.length}\r\n\r\n${body}`);
    };
    for (let round = 0; round < 3; round++) expect((await get(served.port, '/v1.41/containers/web/logs')).body).toBe('logs');
    const lookups = fake.heads.flatMap((head, index) => (head.startsWith('GET /containers/web/json') ? [fake.connectionOfHead[index]] : []));
    expect(lookups).toHaveLength(3);
    expect(new Set(lookups).size).toBe(1);
    // The forwarded requests went by the full ID.
    expect(fake.heads.filter((head) => head.startsWith('GET /v1.41/containers/0123abc/logs'))).toHaveLength(3);
    // dockerd restarted: its connections are gone; the next request gets through.
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await get(served.port, '/v1.41/containers/web/logs')).body).toBe('logs');
  });
});

describe('the events stream is rewritten one event at a time', () => {
  const proxies = fakeProxies('dsf-read-ev-');
  const labels = [{ key: 'traefik.enable', value: 'true' }];
  const event = (name: string, labelled: boolean, action = 'start'): string =>
    `${JSON.stringify({ status: action, id: name, Type: 'container', Action: action, Actor: { ID: name, Attributes: { name, ...(labelled ? { 'traefik.enable': 'true' } : {}) } } }).slice(0, -1)},"timeNano":1796119608483224751}`;

  it('drops hidden containers’ events and cuts exec command lines, while streaming', async () => {
    const { fake, served } = await proxies.start(rewriting({ kind: 'events', redactEnv: true, labels }));
    let stream: Socket | undefined;
    fake.onRequest = (socket) => {
      stream = socket;
      socket.write(`HTTP/1.1 200 OK\r\n${DOCKERD_HEADERS}Transfer-Encoding: chunked\r\n\r\n`);
      // Lines split across chunks at odd places, a multi-byte character across a split.
      chunked(socket, `${event('web', true)}\n${event('secret-db', false)}\n${event('web', true, 'exec_create: sh -c echo DB_PASSWORD=x')}\n`, 13, false);
      chunked(socket, `${event('wéb', true)}\n`, 3, false);
    };
    const received: string[] = [];
    const done = new Promise<void>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: served.port, path: '/v1.41/events', agent: false }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => {
          text += chunk.toString('utf8');
          const lines = text.split('\n');
          text = lines.pop() as string;
          received.push(...lines);
          // Streaming: three events arrive while dockerd's stream is still open.
          if (received.length === 3) stream?.end('0\r\n\r\n');
        });
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end();
    });
    await done;
    const events = received.map((line) => JSON.parse(line) as { Actor: { ID: string }; Action: string });
    expect(events.map((item) => [item.Actor.ID, item.Action])).toEqual([
      ['web', 'start'],
      ['web', 'exec_create'],
      ['wéb', 'start'],
    ]);
    expect(received.join('\n')).not.toMatch(/secret-db|DB_PASSWORD/);
    // Re-encoded exactly: the 19-digit timeNano is kept.
    expect(received[0]).toBe(event('web', true));
  });

  it('an event that is not JSON, or over the bound, cuts the stream', async () => {
    for (const bad of ['not json\n', `"${'x'.repeat(MAX_EVENT_BYTES + 10)}`]) {
      const { fake, served } = await proxies.start(rewriting({ kind: 'events', redactEnv: false, labels }));
      fake.onRequest = (socket) => {
        socket.write(`HTTP/1.1 200 OK\r\n${DOCKERD_HEADERS}Transfer-Encoding: chunked\r\n\r\n`);
        chunked(socket, `${event('web', true)}\n${bad}`, 64 * 1024, false);
      };
      const answer = await get(served.port, '/v1.41/events');
      expect(answer.status).toBe(200);
      expect(answer.error).toBeDefined();
      expect(answer.body).toBe(`${event('web', true)}\n`);
    }
  });

  it('a refused events request passes untouched', async () => {
    const { fake, served } = await proxies.start(rewriting({ kind: 'events', redactEnv: true, labels }));
    const body = '{"message":"`since` time (2) cannot be after `until` time (1)"}\n';
    fake.onRequest = (socket) => socket.write(`HTTP/1.1 400 Bad Request\r\n${DOCKERD_HEADERS}Content-Length: ${body.length}\r\n\r\n${body}`);
    expect(await get(served.port, '/v1.41/events?since=2&until=1')).toMatchObject({ status: 400, body });
  });
});
