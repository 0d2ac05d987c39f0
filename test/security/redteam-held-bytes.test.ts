/**
 * Attack class: a request going on when a lookup made for it did not fit the budget of held bytes
 * (`maxHeldBytes`). Such a request must get `503`, and nothing of it may reach dockerd.
 *
 * Found by the red team: a lookup's answer whose last chunk did not fit was refused, but the answer
 * then ended before the refusal's error arrived (a tick later), so the lookup resolved with the
 * answer cut short. A create binding an existing named volume, its body checked by PROTECT_HOST,
 * was then forwarded and created, while the budget counted a refusal. Fixed in src/proxy/ask.ts: a
 * refused answer rejects at once. Judged on dockerd's containers.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createSocketFilter, tecnativaPreset } from '../../src/index.js';
import { BUSYBOX_IMAGE, dockerRequest } from '../helpers/dockerd.js';
import { serve, type ServedFilter } from '../helpers/filter-server.js';
import { httpRequest, rawExchange } from '../helpers/raw-http.js';

const socketPath = inject('dockerSocket');
const VOLUME = 'rt-held-lookup';
const NAME = 'rt-held-create';

let served: ServedFilter | undefined;

beforeAll(async () => {
  expect((await dockerRequest(socketPath, 'POST', '/volumes/create', { Name: VOLUME })).status).toBe(201);
});

afterAll(async () => {
  await served?.close();
  await dockerRequest(socketPath, 'DELETE', `/containers/${NAME}?force=1`);
  await dockerRequest(socketPath, 'DELETE', `/volumes/${VOLUME}`);
});

describe('a lookup that does not fit the budget of held bytes', () => {
  it('refuses the request with 503, and dockerd creates nothing', async () => {
    // The body fits the budget with a few bytes to spare; the volume's inspect does not.
    const body = JSON.stringify({ Image: BUSYBOX_IMAGE, Cmd: ['true'], HostConfig: { NetworkMode: 'none', Binds: [`${VOLUME}:/data`] } });
    const filter = createSocketFilter({ policy: tecnativaPreset({ CONTAINERS: '1', POST: '1', PROTECT_HOST: '1' }), socketPath, maxHeldBytes: Buffer.byteLength(body) + 10 });
    served = await serve(filter);
    const answer = await rawExchange(
      served.port,
      httpRequest('POST', `/v1.41/containers/create?name=${NAME}`, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)), Connection: 'close' }, body),
    );
    expect(answer.statuses).toEqual([503]);
    expect(answer.text).toContain('docker-socket-filter is saturated: ');
    expect(answer.text).toContain('(maxHeldBytes, MAX_HELD_BYTES)');
    expect((await dockerRequest(socketPath, 'GET', `/containers/${NAME}/json`)).status).toBe(404);
    expect(filter.heldStats()).toMatchObject({ held: 0, refused: 1 });
  });
});
