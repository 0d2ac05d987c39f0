import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildRootfsTar, dockerRequest, importImage, startDockerd, type Dockerd } from '../helpers/dockerd.js';
import { dockerCli, type DockerCli } from '../helpers/docker-cli.js';
import { createContainer } from '../helpers/fixtures.js';
import { startGuard, type Guard, type GuardProbe } from '../helpers/guard.js';
import { httpRequest, rawExchange } from '../helpers/raw-http.js';

// dockerd stopping, crashing and coming back under a running guard. These tests stop and kill a
// dockerd, so they start one of their own (the project's shared one stays up for other files).

const BIG_IMAGE = 'dsf-fault-big:latest';
// Larger than every buffer between dockerd and a client that stopped reading (socket buffers on
// both hops, the guard's stream buffers), so a `save` is still downloading when dockerd dies.
const BIG_FILE_BYTES = 48 * 1024 * 1024;
const ENV = { CONTAINERS: '1', POST: '1', IMAGES: '1' };

let dockerd: Dockerd;
let guard: Guard;
let docker: DockerCli;
let work: string;
let savedTar: string;
/** The guard's descriptors before any client or dockerd connection existed. */
let idle: GuardProbe;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dsf-faults-'));
  dockerd = await startDockerd();
  const configDir = join(work, 'docker-config');
  await mkdir(configDir);
  const tar = await buildRootfsTar(work, { 'data/big.bin': randomBytes(BIG_FILE_BYTES) });
  await importImage(dockerd.socketPath, tar, BIG_IMAGE, configDir);
  await rm(tar);
  // A valid image archive for `docker load`, saved straight from dockerd.
  savedTar = join(work, 'big-saved.tar');
  await new Promise<void>((resolve, reject) => {
    request({ socketPath: dockerd.socketPath, path: `/images/get?names=${encodeURIComponent(BIG_IMAGE)}` }, (res) => {
      pipeline(res, createWriteStream(savedTar)).then(resolve, reject);
    })
      .on('error', reject)
      .end();
  });
  guard = await startGuard(inject('guardCli'), { SOCKET_PATH: dockerd.socketPath, ...ENV });
  idle = await guard.probe();
  docker = dockerCli(`tcp://127.0.0.1:${guard.port}`);
}, 180_000);

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  const exit = await guard?.stop();
  docker?.dispose();
  await dockerd?.stop();
  await rm(work, { recursive: true, force: true });
  expect(exit).toEqual({ code: 0, signal: null });
});

/** One request through the guard: status, body, and how long it took. */
function call(method: string, path: string): Promise<{ status: number; body: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: guard.port, method, path, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ms: performance.now() - started }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 10 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** A docker CLI run through the guard, as a process the test watches (streams, stdin, stdout). */
function spawnDocker(args: readonly string[]): ChildProcess & { output: () => string } {
  const child = spawn('docker', args, {
    env: { PATH: process.env.PATH, HOME: docker.configDir, DOCKER_CONFIG: docker.configDir, DOCKER_HOST: `tcp://127.0.0.1:${guard.port}` },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.add(child);
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  child.stdin?.on('error', () => undefined);
  return Object.assign(child, { output: () => err });
}

function exited(child: ChildProcess, timeoutMs: number): Promise<{ code: number | null; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, ms: 0 });
      return;
    }
    const timer = setTimeout(() => reject(new Error(`docker ${child.spawnargs.slice(1).join(' ')} still running after ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, ms: performance.now() - started });
    });
  });
}

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The guard is back to the descriptors it had before any connection: nothing left open. */
async function expectNothingOpen(): Promise<void> {
  const after = await guard.settle((probe) => probe.sockets <= idle.sockets && probe.fds <= idle.fds + 2, { timeoutMs: 20_000 });
  expect(after.sockets).toBeLessThanOrEqual(idle.sockets);
  expect(after.fds).toBeLessThanOrEqual(idle.fds + 2);
}

describe('dockerd stopped, then started again', () => {
  it('every allowed request gets a quick 502 JSON error while it is down; the same guard serves again once it is back', async () => {
    const pid = guard.pid;
    expect((await call('GET', '/_ping')).status).toBe(200);

    await dockerd.halt('SIGTERM');
    // dockerd removes its socket on a clean stop: "does not exist".
    const answers = [];
    for (let round = 0; round < 25; round++) {
      answers.push(
        ...(await Promise.all([
          call('GET', '/_ping'),
          call('HEAD', '/_ping'),
          call('GET', '/v1.41/containers/json?all=1'),
          call('GET', '/v1.41/events'),
        ])),
      );
    }
    for (const { status, body } of answers) {
      expect(status).toBe(502);
      expect(JSON.parse(body || '{"message":"(HEAD)"}')).toMatchObject({ message: expect.any(String) });
    }
    expect(JSON.parse((answers[0] as { body: string }).body)).toEqual({
      message: 'docker-socket-filter: The Docker daemon is unreachable: its socket does not exist (ENOENT)',
    });
    // Quickly: no retry loop, no timeout to wait out.
    expect(Math.max(...answers.map(({ ms }) => ms))).toBeLessThan(1_000);
    // An upgrade gets the same answer on its raw socket; a denial is still a denial.
    const upgrade = await rawExchange(
      guard.port,
      httpRequest('POST', '/v1.41/containers/abc/attach?stream=1&stdout=1', { Connection: 'Upgrade', Upgrade: 'tcp', 'Content-Length': '0' }),
    );
    expect(upgrade.statuses).toEqual([502]);
    expect(upgrade.text).toContain('{"message":"docker-socket-filter: The Docker daemon is unreachable: its socket does not exist (ENOENT)"}');
    expect((await call('GET', '/v1.41/info')).status).toBe(403);
    // A docker client sees dockerd's own kind of error.
    const ps = await docker.run(['ps']);
    expect(ps.code).not.toBe(0);
    expect(ps.stderr).toContain('The Docker daemon is unreachable');
    await guard.line(/level=warning msg=request method=GET path=\/_ping decision=allowed rule=PING status=502/);

    await dockerd.restart();
    expect(guard.alive()).toBe(true);
    expect(guard.pid).toBe(pid);
    // The first request after the restart already works: no stale pooled connection is reused.
    expect((await call('GET', '/_ping')).status).toBe(200);
    const again = await docker.run(['ps', '--format', '{{.ID}}']);
    expect(again.code, again.stderr).toBe(0);
    await expectNothingOpen();
  }, 120_000);
});

describe('dockerd killed mid-stream', () => {
  it('docker events, logs -f, a save download and a load upload all end; nothing hangs, no socket stays open', async () => {
    const chatty = await createContainer(dockerd.socketPath, ['sh', '-c', 'while :; do echo tick; sleep 0.2; done'], { start: true });

    // 1. docker events: established once an event made straight on dockerd comes through.
    const events = spawnDocker(['events', '--format', '{{.Type}} {{.Action}}']);
    let seen = '';
    events.stdout?.setEncoding('utf8').on('data', (chunk: string) => (seen += chunk));
    await until(async () => {
      if (seen.includes('container create')) return true;
      await createContainer(dockerd.socketPath, ['true']);
      await new Promise((resolve) => setTimeout(resolve, 300));
      return seen.includes('container create');
    }, 'docker events to see a create');

    // 2. docker logs -f
    const logs = spawnDocker(['logs', '-f', chatty]);
    let ticks = '';
    logs.stdout?.setEncoding('utf8').on('data', (chunk: string) => (ticks += chunk));
    await until(() => ticks.includes('tick'), 'logs -f output');

    // 3. docker save, whose reader stops reading after the first MiB: the download is in progress.
    const save = spawnDocker(['save', BIG_IMAGE]);
    let saved = 0;
    let stalled = false;
    save.stdout?.on('data', (chunk: Buffer) => {
      saved += chunk.length;
      if (saved > 1024 * 1024 && !stalled) {
        stalled = true;
        save.stdout?.pause();
      }
    });
    await until(() => saved > 1024 * 1024, 'the save download to start');

    // 4. docker load, fed half of a valid archive; its stdin stays open (the upload is in progress).
    const load = spawnDocker(['load']);
    const archive = await readFile(savedTar);
    load.stdin?.write(archive.subarray(0, archive.length >> 1));

    // 5. a raw events stream, to see how the end looks on the wire.
    const raw = await new Promise<IncomingMessage>((resolve, reject) => {
      request({ host: '127.0.0.1', port: guard.port, path: '/v1.41/events', agent: false }, resolve).on('error', reject).end();
    });
    expect(raw.statusCode).toBe(200);
    const rawEnded = new Promise<{ complete: boolean }>((resolve) => {
      raw.on('error', () => undefined);
      raw.on('close', () => resolve({ complete: raw.complete }));
      raw.resume();
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect([events, logs, save, load].map((child) => child.exitCode)).toEqual([null, null, null, null]);

    await dockerd.halt('SIGKILL');
    save.stdout?.resume();

    // Every client sees its stream end, within seconds, and as a failure: a cut stream never looks
    // complete (a truncated `save` must not exit 0).
    const ends = await Promise.all([events, logs, save, load].map((child) => exited(child, 15_000)));
    for (const [index, { code }] of ends.entries()) {
      expect(code, ['events', 'logs -f', 'save', 'load'][index]).not.toBe(0);
    }
    expect(saved).toBeLessThan(BIG_FILE_BYTES);
    expect(load.output()).toMatch(/Error|error|EOF/);
    expect(await rawEnded).toEqual({ complete: false });
    load.stdin?.destroy();

    // The socket file is still there after a crash: the message says so.
    const down = await call('GET', '/_ping');
    expect(down.status).toBe(502);
    expect(JSON.parse(down.body)).toEqual({
      message: 'docker-socket-filter: The Docker daemon is unreachable: nothing accepts connections on its socket, dockerd is stopped or restarting (ECONNREFUSED)',
    });
    expect(guard.alive()).toBe(true);
    await expectNothingOpen();

    await dockerd.restart();
    expect((await call('GET', '/_ping')).status).toBe(200);
    const ps = await docker.run(['ps', '-a', '--format', '{{.ID}}']);
    expect(ps.code, ps.stderr).toBe(0);
    await dockerRequest(dockerd.socketPath, 'DELETE', `/containers/${chatty}?force=1`);
    await expectNothingOpen();
  }, 150_000);
});

describe('SOCKET_PATH that is missing or not a socket', () => {
  it('the guard starts (dockerd may come later) and answers each request with a 502 saying which', async () => {
    const path = join(work, 'later', 'docker.sock');
    const other = await startGuard(inject('guardCli'), { SOCKET_PATH: path, ...ENV });
    try {
      await other.line(/level=warning msg="dockerd socket does not exist yet; requests get 502 until it does"/);
      const get = (target: string) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          request({ host: '127.0.0.1', port: other.port, path: target, agent: false }, (res) => {
            let body = '';
            res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          })
            .on('error', reject)
            .end();
        });
      expect(await get('/_ping')).toEqual({ status: 502, body: '{"message":"docker-socket-filter: The Docker daemon is unreachable: its socket does not exist (ENOENT)"}' });

      // Something that is not a socket appears at the path (a file, or a directory a bad mount made).
      await mkdir(join(work, 'later'));
      await writeFile(path, 'not a socket');
      const notSocket = '{"message":"docker-socket-filter: The Docker daemon is unreachable: the configured socket path is not a unix socket (ECONNREFUSED)"}';
      expect(await get('/_ping')).toEqual({ status: 502, body: notSocket });
      await rm(path);
      await mkdir(path);
      expect(await get('/v1.41/containers/json')).toEqual({ status: 502, body: notSocket });
      // Denials are unaffected.
      expect((await get('/v1.41/info')).status).toBe(403);
      expect(other.alive()).toBe(true);
    } finally {
      expect(await other.stop()).toEqual({ code: 0, signal: null });
    }
  });
});
