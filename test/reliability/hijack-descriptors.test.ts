import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { descriptorsOf, settleDescriptors, type Descriptors } from '../helpers/descriptors.js';
import { createContainer, dockerRequest, removeContainer } from '../helpers/fixtures.js';
import { startGuard, type Guard } from '../helpers/guard.js';
import { CLIENT_PATH, runProcess } from '../helpers/run-process.js';

// Every way a hijacked stream can end must give the guard's descriptors back: the client closes, the
// daemon closes while the client still writes, stdin half-closed, a reset, detach keys, a late write
// after the daemon closed, and a refused upgrade the client leaves early. The guard runs as a child
// process; its descriptors are read from /proc after each, and must return to the baseline.

const socketPath = inject('dockerSocket');
const ENV = { SOCKET_PATH: socketPath, CONTAINERS: '1', EXEC: '1', POST: '1', EVENTS: '1' };
const DETACH = Buffer.from([0x10, 0x11]); // ctrl-p ctrl-q, dockerd's default detach keys

let guard: Guard;
let baseline: Descriptors;
let container: string;
let configDir: string;

const dockerEnv = (): Record<string, string> => ({
  PATH: CLIENT_PATH,
  HOME: configDir,
  DOCKER_CONFIG: configDir,
  DOCKER_HOST: `tcp://127.0.0.1:${guard.port}`,
  DOCKER_CLI_HINTS: 'false',
});

const docker = (args: readonly string[], input?: string, timeoutMs = 20_000) =>
  runProcess('docker', args, { env: dockerEnv(), timeoutMs, ...(input === undefined ? {} : { input }) });

/**
 * The guard's sockets are back to the baseline (pooled connections to dockerd idle out in ~5 s):
 * client connections (TCP, the listener aside) and connections to dockerd (unix). Sockets rather
 * than every descriptor: the runtime opens and closes others of its own.
 */
async function expectBaseline(what: string): Promise<void> {
  const after = await settleDescriptors(guard.pid, baseline);
  const left = { tcp: after.tcp.filter((socket) => socket.state !== 'LISTEN'), unixOverBaseline: after.unix - baseline.unix };
  expect(left, `${what}: sockets left open ${JSON.stringify({ baseline, after })}`).toEqual({ tcp: [], unixOverBaseline: 0 });
}

function rawConnect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Reads until `pattern` appears in what arrived (or rejects after `timeoutMs`). */
function readUntil(socket: Socket, pattern: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => {
      socket.off('data', onData);
      reject(new Error(`no ${JSON.stringify(pattern)} within ${timeoutMs} ms; got ${JSON.stringify(text)}`));
    }, timeoutMs);
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('latin1');
      if (text.includes(pattern)) {
        clearTimeout(timer);
        socket.off('data', onData);
        resolve(text);
      }
    };
    socket.on('data', onData);
  });
}

const closed = (socket: Socket, timeoutMs = 10_000): Promise<boolean> =>
  new Promise((resolve) => {
    if (socket.closed) {
      resolve(true);
      return;
    }
    const timer = setTimeout(() => resolve(false), timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });

/** Opens a hijacked exec on a raw connection through the guard; resolves once joined (101). */
async function rawExec(cmd: readonly string[], options: { tty?: boolean } = {}): Promise<Socket> {
  const created = await dockerRequest(socketPath, 'POST', `/containers/${container}/exec`, {
    Cmd: cmd,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Tty: options.tty ?? false,
  });
  const id = (JSON.parse(created.body) as { Id: string }).Id;
  const body = JSON.stringify({ Detach: false, Tty: options.tty ?? false });
  const socket = await rawConnect(guard.port);
  socket.on('error', () => undefined);
  const head = readUntil(socket, '\r\n\r\n');
  socket.write(
    `POST /v1.41/exec/${id}/start HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
  );
  expect((await head).split('\r\n')[0]).toBe('HTTP/1.1 101 UPGRADED');
  return socket;
}

beforeAll(async () => {
  configDir = mkdtempSync(join(tmpdir(), 'dsf-fd-cli-'));
  container = await createContainer(socketPath, ['sleep', '600'], { start: true });
}, 60_000);

afterAll(async () => {
  await removeContainer(socketPath, container);
  rmSync(configDir, { recursive: true, force: true });
});

// A fresh guard per scenario, so what one leaves behind is not charged to the next. Its baseline is
// read right after start-up: the listener, the IPC channel, the runtime's own descriptors.
beforeEach(async () => {
  guard = await startGuard(inject('guardCli'), ENV);
  baseline = await descriptorsOf(guard.pid);
});

afterEach(async () => {
  await guard?.stop(15_000);
});

describe('descriptors after each way a hijacked stream ends', () => {
  it('the client closes: `docker exec -i` killed mid-stream', async () => {
    const run = runProcess('docker', ['exec', '-i', container, 'cat'], {
      env: dockerEnv(),
      timeoutMs: 2_000,
      input: async (stdin) => {
        stdin.write('held open\n');
        await new Promise((resolve) => setTimeout(resolve, 5_000));
      },
    });
    expect((await run).timedOut).toBe(true);
    await expectBaseline('client killed');
  });

  it('the daemon closes while the client still writes: `seq 1 200000 | docker exec -i c head -1`', async () => {
    const lines = Array.from({ length: 200_000 }, (_, index) => String(index + 1)).join('\n');
    const result = await docker(['exec', '-i', container, 'head', '-1'], `${lines}\n`);
    expect(result.stdout).toBe('1\n');
    await expectBaseline('daemon closed first');
  });

  it('stdin half-closed: `echo hi | docker exec -i c cat`', async () => {
    const result = await docker(['exec', '-i', container, 'cat'], 'hi\n');
    expect(result).toMatchObject({ code: 0, stdout: 'hi\n' });
    await expectBaseline('stdin half-closed');
  });

  it('a reset from the client', async () => {
    const socket = await rawExec(['cat']);
    socket.write('x\n');
    await readUntil(socket, 'x\n');
    socket.resetAndDestroy();
    await expectBaseline('client reset');
  });

  it('detach keys on a raw hijacked attach: dockerd ends the stream, the client keeps its socket', async () => {
    const tty = await createContainer(socketPath, ['sh'], { tty: true, openStdin: true, start: true });
    try {
      const socket = await rawConnect(guard.port);
      socket.on('error', () => undefined);
      const head = readUntil(socket, '\r\n\r\n');
      socket.write(
        `POST /v1.41/containers/${tty}/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: docker\r\n` +
          'Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n',
      );
      expect((await head).split('\r\n')[0]).toBe('HTTP/1.1 101 UPGRADED');
      socket.write('echo attached\n');
      await readUntil(socket, 'attached\r\n');
      socket.write(DETACH);
      // dockerd ends the stream at the detach keys; the guard must end the client's connection too.
      expect(await closed(socket), 'the client connection is still open after dockerd detached').toBe(true);
      await expectBaseline('detached');
      socket.destroy();
      expect((await dockerRequest(socketPath, 'GET', `/containers/${tty}/json`)).body).toContain('"Running":true');
    } finally {
      await removeContainer(socketPath, tty);
    }
  });

  // `docker exec -it` rather than `docker attach`: the CLI v28's `attach` does not act on the detach
  // keys over TCP at all, through a plain relay as through the guard (it hangs; over the unix
  // socket it detaches), so it cannot tell the guard's part.
  it('detach keys typed into `docker exec -it` on a pty (script -qfc)', async () => {
    const execIt = (dockerHost: string) =>
      runProcess('script', ['-qfc', `docker exec -it ${container} sh`, '/dev/null'], {
        env: { ...dockerEnv(), DOCKER_HOST: dockerHost, TERM: 'dumb' },
        timeoutMs: 15_000,
        input: async (stdin) => {
          await new Promise((resolve) => setTimeout(resolve, 1_500));
          stdin.write('echo via-pty\r');
          await new Promise((resolve) => setTimeout(resolve, 500));
          stdin.write(DETACH);
          await new Promise((resolve) => setTimeout(resolve, 3_000));
        },
      });
    // The control: straight at dockerd the CLI detaches and exits.
    const direct = await execIt(`unix://${socketPath}`);
    expect(direct, direct.stdout).toMatchObject({ code: 0, timedOut: false });
    expect(direct.stdout).toContain('via-pty');
    const result = await execIt(`tcp://127.0.0.1:${guard.port}`);
    expect(result, result.stdout + result.stderr).toMatchObject({ code: 0, timedOut: false });
    expect(result.stdout).toContain('via-pty');
    await expectBaseline('docker exec -it detached');
  });

  it('a late write after the daemon closed', async () => {
    const socket = await rawExec(['true']);
    // `true` exits at once; dockerd closes its end. The client writes afterwards, as a client
    // whose stdin outlives the process does, and keeps its socket.
    await new Promise((resolve) => setTimeout(resolve, 500));
    socket.write('late\n');
    expect(await closed(socket), 'the client connection is still open after dockerd closed').toBe(true);
    await expectBaseline('late write');
  });

  it('a refused upgrade with a read-until-close answer (GET /events with Upgrade headers) that the client leaves early', async () => {
    const socket = await rawConnect(guard.port);
    socket.on('error', () => undefined);
    const head = readUntil(socket, '\r\n\r\n');
    socket.write('GET /v1.41/events HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
    expect((await head).split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
    socket.destroy();
    await expectBaseline('refused upgrade left early');
  });
});

describe('SIGTERM with dead hijack sockets', () => {
  it('the guard exits without waiting the whole grace period for streams whose other side is gone', async () => {
    const graced = await startGuard(inject('guardCli'), { ...ENV, SHUTDOWN_GRACE: '60' });
    try {
      // Two streams nobody serves any more: an exec dockerd ended while the client still wrote,
      // and a refused upgrade (a read-until-close answer) whose client left.
      const lines = Array.from({ length: 200_000 }, (_, index) => String(index + 1)).join('\n');
      const piped = await runProcess('docker', ['exec', '-i', container, 'head', '-1'], {
        env: { ...dockerEnv(), DOCKER_HOST: `tcp://127.0.0.1:${graced.port}` },
        timeoutMs: 20_000,
        input: `${lines}\n`,
      });
      expect(piped.stdout).toBe('1\n');
      const socket = await rawConnect(graced.port);
      socket.on('error', () => undefined);
      const head = readUntil(socket, '\r\n\r\n');
      socket.write('GET /v1.41/events HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
      expect((await head).split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
      socket.destroy();
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const signalled = Date.now();
      // stop() sends SIGKILL after 30 s, half the 60 s grace: a guard that waits for the dead
      // streams is killed, and the assertion shows it.
      const exit = await graced.stop(30_000);
      expect({ exit, exitedWithinHalfTheGrace: Date.now() - signalled < 30_000 }).toEqual({
        exit: { code: 0, signal: null },
        exitedWithinHalfTheGrace: true,
      });
    } finally {
      await graced.stop(1_000);
    }
  }, 90_000);
});
