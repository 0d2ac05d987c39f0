// The processes under test, each in its own process: the filter as a library, the CLI, and the
// peers (HAProxy with Tecnativa's rules, nginx as the tutorials configure it, a naive http-proxy-3
// filter), with their CPU time and memory read from /proc over the whole process tree.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const LIBRARY_SERVER = fileURLToPath(new URL('../servers/library.mjs', import.meta.url));
const REFERENCE_SERVER = fileURLToPath(new URL('../servers/reference.mjs', import.meta.url));
const IDLE_SERVER = fileURLToPath(new URL('../servers/idle.mjs', import.meta.url));
const NAIVE_SERVER = fileURLToPath(new URL('../servers/naive-http-proxy-3.mjs', import.meta.url));
const HAPROXY_CONFIG = fileURLToPath(new URL('../haproxy.cfg', import.meta.url));
const NGINX_CONFIG = fileURLToPath(new URL('../nginx.conf', import.meta.url));

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

/**
 * The guard's bound on connections to dockerd in the benchmark: above the 1,000 `events` streams
 * held at once (each holds one), as docs/cli.md says to size it; the default 512 would answer the
 * 513th `503`. nginx gets `worker_connections 4096` for the same reason.
 */
export const UPSTREAM_FOR_STREAMS = 2048;

export async function startLibrary(socketPath: string, logDir: string, nodeArgs: readonly string[] = NODE_FLAGS, name = 'library'): Promise<Target> {
  const port = await freePort();
  return startLogged(name, port, logDir, process.execPath, [...nodeArgs, LIBRARY_SERVER, socketPath, String(port), String(UPSTREAM_FOR_STREAMS)], undefined, 5_000);
}

/**
 * Reference points, with the flags our servers run with: bench/servers/reference.mjs `hello` (Node's
 * http server answering by itself) and `hold` (holding event responses itself), and
 * bench/servers/idle.mjs (a `node:net` listener and nothing else: Node's own floor of RSS).
 */
export async function startReference(mode: 'hello' | 'hold' | 'idle', socketPath: string, logDir: string): Promise<Target> {
  const port = await freePort();
  const script = mode === 'idle' ? IDLE_SERVER : REFERENCE_SERVER;
  return startLogged(`node-${mode}`, port, logDir, process.execPath, [...NODE_FLAGS, script, mode, socketPath, String(port)], undefined, 5_000);
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
export async function startCli(
  socketPath: string,
  logDir: string,
  name = 'cli',
  nodeArgs: readonly string[] = NODE_FLAGS,
  extraEnv: Readonly<Record<string, string>> = {},
): Promise<Target> {
  const port = await freePort();
  const env = { PATH: process.env.PATH ?? '', SOCKET_PATH: socketPath, LISTEN: `127.0.0.1:${port}`, SHUTDOWN_GRACE: '1', MAX_UPSTREAM_CONNECTIONS: String(UPSTREAM_FOR_STREAMS), ...GRANTS, ...extraEnv };
  return startLogged(name, port, logDir, process.execPath, [...nodeArgs, join(ROOT, 'dist', 'cli.js')], env, 8_000);
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

/**
 * Debian's nginx with bench/nginx.conf (the tutorials' setup plus upstream keep-alive) in the
 * foreground, with its own prefix, pid file, logs and temp directories under `logDir`. The pid is
 * the master's; its workers are counted through `processTree`.
 */
export async function startNginx(socketPath: string, logDir: string, name = 'nginx'): Promise<Target> {
  const port = await freePort();
  const prefix = join(logDir, name);
  await mkdir(prefix, { recursive: true });
  const config = (await readFile(NGINX_CONFIG, 'utf8'))
    .replaceAll('@PREFIX@', prefix)
    .replaceAll('@LISTEN@', `127.0.0.1:${port}`)
    .replaceAll('@SOCKET_PATH@', socketPath);
  const file = join(prefix, 'nginx.conf');
  await writeFile(file, config);
  // -e: where errors go before the configuration is read (Debian's build says /var/log/nginx).
  const args = ['-p', prefix, '-e', join(prefix, 'error.log'), '-c', file, '-g', 'daemon off;'];
  return startLogged(name, port, logDir, 'nginx', args, undefined, 5_000);
}

/** bench/servers/naive-http-proxy-3.mjs: the filter a Node user writes by hand with http-proxy-3. */
export async function startNaive(socketPath: string, logDir: string, name = 'http-proxy-3'): Promise<Target> {
  const port = await freePort();
  return startLogged(name, port, logDir, process.execPath, [NAIVE_SERVER, socketPath, String(port)], undefined, 5_000);
}

/**
 * The pids of a process and of all its descendants (nginx's workers; HAProxy has threads only), from
 * /proc: a peer that runs several processes is measured as the sum of them.
 */
export async function processTree(pid: number): Promise<number[]> {
  const children = new Map<number, number[]>();
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    if (stat === '') continue;
    const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = children.get(parent) ?? [];
    list.push(Number(entry));
    children.set(parent, list);
  }
  const tree: number[] = [];
  const visit = (at: number): void => {
    tree.push(at);
    for (const child of children.get(at) ?? []) visit(child);
  };
  visit(pid);
  return tree;
}

/** Memory of a process tree, in MB, each field summed over its processes. */
export interface Memory {
  readonly rssMb: number;
  /** Proportional set size: shared pages divided among the processes sharing them (nginx's master and workers). */
  readonly pssMb: number;
  /** VmHWM, the peak RSS. */
  readonly peakMb: number;
  readonly processes: number;
}

function kilobytes(text: string, field: string): number {
  return Number(new RegExp(`^${field}\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN);
}

/** RSS, PSS and peak RSS of a process and its descendants, in MB, from /proc. */
export async function memoryOf(pid: number): Promise<Memory> {
  let rss = 0;
  let pss = 0;
  let peak = 0;
  const pids = await processTree(pid);
  for (const member of pids) {
    const status = await readFile(`/proc/${member}/status`, 'utf8');
    const rollup = await readFile(`/proc/${member}/smaps_rollup`, 'utf8').catch(() => '');
    rss += kilobytes(status, 'VmRSS:');
    peak += kilobytes(status, 'VmHWM:');
    pss += kilobytes(rollup, 'Pss:');
  }
  return { rssMb: rss / 1024, pssMb: pss / 1024, peakMb: peak / 1024, processes: pids.length };
}

/** CPU seconds (user + system, all threads) a process and its descendants have used so far, from /proc. */
export async function cpuSecondsOf(pid: number): Promise<number> {
  let total = 0;
  for (const member of await processTree(pid)) {
    const stat = await readFile(`/proc/${member}/stat`, 'utf8').catch(() => '');
    if (stat === '') continue;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime: fields 14 and 15 of /proc/<pid>/stat, 12th and 13th after the command name.
    total += (Number(fields[11]) + Number(fields[12])) / 100;
  }
  return total;
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
