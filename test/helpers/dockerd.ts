import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './guard.js';

const run = promisify(execFile);

/** The image every integration test runs: a static busybox and nothing else. */
export const BUSYBOX_IMAGE = 'dsf-busybox:latest';

/**
 * A private dockerd started for the test run.
 *
 * @example
 * ```ts
 * const dockerd = await startDockerd();
 * try { console.log(dockerd.socketPath); } finally { await dockerd.stop(); }
 * ```
 */
export interface Dockerd {
  readonly socketPath: string;
  readonly directory: string;
  /** The daemon's process id, or `undefined` while it is halted. */
  readonly pid: number | undefined;
  /**
   * Ends the daemon and keeps its data: `SIGTERM` is a clean stop, `SIGKILL` a crash (the socket
   * file stays behind, as after a real crash). Resolves once the process has exited.
   */
  halt(signal: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts a halted daemon again on the same socket and data; resolves when it answers `/_ping`. */
  restart(): Promise<void>;
  /** Removes every container, stops the daemon and deletes its directory. */
  stop(): Promise<void>;
}

/**
 * One request straight to a unix socket, bypassing any filter: how tests look at dockerd's state.
 *
 * @example
 * ```ts
 * const { status, body } = await dockerRequest(socketPath, 'GET', '/containers/json?all=1');
 * ```
 */
export function dockerRequest(
  socketPath: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        socketPath,
        method,
        path,
        headers: payload === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) },
        timeout: 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

async function waitForPing(socketPath: string, child: ChildProcess, logFile: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`dockerd exited (${child.exitCode ?? child.signalCode}) before answering /_ping:\n${await tail(logFile)}`);
    }
    try {
      const { status, body } = await dockerRequest(socketPath, 'GET', '/_ping');
      if (status === 200 && body === 'OK') return;
      lastError = new Error(`/_ping answered ${status} ${body}`);
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`dockerd did not answer /_ping within ${timeoutMs} ms (${String(lastError)}):\n${await tail(logFile)}`);
}

async function tail(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).split('\n').slice(-30).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * After dockerd is killed, its containerd dies too (parent-death signal) but, where PID 1 does not
 * reap orphans (a container without an init), lingers as a zombie whose pid is still in
 * containerd's pid file: a restarted dockerd takes it for a live containerd, waits for its socket
 * and gives up. Making sure it is dead and removing the pid file makes the restart start a fresh
 * one, which finds the containers' shims again.
 */
async function forgetContainerd(directory: string): Promise<void> {
  const pidFile = join(directory, 'exec', 'containerd', 'containerd.pid');
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (Number.isInteger(pid) && pid > 0) {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const state = await readFile(`/proc/${pid}/stat`, 'utf8').then((text) => text.slice(text.lastIndexOf(')') + 2)[0], () => 'gone');
      if (state === 'gone' || state === 'Z' || state === 'X') break;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  await rm(pidFile, { force: true });
}

/**
 * Kills what a daemon left running under `directory` (containerd, the shims and processes of
 * containers that were running when it was killed), so no process outlives the test run: a
 * container whose root file system is deleted under it can spin forever.
 */
async function killLeftovers(directory: string): Promise<void> {
  // The daemon's containers, by id: their processes are in a cgroup named after the id. The root
  // file system alone does not find them: seen from another mount namespace it reads as `/`, so a
  // container still running after its daemon was killed (a test that failed before restarting it)
  // would otherwise outlive the run.
  const containerIds = await readdir(join(directory, 'root', 'containers')).catch(() => [] as string[]);
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    // containerd and the shims name the directory on their command line; container processes
    // have their root file system under it, or their cgroup named after their container.
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    const root = await readlink(`/proc/${entry}/root`).catch(() => '');
    const cgroup = containerIds.length === 0 ? '' : await readFile(`/proc/${entry}/cgroup`, 'utf8').catch(() => '');
    const inContainer = containerIds.some((id) => cgroup.includes(id));
    if (!cmdline.includes(`${directory}/`) && !root.startsWith(`${directory}/`) && !inContainer) continue;
    try {
      process.kill(Number(entry), 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
}

/**
 * Unmounts whatever a daemon (dockerd, Podman) left mounted under `directory` (its data-root bind
 * mount, netns files, container root file systems), deepest first, so the directory can be removed.
 *
 * @example
 * ```ts
 * await unmountUnder('/tmp/dsf-abc');
 * ```
 */
export async function unmountUnder(directory: string): Promise<void> {
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
  const points = mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => point !== undefined && (point === directory || point.startsWith(`${directory}/`)))
    .sort((a, b) => b.length - a.length);
  for (const point of points) {
    await run('umount', ['-l', point]).catch(() => undefined);
  }
}

/**
 * Builds a rootfs tar: `/bin/busybox` (static) with a symlink per applet, `/tmp`, `/etc`, and
 * `extra` files. Returns the tar's path.
 */
export async function buildRootfsTar(directory: string, extra: Record<string, Buffer | string> = {}): Promise<string> {
  const rootfs = join(directory, 'rootfs');
  await rm(rootfs, { recursive: true, force: true });
  await mkdir(join(rootfs, 'bin'), { recursive: true });
  for (const dir of ['tmp', 'etc', 'root', 'proc', 'sys', 'dev']) await mkdir(join(rootfs, dir), { recursive: true });
  await chmod(join(rootfs, 'tmp'), 0o1777);
  await copyFile('/bin/busybox', join(rootfs, 'bin', 'busybox'));
  await chmod(join(rootfs, 'bin', 'busybox'), 0o755);
  const { stdout } = await run('/bin/busybox', ['--list']);
  for (const applet of stdout.split('\n').filter((name) => /^[a-z0-9_.[-]+$/.test(name) && name !== 'busybox')) {
    await symlink('busybox', join(rootfs, 'bin', applet)).catch(() => undefined);
  }
  await writeFile(join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  await writeFile(join(rootfs, 'etc', 'group'), 'root:x:0:\n');
  for (const [path, content] of Object.entries(extra)) {
    await mkdir(join(rootfs, path, '..'), { recursive: true });
    await writeFile(join(rootfs, path), content);
  }
  const tar = join(directory, `rootfs-${Date.now()}.tar`);
  await run('tar', ['-C', rootfs, '-cf', tar, '.'], { maxBuffer: 1 << 20 });
  await rm(rootfs, { recursive: true, force: true });
  return tar;
}

/**
 * `docker import` of a rootfs tar straight against dockerd's socket (not through a filter).
 *
 * @example
 * ```ts
 * await importImage(socketPath, tar, 'dsf-busybox:latest');
 * ```
 */
export async function importImage(socketPath: string, tar: string, tag: string, configDir: string): Promise<void> {
  await run('docker', ['import', '--change', 'CMD ["/bin/sh"]', tar, tag], {
    env: { ...process.env, DOCKER_HOST: `unix://${socketPath}`, DOCKER_CONFIG: configDir },
    timeout: 120_000,
  });
}

/**
 * Options of `startDockerd`.
 *
 * @example
 * ```ts
 * const dockerd = await startDockerd({ offline: true });
 * ```
 */
export interface DockerdOptions {
  /**
   * Start dockerd with `HTTP_PROXY`/`HTTPS_PROXY` at a closed loopback port, so that nothing a
   * client triggers (a pull by docker-compose, docker-py's suite, `docker run` of a missing image)
   * leaves the machine: the pull fails at once with `proxyconnect tcp: … connection refused`.
   */
  readonly offline?: boolean;
  /** Also listen on 127.0.0.1:<tcpPort> (the benchmark measures dockerd direct over TCP). */
  readonly tcpPort?: number;
}

/**
 * The environment of an offline dockerd: its proxies at a loopback port nothing listens on (one the
 * OS just handed out and took back; a port below 1024 could be a local service's).
 */
function withoutProxies(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !/^(https?|no|all)_proxy$/i.test(name)));
}

async function closedProxyEnv(): Promise<Record<string, string>> {
  // A port nothing listens on: a pull the daemon tries fails at once, on this machine.
  const proxy = `http://127.0.0.1:${await freePort()}`;
  return { HTTP_PROXY: proxy, HTTPS_PROXY: proxy, http_proxy: proxy, https_proxy: proxy, NO_PROXY: '', no_proxy: '' };
}

/**
 * Starts a private dockerd in a fresh short temp directory (unix socket paths must stay under 108
 * bytes), waits for `/_ping` and imports `dsf-busybox:latest`. `tcpPort`: also listen on
 * 127.0.0.1:`tcpPort`, without TLS (the benchmark only). Throws, loudly, when it cannot:
 * integration tests are never skipped for want of a daemon.
 *
 * @example
 * ```ts
 * const dockerd = await startDockerd({ offline: true });
 * ```
 */
export async function startDockerd(options: DockerdOptions = {}): Promise<Dockerd> {
  if (process.getuid?.() !== 0) {
    throw new Error('The integration tests start a private dockerd and must run as root');
  }
  const directory = await mkdtemp('/tmp/dsf-');
  const socketPath = join(directory, 'docker.sock');
  const logFile = join(directory, 'dockerd.log');
  const log = createWriteStream(logFile, { flags: 'a' });
  await once(log, 'open');
  let child: ChildProcess | undefined;
  // Chosen once: a restarted daemon keeps the same environment.
  const env = options.offline === true ? { ...withoutProxies(process.env), ...(await closedProxyEnv()) } : process.env;

  const running = (): boolean => child !== undefined && child.exitCode === null && child.signalCode === null;

  const launch = async (): Promise<void> => {
    const daemon = spawn(
      'dockerd',
      [
        '--host', `unix://${socketPath}`,
        // The benchmark reaches dockerd directly with a TCP-only load generator; tests never do.
        ...(options.tcpPort === undefined ? [] : ['--host', `tcp://127.0.0.1:${options.tcpPort}`]),
        '--data-root', join(directory, 'root'),
        '--exec-root', join(directory, 'exec'),
        '--pidfile', join(directory, 'docker.pid'),
        '--iptables=false',
        '--ip6tables=false',
        '--bridge=none',
        '--storage-driver=vfs',
        // Containers left running at teardown get SIGKILL after 2 s instead of 15.
        '--shutdown-timeout=2',
      ],
      { stdio: ['ignore', log, log], env },
    );
    child = daemon;
    const spawnError = new Promise<never>((_, reject) =>
      daemon.once('error', (error) => reject(new Error(`cannot start dockerd: ${error.message}`))),
    );
    spawnError.catch(() => undefined);
    await Promise.race([waitForPing(socketPath, daemon, logFile, 60_000), spawnError]);
  };

  const halt = async (signal: 'SIGTERM' | 'SIGKILL'): Promise<void> => {
    if (child === undefined || !running()) return;
    const exited = once(child, 'exit');
    child.kill(signal);
    const timer = setTimeout(() => child?.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
    if (signal === 'SIGKILL') await forgetContainerd(directory);
  };

  const stop = async (): Promise<void> => {
    if (running()) {
      // Remove containers first: dockerd's own shutdown waits on each running one.
      try {
        const { body } = await dockerRequest(socketPath, 'GET', '/containers/json?all=1');
        for (const { Id } of JSON.parse(body) as { Id: string }[]) {
          await dockerRequest(socketPath, 'DELETE', `/containers/${Id}?force=1&v=1`).catch(() => undefined);
        }
      } catch {
        // dockerd already unusable: kill it anyway.
      }
      await halt('SIGTERM');
    }
    log.end();
    await killLeftovers(directory);
    await unmountUnder(directory);
    await rm(directory, { recursive: true, force: true, maxRetries: 3 });
  };

  try {
    await launch();
    const configDir = join(directory, 'docker-config');
    await mkdir(configDir, { recursive: true });
    const tar = await buildRootfsTar(directory);
    await importImage(socketPath, tar, BUSYBOX_IMAGE, configDir);
    await rm(tar, { force: true });
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
  return {
    socketPath,
    directory,
    get pid() {
      return running() ? child?.pid : undefined;
    },
    halt,
    async restart() {
      if (running()) throw new Error('dockerd is running: halt it first');
      await launch();
    },
    stop,
  };
}
