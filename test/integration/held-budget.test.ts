import { connect, type Socket } from 'node:net';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { createSocketFilter, tecnativaPreset, type SocketFilter } from '../../src/index.js';
import { dockerCli, type DockerCli } from '../helpers/docker-cli.js';
import { BUSYBOX_IMAGE, dockerRequest } from '../helpers/dockerd.js';
import { removeContainer } from '../helpers/fixtures.js';
import { serve, type ServedFilter } from '../helpers/filter-server.js';
import { ask, createLabelled } from '../helpers/read.js';

// The budget of bytes held whole (maxHeldBytes, guarantee 14 in docs/security.md) against the real
// dockerd: legit clients under PROTECT_HOST and REDACT_ENV are served with the default, and what
// does not fit gets 503 naming the setting, with dockerd's state unchanged.

const socketPath = inject('dockerSocket');
const LABEL = 'dsf.held-budget';
const MiB = 1024 * 1024;

interface Guard {
  readonly filter: SocketFilter;
  readonly served: ServedFilter;
  readonly docker: DockerCli;
}

const guards: Guard[] = [];
const sockets: Socket[] = [];
async function guard(env: Record<string, string>, maxHeldBytes?: number): Promise<Guard> {
  const policy = tecnativaPreset({ CONTAINERS: '1', POST: '1', SOCKET_PATH: socketPath, ...env });
  const filter = createSocketFilter({ policy, socketPath, ...(maxHeldBytes === undefined ? {} : { maxHeldBytes }) });
  const served = await serve(filter);
  const result = { filter, served, docker: dockerCli(served.dockerHost) };
  guards.push(result);
  return result;
}

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  for (const { served, docker } of guards.splice(0)) {
    docker.dispose();
    await served.close();
  }
});

afterAll(async () => {
  const { body } = await dockerRequest(socketPath, 'GET', `/containers/json?all=1&filters=${encodeURIComponent(JSON.stringify({ label: [LABEL] }))}`);
  for (const { Id } of JSON.parse(body) as { Id: string }[]) await removeContainer(socketPath, Id);
});

/** Whether dockerd has a container of that name. */
async function exists(name: string): Promise<boolean> {
  return (await dockerRequest(socketPath, 'GET', `/containers/${name}/json`)).status === 200;
}

/**
 * A client that sends the head of a checked create declaring `declared` bytes and then only
 * `sent` of them: the guard holds what arrived while it waits for the rest.
 */
function holdingBody(port: number, declared: number, sent: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.write(`POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${declared}\r\n\r\n`);
      socket.write(Buffer.alloc(sent, 0x20));
      sockets.push(socket);
      resolve(socket);
    });
    socket.on('error', () => undefined);
    socket.once('error', reject);
  });
}

/** A create body with labels of about `bytes` bytes, as a compose file with many labels sends. */
function createBody(bytes: number): string {
  const labels: Record<string, string> = { [LABEL]: '1' };
  for (let i = 0; i * 1024 < bytes; i++) labels[`com.example.label-${i}`] = 'x'.repeat(1000);
  return JSON.stringify({ Image: BUSYBOX_IMAGE, Cmd: ['true'], Labels: labels, HostConfig: { NetworkMode: 'none' } });
}

describe('with the default budget, legit clients are served', () => {
  it('a create under PROTECT_HOST (the docker CLI, and a 200 KiB body of labels), and nothing stays held', async () => {
    const { filter, docker, served } = await guard({ PROTECT_HOST: '1' });
    expect(filter.heldStats().max).toBe(16 * MiB);
    const created = await docker.run(['create', '--name', 'dsf-held-cli', '--network', 'none', '--label', LABEL, BUSYBOX_IMAGE, 'true']);
    expect(created.code, created.stderr).toBe(0);
    expect(await exists('dsf-held-cli')).toBe(true);
    const big = await ask({ port: served.port }, 'POST', '/v1.41/containers/create?name=dsf-held-labels', { body: createBody(200 * 1024) });
    expect(big.status, big.body).toBe(201);
    expect(await exists('dsf-held-labels')).toBe(true);
    await expect.poll(() => filter.heldStats()).toEqual({ held: 0, max: 16 * MiB, refused: 0 });
  });

  it('a REDACT_ENV inspect (the docker CLI, and one of 2 MB), and nothing stays held', async () => {
    const { filter, docker, served } = await guard({ REDACT_ENV: '1' });
    const labels = Object.fromEntries(Array.from({ length: 2_000 }, (_, i) => [`label.${i}`, 'x'.repeat(1_000)]));
    const id = await createLabelled(socketPath, { name: 'dsf-held-inspect', labels: { ...labels, [LABEL]: '1' }, env: ['TOKEN=hunter2'], start: false });
    const inspected = await docker.run(['inspect', '--format', '{{json .Config.Env}}', id]);
    expect(inspected.code, inspected.stderr).toBe(0);
    expect(inspected.stdout).not.toContain('hunter2');
    expect(inspected.stdout).toContain('TOKEN=');
    const answer = await ask({ port: served.port }, 'GET', `/v1.41/containers/${id}/json`);
    expect(answer.status).toBe(200);
    expect(answer.body.length).toBeGreaterThan(2_000_000);
    expect(answer.body).not.toContain('hunter2');
    await expect.poll(() => filter.heldStats()).toEqual({ held: 0, max: 16 * MiB, refused: 0 });
  });
});

describe('beyond the budget', () => {
  it('a checked create gets 503 naming the setting and makes no container; once the budget is free, the same create works', async () => {
    const { filter, docker, served } = await guard({ PROTECT_HOST: '1' }, MiB);
    // Another client holds 1,000,000 of the budget's 1,048,576 bytes with a body it never finishes.
    const hog = await holdingBody(served.port, MiB, 1_000_000);
    await expect.poll(() => filter.heldStats().held, { timeout: 10_000 }).toBe(1_000_000);
    const body = createBody(60 * 1024);
    const refused = await ask({ port: served.port }, 'POST', '/v1.41/containers/create?name=dsf-held-refused', { body });
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body)).toEqual({
      message: 'docker-socket-filter is saturated: the 1 MiB it holds at most for checked request bodies and rewritten answers (maxHeldBytes, MAX_HELD_BYTES) are in use; retry later',
    });
    // The docker CLI shows the guard's words.
    const cli = await docker.run(['create', '--name', 'dsf-held-refused', '--network', 'none', '--label', LABEL, '--label', `big=${'x'.repeat(60 * 1024)}`, BUSYBOX_IMAGE, 'true']);
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toContain('Error response from daemon: docker-socket-filter is saturated');
    expect(await exists('dsf-held-refused')).toBe(false);
    expect(filter.heldStats()).toMatchObject({ held: 1_000_000, refused: 2 });
    hog.destroy();
    await expect.poll(() => filter.heldStats().held).toBe(0);
    const retried = await ask({ port: served.port }, 'POST', '/v1.41/containers/create?name=dsf-held-refused', { body });
    expect(retried.status, retried.body).toBe(201);
    expect(await exists('dsf-held-refused')).toBe(true);
  });

  it('a body larger than the whole budget is refused with 503 saying so, and makes no container', async () => {
    const { served } = await guard({ PROTECT_HOST: '1' }, 64 * 1024);
    const refused = await ask({ port: served.port }, 'POST', '/v1.41/containers/create?name=dsf-held-huge', { body: createBody(100 * 1024) });
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body).message).toBe(
      'docker-socket-filter is saturated: this request needs more than the 65536 bytes it holds at most for checked request bodies and rewritten answers (maxHeldBytes, MAX_HELD_BYTES); raise it',
    );
    expect(await exists('dsf-held-huge')).toBe(false);
  });

  it('a REDACT_ENV inspect larger than the budget gets 503 before any of it is sent; a small one is served', async () => {
    const { filter, served } = await guard({ REDACT_ENV: '1' }, 256 * 1024);
    const labels = Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`label.${i}`, 'x'.repeat(1_000)]));
    const big = await createLabelled(socketPath, { name: 'dsf-held-big', labels: { ...labels, [LABEL]: '1' }, env: ['TOKEN=hunter2'], start: false });
    const small = await createLabelled(socketPath, { name: 'dsf-held-small', labels: { [LABEL]: '1' }, env: ['TOKEN=hunter2'], start: false });
    const refused = await ask({ port: served.port }, 'GET', `/v1.41/containers/${big}/json`);
    expect(refused.status).toBe(503);
    expect(refused.body).not.toContain('hunter2');
    expect(JSON.parse(refused.body).message).toContain('this request needs more than the 262144 bytes it holds at most');
    const served2 = await ask({ port: served.port }, 'GET', `/v1.41/containers/${small}/json`);
    expect(served2.status).toBe(200);
    expect(served2.body).not.toContain('hunter2');
    await expect.poll(() => filter.heldStats()).toEqual({ held: 0, max: 256 * 1024, refused: 1 });
  });
});
