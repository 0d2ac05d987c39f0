import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildRootfsTar, dockerRequest, unmountUnder } from './dockerd.js';
import { freePort } from './guard.js';
import { CLIENT_PATH, runProcess, type ProcessOptions, type ProcessResult } from './run-process.js';

/** The busybox image as Podman names it (a short name resolves to `localhost/…` for local images). */
export const PODMAN_IMAGE = 'localhost/dsf-busybox:latest';

/**
 * A private rootful Podman API service (`podman system service`) on a temp unix socket, with its own
 * storage, run and tmp directories, so the machine's Podman (if any) is never touched.
 *
 * @example
 * ```ts
 * const podman = await startPodman();
 * try { await podman.cli(['ps', '-a']); } finally { await podman.stop(); }
 * ```
 */
export interface Podman {
  readonly socketPath: string;
  readonly directory: string;
  /** The environment every podman run gets (`CONTAINERS_CONF`, closed proxies, `PATH`). */
  readonly env: Record<string, string>;
  /** The local podman CLI on the private storage (not through the API service). */
  cli(args: readonly string[], options?: Partial<ProcessOptions>): Promise<ProcessResult>;
  /** `podman --remote --url <url>`: Podman's own client, against `url` (the guard, or the service). */
  remote(url: string, args: readonly string[], options?: Partial<ProcessOptions>): Promise<ProcessResult>;
  /** Stops the service, removes every container, pod and volume, and deletes the directory. */
  stop(): Promise<void>;
}

// Why each setting: no systemd here (cgroupfs, file events: journald is not there), no overlay
// mounts inside this sandbox (vfs), and runc cannot raise rlimits above the sandbox's, so the
// defaults Podman asks for (nofile 1048576) make every container fail to start unless they are set
// to what the sandbox allows. `netns = "none"`: containers have no network here.
const CONTAINERS_CONF = `[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
netns = "none"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
`;

function globalFlags(directory: string): string[] {
  return [
    '--root', join(directory, 'root'),
    '--runroot', join(directory, 'run'),
    '--tmpdir', join(directory, 'tmp'),
    '--storage-driver', 'vfs',
    '--cgroup-manager', 'cgroupfs',
    '--events-backend', 'file',
    '--network-config-dir', join(directory, 'networks'),
  ];
}

async function waitForPing(socketPath: string, child: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  let last: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`podman system service exited: ${await readFile(logFile, 'utf8').catch(() => '')}`);
    }
    try {
      const { status } = await dockerRequest(socketPath, 'GET', '/_ping');
      if (status === 200) return;
      last = status;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`podman system service did not answer /_ping within 30 s (${String(last)})`);
}

/** Kills what outlived the service under `directory` (conmon, container processes). */
async function killLeftovers(directory: string): Promise<void> {
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.includes(`${directory}/`)) continue;
    try {
      process.kill(Number(entry), 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
}

/**
 * Starts a private rootful Podman API service and loads the busybox image into it (`podman import`
 * of the same rootfs tar the private dockerd imports). Throws when it cannot: the suites that need
 * it fail, they are never skipped.
 *
 * @example
 * ```ts
 * const podman = await startPodman();
 * ```
 */
export async function startPodman(): Promise<Podman> {
  if (process.getuid?.() !== 0) throw new Error('The Podman suites run a rootful Podman and must run as root');
  const directory = await mkdtemp('/tmp/dsf-pm-');
  const socketPath = join(directory, 'podman.sock');
  const confPath = join(directory, 'containers.conf');
  await writeFile(confPath, CONTAINERS_CONF);
  // Nothing a client triggers (a pull of a missing image) leaves the machine.
  const proxy = `http://127.0.0.1:${await freePort()}`;
  const env: Record<string, string> = {
    PATH: CLIENT_PATH,
    HOME: directory,
    CONTAINERS_CONF: confPath,
    HTTP_PROXY: proxy,
    HTTPS_PROXY: proxy,
    http_proxy: proxy,
    https_proxy: proxy,
  };
  const flags = globalFlags(directory);
  const cli = (args: readonly string[], options: Partial<ProcessOptions> = {}): Promise<ProcessResult> =>
    runProcess('podman', [...flags, ...args], { timeoutMs: 60_000, ...options, env: { ...env, ...options.env } });
  const remote = (url: string, args: readonly string[], options: Partial<ProcessOptions> = {}): Promise<ProcessResult> =>
    runProcess('podman', ['--remote', '--url', url, ...args], { timeoutMs: 30_000, ...options, env: { ...env, ...options.env } });

  const logFile = join(directory, 'service.log');
  const log = createWriteStream(logFile);
  await once(log, 'open');
  let service: ChildProcess | undefined;

  const stop = async (): Promise<void> => {
    if (service !== undefined && service.exitCode === null && service.signalCode === null) {
      const exited = once(service, 'exit');
      service.kill('SIGTERM');
      const timer = setTimeout(() => service?.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    log.end();
    // The local CLI on the same storage removes what the API service created.
    await cli(['rm', '--all', '--force', '--time', '0'], { timeoutMs: 60_000 }).catch(() => undefined);
    await cli(['pod', 'rm', '--all', '--force'], { timeoutMs: 60_000 }).catch(() => undefined);
    await cli(['volume', 'rm', '--all', '--force'], { timeoutMs: 60_000 }).catch(() => undefined);
    await killLeftovers(directory);
    await unmountUnder(directory);
    await rm(directory, { recursive: true, force: true, maxRetries: 3 });
  };

  try {
    const tar = await buildRootfsTar(directory);
    const imported = await cli(['import', '--change', 'CMD ["/bin/sh"]', tar, PODMAN_IMAGE], { timeoutMs: 120_000 });
    if (imported.code !== 0) throw new Error(`podman import failed: ${imported.stderr}`);
    await rm(tar, { force: true });
    const child = spawn('podman', [...flags, 'system', 'service', '--time', '0', `unix://${socketPath}`], {
      env,
      stdio: ['ignore', log, log],
    });
    service = child;
    const spawnError = new Promise<never>((_, reject) =>
      child.once('error', (error) => reject(new Error(`cannot start podman: ${error.message}`))),
    );
    spawnError.catch(() => undefined);
    await Promise.race([waitForPing(socketPath, child, logFile), spawnError]);
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
  return { socketPath, directory, env, cli, remote, stop };
}
