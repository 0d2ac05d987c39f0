// No slot held by silence where nothing legitimate is silent: a refused request's body is not
// waited for, and an allowed upload that stops before dockerd answers is cut; a slow but living
// upload is not. Against the real dockerd; the idle limit is set low here (the default is 60 s).
import { connect, createServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createSocketFilter, tecnativaPreset } from '../../src/index.js';
import { DENIED_BODY_DRAIN } from '../../src/proxy/web.js';
import { createContainer, removeContainer } from '../helpers/fixtures.js';
import { serve, type ServedFilter } from '../helpers/filter-server.js';
import { dockerCli } from '../helpers/docker-cli.js';
import { BUSYBOX_IMAGE } from '../helpers/fixtures.js';
import { dockerRequest } from '../helpers/dockerd.js';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

const socketPath = inject('dockerSocket');
const dockerdPid = inject('dockerdPid');
const dockerdDescriptors = async (): Promise<number> => (await readdir(`/proc/${dockerdPid}/fd`)).length;
const IDLE_MS = 1_000;

interface Outcome {
  readonly text: string;
  /** Milliseconds from the head to the guard closing the connection (or the end of the wait). */
  readonly closedAfterMs: number;
  readonly closed: boolean;
}

/** Sends `head`, then `pieces` (`gapMs` apart), and reads until the guard closes or `waitMs`. */
function upload(port: number, head: string, pieces: readonly Buffer[], gapMs: number, waitMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let text = '';
    const started = Date.now();
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closedAfterMs: Date.now() - started, closed });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.once('connect', async () => {
      socket.write(head);
      for (const piece of pieces) {
        await new Promise((r) => setTimeout(r, gapMs));
        if (socket.destroyed) return;
        socket.write(piece);
      }
    });
  });
}

let readOnly: ServedFilter;
let writer: ServedFilter;
let container: string;
let work: string;

beforeAll(async () => {
  container = await createContainer(socketPath, ['sleep', '300'], { start: true });
  readOnly = await serve(createSocketFilter({ policy: tecnativaPreset({ CONTAINERS: '1' }), socketPath }));
  writer = await serve(
    createSocketFilter({ policy: tecnativaPreset({ CONTAINERS: '1', POST: '1' }), socketPath, uploadIdleTimeoutMs: IDLE_MS }),
  );
  work = await mkdtemp('/tmp/dsf-slow-');
});

afterAll(async () => {
  await readOnly?.close();
  await writer?.close();
  await removeContainer(socketPath, container);
  await rm(work, { recursive: true, force: true });
});

describe('a refused request’s body is not waited for', () => {
  it('a refusal declaring a large body that never comes: answered at once, closed after the drain time', async () => {
    const outcome = await upload(
      readOnly.port,
      `PUT /v1.41/containers/${container}/archive?path=/tmp HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n`,
      [],
      0,
      DENIED_BODY_DRAIN.ms + 3_000,
    );
    expect(outcome.text).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
    expect(outcome.text).toContain('docker-socket-filter denied PUT');
    expect(outcome.closed).toBe(true);
    expect(outcome.closedAfterMs).toBeGreaterThanOrEqual(DENIED_BODY_DRAIN.ms - 100);
    expect(outcome.closedAfterMs).toBeLessThan(DENIED_BODY_DRAIN.ms + 2_000);
  });

  it('a refusal whose body keeps coming: answered at once, closed once the drain bound is passed', async () => {
    const piece = Buffer.alloc(64 * 1024, 0x61);
    const outcome = await upload(
      readOnly.port,
      `PUT /v1.41/containers/${container}/archive?path=/tmp HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n`,
      Array.from({ length: 40 }, () => piece),
      20,
      10_000,
    );
    expect(outcome.text).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
    expect(outcome.closed).toBe(true);
    // 256 KiB at 64 KiB every 20 ms: well before the 40 pieces are sent.
    expect(outcome.closedAfterMs).toBeLessThan(DENIED_BODY_DRAIN.ms);
  });
});

describe('an allowed upload that stops before dockerd answers', () => {
  it('is cut after the idle limit with 408, and dockerd keeps nothing of it', async () => {
    const dockerdBefore = await dockerdDescriptors();
    const outcome = await upload(
      writer.port,
      `PUT /v1.41/containers/${container}/archive?path=/tmp HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\nContent-Length: 1000000\r\n\r\n`,
      [Buffer.alloc(512, 0)],
      10,
      IDLE_MS + 4_000,
    );
    expect(outcome.text).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(outcome.text).toContain('The request body stopped arriving');
    expect(outcome.closed).toBe(true);
    expect(outcome.closedAfterMs).toBeGreaterThanOrEqual(IDLE_MS);
    expect(outcome.closedAfterMs).toBeLessThan(IDLE_MS + 2_500);
    // The connection to dockerd went with it (an idle pooled one may stay, and times out).
    const deadline = Date.now() + 10_000;
    while ((await dockerdDescriptors()) - dockerdBefore > 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await dockerdDescriptors()) - dockerdBefore).toBeLessThanOrEqual(1);
  });

  it('a slow upload that keeps sending (a piece every 0.3 s, six times the limit in all) goes through', async () => {
    await mkdir(join(work, 'slow'), { recursive: true });
    await writeFile(join(work, 'slow', 'slow.txt'), 'uploaded slowly\n');
    await run('tar', ['-C', join(work, 'slow'), '-cf', join(work, 'slow.tar'), 'slow.txt']);
    const tar = await readFile(join(work, 'slow.tar'));
    const size = Math.ceil(tar.length / 20);
    const pieces = Array.from({ length: Math.ceil(tar.length / size) }, (_, i) => tar.subarray(i * size, (i + 1) * size));
    const outcome = await upload(
      writer.port,
      `PUT /v1.41/containers/${container}/archive?path=/tmp HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\nContent-Length: ${tar.length}\r\nConnection: close\r\n\r\n`,
      pieces,
      300,
      30_000,
    );
    expect(outcome.text, outcome.text.slice(0, 300)).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    const file = await dockerRequest(socketPath, 'GET', `/containers/${container}/archive?path=/tmp/slow.txt`);
    expect(file.status).toBe(200);
    expect(file.body).toContain('uploaded slowly');
  }, 40_000);
});

describe('a real client on a slow link', () => {
  it('`docker load` through a link throttled to 256 KiB/s works with a 1 s idle limit: a live upload never pauses that long', async () => {
    const loader = await serve(
      createSocketFilter({ policy: tecnativaPreset({ IMAGES: '1', POST: '1' }), socketPath, uploadIdleTimeoutMs: IDLE_MS }),
    );
    // A relay that lets 16 KiB through every 62 ms toward the guard.
    const gaps: number[] = [];
    const relay = createServer((client) => {
      const guard = connect({ host: '127.0.0.1', port: loader.port });
      const queue: Buffer[] = [];
      let last = Date.now();
      const tick = setInterval(() => {
        let budget = 16 * 1024;
        while (budget > 0 && queue.length > 0) {
          const head = queue[0] as Buffer;
          const part = head.subarray(0, budget);
          guard.write(part);
          budget -= part.length;
          if (part.length === head.length) queue.shift();
          else queue[0] = head.subarray(part.length);
          gaps.push(Date.now() - last);
          last = Date.now();
        }
        if (queue.length > 8) client.pause();
        else client.resume();
      }, 62);
      client.on('data', (chunk: Buffer) => queue.push(chunk));
      guard.pipe(client);
      const end = (): void => {
        clearInterval(tick);
        client.destroy();
        guard.destroy();
      };
      client.on('close', end);
      guard.on('close', end);
      client.on('error', end);
      guard.on('error', end);
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const docker = dockerCli(`tcp://127.0.0.1:${(relay.address() as AddressInfo).port}`);
    try {
      const direct = dockerCli(`unix://${socketPath}`);
      const saved = join(work, 'image.tar');
      expect((await direct.run(['save', '-o', saved, BUSYBOX_IMAGE])).code).toBe(0);
      direct.dispose();
      const load = await docker.run(['load', '-i', saved], { timeoutMs: 90_000 });
      expect(load.code, load.stderr).toBe(0);
      expect(load.stdout).toContain('Loaded image');
      // What the guard saw: a piece at least every tick; the 60 s default leaves a wide margin.
      expect(Math.max(...gaps)).toBeLessThan(IDLE_MS);
    } finally {
      docker.dispose();
      relay.close();
      await loader.close();
    }
  }, 120_000);
});
