import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { request, type IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildCli } from '../helpers/cli-build.js';
import { waitForLine } from '../helpers/child-lines.js';
import { BUSYBOX_IMAGE, dockerRequest } from '../helpers/fixtures.js';

// `--workers N`: N processes serving one policy. Judged by what each process did (its log lines
// carry `worker=N`), by the processes that exist, and by dockerd's answers.

let CLI: string;
let disposeCli: (() => Promise<void>) | undefined;
let dockerSocket: string;
let work: string;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  dockerSocket = inject('dockerSocket');
  work = await mkdtemp(join(tmpdir(), 'dsf-workers-'));
  const cli = await buildCli('workers');
  CLI = cli.path;
  disposeCli = cli.dispose;
});

afterEach(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      // The whole group: a primary killed alone would leave its workers to stop by themselves.
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
      await once(child, 'exit');
    }
  }
  children.clear();
});

afterAll(async () => {
  await disposeCli?.();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

interface Running {
  readonly child: ChildProcess;
  stderr(): string;
  line(pattern: RegExp, timeoutMs?: number): Promise<string>;
  exit(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts the CLI in a process group of its own (so a test can signal the group, as a terminal does). */
function start(args: readonly string[], env: Record<string, string> = {}): Running {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH as string, SOCKET_PATH: dockerSocket, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  children.add(child);
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  return { child, stderr: () => err, exit: () => exited, line: (pattern, timeoutMs) => waitForLine(child, () => err, pattern, timeoutMs) };
}

/** Starts `--workers 2` on a TCP port 0 and a unix socket; resolves once the primary says it listens. */
async function serveTwo(extra: readonly string[] = [], env: Record<string, string> = {}) {
  const unix = join(work, `guard-${Math.random().toString(36).slice(2)}.sock`);
  const running = start(['--workers', '2', '--listen', '127.0.0.1:0', '--listen', `unix:${unix}`, ...extra], env);
  const listening = await running.line(/msg=listening/);
  const port = Number(/listen=127\.0\.0\.1:(\d+),/.exec(listening)?.[1]);
  return { running, listening, port, unix };
}

/** The pids of a process's children (its workers). */
function childrenOf(pid: number): number[] {
  try {
    return execFileSync('ps', ['--ppid', String(pid), '-o', 'pid='], { encoding: 'utf8' })
      .split('\n')
      .map((line) => Number(line.trim()))
      .filter((value) => value > 0);
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

type Where = { port: number } | { socketPath: string };

/** One request on a connection of its own (so the kernel or the primary picks a worker each time). */
function ask(where: Where, path: string, method = 'GET'): Promise<{ status: number; body: string; headers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { ...('port' in where ? { host: '127.0.0.1', port: where.port } : { socketPath: where.socketPath }), path, method, agent: false, headers: { Connection: 'close' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode as number, body, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Which workers logged a request line for `path` (LOG_LEVEL=debug logs allowed ones too). */
function workersServing(stderr: string, path: string, decision?: 'allowed' | 'denied'): Set<string> {
  const workers = new Set<string>();
  for (const line of stderr.split('\n')) {
    if (!line.includes(' msg=request ') || !line.includes(` path=${path} `)) continue;
    if (decision !== undefined && !line.includes(` decision=${decision} `)) continue;
    const worker = / worker=(\d+)$/.exec(line)?.[1];
    if (worker !== undefined) workers.add(worker);
  }
  return workers;
}

describe('--workers 2', () => {
  it('starts two workers that each serve TCP and unix clients with the same policy, one log stream of whole lines', async () => {
    const { running, listening, port, unix } = await serveTwo([], { LOG_LEVEL: 'debug' });
    expect(listening).toMatch(/ workers=2(?: |$)/);
    const workers = childrenOf(running.child.pid as number);
    expect(workers).toHaveLength(2);
    // The unix socket is born 0600 and opened up to the default mode once both workers listen.
    expect((await stat(unix)).mode & 0o777).toBe(0o660);

    for (let i = 0; i < 40; i++) {
      const tcp = await ask({ port }, i % 2 === 0 ? '/_ping' : '/v1.41/info');
      const local = await ask({ socketPath: unix }, i % 2 === 0 ? '/_ping' : '/v1.41/info');
      for (const answer of [tcp, local]) {
        if (i % 2 === 0) expect([answer.status, answer.body]).toEqual([200, 'OK']);
        else expect(answer.status).toBe(403);
      }
    }
    await until(() => workersServing(running.stderr(), '/v1.41/info').size === 2 && workersServing(running.stderr(), '/_ping').size === 2);
    expect([...workersServing(running.stderr(), '/_ping')].sort()).toEqual(['1', '2']);
    expect([...workersServing(running.stderr(), '/v1.41/info')].sort()).toEqual(['1', '2']);

    running.child.kill('SIGTERM');
    expect((await running.exit()).code, running.stderr()).toBe(0);
    // Every line is a whole logfmt line: two processes writing one stderr never cut into each other.
    const lines = running.stderr().trim().split('\n');
    for (const line of lines) expect(line).toMatch(/^time=\S+ level=[a-z]+ msg=/);
    expect(lines.at(-1)).toMatch(/msg=stopped workers=2$/);
    // The primary removed the unix socket, and no worker outlived it.
    await expect(stat(unix)).rejects.toMatchObject({ code: 'ENOENT' });
    for (const pid of workers) expect(alive(pid)).toBe(false);
  });

  it('stops gracefully on SIGTERM: a stream open on each worker ends, and the exit code is 0', async () => {
    const { running, port } = await serveTwo(['--grace', '1']);
    // Eight streams over fresh connections: the kernel spreads them over both workers.
    const streams = await Promise.all(
      Array.from(
        { length: 8 },
        () =>
          new Promise<Socket>((resolve, reject) => {
            const socket = connect(port, '127.0.0.1', () => socket.write('GET /v1.41/events HTTP/1.1\r\nHost: docker\r\n\r\n'));
            socket.once('data', () => resolve(socket));
            socket.once('error', reject);
          }),
      ),
    );
    const ended = streams.map((socket) => once(socket, 'close'));
    const started = Date.now();
    running.child.kill('SIGTERM');
    const { code } = await running.exit();
    expect(code, running.stderr()).toBe(0);
    await Promise.all(ended);
    // The grace period (1 s) and no more than a little: the streams were cut when it ran out.
    expect(Date.now() - started).toBeLessThan(8_000);
    const stopped = running.stderr().split('\n').filter((line) => / msg=stopped cut_connections=\d+ worker=\d$/.test(line));
    expect(stopped).toHaveLength(2);
  });

  it('a second SIGTERM stops every worker now', async () => {
    const { running, port } = await serveTwo(['--grace', '60']);
    const socket = connect(port, '127.0.0.1', () => socket.write('GET /v1.41/events HTTP/1.1\r\nHost: docker\r\n\r\n'));
    await once(socket, 'data');
    const started = Date.now();
    running.child.kill('SIGTERM');
    await running.line(/msg=stopping .*worker=/);
    running.child.kill('SIGTERM');
    expect((await running.exit()).code, running.stderr()).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    socket.destroy();
  });

  it('Ctrl-C to the whole process group is one graceful stop, not two', async () => {
    const { running } = await serveTwo(['--grace', '1']);
    process.kill(-(running.child.pid as number), 'SIGINT');
    expect((await running.exit()).code, running.stderr()).toBe(0);
    expect(running.stderr()).toMatch(/msg=stopping signal=SIGINT grace_s=1 workers=2/);
    expect(running.stderr().match(/msg=stopping signal=SIGTERM grace_s=1 worker=\d/g)).toHaveLength(2);
  });

  it('reloads one file on SIGHUP into every worker; an invalid one changes none', async () => {
    const file = join(work, `reload-${Math.random().toString(36).slice(2)}.yaml`);
    await writeFile(file, 'policy:\n  preset: tecnativa\n  env: { PING: 1 }\n');
    const { running, port } = await serveTwo(['--config', file], { LOG_LEVEL: 'debug' });
    for (let i = 0; i < 10; i++) expect((await ask({ port }, '/v1.41/info')).status).toBe(403);

    await writeFile(file, 'policy:\n  preset: tecnativa\n  env: { PING: 1, INFO: 1 }\n');
    running.child.kill('SIGHUP');
    await running.line(/msg=reloaded .*workers=2/);
    const after = await Promise.all(Array.from({ length: 20 }, () => ask({ port }, '/v1.41/info')));
    expect(after.map((answer) => answer.status)).toEqual(Array(20).fill(200));
    await until(() => workersServing(running.stderr(), '/v1.41/info', 'allowed').size === 2);

    await writeFile(file, 'policy:\n  preset: tecnativa\n  env: { PING: 1, INFO: maybe }\n');
    running.child.kill('SIGHUP');
    await running.line(/msg="reload refused"/);
    const still = await Promise.all(Array.from({ length: 20 }, () => ask({ port }, '/v1.41/info')));
    expect(still.map((answer) => answer.status)).toEqual(Array(20).fill(200));
    // One line per reload, from the primary.
    expect(running.stderr().match(/msg=reloaded /g)).toHaveLength(1);
    expect(running.stderr().match(/msg="reload refused"/g)).toHaveLength(1);
  });

  it('every worker protects SOCKET_PATH under PROTECT_HOST, though the file does not name it', async () => {
    // ALLOW_BIND_MOUNTS allows the directory above the socket's; the socket's own holds dockerd.
    const socketDirectory = dirname(dockerSocket);
    const file = join(work, `protect-${Math.random().toString(36).slice(2)}.yaml`);
    await writeFile(file, `policy:\n  preset: tecnativa\n  env: { CONTAINERS: 1, POST: 1, PROTECT_HOST: 1, ALLOW_BIND_MOUNTS: [${dirname(socketDirectory)}] }\n`);
    const { running, port } = await serveTwo(['--config', file], { LOG_LEVEL: 'debug' });
    const name = 'dsf-workers-socket-dir';
    const body = JSON.stringify({ Image: BUSYBOX_IMAGE, Cmd: ['true'], HostConfig: { NetworkMode: 'none', Binds: [`${socketDirectory}:/d`] } });
    const create = (): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port, path: `/v1.41/containers/create?name=${name}`, method: 'POST', agent: false, headers: { Connection: 'close', 'Content-Type': 'application/json' } },
          (res) => {
            let text = '';
            res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
            res.on('end', () => resolve({ status: res.statusCode as number, body: text }));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    try {
      // Until both workers have decided one (the kernel picks the worker of each connection).
      for (let i = 0; i < 40 && workersServing(running.stderr(), '/v1.41/containers/create', 'denied').size < 2; i++) {
        const answer = await create();
        expect(answer.status).toBe(403);
        expect((JSON.parse(answer.body) as { message: string }).message).toContain(`"${socketDirectory}", which exposes the Docker daemon`);
      }
      expect(workersServing(running.stderr(), '/v1.41/containers/create', 'denied').size).toBe(2);
      expect((await dockerRequest(dockerSocket, 'GET', `/containers/${name}/json`)).status).toBe(404);
    } finally {
      await dockerRequest(dockerSocket, 'DELETE', `/containers/${name}?force=1`);
    }
  });

  it('replaces a worker that dies, with the policy of the last reload rather than the file as it is now', async () => {
    const file = join(work, `respawn-${Math.random().toString(36).slice(2)}.yaml`);
    await writeFile(file, 'policy:\n  preset: tecnativa\n  env: { PING: 1 }\n');
    const { running, port } = await serveTwo(['--config', file], { LOG_LEVEL: 'debug' });
    await writeFile(file, 'policy:\n  preset: tecnativa\n  env: { PING: 1, INFO: 1 }\n');
    running.child.kill('SIGHUP');
    await running.line(/msg=reloaded /);
    // The file changes again but is not reloaded: a new worker must not read it.
    await writeFile(file, 'policy:\n  preset: tecnativa\n  env: { PING: 1 }\n');

    const [victim] = childrenOf(running.child.pid as number);
    process.kill(victim as number, 'SIGKILL');
    const exitedLine = await running.line(/msg="worker exited; starting another" worker=\d signal=SIGKILL/);
    const replaced = /worker=(\d)/.exec(exitedLine)?.[1] as string;
    await until(() => childrenOf(running.child.pid as number).filter((pid) => pid !== victim).length === 2);
    // Give the new worker time to listen, then every connection, whichever worker takes it, sees
    // the reloaded policy.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const answers = await Promise.all(Array.from({ length: 30 }, () => ask({ port }, '/v1.41/info')));
    expect(answers.map((answer) => answer.status)).toEqual(Array(30).fill(200));
    // The new worker (same index as the one it replaces) took some of them.
    const sinceRespawn = (): string => running.stderr().slice(running.stderr().indexOf(exitedLine));
    await until(() => workersServing(sinceRespawn(), '/v1.41/info', 'allowed').has(replaced));
  });

  it('workers stop when the primary is killed, and free the address', async () => {
    const { running, port } = await serveTwo(['--grace', '1']);
    const workers = childrenOf(running.child.pid as number);
    expect(workers).toHaveLength(2);
    running.child.kill('SIGKILL');
    await running.exit();
    await until(() => workers.every((pid) => !alive(pid)), 10_000);
    await expect(ask({ port }, '/_ping')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('serves the metrics of every worker from the primary', async () => {
    const { running, port, unix } = await serveTwo(['--metrics-listen', '127.0.0.1:0']);
    const metricsPort = Number(/metrics=127\.0\.0\.1:(\d+)/.exec(running.stderr())?.[1]);
    for (let i = 0; i < 25; i++) await ask(i % 2 === 0 ? { port } : { socketPath: unix }, '/v1.41/info');
    const text = (await ask({ port: metricsPort }, '/metrics')).body;
    expect(text).toMatch(/^docker_socket_filter_workers 2$/m);
    expect(text).toMatch(/^docker_socket_filter_requests_total\{client="",decision="denied",rule="default-deny",status="403"\} 25$/m);
    expect(text).toMatch(/^docker_socket_filter_config_last_reload_successful 1$/m);
    // The workers' shares of the budget add up to the guard's.
    expect(text).toMatch(/^docker_socket_filter_held_bytes_max 16777216$/m);
    expect(text).toMatch(/^docker_socket_filter_held_refused_total 0$/m);
    expect((await ask({ port: metricsPort }, '/healthz')).status).toBe(200);

    // One worker gone: /healthz says so until another has taken its place.
    const [victim] = childrenOf(running.child.pid as number);
    process.kill(victim as number, 'SIGKILL');
    await running.line(/msg="worker exited; starting another"/);
    const health = await ask({ port: metricsPort }, '/healthz');
    expect([health.status, health.body]).toEqual([503, 'unhealthy: 1 of 2 workers are running\n']);
  });
});

describe('--workers shares the budget of held bytes', () => {
  let id: string | undefined;
  afterAll(async () => {
    if (id !== undefined) await dockerRequest(dockerSocket, 'DELETE', `/containers/${id}?force=1`);
  });

  it('each worker holds its share: an inspect of 1.5 MB fits a budget of 2 MiB, not a worker’s half of it', async () => {
    const labels = Object.fromEntries(Array.from({ length: 1_500 }, (_, i) => [`label.${i}`, 'x'.repeat(1_000)]));
    const created = await dockerRequest(dockerSocket, 'POST', '/containers/create?name=dsf-workers-held', { Image: BUSYBOX_IMAGE, Cmd: ['true'], Labels: labels, HostConfig: { NetworkMode: 'none' } });
    expect(created.status, created.body).toBe(201);
    id = (JSON.parse(created.body) as { Id: string }).Id;
    // One process holds the whole budget: the answer fits.
    const single = start(['--listen', '127.0.0.1:0', '--max-held-bytes', '2MiB'], { CONTAINERS: '1', REDACT_ENV: '1' });
    const singlePort = Number(/listen=127\.0\.0\.1:(\d+)/.exec(await single.line(/msg=listening/))?.[1]);
    const whole = await ask({ port: singlePort }, `/v1.41/containers/${id}/json`);
    expect(whole.status).toBe(200);
    expect(whole.body.length).toBeGreaterThan(1_500_000);
    // Two workers hold 1 MiB each: every one of them refuses it.
    const { port } = await serveTwo(['--max-held-bytes', '2MiB'], { CONTAINERS: '1', REDACT_ENV: '1' });
    for (let i = 0; i < 4; i++) {
      const answer = await ask({ port }, `/v1.41/containers/${id}/json`);
      expect(answer.status).toBe(503);
      expect(JSON.parse(answer.body).message).toContain('this request needs more than the 1 MiB it holds at most');
    }
  });
});

describe('--workers refusals', () => {
  it('refuses limits too small to share, before starting anything', async () => {
    const running = start(['--workers', '3', '--max-upstream-connections', '2', '--listen', '127.0.0.1:0']);
    expect((await running.exit()).code).toBe(2);
    expect(running.stderr()).toBe(
      'docker-socket-filter: --max-upstream-connections/MAX_UPSTREAM_CONNECTIONS is 2, less than one connection for each of the 3 workers: raise it or lower --workers/WORKERS\n',
    );
  });

  it('refuses a budget of held bytes that leaves a worker less than 1 MiB', async () => {
    const running = start(['--workers', '3', '--max-held-bytes', '2m', '--listen', '127.0.0.1:0']);
    expect((await running.exit()).code).toBe(2);
    expect(running.stderr()).toBe(
      'docker-socket-filter: --max-held-bytes/MAX_HELD_BYTES is 2097152, less than 1MiB for each of the 3 workers: raise it or lower --workers/WORKERS\n',
    );
  });

  it('exits 2 with the reason when the workers cannot listen, leaving no process behind', async () => {
    const blocker = spawn(process.execPath, ['-e', "require('net').createServer().listen(0,'127.0.0.1',function(){console.log(this.address().port)})"], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.add(blocker);
    const [chunk] = (await once(blocker.stdout as NodeJS.ReadableStream, 'data')) as [Buffer];
    const taken = Number(chunk.toString().trim());
    const running = start(['--workers', '2', '--listen', `127.0.0.1:${taken}`]);
    const { code } = await running.exit();
    expect(code).toBe(2);
    expect(running.stderr()).toContain(`cannot listen on 127.0.0.1:${taken}: address already in use`);
    // A failed start is not a crash: nothing is started again.
    expect(running.stderr()).not.toContain('starting another');
    expect(childrenOf(running.child.pid as number)).toEqual([]);
    blocker.kill();
  });
});
