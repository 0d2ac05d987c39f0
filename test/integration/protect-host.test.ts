import { request as httpRequest } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createSocketFilter, tecnativaPreset } from '../../src/index.js';
import { dockerCli, type CliResult, type DockerCli } from '../helpers/docker-cli.js';
import { BUSYBOX_IMAGE, dockerRequest } from '../helpers/dockerd.js';
import { createContainer, removeContainer } from '../helpers/fixtures.js';
import { serve, type ServedFilter } from '../helpers/filter-server.js';

// The tutorials' Portainer/Watchtower grant (CONTAINERS=1 POST=1 and friends) with PROTECT_HOST=1.
// VOLUMES stays 0 in the main guard, so a create naming a missing volume must not make it.
const LABEL = 'dsf.protect-host';
const socketPath = inject('dockerSocket');

interface Guard {
  readonly served: ServedFilter;
  readonly docker: DockerCli;
  readonly port: number;
}

const guards: Guard[] = [];
async function guard(env: Record<string, string>): Promise<Guard> {
  const policy = tecnativaPreset({ CONTAINERS: '1', IMAGES: '1', NETWORKS: '1', EXEC: '1', POST: '1', PROTECT_HOST: '1', SOCKET_PATH: socketPath, ...env });
  const served = await serve(createSocketFilter({ policy, socketPath }));
  const result = { served, docker: dockerCli(served.dockerHost), port: served.port };
  guards.push(result);
  return result;
}

/** What dockerd holds that a refused request could have changed: containers, volumes, services. */
async function state(): Promise<{ containers: string[]; volumes: string[]; services: string[] }> {
  const containers = JSON.parse((await dockerRequest(socketPath, 'GET', '/containers/json?all=1')).body) as { Names: string[] }[];
  const volumes = JSON.parse((await dockerRequest(socketPath, 'GET', '/volumes')).body) as { Volumes: { Name: string }[] | null };
  const services = await dockerRequest(socketPath, 'GET', '/services');
  return {
    containers: containers.flatMap((c) => c.Names).sort(),
    volumes: (volumes.Volumes ?? []).map((v) => v.Name).sort(),
    services: services.status === 200 ? (JSON.parse(services.body) as { Spec: { Name: string } }[]).map((s) => s.Spec.Name).sort() : [],
  };
}

async function removeByLabel(): Promise<void> {
  const { body } = await dockerRequest(socketPath, 'GET', `/containers/json?all=1&filters=${encodeURIComponent(JSON.stringify({ label: [LABEL] }))}`);
  for (const { Id } of JSON.parse(body) as { Id: string }[]) await removeContainer(socketPath, Id);
}

function expectRefused(result: CliResult, variable: string): void {
  expect(result.code, result.stderr).not.toBe(0);
  expect(result.stderr).toContain('Error response from daemon: docker-socket-filter denied POST');
  expect(result.stderr).toContain(variable);
}

/** One raw request to a guard: method, target, body bytes, headers; chunked when `chunked`. */
function raw(
  port: number,
  target: string,
  body: string | Buffer,
  options: { contentType?: string | null; chunked?: boolean; method?: string } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    const headers: Record<string, string> = {};
    if (options.contentType !== null) headers['Content-Type'] = options.contentType ?? 'application/json';
    if (options.chunked !== true) headers['Content-Length'] = String(bytes.length);
    const req = httpRequest({ host: '127.0.0.1', port, method: options.method ?? 'POST', path: target, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    if (options.chunked === true) {
      // Several chunks, split inside a key: the guard must judge the whole body.
      const third = Math.max(1, Math.floor(bytes.length / 3));
      req.write(bytes.subarray(0, third));
      req.write(bytes.subarray(third, 2 * third));
      req.end(bytes.subarray(2 * third));
    } else req.end(bytes);
  });
}

const createBody = (hostConfig: object, extra: object = {}) =>
  JSON.stringify({ Image: BUSYBOX_IMAGE, Cmd: ['true'], Labels: { [LABEL]: '1' }, ...extra, HostConfig: { NetworkMode: 'none', ...hostConfig } });

let main: Guard;
let allowed: string;
let cgroupV1 = false;
let victim: string;

beforeAll(async () => {
  allowed = await mkdtemp(join(tmpdir(), 'dsf-allowed-'));
  await writeFile(join(allowed, 'file'), 'inside\n');
  main = await guard({ ALLOW_BIND_MOUNTS: allowed });
  const info = JSON.parse((await dockerRequest(socketPath, 'GET', '/info')).body) as { CgroupVersion: string };
  cgroupV1 = info.CgroupVersion === '1';
  victim = await createContainer(socketPath, ['sleep', '300'], { start: true, name: 'dsf-ph-victim' });
});

afterAll(async () => {
  await removeByLabel();
  await removeContainer(socketPath, victim);
  for (const name of ['dsf-ph-data', 'dsf-ph-etc', 'dsf-ph-etc2', 'dsf-ph-nfs']) await dockerRequest(socketPath, 'DELETE', `/volumes/${name}?force=1`);
  for (const g of guards) {
    await g.served.close();
    g.docker.dispose();
  }
  await rm(allowed, { recursive: true, force: true });
});

// Each escape with the docker CLI flag, refused with its variable, and dockerd's state unchanged.
const CLI_ESCAPES: ReadonlyArray<readonly [string, readonly string[], string]> = [
  ['--privileged', ['--privileged'], 'ALLOW_PRIVILEGED'],
  ['-v /:/host', ['-v', '/:/host'], 'ALLOW_BIND_MOUNTS'],
  ['-v /etc:/etc:ro', ['-v', '/etc:/etc:ro'], 'ALLOW_BIND_MOUNTS'],
  ['-v of the Docker socket', ['-v', `${socketPath}:/var/run/docker.sock`], 'ALLOW_BIND_MOUNTS'],
  ['-v /var/run/docker.sock', ['-v', '/var/run/docker.sock:/var/run/docker.sock'], 'ALLOW_BIND_MOUNTS'],
  ['-v /run', ['-v', '/run:/r'], 'ALLOW_BIND_MOUNTS'],
  ['--mount type=bind,src=/', ['--mount', 'type=bind,src=/,dst=/host'], 'ALLOW_BIND_MOUNTS'],
  ['--mount with a local volume binding /etc', ['--mount', 'type=volume,src=dsf-ph-etc2,dst=/x,volume-driver=local,volume-opt=type=none,volume-opt=o=bind,volume-opt=device=/etc'], 'ALLOW_BIND_MOUNTS'],
  ['--pid=host', ['--pid=host'], 'ALLOW_HOST_NAMESPACES'],
  ['--pid=container:<victim>', ['--pid=container:dsf-ph-victim'], 'ALLOW_HOST_NAMESPACES'],
  ['--ipc=host', ['--ipc=host'], 'ALLOW_HOST_NAMESPACES'],
  ['--uts=host', ['--uts=host'], 'ALLOW_HOST_NAMESPACES'],
  ['--userns=host', ['--userns=host'], 'ALLOW_HOST_NAMESPACES'],
  ['--network=host', ['--network=host'], 'ALLOW_HOST_NAMESPACES'],
  ['--cap-add=SYS_ADMIN', ['--cap-add=SYS_ADMIN'], 'ALLOW_CAPABILITIES'],
  ['--cap-add=ALL', ['--cap-add=ALL'], 'ALLOW_CAPABILITIES'],
  ['--device', ['--device=/dev/null:/dev/x'], 'ALLOW_DEVICES'],
  ['--device-cgroup-rule', ['--device-cgroup-rule=a *:* rwm'], 'ALLOW_DEVICES'],
  ['--security-opt seccomp=unconfined', ['--security-opt', 'seccomp=unconfined'], 'ALLOW_UNCONFINED'],
  ['--security-opt apparmor=unconfined', ['--security-opt', 'apparmor=unconfined'], 'ALLOW_UNCONFINED'],
  ['--security-opt label=disable', ['--security-opt', 'label=disable'], 'ALLOW_UNCONFINED'],
  ['--security-opt systempaths=unconfined', ['--security-opt', 'systempaths=unconfined'], 'ALLOW_UNCONFINED'],
  ['--cgroup-parent', ['--cgroup-parent=/dsf-escape'], 'ALLOW_UNCONFINED'],
  ['--volumes-from', ['--volumes-from=dsf-ph-victim'], 'ALLOW_VOLUMES_FROM'],
];

describe('PROTECT_HOST=1: every escape is refused, and nothing changes on dockerd', () => {
  it.each(CLI_ESCAPES)('docker create %s', async (_name, flags, variable) => {
    const before = await state();
    const result = await main.docker.run(['create', '--network', 'none', '--label', LABEL, ...flags, BUSYBOX_IMAGE, 'true']);
    expectRefused(result, variable);
    expect(await state()).toEqual(before);
  });

  it('--cgroupns=host is what dockerd does anyway on a cgroup v1 host, and an escape on cgroup v2', async () => {
    const result = await main.docker.run(['create', '--network', 'none', '--label', LABEL, '--cgroupns=host', BUSYBOX_IMAGE, 'true']);
    if (cgroupV1) expect(result.code, result.stderr).toBe(0);
    else expectRefused(result, 'ALLOW_HOST_NAMESPACES');
    await removeByLabel();
  });

  it('docker exec --privileged', async () => {
    const result = await main.docker.run(['exec', '--privileged', 'dsf-ph-victim', 'true']);
    expectRefused(result, 'ALLOW_PRIVILEGED');
  });

  it('docker volume create with local bind options (VOLUMES=1)', async () => {
    const withVolumes = await guard({ VOLUMES: '1' });
    const before = await state();
    const result = await withVolumes.docker.run(['volume', 'create', '-o', 'type=none', '-o', 'o=bind', '-o', 'device=/etc', 'dsf-ph-etc']);
    expectRefused(result, 'ALLOW_BIND_MOUNTS');
    expect(await state()).toEqual(before);
  });

  it('docker build --network host, docker import of a URL', async () => {
    const builder = await guard({ BUILD: '1' });
    const context = await mkdtemp(join(tmpdir(), 'dsf-ctx-'));
    try {
      await writeFile(join(context, 'Dockerfile'), `FROM ${BUSYBOX_IMAGE}\nRUN true\n`);
      const build = await builder.docker.run(['build', '--network', 'host', '-q', context], { env: { DOCKER_BUILDKIT: '0' } });
      expectRefused(build, 'ALLOW_HOST_NETWORK_BUILD');
    } finally {
      await rm(context, { recursive: true, force: true });
    }
    expectRefused(await main.docker.run(['import', 'http://127.0.0.1:9/x.tar', 'dsf-ph-import']), 'ALLOW_REMOTE_FETCH');
  });

  it('docker plugin install', async () => {
    const plugins = await guard({ PLUGINS: '1' });
    expectRefused(await plugins.docker.run(['plugin', 'install', '--grant-all-permissions', 'example.invalid/evil:latest']), 'ALLOW_PLUGIN_INSTALL');
  });
});

// The same escapes as raw JSON: spellings dockerd reads alike, duplicates, framings, content types.
const RAW_ESCAPES: ReadonlyArray<readonly [string, string, number]> = [
  ['HostConfig.Privileged', createBody({ Privileged: true }), 403],
  ['lower-case privileged', createBody({ privileged: true }), 403],
  ['upper-case HOSTCONFIG', JSON.stringify({ Image: BUSYBOX_IMAGE, Labels: { [LABEL]: '1' }, HOSTCONFIG: { Privileged: true, NetworkMode: 'none' } }), 403],
  ['top-level Privileged (20.10 applies it)', JSON.stringify({ Image: BUSYBOX_IMAGE, Labels: { [LABEL]: '1' }, Privileged: true, NetworkMode: 'none' }), 403],
  ['top-level Binds', JSON.stringify({ Image: BUSYBOX_IMAGE, Labels: { [LABEL]: '1' }, Binds: ['/:/host'], NetworkMode: 'none' }), 403],
  ['binds with a KELVIN SIGN-free long-s key', `{"Image":"${BUSYBOX_IMAGE}","HostConfig":{"Bind\u017F":["/:/host"],"NetworkMode":"none"}}`, 403],
  ['Privileged false then true (dockerd keeps the last)', `{"Image":"${BUSYBOX_IMAGE}","HostConfig":{"Privileged":false,"Privileged":true,"NetworkMode":"none"}}`, 400],
  ['Privileged false then privileged true', `{"Image":"${BUSYBOX_IMAGE}","HostConfig":{"Privileged":false,"privileged":true,"NetworkMode":"none"}}`, 400],
  ['HostConfig twice', `{"Image":"${BUSYBOX_IMAGE}","HostConfig":{"NetworkMode":"none"},"hostconfig":{"Privileged":true,"NetworkMode":"none"}}`, 400],
  ['a second JSON value after the first', `{"Image":"${BUSYBOX_IMAGE}","HostConfig":{"NetworkMode":"none"}} {"HostConfig":{"Privileged":true}}`, 400],
  ['Binds through ..', createBody({ Binds: ['/tmp/../etc:/x'] }), 403],
  ['Binds of /var/run/../run/docker.sock', createBody({ Binds: ['/var/run/../run/docker.sock:/s'] }), 403],
  ['Binds of //', createBody({ Binds: ['//:/host'] }), 403],
  ['Mounts bind in lower case', createBody({ mounts: [{ type: 'bind', source: '/', target: '/host' }] }), 403],
  ['a host sysctl', createBody({ Sysctls: { 'kernel.shm_next_id': '1', 'kernel.panic': '1' } }), 403],
  ['MaskedPaths emptied', createBody({ MaskedPaths: [] }), 403],
  ['CapAdd as one string', createBody({ CapAdd: 'SYS_ADMIN' }), 403],
  ['a tmpfs with a bind option', createBody({ Tmpfs: { '/x': 'rbind' } }), 403],
  ['a nested HostConfig', createBody({ HostConfig: { Privileged: true } }), 400],
  ['HostConfig null next to a top-level Privileged', JSON.stringify({ Image: BUSYBOX_IMAGE, Labels: { [LABEL]: '1' }, HostConfig: null, Privileged: true, NetworkMode: 'none' }), 403],
];

describe('PROTECT_HOST=1: raw JSON escapes, in every framing and accepted Content-Type', () => {
  it("dockerd 20.10 reads top-level HostConfig fields when HostConfig is absent (why the guard judges them)", async () => {
    const created = await dockerRequest(socketPath, 'POST', '/containers/create?name=dsf-ph-toplevel', {
      Image: BUSYBOX_IMAGE, Labels: { [LABEL]: '1' }, NetworkMode: 'none', Privileged: true,
    });
    expect(created.status).toBe(201);
    const inspect = JSON.parse((await dockerRequest(socketPath, 'GET', '/containers/dsf-ph-toplevel/json')).body);
    expect(inspect.HostConfig.Privileged).toBe(true);
    await removeByLabel();
  });

  it.each(RAW_ESCAPES)('%s', async (_name, text, status) => {
    const before = await state();
    for (const options of [{}, { chunked: true }, { contentType: 'Application/JSON; charset=utf-8' }]) {
      const answer = await raw(main.port, '/v1.41/containers/create', text, options);
      expect(answer.status, `${JSON.stringify(options)} ${answer.body}`).toBe(status);
      expect(answer.body).toContain('docker-socket-filter denied POST /v1.41/containers/create');
    }
    expect(await state()).toEqual(before);
  });

  it('a named volume that does not exist is not created while VOLUMES is not granted', async () => {
    const before = await state();
    const answer = await raw(main.port, '/v1.41/containers/create', createBody({ Binds: ['dsf-ph-data:/data'] }));
    expect(answer.status).toBe(403);
    expect(answer.body).toContain('the volume \\"dsf-ph-data\\" does not exist, and creating it needs VOLUMES=1');
    const mount = await raw(main.port, '/v1.41/containers/create', createBody({ Mounts: [{ Type: 'volume', Source: 'dsf-ph-data', Target: '/d' }] }));
    expect(mount.status).toBe(403);
    expect(await state()).toEqual(before);
    // Once it exists, the same create passes.
    expect((await dockerRequest(socketPath, 'POST', '/volumes/create', { Name: 'dsf-ph-data' })).status).toBe(201);
    const again = await raw(main.port, '/v1.41/containers/create', createBody({ Binds: ['dsf-ph-data:/data'] }));
    expect(again.status, again.body).toBe(201);
    await removeByLabel();
  });

  it('the host network named by its ID or an ID prefix is refused once dockerd says it is the host network', async () => {
    const networks = JSON.parse((await dockerRequest(socketPath, 'GET', '/networks')).body) as { Name: string; Id: string }[];
    const host = networks.find((n) => n.Name === 'host')?.Id as string;
    const before = await state();
    for (const name of [host, host.slice(0, 12)]) {
      for (const body of [createBody({ NetworkMode: name }), createBody({}, { NetworkingConfig: { EndpointsConfig: { [name]: {} } } })]) {
        const answer = await raw(main.port, '/v1.41/containers/create', body);
        expect(answer.status, answer.body).toBe(403);
        expect(answer.body).toContain("is the host's network; it needs ALLOW_HOST_NAMESPACES=1");
      }
    }
    expect(await state()).toEqual(before);
  });

  it.each([
    ['text/plain', 'text/plain'],
    ['no Content-Type', null],
  ])('a body under %s is refused (dockerd would not read it as JSON)', async (_name, contentType) => {
    const answer = await raw(main.port, '/v1.41/containers/create', createBody({}), { contentType });
    expect(answer.status).toBe(400);
  });

  it('a body over 1 MiB gets 413 and the connection is closed; nothing is created', async () => {
    const before = await state();
    const big = createBody({}, { Env: [`X=${'x'.repeat(1024 * 1024)}`] });
    for (const chunked of [false, true]) {
      const answer = await raw(main.port, '/v1.41/containers/create', big, { chunked }).catch((error: Error) => ({ status: 0, body: error.message }));
      // The guard answers before reading the rest: the client may see the 413 or a reset.
      expect([0, 413]).toContain(answer.status);
    }
    expect(await state()).toEqual(before);
  });

  it('the body forwarded is the body judged: a chunked allowed create reaches dockerd whole', async () => {
    const answer = await raw(main.port, '/v1.41/containers/create?name=dsf-ph-chunked', createBody({ Binds: [`${allowed}:/a:ro`] }, { Env: ['A=1'] }), { chunked: true });
    expect(answer.status, answer.body).toBe(201);
    const inspect = JSON.parse((await dockerRequest(socketPath, 'GET', '/containers/dsf-ph-chunked/json')).body);
    expect(inspect.HostConfig.Binds).toEqual([`${allowed}:/a:ro`]);
    expect(inspect.Config.Env).toContain('A=1');
    await removeByLabel();
  });
});

describe('each allow variable re-opens its check', () => {
  it.each([
    ['ALLOW_PRIVILEGED', { ALLOW_PRIVILEGED: '1' }, ['--privileged']],
    ['ALLOW_HOST_NAMESPACES', { ALLOW_HOST_NAMESPACES: '1' }, ['--pid=host', '--ipc=host', '--uts=host']],
    ['ALLOW_CAPABILITIES', { ALLOW_CAPABILITIES: 'SYS_ADMIN,NET_ADMIN' }, ['--cap-add=SYS_ADMIN', '--cap-add=net_admin']],
    ['ALLOW_CAPABILITIES=ALL', { ALLOW_CAPABILITIES: 'ALL' }, ['--cap-add=ALL']],
    ['ALLOW_DEVICES', { ALLOW_DEVICES: '1' }, ['--device=/dev/null:/dev/x']],
    ['ALLOW_UNCONFINED', { ALLOW_UNCONFINED: '1' }, ['--security-opt', 'seccomp=unconfined', '--security-opt', 'apparmor=unconfined', '--cgroup-parent=/dsf-ok']],
    ['ALLOW_BIND_MOUNTS=/etc', { ALLOW_BIND_MOUNTS: '/etc' }, ['-v', '/etc:/etc:ro']],
    ['ALLOW_VOLUMES_FROM', { ALLOW_VOLUMES_FROM: '1' }, ['--volumes-from=dsf-ph-victim']],
  ])('%s', async (_name, env, flags) => {
    const g = await guard(env);
    const result = await g.docker.run(['create', '--network', 'none', '--label', LABEL, ...flags, BUSYBOX_IMAGE, 'true']);
    expect(result.code, result.stderr).toBe(0);
    const id = result.stdout.trim();
    expect((await dockerRequest(socketPath, 'GET', `/containers/${id}/json`)).status).toBe(200);
    await removeContainer(socketPath, id);
  });

  it('ALLOW_PRIVILEGED re-opens exec --privileged', async () => {
    const g = await guard({ ALLOW_PRIVILEGED: '1' });
    const result = await g.docker.run(['exec', '--privileged', 'dsf-ph-victim', 'true']);
    expect(result.stderr).not.toContain('docker-socket-filter');
  });
});

describe('PROTECT_HOST=1: ordinary workloads run', () => {
  it('docker run with ports, env, labels, restart policy, healthcheck, limits, an allowed bind and a named volume', async () => {
    expect((await dockerRequest(socketPath, 'POST', '/volumes/create', { Name: 'dsf-ph-data' })).status).toBe(201);
    const result = await main.docker.run([
      'run', '--rm', '--network', 'none', '--label', LABEL, '-e', 'A=1', '--label', 'app=x', '--restart', 'no',
      '--health-cmd', 'true', '--memory', '64m', '--cpus', '0.5', '--pids-limit', '100', '--cap-add', 'CHOWN',
      '--tmpfs', '/run:size=8m', '-v', `${allowed}:/a:ro`, '-v', 'dsf-ph-data:/data', '--mount', `type=bind,src=${allowed}/file,dst=/f,readonly`,
      BUSYBOX_IMAGE, 'sh', '-c', 'cat /a/file /f && echo $A',
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('inside\ninside\n1\n');
  });

  it('a Watchtower-style recreate from the container’s own inspect output', async () => {
    const created = await dockerRequest(socketPath, 'POST', '/containers/create?name=dsf-ph-watch', {
      Image: BUSYBOX_IMAGE, Cmd: ['sleep', '30'], Labels: { [LABEL]: '1' }, Env: ['A=1'],
      HostConfig: { NetworkMode: 'none', Binds: [`${allowed}:/a`], RestartPolicy: { Name: 'unless-stopped' }, Memory: 64 << 20 },
    });
    expect(created.status).toBe(201);
    const inspect = JSON.parse((await dockerRequest(socketPath, 'GET', '/containers/dsf-ph-watch/json')).body);
    // What Watchtower sends: the container's Config and HostConfig, and its network endpoints.
    const body = {
      ...inspect.Config,
      HostConfig: inspect.HostConfig,
      NetworkingConfig: { EndpointsConfig: inspect.NetworkSettings.Networks },
    };
    await removeContainer(socketPath, 'dsf-ph-watch');
    const answer = await raw(main.port, '/v1.41/containers/create?name=dsf-ph-watch', JSON.stringify(body));
    expect(answer.status, answer.body).toBe(201);
    await removeByLabel();
  });

  it('dockerode creates, starts and removes a container with an allowed bind', async () => {
    const docker = new Docker({ host: '127.0.0.1', port: main.port });
    const container = await docker.createContainer({
      Image: BUSYBOX_IMAGE, Cmd: ['cat', '/a/file'], Labels: { [LABEL]: '1' },
      HostConfig: { NetworkMode: 'none', Binds: [`${allowed}:/a:ro`], RestartPolicy: { Name: 'no' } },
    });
    await container.start();
    await container.wait();
    await container.remove({ force: true });
    await expect(
      docker.createContainer({ Image: BUSYBOX_IMAGE, Labels: { [LABEL]: '1' }, HostConfig: { NetworkMode: 'none', Privileged: true } }),
    ).rejects.toMatchObject({ statusCode: 403 });
  });

  it('docker-compose 1.29 up and down with a bind under ALLOW_BIND_MOUNTS and a named volume (VOLUMES=1)', async () => {
    const compose = await guard({ VOLUMES: '1', INFO: '1', ALLOW_BIND_MOUNTS: allowed });
    const project = await mkdtemp(join(tmpdir(), 'dsf-compose-'));
    try {
      await writeFile(
        join(project, 'docker-compose.yml'),
        [
          "version: '3.7'",
          'services:',
          '  app:',
          `    image: ${BUSYBOX_IMAGE}`,
          "    command: ['sh', '-c', 'cat /a/file']",
          '    network_mode: none',
          `    labels: ['${LABEL}=1']`,
          '    environment: [A=1]',
          '    restart: "no"',
          `    volumes: ['${allowed}:/a:ro', 'data:/data']`,
          'volumes:',
          '  data: {}',
          '',
        ].join('\n'),
      );
      const run = (args: string[]) =>
        new Promise<CliResult>((resolve) => {
          import('node:child_process').then(({ execFile }) =>
            execFile('docker-compose', ['-p', 'dsfph', ...args], { cwd: project, env: { ...process.env, DOCKER_HOST: compose.served.dockerHost }, timeout: 60_000 }, (error, stdout, stderr) =>
              resolve({ code: error === null ? 0 : ((error as { code?: number }).code ?? 1), stdout, stderr }),
            ),
          );
        });
      const up = await run(['up', '-d']);
      expect(up.code, up.stderr).toBe(0);
      const down = await run(['down', '-v']);
      expect(down.code, down.stderr).toBe(0);
    } finally {
      await rm(project, { recursive: true, force: true });
      await removeByLabel();
    }
  });
});

describe('services, on a single-node swarm of the private dockerd', () => {
  let swarm = false;
  let services: Guard;
  beforeAll(async () => {
    // A port of its own: another daemon on this machine may hold swarm's default 2377.
    const port = 20000 + Math.floor(Math.random() * 20000);
    const init = await dockerRequest(socketPath, 'POST', '/swarm/init', { ListenAddr: `127.0.0.1:${port}`, AdvertiseAddr: `127.0.0.1:${port}` });
    swarm = init.status === 200;
    if (!swarm) throw new Error(`swarm init failed: ${init.status} ${init.body}`);
    services = await guard({ SERVICES: '1', ALLOW_BIND_MOUNTS: allowed });
  });
  afterAll(async () => {
    await dockerRequest(socketPath, 'DELETE', '/services/dsf-ph-svc');
    if (swarm) await dockerRequest(socketPath, 'POST', '/swarm/leave?force=1');
  });

  it.each([
    ['--mount type=bind,src=/', ['--mount', 'type=bind,src=/,dst=/host'], 'ALLOW_BIND_MOUNTS'],
    ['--cap-add SYS_ADMIN', ['--cap-add', 'SYS_ADMIN'], 'ALLOW_CAPABILITIES'],
    ['--network host', ['--network', 'host'], 'ALLOW_HOST_NAMESPACES'],
  ])('docker service create %s is refused and no service appears', async (_name, flags, variable) => {
    const before = await state();
    const result = await services.docker.run(['service', 'create', '--detach', '--name', 'dsf-ph-svc', ...flags, BUSYBOX_IMAGE, 'sleep', '30']);
    // Whatever happens, no service is left for the next case.
    await dockerRequest(socketPath, 'DELETE', '/services/dsf-ph-svc');
    expectRefused(result, variable);
    expect(await state()).toEqual(before);
  });

  it('a raw service spec with a lower-case bind mount is refused; an ordinary one is created', async () => {
    const before = await state();
    const evil = { Name: 'dsf-ph-svc', TaskTemplate: { containerspec: { Image: BUSYBOX_IMAGE, mounts: [{ type: 'bind', source: '/', target: '/h' }] } } };
    expect((await raw(services.port, '/v1.41/services/create', JSON.stringify(evil))).status).toBe(403);
    expect(await state()).toEqual(before);
    const fine = { Name: 'dsf-ph-svc', TaskTemplate: { ContainerSpec: { Image: BUSYBOX_IMAGE, Command: ['sleep', '30'], Mounts: [{ Type: 'bind', Source: allowed, Target: '/a' }] } } };
    const created = await raw(services.port, '/v1.41/services/create', JSON.stringify(fine));
    expect(created.status, created.body).toBe(201);
    expect((await state()).services).toContain('dsf-ph-svc');
    await dockerRequest(socketPath, 'DELETE', '/services/dsf-ph-svc');
  });
});
