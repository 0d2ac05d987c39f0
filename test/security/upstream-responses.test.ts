// Response desynchronisation: the forwarder reuses connections to dockerd for other clients'
// requests, so a response whose end is in any doubt must never leave bytes behind that the next
// request would read as its answer. A real dockerd does not send malformed answers on demand; a
// scripted fake one does (test/helpers/fake-dockerd.ts).
import { request, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { beforeEach, describe, expect, test } from 'vitest';
import { allowAll, fakeProxies, type FakeDockerd } from '../helpers/fake-dockerd.js';
import type { ServedFilter } from '../helpers/filter-server.js';


interface Answer {
  readonly status: number;
  readonly body: string;
  /** Whether the body ended cleanly (false: the stream was cut). */
  readonly complete: boolean;
}

function send(port: number, method: string, path: string, body?: string | string[]): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (typeof body === 'string') headers['Content-Length'] = String(Buffer.byteLength(body));
    if (Array.isArray(body)) headers['Transfer-Encoding'] = 'chunked';
    const req = request({ host: '127.0.0.1', port, method, path, agent: false, headers }, (res: IncomingMessage) => {
      let text = '';
      res.setEncoding('latin1');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, complete: true }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body: text, complete: false }));
    });
    req.on('error', reject);
    if (Array.isArray(body)) for (const piece of body) req.write(piece);
    else if (body !== undefined) req.write(body);
    req.end();
  });
}

/** The fake answers every request on a connection after the first with its own path as the body. */
function echoPath(socket: Socket, head: string): void {
  const path = (head.split(' ')[1] as string) ?? '';
  socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`);
}

describe('dockerd answers the forwarder cannot trust', () => {
  let fake: FakeDockerd;
  let served: ServedFilter;
  const proxies = fakeProxies('dsf-desync-');

  async function setup(first: (socket: Socket, head: string) => unknown): Promise<void> {
    ({ fake, served } = await proxies.start(allowAll));
    let answered = 0;
    fake.onRequest = (socket, head) => {
      answered += 1;
      if (answered === 1) return first(socket, head);
      echoPath(socket, head);
      return undefined;
    };
  }

  test('a well-framed answer leaves its connection to the next request (the baseline)', async () => {
    await setup((socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK'));
    expect(await send(served.port, 'GET', '/a')).toEqual({ status: 200, body: 'OK', complete: true });
    expect(await send(served.port, 'GET', '/b')).toEqual({ status: 200, body: '/b', complete: true });
    expect(fake.connectionOfHead).toEqual([1, 1]);
  });

  test.each<[string, string]>([
    ['bytes past Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOKHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nSECRET'],
    ['bytes past the last chunk', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nOK\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nSECRET'],
    ['a body on a 204', 'HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nSECRET'],
  ])('%s are never read as the next client’s answer', async (_name, wire) => {
    await setup((socket) => socket.write(wire));
    const first = await send(served.port, 'GET', '/a');
    expect(first.body).not.toContain('SECRET');
    const second = await send(served.port, 'GET', '/b');
    expect(second).toEqual({ status: 200, body: '/b', complete: true });
    // The first connection was closed, not reused.
    expect(fake.connectionOfHead).toEqual([1, 2]);
  });

  test.each<[string, string]>([
    ['two different lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 8\r\n\r\nOKSECRET'],
    ['a length and chunked', 'HTTP/1.1 200 OK\r\nContent-Length: 8\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nOK\r\n0\r\n\r\n'],
    ['an interim 100', 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK'],
    ['a 101 to a plain request', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\nraw'],
    ['a folded header', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n Content-Length: 2\r\n\r\nOK'],
    ['a bare LF inside the head', 'HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 2\r\n\r\nOK'],
    ['a status line that is not HTTP/1.x', 'HTTP/2 200 OK\r\nContent-Length: 2\r\n\r\nOK'],
    ['a head over 64 KiB', `HTTP/1.1 200 OK\r\nX-A: ${'a'.repeat(70_000)}\r\nContent-Length: 2\r\n\r\nOK`],
  ])('%s: 502 before anything is relayed, and the connection is not reused', async (_name, wire) => {
    await setup((socket) => socket.write(wire));
    const first = await send(served.port, 'GET', '/a');
    expect(first.status).toBe(502);
    expect(JSON.parse(first.body)).toMatchObject({ message: expect.stringContaining('Docker daemon') });
    expect(await send(served.port, 'GET', '/b')).toEqual({ status: 200, body: '/b', complete: true });
    expect(fake.connectionOfHead).toEqual([1, 2]);
  });

  test.each<[string, string]>([
    ['an invalid chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nOK\r\nzz\r\n'],
    ['chunk data longer than its size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nOKSECRET\r\n0\r\n\r\n'],
  ])('%s after the head: the client stream is cut, and the connection is not reused', async (_name, wire) => {
    await setup((socket) => socket.write(wire));
    const first = await send(served.port, 'GET', '/a');
    expect(first.status).toBe(200);
    expect(first.complete).toBe(false);
    expect(first.body).not.toContain('SECRET');
    expect(await send(served.port, 'GET', '/b')).toEqual({ status: 200, body: '/b', complete: true });
    expect(fake.connectionOfHead).toEqual([1, 2]);
  });

  test('chunks arriving after the head was flushed, with the last chunk in the same read, reach the client in order', async () => {
    await setup((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
      setTimeout(() => socket.write('3\r\none\r\n3\r\ntwo\r\n5\r\nthree\r\n0\r\n\r\n'), 100);
    });
    expect(await send(served.port, 'GET', '/a')).toEqual({ status: 200, body: 'onetwothree', complete: true });
    expect(await send(served.port, 'GET', '/b')).toEqual({ status: 200, body: '/b', complete: true });
    expect(fake.connectionOfHead).toEqual([1, 1]);
  });

  test('`Connection: close` from dockerd: the answer is relayed, the connection is not reused', async () => {
    await setup((socket) => socket.write('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nOK'));
    expect(await send(served.port, 'GET', '/a')).toEqual({ status: 200, body: 'OK', complete: true });
    expect(await send(served.port, 'GET', '/b')).toEqual({ status: 200, body: '/b', complete: true });
    expect(fake.connectionOfHead).toEqual([1, 2]);
  });

  test('an answer without a length is read until dockerd closes, and its connection is not reused', async () => {
    await setup((socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close'));
    expect(await send(served.port, 'GET', '/a')).toEqual({ status: 200, body: 'until close', complete: true });
    expect(await send(served.port, 'GET', '/b')).toEqual({ status: 200, body: '/b', complete: true });
    expect(fake.connectionOfHead).toEqual([1, 2]);
  });

  test('a HEAD answer has no body whatever its Content-Length says, and the connection is reused', async () => {
    await setup((socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n'));
    const head = await send(served.port, 'HEAD', '/a');
    expect(head).toEqual({ status: 200, body: '', complete: true });
    expect(await send(served.port, 'GET', '/b')).toEqual({ status: 200, body: '/b', complete: true });
    expect(fake.connectionOfHead).toEqual([1, 1]);
  });

  test('an answer before the request body is sent: the connection is not reused, the rest of the body goes nowhere', async () => {
    let leftover = '';
    // dockerd refuses at the head and reads nothing more (Go closes such a connection itself, after
    // a while; until then, whatever arrives on it is not a request to anyone).
    await setup((socket) => {
      socket.on('data', (chunk: Buffer) => (leftover += chunk.toString('latin1')));
      socket.write('HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad');
      return 'raw';
    });
    const answer = await new Promise<Answer>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: served.port, method: 'POST', path: '/images/load', agent: false, headers: { 'Content-Length': '2000' } },
        (res) => {
          let text = '';
          res.setEncoding('latin1');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => {
            // The rest of the body, sent after the answer: the proxy must not forward it anywhere.
            req.end('x'.repeat(1000));
            resolve({ status: res.statusCode ?? 0, body: text, complete: true });
          });
        },
      );
      req.on('error', reject);
      req.write('y'.repeat(1000));
    });
    expect(answer).toEqual({ status: 400, body: 'bad', complete: true });
    expect(await send(served.port, 'GET', '/b')).toEqual({ status: 200, body: '/b', complete: true });
    expect(fake.connectionOfHead).toEqual([1, 2]);
    expect(leftover).not.toContain('x');
  });
});

describe('request bodies reach dockerd framed from the decided length', () => {
  let fake: FakeDockerd;
  let served: ServedFilter;
  const proxies = fakeProxies('dsf-framing-');
  // A fresh fake and proxy per test: the fake takes each connection over to read the body, so a
  // connection the proxy kept from one test must not reach the next.
  beforeEach(async () => {
    ({ fake, served } = await proxies.start(allowAll));
  });

  /** Reads the body the fake receives after `head`, by the framing the head declares. */
  function receiveBody(): Promise<{ head: string; body: string }> {
    return new Promise((resolve) => {
      fake.onRequest = (socket, head, rest) => {
        let raw = rest;
        const done = (body: string) => {
          socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
          resolve({ head, body });
        };
        const check = () => {
          const length = /\r\ncontent-length: (\d+)/i.exec(head);
          if (length !== null && raw.length >= Number(length[1])) done(raw);
          else if (/\r\ntransfer-encoding: chunked/i.test(head) && raw.endsWith('0\r\n\r\n')) done(raw);
          else if (length === null && !/transfer-encoding/i.test(head)) done(raw);
        };
        socket.on('data', (chunk: Buffer) => {
          raw += chunk.toString('latin1');
          check();
        });
        check();
        return 'raw';
      };
    });
  }

  test('a Content-Length body: exactly one Content-Length header, the body verbatim', async () => {
    const received = receiveBody();
    await send(served.port, 'POST', '/containers/create', '{"Image":"x"}');
    const { head, body } = await received;
    expect(head.match(/content-length/gi)).toHaveLength(1);
    expect(head).toMatch(/\r\nContent-Length: 13(\r\n|$)/);
    expect(head).not.toMatch(/transfer-encoding/i);
    expect(body).toBe('{"Image":"x"}');
  });

  test('a chunked body is re-chunked: one Transfer-Encoding header, a terminating chunk', async () => {
    const received = receiveBody();
    await send(served.port, 'POST', '/build', ['abc', 'defgh']);
    const { head, body } = await received;
    expect(head).toMatch(/\r\nTransfer-Encoding: chunked(\r\n|$)/);
    expect(head).not.toMatch(/content-length/i);
    // However Node grouped the pieces, the decoded body is the same and the framing is valid.
    expect(body.endsWith('0\r\n\r\n')).toBe(true);
    const decoded = body
      .slice(0, -5)
      .split(/\r\n/)
      .filter((_, index) => index % 2 === 1)
      .join('');
    expect(decoded).toBe('abcdefgh');
  });
});
