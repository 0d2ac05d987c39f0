// Backpressure on every relay path: a client that does not read stops the guard reading dockerd on
// its behalf (and, for uploads, dockerd that does not read stops the guard reading the client).
// Each path moves ~200 MB or an endless stream while its client never reads; the guard's buffer
// memory must stay within the documented bound per connection (docs/security.md, "Bounded").
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { dockerRequest } from '../helpers/dockerd.js';
import { BUSYBOX_IMAGE } from '../helpers/fixtures.js';
import { startGuard, type Guard } from '../helpers/guard.js';

const socketPath = inject('dockerSocket');
/** The bound the docs give for what one connection makes the guard buffer, whatever its peer does. */
const PER_CONNECTION_BYTES = 512 * 1024;
const BODY_BYTES = 200 * 1024 * 1024;

let guard: Guard;
let big: string;
let chatty: string;
let quiet: string;
let stdinSink: string;

async function run(cmd: string[], extra: Record<string, unknown> = {}): Promise<string> {
  const created = await dockerRequest(socketPath, 'POST', '/v1.41/containers/create', {
    Image: BUSYBOX_IMAGE,
    Cmd: cmd,
    HostConfig: { NetworkMode: 'none', LogConfig: { Type: 'json-file', Config: { 'max-size': '5m', 'max-file': '2' } } },
    ...extra,
  });
  expect(created.status, created.body).toBe(201);
  const { Id } = JSON.parse(created.body) as { Id: string };
  expect((await dockerRequest(socketPath, 'POST', `/v1.41/containers/${Id}/start`)).status).toBe(204);
  return Id;
}

async function execCreate(container: string, cmd: string[], stdin: boolean): Promise<string> {
  const created = await dockerRequest(socketPath, 'POST', `/v1.41/containers/${container}/exec`, {
    Cmd: cmd,
    AttachStdin: stdin,
    AttachStdout: true,
    AttachStderr: true,
  });
  expect(created.status, created.body).toBe(201);
  return (JSON.parse(created.body) as { Id: string }).Id;
}

/** Opens a raw connection, writes `head` (and `body`), and never reads. */
function nonReader(head: string, body?: Buffer | (() => Buffer)): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: guard.port });
    socket.on('error', () => undefined);
    socket.once('connect', () => {
      socket.pause();
      socket.write(head);
      if (typeof body === 'function') {
        // Keep writing as long as the guard takes it: an upload nobody reads.
        const pump = (): void => {
          while (socket.write(body())) {
            if (socket.destroyed) return;
          }
          socket.once('drain', pump);
        };
        pump();
      } else if (body !== undefined) socket.write(body);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

beforeAll(async () => {
  guard = await startGuard(inject('guardCli'), { SOCKET_PATH: socketPath, CONTAINERS: '1', POST: '1', EXEC: '1' });
  big = await run(['sh', '-c', `head -c ${BODY_BYTES} /dev/zero > /big && sleep 3600`]);
  // Wait for the 200 MB file: the export is a ~200 MB tar.
  const deadline = Date.now() + 120_000;
  for (;;) {
    const logs = await dockerRequest(socketPath, 'GET', `/v1.41/containers/${big}/changes`);
    if (logs.body.includes('"/big"')) {
      const top = await dockerRequest(socketPath, 'GET', `/v1.41/containers/${big}/top`);
      if (top.body.includes('sleep')) break;
    }
    if (Date.now() > deadline) throw new Error('the 200 MB file was not written in time');
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  chatty = await run(['yes', 'a line of output that goes on and on and on and on and on and on and on']);
  quiet = await run(['sleep', '3600'], { OpenStdin: true });
  stdinSink = await run(['sleep', '3600'], { OpenStdin: true });
}, 180_000);

afterAll(async () => {
  const exit = await guard?.stop();
  for (const id of [big, chatty, quiet, stdinSink]) {
    if (id !== undefined) await dockerRequest(socketPath, 'DELETE', `/v1.41/containers/${id}?force=1`);
  }
  expect(exit).toEqual({ code: 0, signal: null });
});

describe('a client that never reads, on every relay path', () => {
  it('plain, streamed, refused-upgrade, hijacked (both ways) and websocket relays stay within the bound; all is released after', async () => {
    const before = await guard.probe({ gc: true });
    const downExec = await execCreate(chatty, ['yes', 'exec output that nobody reads'], false);
    const upExec = await execCreate(stdinSink, ['sleep', '3600'], true);
    const upload = Buffer.alloc(64 * 1024, 0x61);
    const startBody = '{"Detach":false,"Tty":false}';
    const clients = await Promise.all([
      // A plain response with a known length or chunks: the export of a 200 MB file system.
      nonReader(`GET /v1.41/containers/${big}/export HTTP/1.1\r\nHost: x\r\n\r\n`),
      // An endless streamed (chunked) response.
      nonReader(`GET /v1.41/containers/${chatty}/logs?follow=1&stdout=1 HTTP/1.1\r\nHost: x\r\n\r\n`),
      // An upgrade dockerd refuses (it answers 200 with the export, not 101): relayed as framed.
      nonReader(`GET /v1.41/containers/${big}/export HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n`),
      // A joined hijack, dockerd to client: an exec writing forever.
      nonReader(
        `POST /v1.41/exec/${downExec}/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: ${startBody.length}\r\n\r\n${startBody}`,
      ),
      // A joined hijack, client to dockerd: stdin of a process that never reads it.
      nonReader(
        `POST /v1.41/exec/${upExec}/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: ${startBody.length}\r\n\r\n${startBody}`,
        () => upload,
      ),
      // Websocket attach to a container writing forever.
      nonReader(
        `GET /v1.41/containers/${chatty}/attach/ws?stream=1&stdout=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      ),
    ]);
    // Long enough for each source to have produced far more than the bound.
    await new Promise((resolve) => setTimeout(resolve, 8_000));
    const during = await guard.probe({ gc: true });
    const buffered = during.arrayBuffers - before.arrayBuffers;
    console.info(`six non-reading connections: buffers grew by ${buffered} bytes, RSS by ${during.rss - before.rss} bytes`);
    expect(buffered, `buffers grew by ${buffered} bytes`).toBeLessThan(clients.length * PER_CONNECTION_BYTES);
    // The whole process too (without backpressure, three such connections took 900 MB).
    expect(during.rss - before.rss).toBeLessThan(64 * 1024 * 1024);
    expect(guard.alive()).toBe(true);

    for (const client of clients) client.destroy();
    // A client whose upload is held back by backpressure cannot be seen leaving until the guard
    // reads again, and it does not read while dockerd does not (dockerd, reached directly, keeps
    // such a stream as long, too): the stream ends when its process does.
    expect((await dockerRequest(socketPath, 'POST', `/v1.41/containers/${stdinSink}/kill`)).status).toBe(204);
    const settled = await guard.settle((probe) => probe.sockets <= before.sockets, { timeoutMs: 20_000 });
    expect(settled.sockets).toBeLessThanOrEqual(before.sockets);
  }, 60_000);

  it('an uploaded body dockerd reads slowly (a paused `docker load`) does not pile up in the guard', async () => {
    // POST /images/load is granted? No: IMAGES is not granted; use a container archive upload instead.
    const before = await guard.probe({ gc: true });
    // PUT /containers/<id>/archive streams a tar to dockerd; a tar of zeros is an endless invalid
    // stream dockerd reads and rejects at its own pace.
    const head =
      `PUT /v1.41/containers/${quiet}/archive?path=/tmp HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\n` +
      `Content-Length: ${BODY_BYTES}\r\n\r\n`;
    const chunk = Buffer.alloc(64 * 1024, 0);
    const client = await nonReader(head, () => chunk);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const during = await guard.probe({ gc: true });
    expect(during.arrayBuffers - before.arrayBuffers).toBeLessThan(PER_CONNECTION_BYTES);
    client.destroy();
    await guard.settle((probe) => probe.sockets <= before.sockets, { timeoutMs: 20_000 });
  }, 30_000);
});

describe('a reading client still gets everything', () => {
  it('the 200 MB export arrives whole through the guard', async () => {
    const bytes = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: guard.port, path: `/v1.41/containers/${big}/export`, agent: false }, (res) => {
        let total = 0;
        res.on('data', (chunk: Buffer) => (total += chunk.length));
        res.on('end', () => resolve(total));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    expect(bytes).toBeGreaterThan(BODY_BYTES);
  }, 120_000);
});
