/**
 * The container image: the repository's Dockerfile built as users build it (the legacy builder, no
 * registry: the base image is made here and npm installs from a cache in the build context), then
 * run as the compose example runs it, and the compose example itself brought up with Debian's
 * docker-compose. Everything runs against the suite's private dockerd.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildNodeBaseImage, prepareOfflineContext, ROOT, runCommand, tail, type CommandResult } from '../helpers/image-build.js';
import { containerState, createContainer, removeContainer } from '../helpers/fixtures.js';

/** The tag the compose example expects (`image: docker-socket-filter:local`). */
const IMAGE = 'docker-socket-filter:local';
const BASE_IMAGE = 'dsf-node24-base:latest';
const COMPOSE_FILE = join(ROOT, 'examples', 'compose', 'docker-compose.yml');
/** 2375 as /proc/net/tcp writes it. */
const PORT_HEX = '0947';

let dockerSocket: string;
let socketGid: number;
let work: string;
let configDir: string;
let dockerEnv: Record<string, string>;
let built: { nodeVersion: string; npmVersion: string; buildOutput: string };
const containers = new Set<string>();
const children = new Set<ChildProcess>();

/** The docker CLI straight on the private dockerd (setup and checks, never through the guard). */
function docker(args: readonly string[], timeoutMs = 60_000): Promise<CommandResult> {
  return runCommand('docker', args, { env: dockerEnv, timeoutMs });
}

/**
 * The docker CLI in the container's network namespace, talking to the guard on its default
 * `LISTEN=:2375` as a neighbour container (Traefik) would.
 */
function throughGuard(pid: number, args: readonly string[], timeoutMs = 30_000): Promise<CommandResult> {
  return runCommand('nsenter', ['-t', String(pid), '-n', 'docker', ...args], {
    env: { ...dockerEnv, DOCKER_HOST: 'tcp://127.0.0.1:2375' },
    timeoutMs,
  });
}

async function inspect<T>(name: string, format: string): Promise<T> {
  const { code, stdout, stderr } = await docker(['inspect', '--format', `{{json ${format}}}`, name]);
  if (code !== 0) throw new Error(`docker inspect ${name}: ${stderr}`);
  return JSON.parse(stdout) as T;
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** `docker run` with the compose example's settings: socket read-only, its group, read-only, no capabilities. */
async function runGuard(name: string, env: Record<string, string>, options: { groupAdd?: boolean } = {}): Promise<string> {
  const args = ['run', '-d', '--name', name, '--network', 'none'];
  for (const [key, value] of Object.entries(env)) args.push('-e', `${key}=${value}`);
  args.push('-v', `${dockerSocket}:/var/run/docker.sock:ro`);
  if (options.groupAdd !== false) args.push('--group-add', String(socketGid));
  args.push('--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges:true', IMAGE);
  containers.add(name);
  const { code, stdout, stderr } = await docker(args);
  if (code !== 0) throw new Error(`docker run ${name}: ${stderr}`);
  return stdout.trim();
}

async function runningPid(name: string): Promise<number> {
  return until(`${name} running`, 20_000, async () => {
    const state = await inspect<{ Running: boolean; Pid: number; Status: string }>(name, '.State');
    if (state.Status === 'exited') throw new Error(`${name} exited:\n${(await docker(['logs', name])).stderr}`);
    return state.Running && state.Pid > 0 ? state.Pid : undefined;
  });
}

async function healthy(name: string, timeoutMs = 45_000): Promise<void> {
  await until(`${name} healthy`, timeoutMs, async () => {
    const health = await inspect<{ Status: string; Log: { Output: string }[] } | null>(name, '.State.Health');
    if (health?.Status === 'unhealthy') throw new Error(`${name} unhealthy: ${JSON.stringify(health.Log)}`);
    return health?.Status === 'healthy' ? true : undefined;
  });
}

/** The listening sockets on port 2375 in a process's network namespace, by family. */
async function listeners(pid: number): Promise<{ tcp: string[]; tcp6: string[] | undefined }> {
  const read = async (file: string): Promise<string[] | undefined> => {
    const path = `/proc/${pid}/net/${file}`;
    if (!existsSync(path)) return undefined;
    return (await readFile(path, 'utf8'))
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/))
      .filter((fields) => fields[3] === '0A' && fields[1]?.endsWith(`:${PORT_HEX}`))
      .map((fields) => (fields[1] as string).split(':')[0] as string);
  };
  return { tcp: (await read('tcp')) ?? [], tcp6: await read('tcp6') };
}

async function established(pid: number): Promise<number> {
  let count = 0;
  for (const file of ['tcp', 'tcp6']) {
    const text = await readFile(`/proc/${pid}/net/${file}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[3] === '01' && fields[1]?.endsWith(`:${PORT_HEX}`)) count++;
    }
  }
  return count;
}

beforeAll(async () => {
  dockerSocket = inject('dockerSocket');
  socketGid = (await stat(dockerSocket)).gid;
  for (const tool of ['nsenter', 'docker-compose', 'git', 'ldd', 'tar']) {
    const found = await runCommand('sh', ['-c', `command -v ${tool}`]);
    if (found.code !== 0) throw new Error(`the image test needs \`${tool}\` (.ci/run installs it)`);
  }
  work = await mkdtemp(join(tmpdir(), 'dsf-image-'));
  configDir = join(work, 'docker-config');
  await mkdir(configDir);
  dockerEnv = { DOCKER_HOST: `unix://${dockerSocket}`, DOCKER_CONFIG: configDir, HOME: configDir, DOCKER_CLI_HINTS: 'false' };

  const base = await buildNodeBaseImage({ work, tag: BASE_IMAGE, dockerEnv });
  const { context, registry } = await prepareOfflineContext(work);
  // The Dockerfile users build, unchanged; only its documented build arguments differ.
  const build = await runCommand(
    'docker',
    [
      'build', '--network', 'none', '--force-rm',
      '--build-arg', `NODE_IMAGE=${BASE_IMAGE}`,
      '--build-arg', 'npm_config_offline=true',
      '--build-arg', `npm_config_registry=${registry}`,
      '-t', IMAGE, context,
    ],
    { env: { ...dockerEnv, DOCKER_BUILDKIT: '0' }, timeoutMs: 600_000 },
  );
  if (build.code !== 0) throw new Error(`docker build failed (${build.code}):\n${tail(build.stdout + build.stderr, 60)}`);
  built = { ...base, buildOutput: build.stdout };
  await rm(context, { recursive: true, force: true });
}, 900_000);

afterEach(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'close');
    }
  }
  children.clear();
  for (const name of containers) await docker(['rm', '-f', name]);
  containers.clear();
});

afterAll(async () => {
  if (dockerEnv !== undefined) {
    // The daemon is shared with the files after this one: leave it as the setup made it.
    await docker(['image', 'rm', '-f', IMAGE, BASE_IMAGE]);
    await docker(['image', 'prune', '-f']);
  }
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe('the image, built offline from the Dockerfile', () => {
  it('was built on the Node 24 base made here, with no network', async () => {
    expect(built.nodeVersion).toMatch(/^v24\./);
    expect(built.buildOutput).toMatch(/Successfully tagged docker-socket-filter:local/);
    const [image, base] = await Promise.all([inspect<string[]>(IMAGE, '.RootFS.Layers'), inspect<string[]>(BASE_IMAGE, '.RootFS.Layers')]);
    expect(image.slice(0, base.length)).toEqual(base);
    expect(image.length).toBeGreaterThan(base.length);
  });

  it('declares what Tecnativa users expect: every interface on 2375, the node user, a health check', async () => {
    const config = await inspect<{
      User: string;
      Env: string[];
      ExposedPorts: Record<string, object>;
      Healthcheck: { Test: string[] };
      Entrypoint: string[];
    }>(IMAGE, '.Config');
    expect(config.User).toBe('node');
    expect(config.Env).toEqual(expect.arrayContaining(['LISTEN=:2375', 'DISABLE_IPV6=0', 'CONTAINERS=0', 'POST=0', 'PING=1']));
    expect(Object.keys(config.ExposedPorts)).toEqual(['2375/tcp']);
    expect(config.Healthcheck.Test).toEqual(['CMD', 'node', '/app/dist/cli.js', '--healthcheck']);
    expect(config.Entrypoint).toEqual(['node', '--max-semi-space-size=2', '/app/dist/cli.js']);
  });

  it('carries the bin and the runtime dependencies only: no dev packages, no native code', async () => {
    const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean }>;
    };
    const runtime = Object.entries(lock.packages)
      .filter(([path, entry]) => path !== '' && entry.dev !== true)
      .map(([path]) => path.replace(/^node_modules\//, ''))
      // Installed at the top: a nested copy lives inside its dependent's folder.
      .filter((name) => !name.includes('/node_modules/'))
      .sort();
    const { code, stdout, stderr } = await docker([
      'run', '--rm', '--network', 'none', '--entrypoint', '/bin/sh', IMAGE, '-c',
      // Packages, scoped ones (`@scope/name`) included.
      'cd /app/node_modules && for d in *; do case $d in @*) ls -d "$d"/*;; *) echo "$d";; esac; done; echo ---; ls /app/dist; echo ---; find /app -name "*.node" | wc -l',
    ]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const [modules, dist, native] = stdout.split('---\n').map((part) => part.trim());
    expect(modules?.split('\n').sort()).toEqual(runtime);
    expect(dist?.split('\n')).toEqual(['cli.js', 'cli.js.map']);
    expect(native).toBe('0');
  });
});

describe('the container, run as the compose example runs it', () => {
  it('listens on every interface, serves allowed requests, refuses denied ones and turns healthy', async () => {
    const name = `dsf-image-guard-${process.pid}`;
    await runGuard(name, { CONTAINERS: '1' });
    const pid = await runningPid(name);

    // Unprivileged as the kernel sees it: uid 1000, no capabilities, no_new_privs.
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    expect(status).toMatch(/^Uid:\s+1000\s+1000\s+1000\s+1000$/m);
    expect(status).toMatch(/^CapEff:\s+0+$/m);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(status).toMatch(new RegExp(`^Groups:.*\\b${socketGid}\\b`, 'm'));

    const listening = await until('the guard listening', 20_000, async () => {
      const found = await listeners(pid);
      return found.tcp.length + (found.tcp6?.length ?? 0) > 0 ? found : undefined;
    });
    // `:2375` is the unspecified address, dual-stack where the kernel has IPv6: never loopback only.
    if (listening.tcp6 === undefined) expect(listening.tcp).toEqual(['00000000']);
    else expect({ tcp: listening.tcp, tcp6: listening.tcp6 }).toEqual({ tcp: [], tcp6: ['0'.repeat(32)] });

    const ps = await throughGuard(pid, ['ps', '--format', '{{.Names}}']);
    expect(ps.stderr).toBe('');
    expect(ps.stdout.split('\n')).toContain(name);
    expect(ps.code).toBe(0);

    const victim = await createContainer(dockerSocket, ['sleep', '300'], { start: true });
    try {
      const rm = await throughGuard(pid, ['rm', '-f', victim]);
      expect(rm.stderr).toMatch(/^Error response from daemon: docker-socket-filter denied DELETE \/v1\.\d+\/containers\/\w+: it needs POST=1/m);
      expect(rm.code).toBe(1);
      const images = await throughGuard(pid, ['images']);
      expect(images.stderr).toMatch(/needs IMAGES=1/);
      expect(images.code).toBe(1);
      // Judged by dockerd: the container is still there and running.
      expect(await containerState(dockerSocket, victim)).toEqual({ exists: true, running: true });
    } finally {
      await removeContainer(dockerSocket, victim);
    }

    await healthy(name);
    const logs = await docker(['logs', name]);
    expect(logs.stdout).toBe('');
    expect(logs.stderr).toMatch(/msg=listening listen="?\*:2375"? preset=tecnativa granted=CONTAINERS,EVENTS,PING,VERSION/);
    expect(logs.stderr).toMatch(/decision=denied rule=POST status=403/);
  }, 120_000);

  it('with DISABLE_IPV6=1 listens on 0.0.0.0:2375 only', async () => {
    const name = `dsf-image-v4-${process.pid}`;
    await runGuard(name, { DISABLE_IPV6: '1' });
    const pid = await runningPid(name);
    const listening = await until('the guard listening', 20_000, async () => {
      const found = await listeners(pid);
      return found.tcp.length + (found.tcp6?.length ?? 0) > 0 ? found : undefined;
    });
    expect({ tcp: listening.tcp, tcp6: listening.tcp6 ?? [] }).toEqual({ tcp: ['00000000'], tcp6: [] });
    const version = await throughGuard(pid, ['version', '--format', '{{.Server.APIVersion}}']);
    expect(version.stdout.trim()).toMatch(/^1\.\d+$/);
    expect(version.code).toBe(0);
  }, 120_000);

  it('refuses to start without the socket\'s group, saying which', async () => {
    const name = `dsf-image-nogroup-${process.pid}`;
    await runGuard(name, {}, { groupAdd: false });
    const state = await until('the guard exiting', 20_000, async () => {
      const s = await inspect<{ Status: string; ExitCode: number }>(name, '.State');
      return s.Status === 'exited' ? s : undefined;
    });
    expect(state.ExitCode).toBe(2);
    const { stderr } = await docker(['logs', name]);
    expect(stderr).toMatch(/SOCKET_PATH=\/var\/run\/docker\.sock .*uid 1000/);
  }, 120_000);

  it('docker stop: exits 0 within the grace period, an open events stream cut', async () => {
    const name = `dsf-image-stop-${process.pid}`;
    await runGuard(name, {});
    const pid = await runningPid(name);
    await until('the guard listening', 20_000, async () => {
      const found = await listeners(pid);
      return found.tcp.length + (found.tcp6?.length ?? 0) > 0 ? true : undefined;
    });
    const events = spawn('nsenter', ['-t', String(pid), '-n', 'docker', 'events'], {
      env: { ...process.env, ...dockerEnv, DOCKER_HOST: 'tcp://127.0.0.1:2375' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(events);
    events.stdout.resume();
    events.stderr.resume();
    const eventsClosed = once(events, 'close');
    await until('the events stream connected', 15_000, async () => ((await established(pid)) >= 1 ? true : undefined));

    const started = Date.now();
    const stop = await docker(['stop', name], 30_000);
    const elapsed = Date.now() - started;
    expect(stop.code).toBe(0);
    // The open stream held the guard for its 5 s grace; it exited on its own (0, not SIGKILL's
    // 137), before docker stop's 10 s were over.
    expect(elapsed).toBeGreaterThanOrEqual(4_500);
    expect(elapsed).toBeLessThan(10_000);
    const state = await inspect<{ ExitCode: number; OOMKilled: boolean }>(name, '.State');
    expect(state).toMatchObject({ ExitCode: 0, OOMKilled: false });
    await Promise.race([eventsClosed, new Promise((_, reject) => setTimeout(() => reject(new Error('events stream still open')), 5_000))]);
    const { stderr } = await docker(['logs', name]);
    expect(stderr).toMatch(/msg=stopping signal=SIGTERM grace_s=5/);
    expect(stderr).toMatch(/msg=stopped cut_connections=[1-9]/);
  }, 120_000);
});

describe('examples/compose/docker-compose.yml with docker-compose', () => {
  const project = `dsf-image-${process.pid}`;
  const compose = (args: readonly string[], timeoutMs = 120_000): Promise<CommandResult> =>
    runCommand('docker-compose', ['-p', project, '-f', COMPOSE_FILE, ...args], {
      env: { ...dockerEnv, DOCKER_GID: String(socketGid), DOCKER_SOCKET: dockerSocket },
      timeoutMs,
    });

  afterAll(async () => {
    if (dockerEnv !== undefined) await compose(['down', '--remove-orphans']);
  });

  it('is valid, with the settings the guard needs', async () => {
    const { code, stdout, stderr } = await compose(['config']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain(`- ${dockerSocket}:/var/run/docker.sock:ro`);
    expect(stdout).toContain(`- '${socketGid}'`);
    const services = await compose(['config', '--services']);
    expect(services.stdout.trim().split('\n').sort()).toEqual(['docker-proxy', 'traefik', 'whoami']);
  });

  it('brings docker-proxy up healthy, read-only and without capabilities; it answers and refuses; down removes it', async () => {
    const up = await compose(['up', '-d', '--no-build', 'docker-proxy']);
    expect(up.code, up.stderr).toBe(0);
    const name = `${project}_docker-proxy_1`;
    const host = await inspect<{
      ReadonlyRootfs: boolean;
      CapDrop: string[];
      GroupAdd: string[];
      SecurityOpt: string[];
    }>(name, '.HostConfig');
    expect(host).toMatchObject({ ReadonlyRootfs: true, CapDrop: ['ALL'], GroupAdd: [String(socketGid)], SecurityOpt: ['no-new-privileges:true'] });
    const mounts = await inspect<{ Source: string; Destination: string; RW: boolean }[]>(name, '.Mounts');
    expect(mounts).toEqual([expect.objectContaining({ Source: dockerSocket, Destination: '/var/run/docker.sock', RW: false })]);
    const networks = await inspect<Record<string, unknown>>(name, '.NetworkSettings.Networks');
    expect(Object.keys(networks)).toEqual([`${project}_docker-proxy`]);
    const internal = await docker(['network', 'inspect', '--format', '{{.Internal}}', `${project}_docker-proxy`]);
    expect(internal.stdout.trim()).toBe('true');

    await healthy(name);
    const pid = await runningPid(name);
    const ps = await throughGuard(pid, ['ps', '--format', '{{.Names}}']);
    expect(ps.stdout.split('\n')).toContain(name);
    expect(ps.code).toBe(0);
    const run = await throughGuard(pid, ['run', '--rm', 'dsf-busybox:latest', 'true']);
    expect(run.stderr).toMatch(/needs POST=1/);
    expect(run.code).not.toBe(0);

    const down = await compose(['down']);
    expect(down.code, down.stderr).toBe(0);
    const left = await docker(['ps', '-a', '--filter', `label=com.docker.compose.project=${project}`, '--format', '{{.Names}}']);
    expect(left.stdout).toBe('');
    const leftNetworks = await docker(['network', 'ls', '--filter', `label=com.docker.compose.project=${project}`, '--format', '{{.Name}}']);
    expect(leftNetworks.stdout).toBe('');
  }, 180_000);
});
