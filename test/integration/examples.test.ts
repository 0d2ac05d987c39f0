/**
 * The runnable examples in examples/ are exercised here, as users run them (`npx tsx examples/…`),
 * so they cannot rot.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { dockerCli, type DockerCli } from '../helpers/docker-cli.js';
import { createContainer, removeContainer } from '../helpers/fixtures.js';

const ROOT = join(import.meta.dirname, '..', '..');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');

interface RunningExample {
  readonly child: ChildProcess;
  readonly port: number;
  readonly output: () => string;
}

/** Starts an example on a free port and waits for its "listening on <port>" line. */
async function startExample(file: string, socketPath: string, env: Record<string, string> = {}): Promise<RunningExample> {
  const child = spawn(TSX, [join(ROOT, 'examples', file)], {
    cwd: ROOT,
    env: { ...process.env, ...env, SOCKET_PATH: socketPath, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${file} did not start: ${output}`)), 30_000);
    const check = (): void => {
      const match = /listening on (\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${file} exited with ${code}: ${output}`));
    });
  });
  return { child, port, output: () => output };
}

async function stopExample(example: RunningExample | undefined): Promise<void> {
  if (!example || example.child.exitCode !== null) return;
  const exited = once(example.child, 'exit');
  example.child.kill('SIGTERM');
  const timer = setTimeout(() => example.child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

describe.each([
  ['express.ts', '/docker', {}],
  ['koa.ts', '', {}],
  // The standalone example reads the Tecnativa variables from its environment.
  ['standalone.ts', '', { CONTAINERS: '1', EXEC: '1', POST: '1' }],
  // Two processes sharing the port, each with its own filter and pool.
  ['cluster.ts', '', { CONTAINERS: '1', EXEC: '1', POST: '1', WORKERS: '2' }],
])('examples/%s', (file, prefix, env) => {
  const socketPath = inject('dockerSocket');
  let example: RunningExample | undefined;
  let docker: DockerCli;
  let container: string;

  beforeAll(async () => {
    example = await startExample(file, socketPath, env);
    docker = dockerCli(`tcp://127.0.0.1:${example.port}${prefix}`);
    container = await createContainer(socketPath, ['sleep', '300'], { start: true });
  });

  afterAll(async () => {
    await removeContainer(socketPath, container);
    await stopExample(example);
    docker?.dispose();
  });

  test('docker ps and docker exec work through it', async () => {
    const ps = await docker.run(['ps', '--no-trunc', '--format', '{{.ID}}']);
    expect(ps.code).toBe(0);
    expect(ps.stdout).toContain(container);
    const exec = await docker.run(['exec', container, 'echo', 'from the example']);
    expect(exec).toMatchObject({ code: 0, stdout: 'from the example\n' });
  });

  test('it denies what its policy does not grant', async () => {
    const { code, stderr } = await docker.run(['image', 'ls']);
    expect(code).not.toBe(0);
    expect(stderr).toContain('needs IMAGES=1');
  });

  test('SIGTERM stops it', async () => {
    await stopExample(example);
    expect(example!.child.exitCode ?? example!.child.signalCode).not.toBeNull();
  });
});

test('examples/express.ts refuses archive reads it narrows away', async () => {
  const socketPath = inject('dockerSocket');
  const example = await startExample('express.ts', socketPath);
  const docker = dockerCli(`tcp://127.0.0.1:${example.port}/docker`);
  const container = await createContainer(socketPath, ['sleep', '300'], { start: true });
  try {
    const { code, stderr } = await docker.run(['cp', `${container}:/bin/busybox`, '-'], { binary: true });
    expect(code).not.toBe(0);
    expect(stderr).toContain('deny * /containers/*/archive');
  } finally {
    await removeContainer(socketPath, container);
    await stopExample(example);
    docker.dispose();
  }
});
