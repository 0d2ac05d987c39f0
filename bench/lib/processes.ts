// The processes under test, each in its own process: the filter as a library, the CLI, HAProxy.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const LIBRARY_SERVER = fileURLToPath(new URL('../servers/library.mjs', import.meta.url));
const REFERENCE_SERVER = fileURLToPath(new URL('../servers/reference.mjs', import.meta.url));
const HAPROXY_CONFIG = fileURLToPath(new URL('../haproxy.cfg', import.meta.url));

/** The permissions every target enforces (the Tecnativa variables). */
export const GRANTS = { CONTAINERS: '1', IMAGES: '1', POST: '1' } as const;

/** A running server under test. */
export interface Target {
  readonly name: string;
  readonly port: number;
  readonly pid: number;
  readonly child: ChildProcess;
  readonly logFile: string;
  stop(): Promise<void>;
}

/** A free TCP port on loopback (asked from the kernel, then released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').slice(-4096);
  } catch {
    return '(no log)';
  }
}

async function waitForPort(port: number, child: ChildProcess, name: string, logFile: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}) before listening:\n${tail(logFile)}`);
    }
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${name} did not listen on ${port} within ${timeoutMs} ms:\n${tail(logFile)}`);
}

/**
 * Spawns `command` with stdout and stderr appended to `<logDir>/<name>.log`: a file, not a pipe this
 * process would have to drain while it generates load. Waits until `port` accepts connections.
 */
async function startLogged(
  name: string,
  port: number,
  logDir: string,
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv | undefined,
  graceMs: number,
): Promise<Target> {
  const logFile = join(logDir, `${name}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', fd, fd], ...(env === undefined ? {} : { env }) });
  closeSync(fd);
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  try {
    await waitForPort(port, child, name, logFile);
  } catch (error) {
    await stop();
    throw error;
  }
  return { name, port, pid: child.pid as number, child, logFile, stop };
}

/**
 * bench/servers/library.mjs: `createSocketFilter` + `http.createServer`, as the README shows.
 * `nodeArgs` go before the script (`--cpu-prof`, ...).
 */
/**
 * The V8 setting the image runs the CLI with (Dockerfile `ENTRYPOINT`) and the README recommends to
 * embedders: a 2 MB young generation. Node's default grows it to about 130 MB under load on this
 * machine, which costs RSS and, through cache misses and longer scavenges, p99 latency.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];

export async function startLibrary(socketPath: string, logDir: string, nodeArgs: readonly string[] = NODE_FLAGS, name = 'library'): Promise<Target> {
  const port = await freePort();
  return startLogged(name, port, logDir, process.execPath, [...nodeArgs, LIBRARY_SERVER, socketPath, String(port)], undefined, 5_000);
}

/**
 * bench/servers/reference.mjs: `hello` (Node's http server answering by itself) or `proxy` (the least
 * a Node http-to-unix-socket proxy does), to put the small-request numbers in perspective.
 */
export async function startReference(mode: 'hello' | 'proxy' | 'hold', socketPath: string, logDir: string): Promise<Target> {
  const port = await freePort();
  return startLogged(`node-${mode}`, port, logDir, process.execPath, [REFERENCE_SERVER, mode, socketPath, String(port)], undefined, 5_000);
}

/**
 * Asks a bench/servers/library.mjs process for its `process.memoryUsage()` (SIGUSR2; it answers on
 * stdout, which is its log file). MB; null when no answer came within a second.
 */
export async function heapOf(target: Target): Promise<Record<string, number> | null> {
  const before = readFileSync(target.logFile, 'utf8').length;
  target.child.kill('SIGUSR2');
  for (let waited = 0; waited < 1_000; waited += 50) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const line = readFileSync(target.logFile, 'utf8').slice(before).split('\n').find((text) => text.startsWith('{"memoryMb"'));
    if (line !== undefined) return (JSON.parse(line) as { memoryMb: Record<string, number> }).memoryMb;
  }
  return null;
}

/**
 * The CLI, `node dist/cli.js`, configured by environment like Tecnativa's image, at its default log
 * level (denials logged at info, as HAProxy logs every request at the original's LOG_LEVEL=info).
 */
export async function startCli(socketPath: string, logDir: string, name = 'cli'): Promise<Target> {
  const port = await freePort();
  const env = { PATH: process.env.PATH ?? '', SOCKET_PATH: socketPath, LISTEN: `127.0.0.1:${port}`, SHUTDOWN_GRACE: '1', ...GRANTS };
  return startLogged(name, port, logDir, process.execPath, [...NODE_FLAGS, join(ROOT, 'dist', 'cli.js')], env, 8_000);
}

/** Every Tecnativa variable the benchmark does not grant, set to 0 as the original image does. */
const REVOKED = [
  'AUTH', 'BUILD', 'COMMIT', 'CONFIGS', 'DISTRIBUTION', 'EXEC', 'GRPC', 'INFO', 'NETWORKS', 'NODES', 'PLUGINS',
  'SECRETS', 'SERVICES', 'SESSION', 'SWARM', 'SYSTEM', 'TASKS', 'VOLUMES', 'ALLOW_START', 'ALLOW_STOP', 'ALLOW_RESTARTS',
];

/**
 * Debian's haproxy with bench/haproxy.cfg (the Tecnativa rules), in the foreground, at the
 * original's default LOG_LEVEL=info (one line per request on stdout).
 */
export async function startHaproxy(socketPath: string, logDir: string, name = 'haproxy'): Promise<Target> {
  const port = await freePort();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    SOCKET_PATH: socketPath,
    LISTEN: `127.0.0.1:${port}`,
    LOG_LEVEL: 'info',
    EVENTS: '1',
    PING: '1',
    VERSION: '1',
    ...Object.fromEntries(REVOKED.map((variable) => [variable, '0'])),
    ...GRANTS,
  };
  return startLogged(name, port, logDir, 'haproxy', ['-db', '-f', HAPROXY_CONFIG], env, 5_000);
}

/** Resident set size and its peak (VmHWM) of a process, in MB, from /proc. */
export async function memoryOf(pid: number): Promise<{ rssMb: number; peakMb: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => {
    const line = status.split('\n').find((text) => text.startsWith(field)) ?? '';
    return Number(/(\d+) kB/.exec(line)?.[1] ?? Number.NaN);
  };
  return { rssMb: kb('VmRSS:') / 1024, peakMb: kb('VmHWM:') / 1024 };
}

/** CPU seconds (user + system, all threads) a process has used so far, from /proc. */
export async function cpuSecondsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime: fields 14 and 15 of /proc/<pid>/stat, 12th and 13th after the command name.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU seconds the whole machine has spent busy so far (all CPUs, from the first line of /proc/stat). */
export async function machineBusySeconds(): Promise<number> {
  const fields = (await readFile('/proc/stat', 'utf8')).split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
  // user nice system idle iowait irq softirq steal: everything but idle and iowait.
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  return (user + nice + system + irq + softirq + steal) / 100;
}

/** CPU seconds of this process and of the children it has waited for (wrk), from /proc/self/stat. */
export async function selfAndChildrenSeconds(): Promise<number> {
  const stat = await readFile('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime, stime, cutime, cstime: fields 14 to 17.
  return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / 100;
}
