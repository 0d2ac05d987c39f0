import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliResult } from '../helpers/docker-cli.js';
import {
  BUSYBOX_IMAGE,
  containerState,
  createContainer,
  dockerRequest,
  removeContainer,
  tecnativaFixture,
  type TecnativaFixture,
} from '../helpers/fixtures.js';

// The docker CLI prints our JSON `message` after this prefix; every reason the policy writes says
// what is needed ("docker-socket-filter denied …: it needs POST=1") or why it is refused.
const DENIED = /Error response from daemon: .*(needs|refused)/;

function expectDenied(result: CliResult): void {
  expect(result.code, result.stdout + result.stderr).not.toBe(0);
  expect(result.stderr).toMatch(DENIED);
}

function expectAllowed(result: CliResult): void {
  expect(result.stderr).not.toMatch(DENIED);
  expect(result.code, result.stderr).toBe(0);
}

describe('Tecnativa defaults (EVENTS, PING, VERSION)', () => {
  let f: TecnativaFixture;
  let id: string;
  let context: string;
  beforeAll(async () => {
    f = await tecnativaFixture({});
    id = await createContainer(f.socketPath, ['sleep', '300'], { start: true });
    context = await mkdtemp(join(tmpdir(), 'dsf-build-'));
    await writeFile(join(context, 'Dockerfile'), `FROM ${BUSYBOX_IMAGE}\nRUN echo built\n`);
  });
  afterAll(async () => {
    await removeContainer(f.socketPath, id);
    await rm(context, { recursive: true, force: true });
    await f.close();
  });

  it('allows docker version', async () => {
    const result = await f.docker.run(['version', '--format', '{{.Server.Version}}']);
    expectAllowed(result);
    expect(result.stdout.trim()).toMatch(/^20\.10/);
  });

  it('answers HEAD /_ping as it answers GET /_ping', async () => {
    for (const method of ['HEAD', 'GET']) {
      const response = await fetch(`http://127.0.0.1:${f.served.port}/_ping`, { method });
      expect(response.status, method).toBe(200);
      await response.arrayBuffer();
    }
  });

  it.each([
    ['pull', ['pull', 'busybox']],
    ['run', ['run', '--rm', '--network', 'none', BUSYBOX_IMAGE, 'true']],
    ['network ls', ['network', 'ls']],
    ['config ls', ['config', 'ls']],
    ['service ls', ['service', 'ls']],
    ['stack ls', ['stack', 'ls']],
    ['secret ls', ['secret', 'ls']],
    ['plugin ls', ['plugin', 'ls']],
    ['swarm init', ['swarm', 'init']],
  ])('denies %s', async (_name, args) => {
    expectDenied(await f.docker.run(args));
  });

  it.each([['info'], ['system', 'info']])('denies %s', async (...args) => {
    const result = await f.docker.run(args);
    expect(result.code).not.toBe(0);
    expect(result.stdout + result.stderr).toMatch(DENIED);
  });

  it('denies logs, wait, rm and restart of a running container, which keeps running', async () => {
    expectDenied(await f.docker.run(['logs', id]));
    expectDenied(await f.docker.run(['wait', id]));
    expectDenied(await f.docker.run(['rm', '-f', id]));
    expectDenied(await f.docker.run(['restart', id]));
    expect(await containerState(f.socketPath, id)).toEqual({ exists: true, running: true });
  });

  it('denies build (legacy builder) and builds nothing', async () => {
    const result = await f.docker.run(['build', '-t', 'dsf-denied-build', context], {
      env: { DOCKER_BUILDKIT: '0' },
    });
    expectDenied(result);
    expect(result.stdout).not.toContain('built');
  });
});

describe('CONTAINERS=1', () => {
  let f: TecnativaFixture;
  let id: string;
  beforeAll(async () => {
    f = await tecnativaFixture({ CONTAINERS: '1' });
    id = await createContainer(f.socketPath, ['sh', '-c', 'echo from-container; sleep 300'], { start: true });
  });
  afterAll(async () => {
    await removeContainer(f.socketPath, id);
    await f.close();
  });

  it('allows logs and inspect', async () => {
    const logs = await f.docker.run(['logs', id]);
    expectAllowed(logs);
    expect(logs.stdout).toBe('from-container\n');
    const inspect = await f.docker.run(['inspect', '--format', '{{.State.Running}}', id]);
    expectAllowed(inspect);
    expect(inspect.stdout.trim()).toBe('true');
    expectAllowed(await f.docker.run(['ps', '-q']));
  });

  it('denies wait, run, rm and restart', async () => {
    expectDenied(await f.docker.run(['wait', id]));
    expectDenied(await f.docker.run(['run', '--rm', '--network', 'none', BUSYBOX_IMAGE, 'true']));
    expectDenied(await f.docker.run(['rm', '-f', id]));
    expectDenied(await f.docker.run(['restart', id]));
    expect(await containerState(f.socketPath, id)).toEqual({ exists: true, running: true });
  });
});

describe('POST=1 alone', () => {
  let f: TecnativaFixture;
  let id: string;
  beforeAll(async () => {
    f = await tecnativaFixture({ POST: '1' });
    id = await createContainer(f.socketPath, ['sleep', '300'], { start: true });
  });
  afterAll(async () => {
    await removeContainer(f.socketPath, id);
    await f.close();
  });

  it('denies rm, pull, run and network create', async () => {
    expectDenied(await f.docker.run(['rm', '-f', id]));
    expectDenied(await f.docker.run(['pull', 'busybox']));
    expectDenied(await f.docker.run(['run', '--rm', '--network', 'none', BUSYBOX_IMAGE, 'true']));
    expectDenied(await f.docker.run(['network', 'create', 'dsf-denied-net']));
    expect(await containerState(f.socketPath, id)).toEqual({ exists: true, running: true });
  });
});

describe('POST=1 NETWORKS=1', () => {
  let f: TecnativaFixture;
  beforeAll(async () => {
    f = await tecnativaFixture({ POST: '1', NETWORKS: '1' });
  });
  afterAll(async () => {
    await f.docker.run(['network', 'rm', 'dsf-net']);
    await f.close();
  });

  it('allows network ls, create and rm', async () => {
    expectAllowed(await f.docker.run(['network', 'ls']));
    expectAllowed(await f.docker.run(['network', 'create', '--internal', 'dsf-net']));
    const listed = await f.docker.run(['network', 'ls', '--format', '{{.Name}}']);
    expect(listed.stdout.split('\n')).toContain('dsf-net');
    expectAllowed(await f.docker.run(['network', 'rm', 'dsf-net']));
  });
});

describe('CONTAINERS=1 EXEC=1 POST=1', () => {
  let f: TecnativaFixture;
  let id: string;
  beforeAll(async () => {
    f = await tecnativaFixture({ CONTAINERS: '1', EXEC: '1', POST: '1' });
    id = await createContainer(f.socketPath, ['sleep', '300'], { start: true });
  });
  afterAll(async () => {
    await removeContainer(f.socketPath, id);
    await f.close();
  });

  it('allows docker exec, output and exit code preserved', async () => {
    const result = await f.docker.run(['exec', id, 'sh', '-c', 'echo exec-out; echo exec-err >&2; exit 3']);
    expect(result).toMatchObject({ code: 3, stdout: 'exec-out\n', stderr: 'exec-err\n' });
  });
});

describe('CONTAINERS=1 POST=1 without EXEC', () => {
  let f: TecnativaFixture;
  let id: string;
  beforeAll(async () => {
    f = await tecnativaFixture({ CONTAINERS: '1', POST: '1' });
    id = await createContainer(f.socketPath, ['sleep', '300'], { start: true });
  });
  afterAll(async () => {
    await removeContainer(f.socketPath, id);
    await f.close();
  });

  it('docker exec fails at the create, where the CLI shows why (not at the start: "unable to upgrade to tcp, received 403")', async () => {
    for (const args of [['exec', id, 'true'], ['exec', '-i', id, 'cat']]) {
      const result = await f.docker.run(args, { input: '' });
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain(`Error response from daemon: docker-socket-filter denied POST /v1.41/containers/${id}/exec: it needs EXEC=1`);
      expect(result.stderr).not.toContain('unable to upgrade');
    }
    // Nothing was created on dockerd.
    const inspect = JSON.parse((await dockerRequest(f.socketPath, 'GET', `/containers/${id}/json`)).body) as { ExecIDs: string[] | null };
    expect(inspect.ExecIDs ?? []).toEqual([]);
  });
});
