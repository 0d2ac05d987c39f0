import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildCli } from '../helpers/cli-build.js';
import { waitForLine } from '../helpers/child-lines.js';
import { dockerCli, type DockerCli } from '../helpers/docker-cli.js';
import { BUSYBOX_IMAGE, createContainer, dockerRequest, removeContainer } from '../helpers/fixtures.js';
import { freePort } from '../helpers/guard.js';
import { loopbackRelay, parsePrometheus } from '../helpers/loopback-relay.js';

// One guard, many clients, as the CLI runs it: a policy file, two client addresses (through
// loopback relays whose upstream sockets bind 127.0.0.2 and 127.0.0.3), two listeners, SIGHUP
// reloads and the metrics listener, with the real docker CLI. dockerd's state is read straight
// from its socket.

let CLI: string;
let disposeCli: (() => Promise<void>) | undefined;
let dockerSocket: string;
let work: string;
const cleanups: (() => Promise<void> | void)[] = [];
const containers = new Set<string>();

beforeAll(async () => {
  dockerSocket = inject('dockerSocket');
  work = await mkdtemp(join(tmpdir(), 'dsf-cfg-'));
  const cli = await buildCli('config');
  CLI = cli.path;
  disposeCli = cli.dispose;
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  for (const id of containers) await removeContainer(dockerSocket, id);
  containers.clear();
});

afterAll(async () => {
  await disposeCli?.();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

/** The policy of these tests: two clients by address on the TCP listener, one by the unix listener. */
function policyFile(options: { readerContainers?: 0 | 1; roImages?: 0 | 1; extra?: string; metricsPort?: number; writerEnv?: string } = {}): string {
  return `
listen:
  - { name: tcp, address: "127.0.0.1:0" }
  - { name: ro, address: "unix:${join(work, 'ro.sock')}" }
metricsListen: "127.0.0.1:${options.metricsPort ?? 0}"
clients:
  - name: reader
    match: { address: ["127.0.0.2"], listener: tcp }
    policy: { preset: tecnativa, env: { CONTAINERS: ${options.readerContainers ?? 1} } }
  - name: writer
    match: { address: ["127.0.0.3/32"], listener: tcp }
    policy:
      extends: { preset: tecnativa, env: { CONTAINERS: 1, POST: 1${options.writerEnv === undefined ? '' : `, ${options.writerEnv}`} } }
      deny: ["* /containers/*/exec"]
  - name: monitor
    match: { listener: ro }
    policy: { preset: tecnativa, env: { IMAGES: ${options.roImages ?? 1} } }
${options.extra ?? ''}`;
}

interface Guard {
  readonly child: ChildProcess;
  readonly port: number;
  readonly metricsPort: number;
  readonly file: string;
  readonly roSocket: string;
  stderr(): string;
  line(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Lines matching `pattern` so far. */
  count(pattern: RegExp): number;
}

async function startGuard(text: string, args: readonly string[] = []): Promise<Guard> {
  const file = join(work, `policy-${Date.now()}-${Math.random().toString(16).slice(2)}.yaml`);
  await writeFile(file, text);
  const child = spawn(process.execPath, [CLI, '--config', file, ...args], {
    // The image's ENV sets every preset variable: with a file they must not count.
    env: { PATH: process.env.PATH, SOCKET_PATH: dockerSocket, CONTAINERS: '1', POST: '1', EXEC: '1' } as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  child.stdout?.resume();
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  });
  const line = (pattern: RegExp, timeoutMs?: number): Promise<string> => waitForLine(child, () => err, pattern, timeoutMs);
  const listening = await line(/msg=listening/);
  return {
    child,
    port: Number(/tcp=127\.0\.0\.1:(\d+)/.exec(listening)?.[1]),
    metricsPort: Number(/metrics=127\.0\.0\.1:(\d+)/.exec(listening)?.[1]),
    file,
    roSocket: join(work, 'ro.sock'),
    stderr: () => err,
    line,
    count: (pattern) => err.split('\n').filter((l) => pattern.test(l)).length,
  };
}

async function relayFrom(address: string, guard: Guard): Promise<string> {
  const relay = await loopbackRelay(address, { host: '127.0.0.1', port: guard.port });
  cleanups.push(() => relay.close());
  return `tcp://127.0.0.1:${relay.port}`;
}

function docker(dockerHost: string): DockerCli {
  const cli = dockerCli(dockerHost);
  cleanups.push(() => cli.dispose());
  return cli;
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

async function containerNamed(name: string): Promise<boolean> {
  const { body } = await dockerRequest(dockerSocket, 'GET', `/containers/json?all=1&filters=${encodeURIComponent(JSON.stringify({ name: [name] }))}`);
  return (JSON.parse(body) as unknown[]).length > 0;
}

async function containerIds(): Promise<string[]> {
  const { body } = await dockerRequest(dockerSocket, 'GET', '/containers/json?all=1');
  return (JSON.parse(body) as { Id: string }[]).map((container) => container.Id).sort();
}

async function reload(guard: Guard, text: string, outcome: RegExp): Promise<string> {
  const before = guard.count(outcome);
  await writeFile(guard.file, text);
  guard.child.kill('SIGHUP');
  const deadline = Date.now() + 10_000;
  while (guard.count(outcome) === before) {
    if (Date.now() > deadline) throw new Error(`no ${outcome} line after SIGHUP; stderr:\n${guard.stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return guard.stderr().split('\n').filter((l) => outcome.test(l)).at(-1) as string;
}

describe('two client addresses get their own policy; an unlisted one is refused', () => {
  it('127.0.0.2 reads, 127.0.0.3 writes, 127.0.0.1 is no client; logs name the client', async () => {
    const guard = await startGuard(policyFile());
    const reader = docker(await relayFrom('127.0.0.2', guard));
    const writer = docker(await relayFrom('127.0.0.3', guard));
    const stranger = docker(`tcp://127.0.0.1:${guard.port}`);

    expect((await reader.run(['ps', '-a', '--format', '{{.ID}}'])).code).toBe(0);
    const refused = await reader.run(['create', '--name', 'dsf-cfg-reader', '--network', 'none', BUSYBOX_IMAGE, 'true']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('needs POST=1');
    expect(await containerNamed('dsf-cfg-reader')).toBe(false);

    const created = await writer.run(['create', '--name', 'dsf-cfg-writer', '--network', 'none', BUSYBOX_IMAGE, 'true']);
    expect(created.code, created.stderr).toBe(0);
    containers.add(created.stdout.trim());
    expect(await containerNamed('dsf-cfg-writer')).toBe(true);
    // The writer's own deny rule: no exec, even with POST.
    const exec = await writer.run(['exec', 'dsf-cfg-writer', 'true']);
    expect(exec.code).not.toBe(0);
    expect(exec.stderr).toMatch(/denied|is denied by/);

    // A header naming a client's address changes nothing: only the connection says who it is.
    const forged = await new Promise<number>((resolve, reject) => {
      request({ host: '127.0.0.1', port: guard.port, path: '/v1.41/containers/json', agent: false, headers: { 'X-Forwarded-For': '127.0.0.3', 'X-Real-IP': '127.0.0.3', Forwarded: 'for=127.0.0.3' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on('error', reject)
        .end();
    });
    expect(forged).toBe(403);

    const ps = await stranger.run(['ps']);
    expect(ps.code).not.toBe(0);
    expect(ps.stderr).toMatch(/no client matches 127\.0\.0\.1 \(listener tcp\)/);

    expect(await guard.line(/rule=POST .*client=reader address=127\.0\.0\.2 listener=tcp/)).toContain('decision=denied');
    // The docker CLI's first request is `HEAD /_ping`: refused too, since 127.0.0.1 is no client.
    expect(await guard.line(/method=HEAD path=\/_ping .*rule=clients/)).toMatch(
      /reason="docker-socket-filter denied HEAD \/_ping: no client matches 127\.0\.0\.1 \(listener tcp\)" address=127\.0\.0\.1 listener=tcp$/,
    );
  });

  it('the unix listener is its own client: images there, containers refused; and not the reverse over TCP', async () => {
    const guard = await startGuard(policyFile());
    const monitor = docker(`unix://${guard.roSocket}`);
    const reader = docker(await relayFrom('127.0.0.2', guard));

    expect((await monitor.run(['images', '--format', '{{.Repository}}'])).stdout).toContain('dsf-busybox');
    const ps = await monitor.run(['ps']);
    expect(ps.code).not.toBe(0);
    expect(ps.stderr).toContain('CONTAINERS=1');
    const images = await reader.run(['images']);
    expect(images.code).not.toBe(0);
    expect(images.stderr).toContain('IMAGES=1');
    expect(await guard.line(/client=monitor listener=ro/)).toContain('decision=denied');
  });
});

describe('PROTECT_HOST in the file', () => {
  it('refuses docker run --privileged and a bind above SOCKET_PATH (dockerd unchanged); a plain docker run works', async () => {
    // The guard's environment sets SOCKET_PATH, not the file: the socket must still be protected.
    const socketDirectory = dirname(dockerSocket);
    const guard = await startGuard(policyFile({ writerEnv: `PROTECT_HOST: 1, ALLOW_BIND_MOUNTS: [${dirname(socketDirectory)}]` }));
    const writer = docker(await relayFrom('127.0.0.3', guard));
    const before = await containerIds();
    // Whatever this test gets created is removed, also when an assertion fails first.
    const track = async (): Promise<string[]> => {
      const created = (await containerIds()).filter((id) => !before.includes(id));
      for (const id of created) containers.add(id);
      return created;
    };

    const privileged = await writer.run(['run', '--privileged', '--name', 'dsf-cfg-privileged', '--network', 'none', BUSYBOX_IMAGE, 'true']);
    expect(privileged.code).not.toBe(0);
    // The writer's policy extends the preset (definePolicy): its reasons name the option.
    expect(privileged.stderr).toContain('denied POST /v1.41/containers/create: HostConfig.Privileged is true; it needs protectHost.allowPrivileged: true');
    // Allowed by ALLOW_BIND_MOUNTS, but the directory holds dockerd's socket.
    const exposing = await writer.run(['create', '--name', 'dsf-cfg-socket-dir', '--network', 'none', '-v', `${socketDirectory}:/d`, BUSYBOX_IMAGE, 'true']);
    await track();
    expect(exposing.code).not.toBe(0);
    expect(exposing.stderr).toContain(`"${socketDirectory}", which exposes the Docker daemon`);
    expect(await containerIds()).toEqual(before);
    expect(await guard.line(/rule=ALLOW_PRIVILEGED .*client=writer/)).toContain('decision=denied');

    const plain = await writer.run(['run', '--name', 'dsf-cfg-plain', '--network', 'none', BUSYBOX_IMAGE, 'echo', 'ran']);
    const created = await track();
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toBe('ran\n');
    expect(created).toHaveLength(1);
    expect(await containerNamed('dsf-cfg-plain')).toBe(true);
  });
});

describe('SIGHUP reloads the file', () => {
  it('during a `docker events` stream: the stream keeps flowing, new requests get the new policy', async () => {
    const guard = await startGuard(policyFile());
    const dockerHost = await relayFrom('127.0.0.2', guard);
    const reader = docker(dockerHost);
    const events = spawn('docker', ['events', '--format', '{{.Type}} {{.Action}} {{.Actor.Attributes.name}}'], {
      env: { PATH: process.env.PATH, DOCKER_HOST: dockerHost, DOCKER_CONFIG: reader.configDir, HOME: reader.configDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanups.push(async () => {
      if (events.exitCode === null && events.signalCode === null) {
        events.kill('SIGKILL');
        await once(events, 'exit');
      }
    });
    let seen = '';
    events.stdout.setEncoding('utf8').on('data', (chunk: string) => (seen += chunk));
    const sawCreate = async (name: string): Promise<void> => {
      const deadline = Date.now() + 20_000;
      let id: string | undefined;
      while (!seen.includes(`container create ${name}`)) {
        if (Date.now() > deadline) throw new Error(`docker events did not show ${name}: ${seen}`);
        // Until the stream is established an event can be missed: make another.
        if (id !== undefined) await removeContainer(dockerSocket, id);
        id = await createContainer(dockerSocket, ['true'], { name });
        containers.add(id);
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
    };
    await sawCreate('dsf-cfg-before');
    const during = parsePrometheus((await get(guard.metricsPort, '/metrics')).body);
    expect(during.find((sample) => sample.name === 'docker_socket_filter_open_requests' && sample.labels.listener === 'tcp')?.value).toBeGreaterThanOrEqual(1);

    const applied = await reload(guard, policyFile({ readerContainers: 0 }), /msg=reloaded/);
    expect(applied).toMatch(/level=info msg=reloaded config=\S+ clients=reader,writer,monitor/);
    const ps = await reader.run(['ps']);
    expect(ps.code).not.toBe(0);
    expect(ps.stderr).toContain('needs CONTAINERS=1');

    // The stream was decided before the reload and keeps its decision.
    await sawCreate('dsf-cfg-after');
    expect(events.exitCode).toBeNull();
  });

  it('a bad file is refused with its message in the log; the old policy stays; the metrics say so', async () => {
    const guard = await startGuard(policyFile());
    const reader = docker(await relayFrom('127.0.0.2', guard));

    const refused = await reload(
      guard,
      policyFile({ readerContainers: 0 }).replace('deny: ["* /containers/*/exec"]', 'deny: ["PATCH /containers/*/exec"]'),
      /msg="reload refused"/,
    );
    expect(refused).toMatch(/level=err msg="reload refused" config=\S+ error=".*clients\[1\]\.policy\.deny\[0\]: \\"PATCH\\" is not a method/);
    expect((await reader.run(['ps'])).code).toBe(0);

    const changedListen = await reload(guard, policyFile().replace('127.0.0.1:0"', '127.0.0.1:1"'), /msg="reload refused"/);
    expect(changedListen).toContain('`listen` changed');
    expect((await reader.run(['ps'])).code).toBe(0);

    const metrics = parsePrometheus((await get(guard.metricsPort, '/metrics')).body);
    const value = (name: string, labels: Record<string, string> = {}): number | undefined =>
      metrics.find((sample) => sample.name === name && Object.entries(labels).every(([k, v]) => sample.labels[k] === v))?.value;
    expect(value('docker_socket_filter_reloads_total', { result: 'refused' })).toBe(2);
    expect(value('docker_socket_filter_reloads_total', { result: 'applied' })).toBe(0);
    expect(value('docker_socket_filter_config_last_reload_successful')).toBe(0);
  });
});

describe('metrics', () => {
  it('are scraped from their own listener and parse; /healthz answers; --healthcheck probes it; nothing of it is forwarded', async () => {
    // A fixed port, as a deployment has: --healthcheck reads it from the file.
    const guard = await startGuard(policyFile({ metricsPort: await freePort() }));
    const reader = docker(await relayFrom('127.0.0.2', guard));
    expect((await reader.run(['ps'])).code).toBe(0);
    expect((await reader.run(['rm', '-f', 'nothing-here'])).code).not.toBe(0);

    const scrape = await get(guard.metricsPort, '/metrics');
    expect(scrape.status).toBe(200);
    const samples = parsePrometheus(scrape.body);
    const find = (name: string, labels: Record<string, string>) =>
      samples.find((sample) => sample.name === name && Object.entries(labels).every(([k, v]) => sample.labels[k] === v));
    expect(find('docker_socket_filter_requests_total', { client: 'reader', decision: 'allowed', rule: 'CONTAINERS', status: '200' })?.value).toBeGreaterThanOrEqual(1);
    expect(find('docker_socket_filter_requests_total', { client: 'reader', decision: 'denied', rule: 'POST', status: '403' })?.value).toBe(1);
    expect(find('docker_socket_filter_request_duration_seconds_count', { client: 'reader', decision: 'allowed' })?.value).toBeGreaterThanOrEqual(1);
    expect(find('docker_socket_filter_connections_total', { listener: 'tcp' })?.value).toBeGreaterThanOrEqual(1);
    expect(find('docker_socket_filter_connections', { listener: 'ro' })?.value).toBe(0);
    expect(find('docker_socket_filter_open_requests', { listener: 'tcp' })).toBeDefined();
    expect(find('docker_socket_filter_upstream_failures_total', { client: 'reader' })).toBeUndefined();
    expect(find('process_resident_memory_bytes', {})?.value).toBeGreaterThan(0);
    // The filter's bounds, read at the scrape: the reader's connection to dockerd is idle in the pool.
    expect(find('docker_socket_filter_upstream_connections', { state: 'open' })?.value).toBeGreaterThanOrEqual(1);
    expect(find('docker_socket_filter_upstream_connections', { state: 'hijacked' })?.value).toBe(0);
    expect(find('docker_socket_filter_upstream_waiting', {})?.value).toBe(0);
    expect(find('docker_socket_filter_held_bytes', {})?.value).toBe(0);
    expect(find('docker_socket_filter_held_bytes_max', {})?.value).toBe(16 * 1024 * 1024);
    expect(find('docker_socket_filter_held_refused_total', {})?.value).toBe(0);
    // Label values are bounded: no path is ever a label.
    expect(samples.some((sample) => Object.values(sample.labels).some((value) => value.includes('/')))).toBe(false);

    expect(await get(guard.metricsPort, '/healthz')).toEqual({ status: 200, body: 'ok\n' });
    expect((await get(guard.metricsPort, '/v1.41/containers/json')).status).toBe(404);
    // And the Docker API port has no /metrics: it is decided like any request (no client: refused).
    expect((await get(guard.port, '/metrics')).status).toBe(403);

    const health = spawn(process.execPath, [CLI, '--healthcheck', '--config', guard.file], {
      env: { PATH: process.env.PATH, SOCKET_PATH: dockerSocket } as NodeJS.ProcessEnv,
      stdio: 'ignore',
    });
    const [code] = (await once(health, 'exit')) as [number | null];
    expect(code).toBe(0);
  });

  it('check --client/--listener and --print-policy read the same file', async () => {
    const file = join(work, 'commands.yaml');
    await writeFile(file, policyFile());
    const run = async (args: readonly string[]) => {
      const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH } as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
      child.stderr.resume();
      const [code] = (await once(child, 'close')) as [number | null];
      return { code, out };
    };
    expect(await run(['check', '--config', file, '--client', '127.0.0.3', '--listener', 'tcp', 'POST', '/v1.41/containers/create'])).toEqual({
      code: 0,
      out: 'allowed 200 rule=CONTAINERS client=writer\nPOST /v1.41/containers/create is allowed by CONTAINERS\n',
    });
    expect(await run(['check', '--config', file, '--client', '127.0.0.9', '--listener', 'tcp', 'GET', '/_ping'])).toEqual({
      code: 1,
      out: 'denied 403 rule=clients\ndocker-socket-filter denied GET /_ping: no client matches 127.0.0.9 (listener tcp)\n',
    });
    // Without --listener no client that names one matches: the answer says so.
    expect(await run(['check', '--config', file, '--client', '127.0.0.2', 'GET', '/_ping'])).toEqual({
      code: 1,
      out: 'denied 403 rule=clients\ndocker-socket-filter denied GET /_ping: no client matches 127.0.0.2\n(no --listener given: clients reader, writer, monitor match only on a listener; add --listener NAME)\n',
    });
    const json = await run(['check', '--json', '--config', file, '--listener', 'ro', 'GET', '/v1.41/images/json']);
    expect(JSON.parse(json.out)).toMatchObject({ allowed: true, rule: 'IMAGES', client: 'monitor' });
    const tables = await run(['--print-policy', '--config', file]);
    expect(tables.code).toBe(0);
    expect(tables.out).toContain('client: reader (address 127.0.0.2 and listener tcp)\npolicy: tecnativa\n');
    expect(tables.out).toContain('client: writer (address 127.0.0.3/32 and listener tcp)\npolicy: tecnativa+custom\n');
    expect(tables.out).toContain('client: monitor (listener ro)\n');
    expect(tables.out).toMatch(/Any other client is refused \(403, rule clients\)\.\n$/);
  });

  it('docker-socket-filter validate FILE exits 0 for a good file and 2, naming the path, for a bad one', async () => {
    const good = join(work, 'good.yaml');
    const bad = join(work, 'bad.yaml');
    await writeFile(good, policyFile());
    await writeFile(bad, policyFile({ extra: 'listenOn: ":2375"' }));
    const run = async (file: string) => {
      const child = spawn(process.execPath, [CLI, 'validate', file], { env: { PATH: process.env.PATH } as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
      const [code] = (await once(child, 'close')) as [number | null];
      return { code, out, err };
    };
    expect(await run(good)).toEqual({ code: 0, out: `${good}: valid: clients reader, writer, monitor; listen tcp, ro\n`, err: '' });
    expect(await run(bad)).toEqual({ code: 2, out: '', err: `docker-socket-filter: ${bad}: listenOn: is not a known key (known here: $schema, listen, clients, policy, socketPath, minApiVersion, logLevel, metricsListen, maxConnections, maxUpstreamConnections, maxHeldBytes, shutdownGrace, socketMode)\n` });
  });
});
