/**
 * The filter mounted inside Express and Koa, driven by the real docker CLI with a path prefix in
 * DOCKER_HOST (`tcp://127.0.0.1:<port>/docker`), including hijacked `docker exec` and `docker events`.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import express from 'express';
import Koa from 'koa';
import mount from 'koa-mount';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { createSocketFilter, tecnativaPreset, type SocketFilter } from '../../src/index.js';
import { expressSocketFilter, mountUpgrade } from '../../src/adapters/express.js';
import { koaSocketFilter } from '../../src/adapters/koa.js';
import { dockerCli, type DockerCli } from '../helpers/docker-cli.js';
import { serve, type ServedFilter } from '../helpers/filter-server.js';
import { containerState, createContainer, removeContainer } from '../helpers/fixtures.js';
import { httpRequest, rawExchange } from '../helpers/raw-http.js';

const POLICY_ENV = { CONTAINERS: '1', EXEC: '1', POST: '1' };

interface App {
  readonly port: number;
  close(): Promise<void>;
}

async function listen(server: Server): Promise<App> {
  server.requestTimeout = 0;
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

/** What every mounted filter must do with the real docker CLI. */
function behavesLikeDocker(name: string, setup: (filter: SocketFilter) => Promise<{ app: App; prefix: string }>) {
  describe(name, () => {
    const socketPath = inject('dockerSocket');
    let filter: SocketFilter;
    let app: App;
    let docker: DockerCli;
    let container: string;

    beforeAll(async () => {
      filter = createSocketFilter({ policy: tecnativaPreset(POLICY_ENV), socketPath });
      const served = await setup(filter);
      app = served.app;
      docker = dockerCli(`tcp://127.0.0.1:${app.port}${served.prefix}`);
      container = await createContainer(socketPath, ['sleep', '300'], { start: true });
    });

    afterAll(async () => {
      await removeContainer(socketPath, container);
      await app?.close();
      await filter?.close();
      docker?.dispose();
    });

    test('docker ps lists the running container', async () => {
      const { code, stdout, stderr } = await docker.run(['ps', '--no-trunc', '--format', '{{.ID}}']);
      expect(stderr).toBe('');
      expect(code).toBe(0);
      expect(stdout).toContain(container);
    });

    test('docker exec runs through the hijack, with output and exit code', async () => {
      const ok = await docker.run(['exec', container, 'echo', 'hello from exec']);
      expect(ok).toMatchObject({ code: 0, stdout: 'hello from exec\n' });
      const failed = await docker.run(['exec', container, 'sh', '-c', 'exit 3']);
      expect(failed.code).toBe(3);
      const stdin = await docker.run(['exec', '-i', container, 'cat'], { input: 'piped through stdin\n' });
      expect(stdin).toMatchObject({ code: 0, stdout: 'piped through stdin\n' });
    });

    test('docker events streams what happens', async () => {
      const since = Math.floor(Date.now() / 1000) - 1;
      const scratch = await createContainer(socketPath, ['true']);
      await removeContainer(socketPath, scratch);
      const until = Math.floor(Date.now() / 1000) + 1;
      const { code, stdout } = await docker.run([
        'events', '--since', String(since), '--until', String(until),
        '--filter', `container=${scratch}`, '--format', '{{.Action}}',
      ]);
      expect(code).toBe(0);
      expect(stdout.split('\n')).toEqual(expect.arrayContaining(['create', 'destroy']));
    });

    test('denials keep their Docker-style message', async () => {
      const { code, stderr } = await docker.run(['network', 'ls']);
      expect(code).not.toBe(0);
      expect(stderr).toContain('Error response from daemon: docker-socket-filter denied GET /v1.41/networks: it needs NETWORKS=1');
    });

    test('a denied write does not reach dockerd', async () => {
      const { code, stderr } = await docker.run(['volume', 'create', 'dsf-adapter-denied']);
      expect(code).not.toBe(0);
      expect(stderr).toContain('needs VOLUMES=1');
      expect(await containerState(socketPath, container)).toEqual({ exists: true, running: true });
    });
  });
}

behavesLikeDocker('Express, mounted at /docker', async (filter) => {
  const expressApp = express();
  expressApp.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });
  expressApp.use('/docker', expressSocketFilter(filter));
  const server = createServer(expressApp);
  server.on('upgrade', mountUpgrade(filter.upgrade, '/docker'));
  return { app: await listen(server), prefix: '/docker' };
});

behavesLikeDocker('Koa, at the root', async (filter) => {
  const koaApp = new Koa();
  koaApp.use(koaSocketFilter(filter));
  const server = createServer(koaApp.callback());
  server.on('upgrade', filter.upgrade);
  return { app: await listen(server), prefix: '' };
});

behavesLikeDocker('Koa, mounted at /docker with koa-mount', async (filter) => {
  const koaApp = new Koa();
  koaApp.use(mount('/docker', koaSocketFilter(filter)));
  const server = createServer(koaApp.callback());
  server.on('upgrade', mountUpgrade(filter.upgrade, '/docker'));
  return { app: await listen(server), prefix: '/docker' };
});

describe('Express with a body parser mounted before the filter', () => {
  const socketPath = inject('dockerSocket');
  let filter: SocketFilter;
  let app: App;
  let container: string;

  beforeAll(async () => {
    filter = createSocketFilter({ policy: tecnativaPreset(POLICY_ENV), socketPath });
    const expressApp = express();
    expressApp.use(express.json());
    expressApp.use('/docker', filter.handler);
    app = await listen(createServer(expressApp));
    container = await createContainer(socketPath, ['sleep', '300'], { start: true });
  });

  afterAll(async () => {
    await removeContainer(socketPath, container);
    await app?.close();
    await filter?.close();
  });

  test('a request whose body was consumed gets a clear 500, not a hang, and reaches nothing', async () => {
    const body = JSON.stringify({ Cmd: ['touch', '/created-by-exec'], AttachStdout: true });
    const exchange = await rawExchange(
      app.port,
      httpRequest('POST', `/docker/v1.41/containers/${container}/exec`, {
        'Content-Type': 'application/json',
        'Content-Length': String(Buffer.byteLength(body)),
      }, body),
      { timeoutMs: 5_000, until: (text) => text.includes('\r\n\r\n') && text.includes('}') },
    );
    expect(exchange.statuses).toEqual([500]);
    expect(exchange.text).toContain('body parser');
    const execs = await fetchExecCount(socketPath, container);
    expect(execs).toBe(0);
  });

  test('requests without a body still flow', async () => {
    const exchange = await rawExchange(app.port, httpRequest('GET', '/docker/v1.41/containers/json', { Connection: 'close' }), {
      timeoutMs: 5_000,
    });
    expect(exchange.statuses).toEqual([200]);
    expect(exchange.text).toContain(container);
  });
});

describe('mountUpgrade', () => {
  const socketPath = inject('dockerSocket');
  let filter: SocketFilter;
  let app: App;

  beforeAll(async () => {
    filter = createSocketFilter({ policy: tecnativaPreset(POLICY_ENV), socketPath });
    const expressApp = express();
    expressApp.use('/docker', filter.handler);
    const server = createServer(expressApp);
    server.on('upgrade', mountUpgrade(filter.upgrade, '/docker'));
    app = await listen(server);
  });

  afterAll(async () => {
    await app?.close();
    await filter?.close();
  });

  test('an upgrade outside the mount path is answered 404 and never forwarded', async () => {
    const exchange = await rawExchange(
      app.port,
      httpRequest('POST', '/v1.41/containers/x/attach?stream=1', { Connection: 'Upgrade', Upgrade: 'tcp', 'Content-Length': '0' }),
      { timeoutMs: 5_000 },
    );
    expect(exchange.statuses).toEqual([404]);
    expect(exchange.closed).toBe(true);
  });

  test('an invalid mount path throws at creation', () => {
    expect(() => mountUpgrade(filter.upgrade, 'docker')).toThrow(/`mountPath`/);
    expect(() => mountUpgrade(filter.upgrade, '/docker/')).toThrow(/`mountPath`/);
  });
});

async function fetchExecCount(socketPath: string, id: string): Promise<number> {
  const { dockerRequest } = await import('../helpers/dockerd.js');
  const { body } = await dockerRequest(socketPath, 'GET', `/containers/${id}/json`);
  return ((JSON.parse(body) as { ExecIDs: string[] | null }).ExecIDs ?? []).length;
}

describe('two filters in one process, on two listeners', () => {
  const socketPath = inject('dockerSocket');
  let readOnly: ServedFilter;
  let writer: ServedFilter;
  let readOnlyCli: DockerCli;
  let writerCli: DockerCli;

  beforeAll(async () => {
    readOnly = await serve(createSocketFilter({ policy: tecnativaPreset({ VOLUMES: '1' }), socketPath }));
    writer = await serve(createSocketFilter({ policy: tecnativaPreset({ VOLUMES: '1', POST: '1' }), socketPath }));
    readOnlyCli = dockerCli(readOnly.dockerHost);
    writerCli = dockerCli(writer.dockerHost);
  });

  afterAll(async () => {
    await writerCli?.run(['volume', 'rm', '-f', 'dsf-two-filters']);
    await readOnly?.close();
    await writer?.close();
    readOnlyCli?.dispose();
    writerCli?.dispose();
  });

  test('each listener enforces its own policy, interleaved', async () => {
    const denied = await readOnlyCli.run(['volume', 'create', 'dsf-two-filters']);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain('needs POST=1');
    const created = await writerCli.run(['volume', 'create', 'dsf-two-filters']);
    expect(created).toMatchObject({ code: 0, stdout: 'dsf-two-filters\n' });
    const listed = await readOnlyCli.run(['volume', 'ls', '--format', '{{.Name}}']);
    expect(listed.stdout.split('\n')).toContain('dsf-two-filters');
    const removeDenied = await readOnlyCli.run(['volume', 'rm', 'dsf-two-filters']);
    expect(removeDenied.code).not.toBe(0);
    const removed = await writerCli.run(['volume', 'rm', 'dsf-two-filters']);
    expect(removed.code).toBe(0);
  });
});
