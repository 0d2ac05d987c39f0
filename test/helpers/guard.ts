import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { waitForLine } from './child-lines.js';

const PROBE_SCRIPT = fileURLToPath(new URL('./guard-probe.mjs', import.meta.url));

// stderr kept for diagnostics; only its tail, so a chatty run cannot grow the test process.
const MAX_STDERR = 256 * 1024;

/** What the guard process reports about itself. */
export interface GuardProbe {
  /** Open file descriptors (`/proc/<pid>/fd`). */
  readonly fds: number;
  /** Of those, sockets: listeners, client connections, connections to dockerd, the IPC channel. */
  readonly sockets: number;
  /** `process.memoryUsage().heapUsed` in bytes, after two forced GCs when asked for. */
  readonly heapUsed: number;
  /** The process's resident set size in bytes (`process.memoryUsage().rss`). */
  readonly rss: number;
  /** Bytes held in buffers (`process.memoryUsage().arrayBuffers`): what relaying a body costs. */
  readonly arrayBuffers: number;
  /** The longest event-loop delay since the previous probe, in ms. */
  readonly lagMs: number;
}

/**
 * The `docker-socket-filter` CLI running as a child process (`test/helpers/guard-probe.mjs` runs the
 * built bin's `main` with `--expose-gc` and answers probes over IPC).
 *
 * @example
 * ```ts
 * const guard = await startGuard(inject('guardCli'), { SOCKET_PATH: socketPath, CONTAINERS: '1' });
 * const before = await guard.probe({ gc: true });
 * await guard.stop();
 * ```
 */
export interface Guard {
  readonly child: ChildProcess;
  readonly pid: number;
  /** The TCP port it listens on (127.0.0.1). */
  readonly port: number;
  stderr(): string;
  /** Resolves with the first stderr line matching `pattern`; rejects on exit or after `timeoutMs`. */
  line(pattern: RegExp, timeoutMs?: number): Promise<string>;
  alive(): boolean;
  probe(options?: { gc?: boolean }): Promise<GuardProbe>;
  /**
   * Probes until `accept` holds, at most `timeoutMs`; resolves with the last probe either way, so
   * the caller's assertion shows the numbers.
   */
  settle(accept: (probe: GuardProbe) => boolean, options?: { gc?: boolean; timeoutMs?: number }): Promise<GuardProbe>;
  /** SIGTERM, then SIGKILL after `timeoutMs`; resolves with how it exited. */
  stop(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** A TCP port free on 127.0.0.1 right now (the OS's choice). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Starts the guard on 127.0.0.1 with `env` as its whole environment (plus `PATH`) and waits until
 * it accepts connections (a bare connect, so it works at any `LOG_LEVEL`). `args` are added to
 * `--listen 127.0.0.1:<free port>`.
 */
export async function startGuard(
  cliPath: string,
  env: Record<string, string>,
  args: readonly string[] = [],
): Promise<Guard> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--expose-gc', PROBE_SCRIPT, '--listen', `127.0.0.1:${port}`, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env, DSF_GUARD_CLI: cliPath },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
    if (err.length > MAX_STDERR) err = err.slice(-MAX_STDERR / 2);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;

  let nextId = 0;
  const pending = new Map<number, (probe: GuardProbe) => void>();
  child.on('message', (message: { type?: string; id?: number } & GuardProbe) => {
    if (message.type !== 'probe' || message.id === undefined) return;
    pending.get(message.id)?.({ fds: message.fds, sockets: message.sockets, heapUsed: message.heapUsed, rss: message.rss, arrayBuffers: message.arrayBuffers, lagMs: message.lagMs });
    pending.delete(message.id);
  });

  const line = (pattern: RegExp, timeoutMs?: number): Promise<string> => waitForLine(child, () => err, pattern, timeoutMs);

  const probe = (options: { gc?: boolean } = {}): Promise<GuardProbe> =>
    new Promise((resolve, reject) => {
      if (!alive()) {
        reject(new Error(`the guard is not running; stderr:\n${err}`));
        return;
      }
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error('the guard did not answer a probe within 10 s'));
      }, 10_000);
      pending.set(id, (answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
      child.send({ type: 'probe', id, gc: options.gc === true });
    });

  const stop = async (timeoutMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> => {
    if (alive()) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
    }
    return exited;
  };

  try {
    const deadline = Date.now() + 20_000;
    while (!(await accepts(port))) {
      if (!alive()) throw new Error(`the guard exited at start-up; stderr:\n${err}`);
      if (Date.now() > deadline) throw new Error(`the guard did not listen within 20 s; stderr:\n${err}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return {
      child,
      pid: child.pid as number,
      port,
      stderr: () => err,
      line,
      alive,
      probe,
      async settle(accept, options = {}) {
        const deadline = Date.now() + (options.timeoutMs ?? 15_000);
        let last = await probe(options);
        while (!accept(last) && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 250));
          last = await probe(options);
        }
        return last;
      },
      stop,
    };
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    throw error;
  }
}
