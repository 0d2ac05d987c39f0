// Attack class: pinning the guard's memory through what the read and host settings hold whole. The
// body check reads a checked body whole (up to 1 MiB, for 30 s) before it judges it, and a rewritten
// answer (REDACT_ENV, VISIBLE_LABELS) is read whole (up to 32 MiB) before it is sent. Guarantee 14
// (docs/security.md) says one connection makes the guard buffer at most 512 KiB whatever its peers
// do, and that what is held whole is bounded across connections by one budget (MAX_HELD_BYTES,
// 16 MiB by default); these connections never finish their body, or never read.
//
// Found by the red team: neither path was bounded per connection nor across connections. 48
// connections each holding a 1 MB checked body pinned 48 MB for 30 s (4096 of them, the default
// MAX_CONNECTIONS, 4 GB); a client that did not read a rewritten answer pinned all of it (plus a
// copy while it was written) for as long as it stayed: 10 such clients of a 12 MB inspect pinned
// 244 MB of buffers in the embedding process. Fixed by the budget of held bytes shared by all
// connections of a filter (src/proxy/held.ts): what does not fit is answered 503 naming the setting,
// and a held answer is written in slices with backpressure (src/proxy/write-held.ts), its client
// cut when it reads nothing of it for uploadIdleTimeoutMs.
import { connect, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { dockerRequest } from '../helpers/dockerd.js';
import { startGuard, type Guard } from '../helpers/guard.js';
import { createLabelled } from '../helpers/read.js';
import { removeContainer } from '../helpers/fixtures.js';

const socketPath = inject('dockerSocket');
/** The bound the docs give for what one connection makes the guard buffer, whatever its peer does. */
const PER_CONNECTION_BYTES = 512 * 1024;
const CONNECTIONS = 48;

let guard: Guard | undefined;
const sockets: Socket[] = [];
let large: string | undefined;

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  const exit = await guard?.stop();
  guard = undefined;
  expect(exit).toEqual({ code: 0, signal: null });
});

beforeAll(async () => {
  // A container whose inspect is about 12 MB (its labels): made straight on dockerd.
  const labels = Object.fromEntries(Array.from({ length: 12_000 }, (_, i) => [`label.${i}`, 'x'.repeat(1_000)]));
  large = await createLabelled(socketPath, { name: 'rt-large-inspect', labels, env: ['TOKEN=x'], start: false });
});
afterAll(async () => {
  if (large !== undefined) await removeContainer(socketPath, large);
});

/** What the guard answered on `socket` so far (at most the first 4 KiB), read for a moment. */
function answered(socket: Socket, ms = 1_000): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const done = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      resolve(text);
    };
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('latin1');
      if (text.length >= 4096) done();
    };
    const timer = setTimeout(done, ms);
    socket.on('data', onData);
    socket.resume();
  });
}

/**
 * Every connection got nothing yet (the guard holds its body, or its answer waits for it), a `503`
 * naming the budget, or (`served`) the start of a `200`; and at least one got the `503`.
 */
async function expectHeldOrRefused(served: boolean): Promise<void> {
  const answers = await Promise.all(sockets.map((socket) => answered(socket)));
  const refused = answers.filter((text) => text.startsWith('HTTP/1.1 503 '));
  for (const text of answers) {
    if (text.startsWith('HTTP/1.1 503 ')) {
      expect(text).toContain('docker-socket-filter is saturated: ');
      expect(text).toContain('(maxHeldBytes, MAX_HELD_BYTES)');
    } else if (!(served && text.startsWith('HTTP/1.1 200 '))) expect(text).toBe('');
  }
  expect(refused.length).toBeGreaterThan(0);
}

function open(port: number, text: string | Buffer): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.on('error', () => undefined);
    socket.once('connect', () => {
      socket.pause();
      socket.write(text);
      sockets.push(socket);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

describe('bounded memory per connection with the read and host settings', () => {
  it(`${CONNECTIONS} connections each holding a checked body just under the bound stay within 512 KiB each`, async () => {
    guard = await startGuard(inject('guardCli'), { SOCKET_PATH: socketPath, CONTAINERS: '1', POST: '1', PROTECT_HOST: '1' });
    const before = await guard.probe({ gc: true });
    const body = Buffer.alloc(1_000_000, 0x20);
    for (let i = 0; i < CONNECTIONS; i++) {
      // The head declares 1 MiB, the body stops 48 KiB short of it: the guard waits for the rest.
      await open(guard.port, Buffer.concat([Buffer.from(`POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n`), body]));
    }
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const during = await guard.probe({ gc: true });
    expect(during.arrayBuffers - before.arrayBuffers).toBeLessThanOrEqual(CONNECTIONS * PER_CONNECTION_BYTES);
    await expectHeldOrRefused(false);
  }, 60_000);

  it(`${CONNECTIONS} non-reading clients of a rewritten 12 MB answer stay within 512 KiB each`, async () => {
    guard = await startGuard(inject('guardCli'), { SOCKET_PATH: socketPath, CONTAINERS: '1', REDACT_ENV: '1' });
    const inspected = await dockerRequest(socketPath, 'GET', `/v1.41/containers/${large}/json`);
    expect(inspected.body.length).toBeGreaterThan(12_000_000);
    const before = await guard.probe({ gc: true });
    for (let i = 0; i < CONNECTIONS; i++) await open(guard.port, `GET /v1.41/containers/${large}/json HTTP/1.1\r\nHost: x\r\n\r\n`);
    // dockerd takes a while to write 48 such answers: the most the guard held while it did.
    const bound = CONNECTIONS * PER_CONNECTION_BYTES;
    let most = 0;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && most <= bound) {
      most = Math.max(most, (await guard.probe({ gc: true })).arrayBuffers - before.arrayBuffers);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(most).toBeLessThanOrEqual(bound);
    await expectHeldOrRefused(true);
  }, 60_000);
});
