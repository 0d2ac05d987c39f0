/**
 * Attack class: making the guard's own questions to dockerd (the host checks' volume and network
 * lookups) open more connections to dockerd than its bounds allow, or many of them for one request.
 *
 * A scripted fake dockerd counts the connections it holds at once and the lookups it is asked; it
 * holds every volume lookup unanswered, as a slow or loaded dockerd would, so that concurrent
 * lookups pile up. Guarantee 13 bounds the connections to dockerd by `maxUpstreamConnections`, plus
 * the 32 the guard keeps for its own lookups.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSocketFilter, tecnativaPreset } from '../../src/index.js';
import { fakeDockerd, type FakeDockerd } from '../helpers/fake-dockerd.js';
import { serve, type ServedFilter } from '../helpers/filter-server.js';

/** Connections the guard keeps to dockerd for its own lookups (src/proxy/index.ts). */
const LOOKUP_SOCKETS = 32;
const MAX_UPSTREAM = 4;

let directory: string;
let fake: FakeDockerd;
let served: ServedFilter;
let open = 0;
let peak = 0;
const held: Socket[] = [];

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'dsf-lookups-'));
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});
afterEach(async () => {
  for (const socket of held.splice(0)) socket.destroy();
  await served?.close();
  await fake?.close();
});

async function start(): Promise<void> {
  fake = await fakeDockerd(directory, `d${Date.now()}.sock`);
  open = 0;
  peak = 0;
  fake.onRequest = (socket, head) => {
    if (!(socket as Socket & { counted?: boolean }).counted) {
      (socket as Socket & { counted?: boolean }).counted = true;
      open += 1;
      peak = Math.max(peak, open);
      socket.once('close', () => (open -= 1));
    }
    const line = head.slice(0, head.indexOf('\r\n'));
    const json = (status: string, body: string) =>
      socket.write(`HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    if (/^GET \/(info|version) /.test(line)) json('200 OK', '{}');
    else if (/^GET \/networks\//.test(line)) json('404 Not Found', '{"message":"network not found"}');
    else if (/^GET \/volumes\//.test(line)) held.push(socket);
    else json('201 Created', '{"Id":"x","Warnings":[]}');
  };
  const policy = tecnativaPreset({ CONTAINERS: '1', POST: '1', PROTECT_HOST: '1' });
  served = await serve(createSocketFilter({ policy, socketPath: fake.socketPath, maxUpstreamConnections: MAX_UPSTREAM }));
}

/** Sends a create and does not wait for its answer. */
function sendCreate(body: object): Socket {
  const text = JSON.stringify({ Image: 'busybox', ...body });
  const socket = connect(served.port, '127.0.0.1');
  socket.on('error', () => undefined);
  socket.write(
    `POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
  );
  held.push(socket);
  return socket;
}

function answerOf(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('\r\n\r\n')) resolve(text);
    });
    socket.once('close', () => resolve(text));
  });
}

const lookups = (kind: string) => fake.heads.filter((head) => head.startsWith(`GET /${kind}/`)).length;

describe('the host checks ask dockerd within the guard\'s bounds', () => {
  it(`80 creates waiting on volume lookups hold at most maxUpstreamConnections + ${LOOKUP_SOCKETS} connections to dockerd`, async () => {
    await start();
    for (let i = 0; i < 80; i++) sendCreate({ HostConfig: { Binds: [`volume${i}:/data`] } });
    // Every lookup is held: the guard asks as many at once as it ever will within a second or two.
    const deadline = Date.now() + 2_000;
    while (Date.now() < deadline && peak <= MAX_UPSTREAM + LOOKUP_SOCKETS) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(lookups('volumes')).toBeGreaterThanOrEqual(LOOKUP_SOCKETS);
    expect(peak).toBeLessThanOrEqual(MAX_UPSTREAM + LOOKUP_SOCKETS);
  }, 15_000);

  it('one create naming thousands of networks does not make the guard ask dockerd about each', async () => {
    await start();
    const endpoints = Object.fromEntries(Array.from({ length: 2_000 }, (_, i) => [`net${i}`, {}]));
    const socket = sendCreate({ NetworkingConfig: { EndpointsConfig: endpoints } });
    const answer = await answerOf(socket);
    expect(answer).toMatch(/^HTTP\/1\.1 (400|403) /);
    expect(lookups('networks')).toBeLessThanOrEqual(64);
    expect(fake.heads.some((head) => head.startsWith('POST /v1.41/containers/create'))).toBe(false);
  });
});
