/**
 * Attack class: pinning the guard's memory through a rewritten `/events` stream (REDACT_ENV,
 * VISIBLE_LABELS) whose client never reads. A container's events carry its labels: with labels of
 * about a megabyte, each event the guard rewrote for a client that did not take it stayed in the
 * guard, with the event being read beside it.
 *
 * Found by the red team: 20 such clients and 16 events of 900 KB grew the guard by 75 MB (3.6 MB a
 * connection, outside guarantee 14's bound and the budget of held bytes, which counted none of
 * it). Fixed in src/proxy/read-sinks.ts: the partial event and what the client has yet to take
 * count against the budget, and a stream whose share does not fit is cut, as one whose event is too
 * long. Judged by the streams cut and the budget's count; a reading client is served afterwards.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createSocketFilter, tecnativaPreset } from '../../src/index.js';
import { removeContainer } from '../helpers/fixtures.js';
import { createLabelled } from '../helpers/read.js';
import { serve, type ServedFilter } from '../helpers/filter-server.js';

const socketPath = inject('dockerSocket');
const BUDGET = 4 * 1024 * 1024;
const made: string[] = [];
const sockets: Socket[] = [];
let served: ServedFilter | undefined;

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await served?.close();
  for (const id of made) await removeContainer(socketPath, id);
});

/** A `GET /events` that reads nothing after the head; resolves with whether the guard cut it. */
function nonReader(port: number): { socket: Socket; cut: Promise<true> } {
  const socket = connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  socket.write('GET /v1.41/events HTTP/1.1\r\nHost: docker\r\n\r\n');
  // Read nothing: the kernel's buffers fill, then the guard's.
  socket.pause();
  sockets.push(socket);
  const cut = new Promise<true>((resolve) => socket.once('close', () => resolve(true)));
  socket.on('error', () => undefined);
  return { socket, cut };
}

describe('a rewritten events stream whose client never reads', () => {
  it('holds its events within the budget of held bytes: beyond it the stream is cut', async () => {
    const filter = createSocketFilter({ policy: tecnativaPreset({ CONTAINERS: '1', REDACT_ENV: '1' }), socketPath, maxHeldBytes: BUDGET });
    served = await serve(filter);
    const port = served.port;
    const clients = Array.from({ length: 6 }, () => nonReader(port));
    await new Promise((resolve) => setTimeout(resolve, 500));

    // 5 containers of 900 KB of labels: a create and a destroy event each, 9 MB per client.
    const labels = Object.fromEntries(Array.from({ length: 900 }, (_, i) => [`label.${i}`, 'x'.repeat(1_000)]));
    let most = 0;
    for (let i = 0; i < 5; i++) {
      const id = await createLabelled(socketPath, { name: `rt-events-held-${i}`, labels, start: false });
      await removeContainer(socketPath, id);
      most = Math.max(most, filter.heldStats().held);
    }
    // A cut stream ends once its client has read what reached it: read everything, then count.
    let ended = 0;
    for (const client of clients) {
      void client.cut.then(() => (ended += 1));
      client.socket.resume();
    }
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const cut = ended;
    // Every client was sent more than the kernel holds for it, and all of them together more than
    // the budget: some streams are cut, and what the others hold is counted.
    expect(cut).toBeGreaterThan(0);
    expect(filter.heldStats().refused).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(BUDGET);
    for (const client of clients) client.socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(filter.heldStats().held).toBe(0);

    // A client that reads gets the large events, redacted, once the non-readers are gone.
    const reader = connect(port, '127.0.0.1');
    sockets.push(reader);
    let text = '';
    reader.setEncoding('latin1').on('data', (chunk: string) => (text += chunk));
    reader.write('GET /v1.41/events HTTP/1.1\r\nHost: docker\r\n\r\n');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const id = await createLabelled(socketPath, { name: 'rt-events-held-read', labels, env: ['TOKEN=secret'], start: false });
    made.push(id);
    for (let i = 0; i < 50 && !text.includes(`"id":"${id}"`); i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(text).toContain(`"id":"${id}"`);
    expect(text).toContain('label.899');
    expect(text).not.toContain('secret');
    reader.destroy();
  }, 60_000);
});
