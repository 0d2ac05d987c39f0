import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import packageJson from '../../package.json' with { type: 'json' };
import { buildCli } from '../helpers/cli-build.js';
import { waitForLine } from '../helpers/child-lines.js';
import { dockerCli, type DockerCli } from '../helpers/docker-cli.js';
import { BUSYBOX_IMAGE, createContainer, removeContainer } from '../helpers/fixtures.js';

// The bin is built from the current sources (helpers/cli-build.ts): a stale or missing dist/ can
// neither fail nor fake this suite.
let CLI: string;
let disposeCli: (() => Promise<void>) | undefined;

let dockerSocket: string;
let work: string;
const children = new Set<ChildProcess>();
const servers = new Set<Server>();
const clis = new Set<DockerCli>();

beforeAll(async () => {
  dockerSocket = inject('dockerSocket');
  work = await mkdtemp(join(tmpdir(), 'dsf-clibin-'));
  const cli = await buildCli('clibin');
  CLI = cli.path;
  disposeCli = cli.dispose;
});

afterEach(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
  children.clear();
  for (const server of servers) await new Promise((resolve) => server.close(resolve));
  servers.clear();
  for (const cli of clis) cli.dispose();
  clis.clear();
});

afterAll(async () => {
  await disposeCli?.();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

/** A running `docker-socket-filter`, with what it wrote so far. */
interface Running {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first stderr line matching `pattern`; rejects if the process exits first. */
  line(pattern: RegExp, timeoutMs?: number): Promise<string>;
  exit(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function start(args: readonly string[], env: Record<string, string | undefined> = {}, options: { uid?: number; gid?: number } = {}): Running {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH, SOCKET_PATH: dockerSocket, ...env } as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...options,
  });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exit: () => exited,
    line: (pattern, timeoutMs) => waitForLine(child, () => err, pattern, timeoutMs),
  };
}

/**
 * Adds the search (x) bit for others on every ancestor directory of `paths` that lacks it; returns
 * a function that puts the original modes back.
 */
async function letOthersTraverse(paths: readonly string[]): Promise<() => Promise<void>> {
  const changed = new Map<string, number>();
  for (const path of paths) {
    for (let dir = dirname(path); ; dir = dirname(dir)) {
      const { mode } = await stat(dir);
      if ((mode & 0o001) === 0 && !changed.has(dir)) {
        changed.set(dir, mode & 0o7777);
        await chmod(dir, (mode & 0o7777) | 0o001);
      }
      if (dir === dirname(dir)) break;
    }
  }
  return async () => {
    for (const [dir, mode] of changed) await chmod(dir, mode);
  };
}

/** Runs the bin to completion (commands that exit on their own). */
async function run(args: readonly string[], env: Record<string, string | undefined> = {}, options: { uid?: number; gid?: number } = {}) {
  const running = start(args, env, options);
  const { code } = await running.exit();
  return { code, stdout: running.stdout(), stderr: running.stderr() };
}

/** Starts the guard and waits for its start-up line; returns the address it reports. */
async function serve(args: readonly string[], env: Record<string, string | undefined> = {}) {
  const running = start(args, env);
  const listening = await running.line(/msg=listening/);
  const listen = /listen=(\S+)/.exec(listening)?.[1] ?? '';
  return { running, listening, listen, port: Number(/:(\d+)(?:,|$)/.exec(listen)?.[1]) };
}

function docker(dockerHost: string): DockerCli {
  const cli = dockerCli(dockerHost);
  clis.add(cli);
  return cli;
}

async function listenOn(server: Server, ...args: unknown[]): Promise<void> {
  servers.add(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    (server.listen as (...a: unknown[]) => void)(...args, () => resolve());
  });
}

function get(target: { port: number } | { socketPath: string }, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', ...target, path, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function connectRefused(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

describe('serving over TCP', () => {
  it('the docker CLI works through the guard; what is not granted is refused and logged at info', async () => {
    const { running, listening, port } = await serve(['--listen', '127.0.0.1:0'], { CONTAINERS: '1' });
    expect(listening).toMatch(/level=info msg=listening listen=127\.0\.0\.1:\d+ preset=tecnativa granted=CONTAINERS,EVENTS,PING,VERSION socket=/);
    expect(port).toBeGreaterThan(0);
    const cli = docker(`tcp://127.0.0.1:${port}`);

    const ps = await cli.run(['ps', '-a', '--format', '{{.ID}}']);
    expect(ps.code, ps.stderr).toBe(0);
    const version = await cli.run(['version', '--format', '{{.Server.APIVersion}}']);
    expect(version).toMatchObject({ code: 0, stdout: '1.41\n' });

    const create = await cli.run(['create', '--network', 'none', BUSYBOX_IMAGE, 'true']);
    expect(create.code).not.toBe(0);
    expect(create.stderr).toContain('Error response from daemon: docker-socket-filter denied POST /v1.41/containers/create: it needs POST=1');

    const denial = await running.line(/decision=denied/);
    expect(denial).toMatch(/level=info msg=request method=POST path=\/v1\.41\/containers\/create decision=denied rule=POST status=403 duration_ms=[\d.]+ reason=/);
    // Allowed requests are debug lines: not at the default level.
    expect(running.stderr()).not.toContain('decision=allowed');
    // Nothing but log lines on stderr, nothing on stdout.
    expect(running.stdout()).toBe('');
    for (const line of running.stderr().trim().split('\n')) expect(line).toMatch(/^time=\S+ level=\w+ msg=/);
  });

  it('LOG_LEVEL=debug logs allowed requests too; LOG_LEVEL=warning logs no denial', async () => {
    const verbose = await serve(['--listen', '127.0.0.1:0'], { LOG_LEVEL: 'debug' });
    expect((await get({ port: verbose.port }, '/_ping')).status).toBe(200);
    expect(await verbose.running.line(/decision=allowed/)).toMatch(/level=debug msg=request method=GET path=\/_ping decision=allowed rule=PING status=200/);

    // At warning even the start-up line (info) is silent: wait for the socket instead.
    const sock = join(work, 'quiet.sock');
    const quiet = start(['--listen', `unix:${sock}`], { LOG_LEVEL: 'warning' });
    const deadline = Date.now() + 15_000;
    while (!(await stat(sock).then((s) => s.isSocket(), () => false))) {
      if (Date.now() > deadline || quiet.child.exitCode !== null) throw new Error(`no socket; stderr: ${quiet.stderr()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect((await get({ socketPath: sock }, '/containers/json')).status).toBe(403);
    quiet.child.kill('SIGTERM');
    expect((await quiet.exit()).code).toBe(0);
    expect(quiet.stderr()).toBe('');
  });

  it('serving every interface with more than the defaults, and a misspelled variable, each log one warning', async () => {
    const { running, port } = await serve(['--listen', ':0'], { CONTAINERS: '1', CONTAINRES: '1' });
    const exposed = await running.line(/msg="serving the Docker API beyond this host/);
    expect(exposed).toMatch(/^time=\S+ level=warning msg="serving the Docker API beyond this host[^"]*" listen=\*:\d+ granted=CONTAINERS$/);
    const typo = await running.line(/variable=CONTAINRES/);
    expect(typo).toMatch(/level=warning msg="unknown variable ignored; did you mean another\?" variable=CONTAINRES did_you_mean=CONTAINERS$/);
    // A warning, never a refusal: the guard serves.
    expect((await get({ port }, '/_ping')).body).toBe('OK');
    running.child.kill('SIGTERM');
    expect((await running.exit()).code).toBe(0);
    // The loopback default with the defaults warns about nothing.
    const quiet = await serve(['--listen', '127.0.0.1:0'], { CONTAINERS: '1' });
    quiet.running.child.kill('SIGTERM');
    expect((await quiet.running.exit()).code).toBe(0);
    expect(quiet.running.stderr()).not.toContain('level=warning');
  });

  it('LISTEN from the environment, two addresses at once', async () => {
    const sock = join(work, 'two.sock');
    const { listen, running } = await serve([], { LISTEN: `127.0.0.1:0,unix:${sock}` });
    expect(listen).toMatch(new RegExp(`^127\\.0\\.0\\.1:\\d+,unix:${sock}$`));
    const port = Number(/:(\d+),/.exec(listen)?.[1]);
    expect((await get({ port }, '/_ping')).body).toBe('OK');
    expect((await get({ socketPath: sock }, '/_ping')).body).toBe('OK');
    running.child.kill('SIGTERM');
    expect((await running.exit()).code).toBe(0);
  });
});

describe('a flood of identical denials', () => {
  it('10,000 denials write a bounded number of lines, and every one is counted', async () => {
    const { running, port } = await serve(['--listen', '127.0.0.1:0']);
    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    const started = Date.now();
    try {
      const statuses = await Promise.all(
        Array.from({ length: 10_000 }, (_, index) =>
          new Promise<number>((resolve, reject) => {
            // The query varies and is not part of what makes two denials the same (nor logged).
            request({ host: '127.0.0.1', port, path: `/v1.41/info?n=${index}`, agent }, (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            }).on('error', reject).end();
          }),
        ),
      );
      expect(statuses.every((status) => status === 403)).toBe(true);
    } finally {
      agent.destroy();
    }
    const floodSeconds = (Date.now() - started) / 1000;
    running.child.kill('SIGTERM');
    expect((await running.exit()).code, running.stderr()).toBe(0);

    const lines = running.stderr().trim().split('\n');
    const denials = lines.filter((line) => line.includes(' path=/v1.41/info decision=denied '));
    // The first at once, one count per 10 s interval while it lasted, the rest at shutdown.
    expect(denials.length, running.stderr()).toBeGreaterThanOrEqual(2);
    expect(denials.length, running.stderr()).toBeLessThanOrEqual(2 + Math.ceil(floodSeconds / 10));
    expect(denials[0]).toMatch(/level=info msg=request method=GET path=\/v1\.41\/info decision=denied rule=default-deny status=403 duration_ms=[\d.]+ reason="docker-socket-filter denied GET \/v1\.41\/info: it needs INFO=1" address=127\.0\.0\.1$/);
    const counted = denials.reduce((total, line) => total + Number(/ repeated=(\d+)$/.exec(line)?.[1] ?? 1), 0);
    expect(counted).toBe(10_000);
    // The counts come before the last line, and the log holds nothing else.
    expect(lines.at(-1)).toMatch(/msg=stopped /);
    expect(lines.length).toBe(denials.length + 3);
  });
});

describe('serving on a unix socket', () => {
  it('docker CLI through unix://, socket mode applied, socket removed on exit', async () => {
    const sock = join(work, 'dsf.sock');
    const { running, listen } = await serve(['--listen', `unix:${sock}`, '--socket-mode', '0600'], { CONTAINERS: '1' });
    expect(listen).toBe(`unix:${sock}`);
    const stats = await stat(sock);
    expect(stats.isSocket()).toBe(true);
    expect(stats.mode & 0o777).toBe(0o600);

    const cli = docker(`unix://${sock}`);
    const ps = await cli.run(['ps', '--format', '{{.ID}}']);
    expect(ps.code, ps.stderr).toBe(0);
    const images = await cli.run(['images']);
    expect(images.code).not.toBe(0);
    expect(images.stderr).toContain('IMAGES=1');

    running.child.kill('SIGTERM');
    expect((await running.exit()).code).toBe(0);
    await expect(stat(sock)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('the default mode is 0660', async () => {
    const sock = join(work, 'default-mode.sock');
    await serve(['--listen', `unix:${sock}`]);
    expect((await stat(sock)).mode & 0o777).toBe(0o660);
  });

  it('a stale socket left by a killed run is replaced', async () => {
    const sock = join(work, 'stale.sock');
    // A process that dies by SIGKILL leaves its socket file behind, with nobody answering on it.
    const leaver = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    children.add(leaver);
    await once(leaver, 'exit');
    expect((await stat(sock)).isSocket()).toBe(true);

    const { running } = await serve(['--listen', `unix:${sock}`]);
    expect((await get({ socketPath: sock }, '/_ping')).body).toBe('OK');
    running.child.kill('SIGTERM');
    expect((await running.exit()).code).toBe(0);
  });

  it('a live server on the path is not taken over: exit 2', async () => {
    const sock = join(work, 'live.sock');
    const live = createServer((socket) => socket.end());
    await listenOn(live, sock);
    const result = await run(['--listen', `unix:${sock}`]);
    expect(result).toEqual({ code: 2, stdout: '', stderr: `docker-socket-filter: cannot listen on unix:${sock}: a running server answers there\n` });
    expect((await stat(sock)).isSocket()).toBe(true);
  });

  it('a file that is not a socket is never removed: exit 2', async () => {
    const path = join(work, 'precious.txt');
    await writeFile(path, 'keep me');
    const result = await run(['--listen', `unix:${path}`]);
    expect(result).toEqual({
      code: 2,
      stdout: '',
      stderr: `docker-socket-filter: cannot listen on unix:${path}: a file that is not a socket is in the way (not removed)\n`,
    });
    expect((await stat(path)).isFile()).toBe(true);
  });
});

describe('bad configuration: one line on stderr, exit 2', () => {
  it.each<[string, string[], Record<string, string>, string]>([
    ['an unknown flag', ['--nope'], {}, 'docker-socket-filter: unknown option `--nope` (see --help)\n'],
    [
      'an unclear grant',
      [],
      { CONTAINERS: 'true' },
      "docker-socket-filter: `CONTAINERS=true` is not understood. Tecnativa's HAProxy reads a leading integer, so `CONTAINERS=true` would silently deny there; use CONTAINERS=1 to grant or CONTAINERS=0 to deny.\n",
    ],
    ['a bad LOG_LEVEL', [], { LOG_LEVEL: 'verbose' }, 'docker-socket-filter: `LOG_LEVEL=verbose` is not a level: use one of debug, info, notice, warning, err, crit, alert, emerg\n'],
    ['an unknown PRESET', [], { PRESET: 'haproxy' }, 'docker-socket-filter: `PRESET=haproxy` is not a preset: use tecnativa or linuxserver\n'],
    ['a bad listen address', ['--listen', '::1:2375'], {}, 'docker-socket-filter: --listen `::1:2375`: write an IPv6 address in brackets, as [::1]:2375\n'],
    ['a bad connection limit', ['--max-connections', 'many'], {}, 'docker-socket-filter: --max-connections `many`: expected a number of connections from 0 (no limit) to 1000000\n'],
    ['a bad MAX_CONNECTIONS', [], { MAX_CONNECTIONS: '-1' }, 'docker-socket-filter: MAX_CONNECTIONS `-1`: expected a number of connections from 0 (no limit) to 1000000\n'],
  ])('%s', async (_name, args, env, stderr) => {
    expect(await run(args, env)).toEqual({ code: 2, stdout: '', stderr });
  });

  it('SOCKET_PATH that is a regular file or a directory', async () => {
    const file = join(work, 'not-a-socket');
    await writeFile(file, '');
    expect(await run(['--listen', '127.0.0.1:0'], { SOCKET_PATH: file })).toEqual({
      code: 2,
      stdout: '',
      stderr: `docker-socket-filter: SOCKET_PATH=${file} is not a unix socket\n`,
    });
    expect((await run(['--listen', '127.0.0.1:0'], { SOCKET_PATH: work })).stderr).toBe(
      `docker-socket-filter: SOCKET_PATH=${work} is not a unix socket\n`,
    );
  });

  it('SOCKET_PATH the user may not open', async () => {
    // A socket owned by root, mode 0600, in a directory others may enter: uid 65534 cannot connect.
    const dir = join(work, 'restricted');
    await mkdir(dir);
    await chmod(dir, 0o755);
    await chmod(work, 0o755);
    const sock = join(dir, 'docker.sock');
    const server = createServer((socket) => socket.end());
    await listenOn(server, sock);
    await chmod(sock, 0o600);
    // uid 65534 must reach the built bin and node itself: a checkout under a 0700 directory (mktemp
    // -d) would make this fail for the wrong reason, so grant traverse on the ancestors meanwhile.
    const restore = await letOthersTraverse([CLI, process.execPath]);
    let result: Awaited<ReturnType<typeof run>>;
    try {
      result = await run(['--listen', '127.0.0.1:0'], { SOCKET_PATH: sock }, { uid: 65534, gid: 65534 });
    } finally {
      await restore();
    }
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      `docker-socket-filter: SOCKET_PATH=${sock} is not accessible to uid 65534: add the socket's group (docker run --group-add <gid>)\n`,
    );
  });

  it('a port in use', async () => {
    const busy = createServer();
    await listenOn(busy, 0, '127.0.0.1');
    const { port } = busy.address() as AddressInfo;
    expect(await run(['--listen', `127.0.0.1:${port}`])).toEqual({
      code: 2,
      stdout: '',
      stderr: `docker-socket-filter: cannot listen on 127.0.0.1:${port}: address already in use\n`,
    });
  });

  it('a port in use on the second address releases the first', async () => {
    const busy = createServer();
    await listenOn(busy, 0, '127.0.0.1');
    const { port } = busy.address() as AddressInfo;
    const sock = join(work, 'released.sock');
    const result = await run(['--listen', `unix:${sock}`, '--listen', `127.0.0.1:${port}`]);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`docker-socket-filter: cannot listen on 127.0.0.1:${port}: address already in use\n`);
    await expect(stat(sock)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a missing docker socket is only a warning: the guard starts and answers 502 until dockerd is there', async () => {
    const missing = join(work, 'later', 'docker.sock');
    const { running, port } = await serve(['--listen', '127.0.0.1:0'], { SOCKET_PATH: missing });
    expect(running.stderr()).toMatch(
      new RegExp(`level=warning msg="dockerd socket does not exist yet; requests get 502 until it does" socket=${missing}\\n`),
    );
    expect((await get({ port }, '/_ping')).status).toBe(502);
    expect((await get({ port }, '/containers/json')).status).toBe(403);
    running.child.kill('SIGTERM');
    expect((await running.exit()).code).toBe(0);
  });
});

describe('shutdown', () => {
  it('SIGTERM during `docker events`: the stream ends, the guard exits 0 after the grace period', async () => {
    const { running, port } = await serve(['--listen', '127.0.0.1:0', '--grace', '1']);
    const cli = docker(`tcp://127.0.0.1:${port}`);
    const events = spawn('docker', ['events', '--format', '{{.Type}} {{.Action}}'], {
      env: { PATH: process.env.PATH, DOCKER_HOST: `tcp://127.0.0.1:${port}`, DOCKER_CONFIG: cli.configDir, HOME: cli.configDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(events);
    let seen = '';
    events.stdout.setEncoding('utf8').on('data', (chunk: string) => (seen += chunk));
    const eventsClosed = new Promise<number | null>((resolve) => events.once('close', (code) => resolve(code)));

    // The stream is established once an event made straight on dockerd comes through it.
    let id: string | undefined;
    const deadline = Date.now() + 20_000;
    while (!seen.includes('container create')) {
      if (Date.now() > deadline) throw new Error(`docker events saw nothing: ${seen}`);
      if (id !== undefined) await removeContainer(dockerSocket, id);
      id = await createContainer(dockerSocket, ['true']);
      await new Promise((r) => setTimeout(r, 300));
    }
    if (id !== undefined) await removeContainer(dockerSocket, id);

    const signalled = Date.now();
    running.child.kill('SIGTERM');
    const exit = await running.exit();
    const elapsed = Date.now() - signalled;
    // The guard's log goes with every assertion: a failure here must say what the guard did.
    expect(exit, running.stderr()).toEqual({ code: 0, signal: null });
    // The grace period (1 s) is waited out for the stream, then it is cut.
    expect(elapsed, running.stderr()).toBeGreaterThanOrEqual(900);
    expect(elapsed, running.stderr()).toBeLessThan(8_000);
    await eventsClosed;
    expect(events.exitCode !== null || events.signalCode !== null).toBe(true);
    expect(running.stderr()).toMatch(/level=info msg=stopping signal=SIGTERM grace_s=1\n/);
    expect(running.stderr()).toMatch(/level=info msg=stopped cut_connections=1\n/);
  });

  it('SIGTERM lets an in-flight request finish and refuses new connections meanwhile', async () => {
    const { running, port } = await serve(['--listen', '127.0.0.1:0', '--grace', '20'], { CONTAINERS: '1', POST: '1' });
    // The container exits when told to (USR1), so the request is still in flight for as long as the
    // test needs, whatever the machine's load.
    const id = await createContainer(dockerSocket, ['sh', '-c', 'trap "exit 3" USR1; while :; do sleep 0.1; done'], { start: true });
    try {
      // In flight for sure: dockerd answered the head of `wait` and holds the body until the exit.
      // (A docker CLI started a moment before SIGTERM may not have connected yet: it would then be
      // refused, which is this test's race, not the guard's.)
      const waiting = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
        request({ host: '127.0.0.1', port, method: 'POST', path: `/v1.41/containers/${id}/wait`, agent: false }, resolve)
          .on('error', reject)
          .end();
      });
      expect(waiting.statusCode).toBe(200);
      let body = '';
      waiting.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      const ended = new Promise<boolean>((resolve) => waiting.once('close', () => resolve(waiting.complete)));

      running.child.kill('SIGTERM');
      await running.line(/msg=stopping/);
      expect(await connectRefused(port)).toBe('ECONNREFUSED');
      expect(running.child.exitCode).toBeNull();

      // The container exits: the in-flight answer is delivered whole, then the guard exits.
      const killed = await new Promise<number>((resolve, reject) => {
        request({ socketPath: dockerSocket, method: 'POST', path: `/containers/${id}/kill?signal=USR1` }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
          .on('error', reject)
          .end();
      });
      expect(killed).toBe(204);
      expect(await ended).toBe(true);
      expect(JSON.parse(body)).toMatchObject({ StatusCode: 3 });
      expect(await running.exit()).toEqual({ code: 0, signal: null });
      expect(running.stderr()).toMatch(/msg=stopped cut_connections=0\n/);
    } finally {
      await removeContainer(dockerSocket, id);
    }
  });

  it('a second signal cuts the grace period short', async () => {
    const { running, port } = await serve(['--listen', '127.0.0.1:0', '--grace', '60']);
    // An open `GET /events` keeps the first SIGTERM waiting for the grace period.
    const stream = request({ host: '127.0.0.1', port, path: '/events', agent: false });
    const response = new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
      stream.once('response', resolve);
      stream.once('error', reject);
    });
    stream.end();
    const res = await response;
    expect(res.statusCode).toBe(200);
    const ended = new Promise<void>((resolve) => res.once('close', () => resolve()));
    res.resume();

    running.child.kill('SIGTERM');
    await running.line(/msg=stopping/);
    await new Promise((r) => setTimeout(r, 300));
    expect(running.child.exitCode).toBeNull();
    const second = Date.now();
    running.child.kill('SIGTERM');
    expect(await running.exit()).toEqual({ code: 0, signal: null });
    expect(Date.now() - second).toBeLessThan(3_000);
    await ended;
    expect(running.stderr()).toMatch(/msg=stopped cut_connections=1\n/);
  });

  it('SIGINT with nothing in flight exits at once', async () => {
    const { running } = await serve(['--listen', '127.0.0.1:0']);
    const signalled = Date.now();
    running.child.kill('SIGINT');
    expect(await running.exit()).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalled).toBeLessThan(2_000);
    expect(running.stderr()).toMatch(/msg=stopping signal=SIGINT/);
  });
});

describe('commands', () => {
  it.each<[string, string, Record<string, string>, number, RegExp]>([
    ['GET', '/v1.41/containers/json', { CONTAINERS: '1' }, 0, /^allowed 200 rule=CONTAINERS\nGET \/v1\.41\/containers\/json is allowed by CONTAINERS\n$/],
    ['GET', '/v1.41/containers/json', {}, 1, /^denied 403 rule=default-deny\ndocker-socket-filter denied GET \/v1\.41\/containers\/json: it needs CONTAINERS=1\n$/],
    ['POST', '/v1.41/containers/create', { CONTAINERS: '1' }, 1, /^denied 403 rule=POST\ndocker-socket-filter denied POST \/v1\.41\/containers\/create: it needs POST=1\n$/],
    ['GET', '/v1.41/containers/../images/json', { CONTAINERS: '1', IMAGES: '1' }, 1, /^denied 400 rule=-\ndocker-socket-filter refused the request-target/],
    ['GET', '/_ping', {}, 0, /^allowed 200 rule=PING\n/],
  ])('check %s %s with %j exits %i', async (method, path, env, code, stdout) => {
    const result = await run(['check', method, path], env);
    expect(result.code).toBe(code);
    expect(result.stdout).toMatch(stdout);
    expect(result.stderr).toBe('');
  });

  it('check --json prints the Decision', async () => {
    const result = await run(['check', '--json', 'POST', '/v1.41/containers/abc/start'], { PRESET: 'linuxserver', ALLOW_START: '1' });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      allowed: true,
      status: 200,
      rule: 'ALLOW_START',
      reason: 'POST /v1.41/containers/abc/start is allowed by ALLOW_START',
      path: '/v1.41/containers/abc/start',
    });
  });

  it('check with a bad environment exits 2', async () => {
    expect(await run(['check', 'GET', '/_ping'], { PING: 'yes' })).toMatchObject({ code: 2, stdout: '' });
  });

  it('--print-policy prints the permission table of the effective policy', async () => {
    const tecnativa = await run(['--print-policy'], { CONTAINERS: '1' });
    expect(tecnativa.code).toBe(0);
    expect(tecnativa.stderr).toBe('');
    const lines = tecnativa.stdout.split('\n');
    expect(lines[0]).toBe('policy: tecnativa');
    expect(lines).toContainEqual(expect.stringMatching(/^\/containers\/json\s+GET \(CONTAINERS\)$/));
    expect(lines).toContainEqual(expect.stringMatching(/^\/images\/json\s+-\s+GET: IMAGES=1$/));

    const linuxserver = await run(['--print-policy'], { PRESET: 'linuxserver' });
    expect(linuxserver.stdout.split('\n')[0]).toBe('policy: linuxserver');
  });

  it('--help and --version', async () => {
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: docker-socket-filter \[options\]\n/);
    expect(help.stdout).toContain('check METHOD PATH');
    expect(await run(['--version'])).toEqual({ code: 0, stdout: `${packageJson.version}\n`, stderr: '' });
  });
});

describe('--healthcheck', () => {
  it('probes GET /_ping through the guard when PING is granted', async () => {
    const { port, running } = await serve(['--listen', '127.0.0.1:0'], { LOG_LEVEL: 'debug' });
    expect(await run(['--healthcheck', '--listen', `127.0.0.1:${port}`])).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(await running.line(/path=\/_ping/)).toContain('decision=allowed');
  });

  it('only connects when PING is not granted (nothing reaches dockerd)', async () => {
    const { port, running } = await serve(['--listen', '127.0.0.1:0'], { LOG_LEVEL: 'debug', PING: '0' });
    expect(await run(['--healthcheck', '--listen', `127.0.0.1:${port}`], { PING: '0' })).toEqual({ code: 0, stdout: '', stderr: '' });
    // Give a request line the time to appear if one had been sent.
    await new Promise((r) => setTimeout(r, 300));
    expect(running.stderr()).not.toContain('msg=request');
  });

  it('on a unix socket', async () => {
    const sock = join(work, 'health.sock');
    await serve(['--listen', `unix:${sock}`]);
    expect((await run(['--healthcheck'], { LISTEN: `unix:${sock}` })).code).toBe(0);
  });

  it('unhealthy when nothing listens, or when dockerd is not reachable behind a granted PING', async () => {
    const free = createServer();
    await listenOn(free, 0, '127.0.0.1');
    const { port } = free.address() as AddressInfo;
    await new Promise((r) => free.close(r));
    servers.delete(free);
    const down = await run(['--healthcheck', '--listen', `127.0.0.1:${port}`]);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/^docker-socket-filter: unhealthy: connect ECONNREFUSED/);
    expect((await run(['--healthcheck', '--listen', `127.0.0.1:${port}`], { PING: '0' })).code).toBe(1);

    const { port: guarded } = await serve(['--listen', '127.0.0.1:0'], { SOCKET_PATH: join(work, 'no-dockerd.sock') });
    expect(await run(['--healthcheck', '--listen', `127.0.0.1:${guarded}`])).toEqual({
      code: 1,
      stdout: '',
      stderr: 'docker-socket-filter: unhealthy: GET /_ping answered 502\n',
    });
  });
});
