import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ALL_GRANTED,
  BUSYBOX_IMAGE,
  containerState,
  createContainer,
  dockerRequest,
  removeContainer,
  tecnativaFixture,
  type TecnativaFixture,
} from '../helpers/fixtures.js';

const RUN = ['run', '--network', 'none'];

describe('docker CLI through the filter, everything granted', () => {
  let f: TecnativaFixture;
  let work: string;
  const cleanup: string[] = [];
  beforeAll(async () => {
    f = await tecnativaFixture(ALL_GRANTED);
    work = await mkdtemp(join(tmpdir(), 'dsf-flows-'));
  });
  afterAll(async () => {
    for (const id of cleanup) await removeContainer(f.socketPath, id);
    await rm(work, { recursive: true, force: true });
    await f.close();
  });

  it('run --rm: output and exit code preserved, container removed', async () => {
    const result = await f.docker.run([...RUN, '--rm', '--name', 'dsf-rm', BUSYBOX_IMAGE, 'sh', '-c', 'echo out; echo err >&2; exit 7']);
    expect(result).toMatchObject({ code: 7, stdout: 'out\n', stderr: 'err\n' });
    expect((await containerState(f.socketPath, 'dsf-rm')).exists).toBe(false);
  });

  it('run -d, then wait and logs', async () => {
    const started = await f.docker.run([...RUN, '-d', BUSYBOX_IMAGE, 'sh', '-c', 'echo detached; exit 5']);
    expect(started.code, started.stderr).toBe(0);
    const id = started.stdout.trim();
    cleanup.push(id);
    const waited = await f.docker.run(['wait', id]);
    expect(waited).toMatchObject({ code: 0, stdout: '5\n' });
    expect((await f.docker.run(['logs', id])).stdout).toBe('detached\n');
  });

  it('run -i with stdin', async () => {
    const input = 'line one\nline two\n'.repeat(1000);
    const result = await f.docker.run([...RUN, '--rm', '-i', BUSYBOX_IMAGE, 'sh', '-c', 'cat; echo done'], { input });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe(`${input}done\n`);
  });

  it('exec and exec -i: output, stdin and exit code preserved', async () => {
    const id = await createContainer(f.socketPath, ['sleep', '300'], { start: true });
    cleanup.push(id);
    expect(await f.docker.run(['exec', id, 'sh', '-c', 'echo in-exec; exit 9'])).toMatchObject({
      code: 9,
      stdout: 'in-exec\n',
    });
    const piped = await f.docker.run(['exec', '-i', id, 'sh', '-c', 'tr a-z A-Z'], { input: 'shout\n' });
    expect(piped).toMatchObject({ code: 0, stdout: 'SHOUT\n' });
  });

  it('attach to a running container', async () => {
    // Output only: dockerd ends an attach session whose stdin reaches EOF, and the CLI helper
    // closes stdin at once (stdin through a hijack is covered by `run -i` and `exec -i`).
    const id = await createContainer(f.socketPath, ['sh', '-c', 'sleep 2; echo attached-out; exit 4'], {
      start: true,
    });
    cleanup.push(id);
    const result = await f.docker.run(['attach', '--no-stdin', id]);
    expect(result).toMatchObject({ code: 4, stdout: 'attached-out\n' });
  });

  it('logs -f streams until the container exits', async () => {
    const id = await createContainer(f.socketPath, ['sh', '-c', 'for i in 1 2 3; do echo line$i; sleep 0.5; done'], {
      start: true,
    });
    cleanup.push(id);
    const result = await f.docker.run(['logs', '-f', id]);
    expect(result).toMatchObject({ code: 0, stdout: 'line1\nline2\nline3\n' });
  });

  it('events: live stream, then --since/--until', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    const child = spawn('docker', ['events', '--format', '{{.Action}} {{.Actor.Attributes.name}}', '--filter', 'container=dsf-events'], {
      env: { PATH: process.env.PATH ?? '', DOCKER_HOST: f.served.dockerHost, DOCKER_CONFIG: f.docker.configDir },
    });
    let output = '';
    const seen = (text: string) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "${text}" in events: ${output}`)), 20_000);
        const check = () => {
          if (output.includes(text)) {
            clearTimeout(timer);
            resolve();
          }
        };
        child.stdout.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          check();
        });
        check();
      });
    try {
      // The events stream is open before the container exists: what arrives is live.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const id = await createContainer(f.socketPath, ['true'], { name: 'dsf-events' });
      cleanup.push(id);
      await seen('create dsf-events');
      await dockerRequest(f.socketPath, 'POST', `/containers/${id}/start`);
      await seen('die dsf-events');
    } finally {
      child.kill();
    }
    const until = Math.floor(Date.now() / 1000) + 1;
    const bounded = await f.docker.run([
      'events', '--since', String(since), '--until', String(until),
      '--format', '{{.Action}} {{.Actor.Attributes.name}}', '--filter', 'container=dsf-events',
    ]);
    expect(bounded.code, bounded.stderr).toBe(0);
    expect(bounded.stdout).toContain('create dsf-events');
    expect(bounded.stdout).toContain('start dsf-events');
  });

  it('cp into and out of a container', async () => {
    const id = await createContainer(f.socketPath, ['sleep', '300'], { start: true });
    cleanup.push(id);
    const local = join(work, 'upload.txt');
    await writeFile(local, 'copied in\n');
    expect((await f.docker.run(['cp', local, `${id}:/tmp/upload.txt`])).code).toBe(0);
    expect((await f.docker.run(['exec', id, 'cat', '/tmp/upload.txt'])).stdout).toBe('copied in\n');
    await f.docker.run(['exec', id, 'sh', '-c', 'echo copied out > /tmp/download.txt']);
    const out = join(work, 'download.txt');
    const copied = await f.docker.run(['cp', `${id}:/tmp/download.txt`, out]);
    expect(copied.code, copied.stderr).toBe(0);
    expect(await readFile(out, 'utf8')).toBe('copied out\n');
  });

  it('build with the legacy builder, then run the image', async () => {
    const context = join(work, 'context');
    await rm(context, { recursive: true, force: true });
    await import('node:fs/promises').then(({ mkdir }) => mkdir(context));
    await writeFile(join(context, 'Dockerfile'), `FROM ${BUSYBOX_IMAGE}\nCOPY message.txt /message.txt\nRUN echo built >> /message.txt\n`);
    await writeFile(join(context, 'message.txt'), 'from context\n');
    const built = await f.docker.run(['build', '--network', 'none', '-t', 'dsf-built:latest', context], {
      env: { DOCKER_BUILDKIT: '0' },
      timeoutMs: 90_000,
    });
    expect(built.code, built.stdout + built.stderr).toBe(0);
    const ran = await f.docker.run([...RUN, '--rm', 'dsf-built:latest', 'cat', '/message.txt']);
    expect(ran).toMatchObject({ code: 0, stdout: 'from context\nbuilt\n' });
    expect((await f.docker.run(['rmi', 'dsf-built:latest'])).code).toBe(0);
  }, 120_000);

  it('volume create and rm', async () => {
    expect((await f.docker.run(['volume', 'create', 'dsf-volume'])).stdout).toBe('dsf-volume\n');
    expect((await f.docker.run(['volume', 'ls', '-q'])).stdout.split('\n')).toContain('dsf-volume');
    expect((await f.docker.run(['volume', 'rm', 'dsf-volume'])).code).toBe(0);
  });

  it('HEAD /_ping and GET /_ping are both answered', async () => {
    for (const method of ['HEAD', 'GET']) {
      const response = await fetch(`http://127.0.0.1:${f.served.port}/_ping`, { method });
      expect(response.status).toBe(200);
      expect(response.headers.get('api-version')).toMatch(/^1\.\d+$/);
      await response.arrayBuffer();
    }
  });
});
