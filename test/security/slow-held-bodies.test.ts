// Attack class: keeping a checked body in the guard's memory after the budget of held bytes has
// let go of it. A body PROTECT_HOST checks counts against the budget (MAX_HELD_BYTES) until
// dockerd's socket has taken it; from then on the guard must not hold it at all, or a client
// could keep it there uncounted, as long as it stays connected, simply by not reading the answer.
//
// Found by the red team: the exchange kept a reference to the body until the client's response
// was over. A client pipelines creates whose answer dockerd makes large (a relative WorkingDir is
// refused with the 900 KB value quoted back) and never reads: once the kernel's buffers are full,
// the answer to the last create it sent can never be finished, and its 900 KB body stayed in the
// guard, uncounted (held: 0), with no timeout (dockerd had answered). 20 such connections grew the
// guard's buffers by 22 MB, 1.1 MiB each: over the 512 KiB per connection guarantee 14 promises,
// and outside the budget (4096 connections: 4.5 GB). Fixed in src/proxy/forward.ts: the exchange
// drops the body once it is handed to dockerd's socket.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { dockerRequest } from '../helpers/dockerd.js';
import { startGuard, type Guard } from '../helpers/guard.js';

const socketPath = inject('dockerSocket');
/** The bound the docs give for what one connection makes the guard buffer, whatever its peer does. */
const PER_CONNECTION_BYTES = 512 * 1024;
const CONNECTIONS = 16;
/** More creates than the kernel's buffers of one loopback connection hold the answers of. */
const PIPELINED = 12;

let guard: Guard;
const sockets: Socket[] = [];

beforeAll(async () => {
  guard = await startGuard(inject('guardCli'), { SOCKET_PATH: socketPath, CONTAINERS: '1', POST: '1', PROTECT_HOST: '1' });
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  const exit = await guard?.stop();
  expect(exit).toEqual({ code: 0, signal: null });
});

async function containerCount(): Promise<number> {
  return (JSON.parse((await dockerRequest(socketPath, 'GET', '/containers/json?all=1')).body) as unknown[]).length;
}

/** Whether `wanted` refusals by dockerd come on `socket` once it is read (within `timeoutMs`). */
function refusalsOnceRead(socket: Socket, wanted: number, timeoutMs = 10_000): Promise<boolean> {
  const status = 'HTTP/1.1 400 ';
  return new Promise((resolve) => {
    // The last bytes of the previous read, shorter than a status line: a match is always new.
    let tail = '';
    let seen = 0;
    const done = (enough: boolean): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.destroy();
      resolve(enough);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    const onData = (chunk: Buffer): void => {
      const text = tail + chunk.toString('latin1');
      seen += text.split(status).length - 1;
      tail = text.slice(-(status.length - 1));
      if (seen >= wanted) done(true);
    };
    socket.on('data', onData);
    socket.resume();
  });
}

describe('a checked body is not kept once dockerd has it', () => {
  it(`${CONNECTIONS} connections that never read the large answers to the creates they pipeline stay within 512 KiB each`, async () => {
    // dockerd refuses a relative working directory and quotes it back: a 900 KB answer to a
    // 900 KB body PROTECT_HOST allows. One buffer, written again and again (no copy per write).
    const body = JSON.stringify({ Image: 'dsf-busybox:latest', Cmd: ['true'], WorkingDir: `relative/${'x'.repeat(900_000)}`, HostConfig: { NetworkMode: 'none' } });
    const create = Buffer.from(
      `POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      'latin1',
    );
    const containersBefore = await containerCount();
    const before = await guard.probe({ gc: true });
    for (let i = 0; i < CONNECTIONS; i++) {
      const socket = await new Promise<Socket>((resolve, reject) => {
        const opened = connect({ host: '127.0.0.1', port: guard.port });
        opened.on('error', () => undefined);
        opened.once('connect', () => resolve(opened));
        opened.once('error', reject);
      });
      socket.pause();
      for (let k = 0; k < PIPELINED; k++) socket.write(create);
      sockets.push(socket);
    }
    // The guard reads, checks and forwards creates until the answers fill the kernel's buffers;
    // while it does, a body it is reading is held whole (and counted by the budget). Measured once
    // every connection is stuck: what the guard holds no longer changes.
    let during = await guard.probe({ gc: true });
    for (let stable = 0, waited = 0; stable < 2 && waited < 30_000; waited += 1_000) {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const next = await guard.probe({ gc: true });
      stable = Math.abs(next.arrayBuffers - during.arrayBuffers) < 256 * 1024 ? stable + 1 : 0;
      during = next;
    }
    expect(during.arrayBuffers - before.arrayBuffers).toBeLessThanOrEqual(CONNECTIONS * PER_CONNECTION_BYTES);
    // The attack took place: every connection had creates checked and forwarded (dockerd answered
    // them), and dockerd refused them all (nothing was created).
    expect(await Promise.all(sockets.map((socket) => refusalsOnceRead(socket, 2)))).toEqual(sockets.map(() => true));
    expect(await containerCount()).toBe(containersBefore);
  }, 120_000);
});
