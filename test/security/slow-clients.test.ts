import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startGuard, type Guard } from '../helpers/guard.js';
import { httpRequest, rawExchange } from '../helpers/raw-http.js';
import { recordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream.js';

// Slow and hostile clients against the CLI's server settings (src/proxy/server.ts): a header
// timeout of 10 s, a 16 KiB head, an 8 KiB request-target. The guard runs as its own process in
// front of a recording fake dockerd, so "nothing was forwarded" is what reached the socket.

let directory: string;
let upstream: RecordingUpstream;
let guard: Guard;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'dsf-slow-'));
  upstream = await recordingUpstream(directory);
  guard = await startGuard(inject('guardCli'), { SOCKET_PATH: upstream.socketPath, CONTAINERS: '1', POST: '1' });
});

afterAll(async () => {
  const exit = await guard?.stop();
  await upstream?.close();
  await rm(directory, { recursive: true, force: true });
  // Stopping is part of the contract: a clean exit, not a kill.
  expect(exit).toEqual({ code: 0, signal: null });
});

function ping(port: number): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/_ping', agent: false, timeout: 5_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', reject);
    req.end();
  });
}

/** What a trickling client saw: when its connection was closed, and what it was told. */
interface Trickled {
  readonly closedAfterMs: number;
  readonly text: string;
}

/**
 * Opens a connection and sends `head` one byte every `gapMs`, never finishing it (slowloris), until
 * the server closes the connection or `limitMs` passes.
 */
function trickle(port: number, head: string, gapMs: number, limitMs: number): Promise<Trickled> {
  return new Promise((resolve) => {
    const socket: Socket = connect({ host: '127.0.0.1', port });
    let text = '';
    let index = 0;
    let started = 0;
    let timer: NodeJS.Timeout | undefined;
    const send = (): void => {
      if (socket.destroyed) return;
      if (index < head.length) socket.write(head[index++] as string);
      timer = setTimeout(send, gapMs);
    };
    const limit = setTimeout(() => socket.destroy(), limitMs);
    socket.on('connect', () => {
      started = performance.now();
      send();
    });
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      clearTimeout(limit);
      resolve({ closedAfterMs: performance.now() - started, text });
    });
  });
}

function statusOf(text: string): number | undefined {
  const match = /^HTTP\/1\.1 (\d{3}) /.exec(text);
  return match === null ? undefined : Number(match[1]);
}

function bodyOf(text: string): { message?: string } {
  return JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as { message?: string };
}

describe('slow clients', () => {
  it('slowloris (one byte a second) and silent connections are cut by the 10 s header timeout; others are served meanwhile', async () => {
    const forwardedBefore = upstream.requests.length;
    const head = `GET /_ping HTTP/1.1\r\nHost: docker\r\nX-Slow: ${'a'.repeat(100)}\r\n`;
    // 20 trickling clients and 5 that connect and say nothing, all bounded at 20 s.
    const slow = Array.from({ length: 20 }, () => trickle(guard.port, head, 1_000, 20_000));
    const silent = Array.from({ length: 5 }, () => trickle(guard.port, '', 1_000, 20_000));

    // Meanwhile, ordinary clients keep getting answers, at once.
    const served: { status: number; ms: number }[] = [];
    const deadline = performance.now() + 9_000;
    while (performance.now() < deadline) {
      served.push(await ping(guard.port));
      await new Promise((resolve) => setTimeout(resolve, 200));
    }

    const cut = await Promise.all([...slow, ...silent]);
    for (const { closedAfterMs, text } of cut) {
      // Node checks the timeout once a second: cut between 10 and 12 s, long before our 20 s.
      expect(closedAfterMs).toBeGreaterThanOrEqual(9_900);
      expect(closedAfterMs).toBeLessThan(13_000);
      expect(statusOf(text)).toBe(408);
      expect(bodyOf(text).message).toBe('docker-socket-filter: The request headers did not arrive in time');
    }
    expect(served.length).toBeGreaterThan(20);
    expect(served.every(({ status }) => status === 200)).toBe(true);
    expect(Math.max(...served.map(({ ms }) => ms))).toBeLessThan(1_000);
    // Only the ordinary pings reached dockerd.
    expect(upstream.requests.slice(forwardedBefore).map((r) => `${r.method} ${r.target}`)).toEqual(
      served.map(() => 'GET /_ping'),
    );
    expect(guard.alive()).toBe(true);
    await guard.line(/msg=rejected status=408 reason="The request headers did not arrive in time"/);
  }, 40_000);
});

describe('oversized requests', () => {
  it('headers over 16 KiB: 431, JSON, connection closed, nothing forwarded', async () => {
    const forwardedBefore = upstream.requests.length;
    const exchange = await rawExchange(
      guard.port,
      httpRequest('GET', '/_ping', { 'X-Large': 'a'.repeat(20 * 1024) }),
    );
    expect(exchange.closed).toBe(true);
    expect(statusOf(exchange.text)).toBe(431);
    expect(exchange.text).toContain('Content-Type: application/json');
    expect(bodyOf(exchange.text)).toEqual({ message: 'docker-socket-filter: The request headers are too large' });
    // Many small headers adding up count the same.
    const many = Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`X-H${i}`, 'b'.repeat(50)]));
    expect(statusOf((await rawExchange(guard.port, httpRequest('GET', '/_ping', many))).text)).toBe(431);
    expect(upstream.requests.length).toBe(forwardedBefore);
    expect((await ping(guard.port)).status).toBe(200);
  });

  it('a request-target over 8 KiB: 414 whether the head is otherwise small or over 16 KiB, for requests and upgrades', async () => {
    const forwardedBefore = upstream.requests.length;
    const long = (length: number): string => `/_ping?${'q'.repeat(length - '/_ping?'.length)}`;
    const cases = [
      // Under Node's head limit: refused by the handler, before evaluate.
      httpRequest('GET', long(9 * 1024)),
      // Over it: refused by the server (Node's parser), recognised as a long request line.
      httpRequest('GET', long(30 * 1024)),
      // An upgrade goes to the upgrade handler, which refuses the same way.
      httpRequest('POST', `/v1.41/containers/x/attach?${'q'.repeat(9 * 1024)}`, {
        Connection: 'Upgrade',
        Upgrade: 'tcp',
        'Content-Length': '0',
      }),
    ];
    for (const payload of cases) {
      const exchange = await rawExchange(guard.port, payload);
      expect(statusOf(exchange.text), exchange.text.slice(0, 200)).toBe(414);
      expect(bodyOf(exchange.text)).toEqual({ message: 'docker-socket-filter: The request-target is longer than 8192 bytes' });
      expect(exchange.closed).toBe(true);
    }
    expect(upstream.requests.length).toBe(forwardedBefore);

    // A target of exactly 8 KiB is decided as any other, and forwarded as decided.
    const exact = long(8 * 1024);
    const allowed = await rawExchange(guard.port, httpRequest('GET', exact, { Connection: 'close' }));
    expect(statusOf(allowed.text)).toBe(200);
    expect(upstream.requests.at(-1)?.target).toBe(exact);
  });
});
