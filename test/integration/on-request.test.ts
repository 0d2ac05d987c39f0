import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import type { RequestEvent } from '../../src/filter.js';
import { createSocketFilter, tecnativaPreset } from '../../src/index.js';
import { dockerCli, type DockerCli } from '../helpers/docker-cli.js';
import { serve, type ServedFilter } from '../helpers/filter-server.js';
import { BUSYBOX_IMAGE, createContainer, removeContainer } from '../helpers/fixtures.js';

describe('onRequest: one event per request, when it is over', () => {
  const socketPath = inject('dockerSocket');
  const events: RequestEvent[] = [];
  let served: ServedFilter;
  let docker: DockerCli;
  let id: string;
  beforeAll(async () => {
    served = await serve(
      createSocketFilter({
        policy: tecnativaPreset({ CONTAINERS: '1', EXEC: '1', POST: '1' }),
        socketPath,
        onRequest: (event) => {
          events.push(event);
          throw new Error('a throwing listener changes nothing');
        },
      }),
    );
    docker = dockerCli(served.dockerHost);
    id = await createContainer(socketPath, ['sleep', '300'], { start: true });
  });
  afterAll(async () => {
    await removeContainer(socketPath, id);
    docker.dispose();
    await served.close();
  });

  it('reports allowed requests, the joined exec stream (101) and denials', async () => {
    expect((await docker.run(['exec', id, 'echo', 'hi'])).stdout).toBe('hi\n');
    expect((await docker.run(['pull', BUSYBOX_IMAGE])).code).not.toBe(0);
    await expect.poll(() => events.some((e) => e.path?.includes('/images/create')), { timeout: 2_000 }).toBe(true);

    const start = events.find((e) => e.upgrade && e.path?.includes('/exec/'));
    expect(start).toMatchObject({ method: 'POST', allowed: true, status: 101, rule: 'EXEC' });
    const created = events.find((e) => e.path?.endsWith(`/containers/${id}/exec`));
    expect(created).toMatchObject({ method: 'POST', allowed: true, status: 201, upgrade: false });
    const pull = events.find((e) => e.path?.includes('/images/create'));
    expect(pull).toMatchObject({ method: 'POST', allowed: false, status: 403, upgrade: false });
    expect(pull?.reason).toMatch(/needs/);
    for (const event of events) expect(event.durationMs).toBeGreaterThanOrEqual(0);
  });
});
