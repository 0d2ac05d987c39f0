// Bounded under hostile clients: one connection (or a handful) must not raise the guard's or
// dockerd's descriptors beyond the documented bounds. dockerd's descriptors are read from its
// /proc; the guard's from its own probe. Loopback only; every wait is bounded.
import { readdir } from 'node:fs/promises';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { startGuard, type Guard } from '../helpers/guard.js';

const dockerdPid = inject('dockerdPid');
const socketPath = inject('dockerSocket');

async function dockerdDescriptors(): Promise<number> {
  return (await readdir(`/proc/${dockerdPid}/fd`)).length;
}

function get(port: number, path: string, timeoutMs = 5_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** A connection that writes `payload` at once and never reads (its receive window fills). */
function blast(port: number, payload: string): Promise<{ socket: Socket; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const closed = new Promise<void>((done) => socket.once('close', () => done()));
    socket.on('error', () => undefined);
    socket.once('connect', () => {
      socket.write(payload);
      socket.pause();
      resolve({ socket, closed });
    });
    socket.once('error', reject);
  });
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return check();
}

const EVENTS = 'GET /v1.41/events HTTP/1.1\r\nHost: x\r\n\r\n';

let guard: Guard | undefined;
afterEach(async () => {
  const exit = await guard?.stop();
  guard = undefined;
  expect(exit).toEqual({ code: 0, signal: null });
});

describe('pipelining: one upstream exchange per client connection', () => {
  it.each([
    [2_000, 1],
    [8_000, 1],
    [2_000, 2],
    [8_000, 2],
  ])('%i pipelined `GET /events` on %i connection(s): the guard and dockerd stay bounded, others are served, all returns to baseline', async (requests, connections) => {
    guard = await startGuard(inject('guardCli'), { SOCKET_PATH: socketPath });
    const guardBefore = await guard.probe();
    const dockerdBefore = await dockerdDescriptors();

    const attackers = await Promise.all(Array.from({ length: connections }, () => blast(guard!.port, EVENTS.repeat(requests))));
    // Let the guard read and parse what it will.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const during = await guard.probe();
    const dockerdDuring = await dockerdDescriptors();
    // Each attacker holds at most its own connection and one to dockerd (or nothing: a connection
    // that pipelines past the bound is closed).
    expect(during.sockets - guardBefore.sockets).toBeLessThanOrEqual(2 * connections);
    expect(dockerdDuring - dockerdBefore).toBeLessThanOrEqual(2 * connections);
    // Another client is served meanwhile.
    expect(await get(guard.port, '/_ping')).toEqual({ status: 200, body: 'OK' });

    for (const attacker of attackers) attacker.socket.destroy();
    await Promise.all(attackers.map((attacker) => attacker.closed));
    const settled = await guard.settle((probe) => probe.sockets <= guardBefore.sockets);
    expect(settled.sockets).toBeLessThanOrEqual(guardBefore.sockets);
    expect(await waitFor(async () => (await dockerdDescriptors()) <= dockerdBefore + 1, 10_000)).toBe(true);
    // Pooled connections to dockerd are idle ones at most, and those time out.
    expect(await get(guard.port, '/_ping')).toEqual({ status: 200, body: 'OK' });
  });

  it('a client within the bound gets its pipelined answers in order, one exchange at a time', async () => {
    guard = await startGuard(inject('guardCli'), { SOCKET_PATH: socketPath });
    const dockerdBefore = await dockerdDescriptors();
    const socket = connect({ host: '127.0.0.1', port: guard.port });
    await new Promise((resolve) => socket.once('connect', resolve));
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (text += chunk));
    // An events stream first (never ends), then 40 pings behind it.
    socket.write(EVENTS + 'GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(40));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    // The pings wait behind the stream, which holds the one exchange; dockerd sees one connection.
    expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(text).not.toContain('\r\n\r\nOK');
    expect((await dockerdDescriptors()) - dockerdBefore).toBeLessThanOrEqual(1);
    socket.destroy();
  });
});

describe('a bounded pool of connections to dockerd', () => {
  it('with --max-upstream-connections 4: four streams hold them, a fifth request waits and then gets 503; capacity comes back', async () => {
    guard = await startGuard(inject('guardCli'), { SOCKET_PATH: socketPath }, ['--max-upstream-connections', '4']);
    const dockerdBefore = await dockerdDescriptors();
    const streams = await Promise.all(Array.from({ length: 4 }, () => blast(guard!.port, EVENTS)));
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await dockerdDescriptors()) - dockerdBefore).toBeLessThanOrEqual(4);

    const started = Date.now();
    const refused = await get(guard.port, '/_ping', 20_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(9_000);
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body)).toEqual({
      message: 'docker-socket-filter is saturated: all 4 of its connections to the Docker daemon are in use; retry later',
    });
    expect((await dockerdDescriptors()) - dockerdBefore).toBeLessThanOrEqual(4);

    // A stream ends: a waiting request gets its connection at once.
    const waiting = get(guard.port, '/_ping', 20_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    streams[0]?.socket.destroy();
    expect(await waiting).toEqual({ status: 200, body: 'OK' });
    for (const stream of streams) stream.socket.destroy();
  }, 60_000);
});
