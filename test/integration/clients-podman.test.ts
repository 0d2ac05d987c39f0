import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSocketFilter, linuxserverPreset } from '../../src/index.js';
import { dockerRequest } from '../helpers/dockerd.js';
import { dockerCli, type DockerCli } from '../helpers/docker-cli.js';
import { serve, type ServedFilter } from '../helpers/filter-server.js';
import { startPodman, PODMAN_IMAGE, type Podman } from '../helpers/podman.js';
import { httpRequest, rawExchange } from '../helpers/raw-http.js';

// Podman 4.3's API service behind the linuxserver preset, driven by the clients people point at it:
// the docker CLI (Podman's Docker-compatible API) and `podman --remote` (its libpod API). Every
// client run is compared with the same run straight at Podman's socket.

// What a docker CLI user and a `podman --remote` user need for exec and attached runs. `podman run`
// asks `POST /libpod/images/pull?policy=missing` first, hence LIBPOD_IMAGES (a pull, under POST=1).
const CLIENT_ENV = { CONTAINERS: '1', EXEC: '1', POST: '1', LIBPOD_CONTAINERS: '1', LIBPOD_EXEC: '1', LIBPOD_IMAGES: '1' };

// A client that hangs is a failure to report, not a test that blocks the suite.
const RUN_TIMEOUT_MS = 20_000;

let podman: Podman;
let guard: ServedFilter;
let viaGuard: DockerCli;
let direct: DockerCli;
let guardUrl: string;
let directUrl: string;

beforeAll(async () => {
  podman = await startPodman();
  guard = await serve(createSocketFilter({ policy: linuxserverPreset(CLIENT_ENV), socketPath: podman.socketPath }));
  viaGuard = dockerCli(guard.dockerHost);
  direct = dockerCli(`unix://${podman.socketPath}`);
  guardUrl = `tcp://127.0.0.1:${guard.port}`;
  directUrl = `unix://${podman.socketPath}`;
  const started = await podman.cli(['run', '-d', '--name', 'dsf-victim', PODMAN_IMAGE, 'sleep', '600']);
  if (started.code !== 0) throw new Error(`podman run failed: ${started.stderr}`);
});

afterAll(async () => {
  await guard?.close();
  viaGuard?.dispose();
  direct?.dispose();
  await podman?.stop();
});

/** Outcome of a client run as a comparable record; a hang shows as `timedOut`. */
const outcome = (result: { code: number | null; stdout: string; stderr: string; timedOut?: boolean }) => ({
  code: result.code,
  stdout: result.stdout,
  stderr: result.stderr,
  timedOut: result.timedOut ?? false,
});

describe('the docker CLI against Podman through the guard', () => {
  const docker = async (cli: DockerCli, args: string[], input?: string) => {
    try {
      return outcome(await cli.run(args, { ...(input === undefined ? {} : { input }), timeoutMs: RUN_TIMEOUT_MS }));
    } catch (error) {
      return { code: null, stdout: '', stderr: String(error), timedOut: true };
    }
  };

  it.each([
    ['docker exec', ['exec', 'dsf-victim', 'sh', '-c', 'echo out; echo err >&2; exit 3'], undefined],
    ['docker exec -i', ['exec', '-i', 'dsf-victim', 'cat'], 'through stdin\n'],
    ['docker run (attached)', ['run', '--rm', '--network', 'none', PODMAN_IMAGE, 'echo', 'attached run'], undefined],
    ['docker run -i (attached, stdin)', ['run', '--rm', '-i', '--network', 'none', PODMAN_IMAGE, 'cat'], 'run stdin\n'],
  ] as const)('%s behaves as it does straight at Podman', async (_name, args, input) => {
    const control = await docker(direct, [...args], input);
    // The control must itself be a success: a broken Podman setup is not a pass.
    expect(control.timedOut).toBe(false);
    expect(control.stdout).not.toBe('');
    expect(await docker(viaGuard, [...args], input)).toEqual(control);
  });
});

describe('podman --remote through the guard', () => {
  it.each([
    ['podman run -i', ['run', '-i', '--rm', PODMAN_IMAGE, 'cat'], 'podman stdin\n'],
    ['podman exec', ['exec', 'dsf-victim', 'sh', '-c', 'echo out; echo err >&2; exit 3'], undefined],
    ['podman exec -i', ['exec', '-i', 'dsf-victim', 'cat'], 'exec stdin\n'],
    // By ID: nothing to escape in the path.
    ['podman image inspect (by ID)', ['image', 'inspect', '--format', '{{.RepoTags}}', 'IMAGE_ID'], undefined],
  ] as const)('%s behaves as it does straight at Podman', async (_name, template, input) => {
    const args = await Promise.all(template.map(async (arg) => (arg === 'IMAGE_ID' ? await imageId() : arg)));
    const control = outcome(await podman.remote(directUrl, args, { input, timeoutMs: RUN_TIMEOUT_MS }));
    expect(control.timedOut).toBe(false);
    expect(control.stdout).not.toBe('');
    expect(outcome(await podman.remote(guardUrl, args, { input, timeoutMs: RUN_TIMEOUT_MS }))).toEqual(control);
  });

  // A known limit (docs/clients.md): Podman's client escapes path values (url.PathEscape), so an
  // image name with a registry travels as `localhost%2Fdsf-busybox`. The guard refuses an encoded
  // `/` everywhere: dockerd decodes it into a path separator (`/containers/a%2Fb/start` would act on
  // a link alias), and the guard cannot tell which daemon it serves.
  it('podman image inspect by a name with a registry is refused with 400 naming the encoded slash', async () => {
    const args = ['image', 'inspect', '--format', '{{.RepoTags}}', PODMAN_IMAGE];
    const control = outcome(await podman.remote(directUrl, args, { timeoutMs: RUN_TIMEOUT_MS }));
    expect(control.stdout).not.toBe('');
    const through = await podman.remote(guardUrl, args, { timeoutMs: RUN_TIMEOUT_MS });
    expect(through.code).not.toBe(0);
    expect(through.stderr).toContain('encoded slash');
  });
});

async function imageId(): Promise<string> {
  const images = JSON.parse((await dockerRequest(podman.socketPath, 'GET', '/v4.0.0/libpod/images/json')).body) as { Id: string }[];
  return (images[0] as { Id: string }).Id.slice(0, 12);
}

describe('what Podman answers a hijack through the guard', () => {
  it('an exec start with Upgrade headers gets 101 from Podman, as it does direct (Podman hijacks with 101 only for `Connection: Upgrade`)', async () => {
    const exec = async (): Promise<string> => {
      const created = await dockerRequest(podman.socketPath, 'POST', '/v1.41/containers/dsf-victim/exec', {
        Cmd: ['echo', 'raw'],
        AttachStdout: true,
      });
      return (JSON.parse(created.body) as { Id: string }).Id;
    };
    const body = JSON.stringify({ Detach: false, Tty: false });
    const start = (id: string): string =>
      httpRequest(
        'POST',
        `/v1.41/exec/${id}/start`,
        { Connection: 'Upgrade', Upgrade: 'tcp', 'Content-Type': 'application/json', 'Content-Length': String(body.length) },
        body,
      );
    const through = await rawExchange(guard.port, start(await exec()), { timeoutMs: 10_000 });
    expect(through.text.split('\r\n')[0]).toBe('HTTP/1.1 101 UPGRADED');
    expect(through.text).toContain('raw\n');
  });
});

// The libpod API under the linuxserver preset's variables, against Podman's real answers: an allowed
// route reaches Podman (its own status, never the guard's 403); a denied one gets the guard's 403
// and Podman's state (containers, pods, volumes, images) is unchanged.
describe('the libpod endpoint matrix', () => {
  type Row = readonly [method: string, path: string, expected: 'allow' | 'deny' | 'refuse', status?: number];
  const V = '/v4.0.0/libpod';
  const READ_ONLY: readonly Row[] = [
    ['GET', `${V}/_ping`, 'allow', 200],
    ['GET', '/libpod/_ping', 'allow', 200],
    ['GET', `${V}/version`, 'allow', 200],
    ['GET', `${V}/containers/json?all=true`, 'allow', 200],
    ['GET', `${V}/containers/dsf-victim/json`, 'allow', 200],
    ['GET', `${V}/containers/dsf-victim/exists`, 'allow', 204],
    ['GET', `${V}/containers/dsf-victim/stats?stream=false`, 'allow', 200],
    ['GET', `${V}/images/json`, 'allow', 200],
    ['GET', `${V}/images/${PODMAN_IMAGE}/exists`, 'allow', 204],
    // How `podman --remote` spells an image name in a path: url.PathEscape, so `/` is `%2F`,
    // which the guard refuses (see above).
    ['GET', `${V}/images/${encodeURIComponent(PODMAN_IMAGE)}/exists`, 'refuse'],
    ['GET', `${V}/images/${encodeURIComponent(PODMAN_IMAGE)}/json`, 'refuse'],
    ['GET', `${V}/containers/dsf-victim/logs?stdout=true`, 'deny'],
    ['GET', `${V}/containers/dsf-victim/top`, 'deny'],
    ['GET', `${V}/containers/dsf-victim/changes`, 'deny'],
    ['GET', `${V}/containers/dsf-victim/export`, 'deny'],
    ['GET', `${V}/containers/dsf-victim/archive?path=/etc`, 'deny'],
    ['GET', `${V}/pods/json`, 'deny'],
    ['GET', `${V}/volumes/json`, 'deny'],
    ['GET', `${V}/networks/json`, 'deny'],
    ['GET', `${V}/secrets/json`, 'deny'],
    ['GET', `${V}/info`, 'deny'],
    ['GET', `${V}/system/df`, 'deny'],
    ['GET', `${V}/events?stream=false`, 'deny'],
    ['GET', `${V}/generate/dsf-victim/kube`, 'deny'],
    ['GET', `${V}/exec/dsf-no-such-exec/json`, 'deny'],
    ['POST', `${V}/containers/dsf-victim/stop?timeout=0`, 'deny'],
    ['POST', `${V}/containers/dsf-victim/kill`, 'deny'],
    ['POST', `${V}/containers/dsf-victim/pause`, 'deny'],
    ['POST', `${V}/containers/dsf-victim/exec`, 'deny'],
    ['POST', `${V}/containers/dsf-victim/attach?stream=true&stdout=true`, 'deny'],
    ['DELETE', `${V}/containers/dsf-victim?force=true`, 'deny'],
    ['POST', `${V}/containers/create`, 'deny'],
    ['POST', `${V}/pods/create`, 'deny'],
    ['POST', `${V}/volumes/create`, 'deny'],
    ['POST', `${V}/play/kube`, 'deny'],
    ['POST', `${V}/images/pull?reference=dsf-denied:latest`, 'deny'],
    ['DELETE', `${V}/images/${PODMAN_IMAGE}?force=true`, 'deny'],
    ['POST', `${V}/system/prune?all=true&volumes=true`, 'deny'],
    ['POST', `${V}/containers/prune`, 'deny'],
  ];
  const BODIES: Record<string, unknown> = {
    [`${V}/containers/create`]: { image: PODMAN_IMAGE, name: 'dsf-libpod-created', command: ['true'] },
    [`${V}/pods/create`]: { name: 'dsf-libpod-pod' },
    [`${V}/volumes/create`]: { Name: 'dsf-libpod-vol' },
    [`${V}/containers/dsf-victim/exec`]: { Cmd: ['true'] },
  };

  /** Podman's state as its own API reports it, straight on its socket. */
  const state = async (): Promise<string> => {
    const get = async (path: string) => JSON.parse((await dockerRequest(podman.socketPath, 'GET', path)).body) as Record<string, unknown>[];
    const containers = (await get(`${V}/containers/json?all=true`)).map((c) => `${String(c.Names)}:${String(c.State)}`).sort();
    const pods = (await get(`${V}/pods/json`)).map((p) => String(p.Name)).sort();
    const volumes = (await get(`${V}/volumes/json`)).map((v) => String(v.Name)).sort();
    const images = (await get(`${V}/images/json`)).map((i) => String(i.Id)).sort();
    return JSON.stringify({ containers, pods, volumes, images });
  };

  /** Checks one row; returns what went wrong, or `null`, so one run lists every mismatch. */
  const check = async (served: ServedFilter, [method, path, expected, status]: Row): Promise<string | null> => {
    const before = await state();
    const body = BODIES[path.split('?')[0] as string];
    const payload = body === undefined ? '' : JSON.stringify(body);
    const headers: Record<string, string> = { Connection: 'close' };
    if (method !== 'GET') headers['Content-Length'] = String(Buffer.byteLength(payload));
    if (payload !== '') headers['Content-Type'] = 'application/json';
    const answer = await rawExchange(served.port, httpRequest(method, path, headers, payload), { timeoutMs: 15_000 });
    const got = answer.statuses[0];
    const bodyAt = answer.text.indexOf('\r\n\r\n') + 4;
    const body403 = answer.text.slice(bodyAt, bodyAt + 300);
    if (expected === 'refuse') {
      // A target the guard cannot read one way only: its 400, before any rule, and nothing changed.
      if (got !== 400 || !answer.text.includes('docker-socket-filter refused the request-target')) {
        return `${method} ${path}: expected the guard's 400, got ${got} ${body403}`;
      }
      if ((await state()) !== before) return `${method} ${path}: refused, yet Podman's state changed`;
      return null;
    }
    if (expected === 'deny') {
      if (got !== 403 || !/"message":"[^"]*needs [A-Z_]+=1/.test(answer.text)) return `${method} ${path}: expected the guard's 403, got ${got} ${body403}`;
      if ((await state()) !== before) return `${method} ${path}: denied, yet Podman's state changed`;
      return null;
    }
    // Podman's answer, relayed: the status it gives straight on its socket.
    const directStatus = (await dockerRequest(podman.socketPath, method, path)).status;
    if (directStatus !== status) return `${method} ${path}: Podman itself answers ${directStatus}, the row expects ${status}`;
    if (got !== status) return `${method} ${path}: expected Podman's ${status} through the guard, got ${got} ${body403}`;
    return null;
  };
  const checkAll = async (served: ServedFilter, rows: readonly Row[]): Promise<string[]> => {
    const failures: string[] = [];
    for (const row of rows) {
      const failure = await check(served, row);
      if (failure !== null) failures.push(failure);
    }
    return failures;
  };

  it('with LIBPOD_CONTAINERS=1 LIBPOD_IMAGES=1 (read-only)', async () => {
    const served = await serve(
      createSocketFilter({ policy: linuxserverPreset({ LIBPOD_CONTAINERS: '1', LIBPOD_IMAGES: '1' }), socketPath: podman.socketPath }),
    );
    try {
      expect(await checkAll(served, READ_ONLY)).toEqual([]);
    } finally {
      await served.close();
    }
  });

  it('with LIBPOD_CONTAINERS=1 LIBPOD_ALLOW_PAUSE=1 LIBPOD_ALLOW_UNPAUSE=1 ALLOW_LOGS=1: those actions and logs, nothing else', async () => {
    const env = { LIBPOD_CONTAINERS: '1', LIBPOD_ALLOW_PAUSE: '1', LIBPOD_ALLOW_UNPAUSE: '1', ALLOW_LOGS: '1' };
    const served = await serve(createSocketFilter({ policy: linuxserverPreset(env), socketPath: podman.socketPath }));
    const running = async () =>
      (JSON.parse((await dockerRequest(podman.socketPath, 'GET', `${V}/containers/dsf-victim/json`)).body) as { State: { Status: string } }).State
        .Status;
    try {
      expect(
        await checkAll(served, [
          ['GET', `${V}/containers/dsf-victim/logs?stdout=true`, 'allow', 200],
          ['POST', `${V}/containers/dsf-victim/stop?timeout=0`, 'deny'],
          ['POST', `${V}/containers/dsf-victim/restart`, 'deny'],
          ['POST', `${V}/pods/dsf-no-pod/pause`, 'deny'],
          ['GET', `${V}/containers/dsf-victim/top`, 'deny'],
        ]),
      ).toEqual([]);
      const pause = await rawExchange(served.port, httpRequest('POST', `${V}/containers/dsf-victim/pause`, { 'Content-Length': '0', Connection: 'close' }));
      expect(pause.statuses).toEqual([204]);
      expect(await running()).toBe('paused');
      const unpause = await rawExchange(served.port, httpRequest('POST', `${V}/containers/dsf-victim/unpause`, { 'Content-Length': '0', Connection: 'close' }));
      expect(unpause.statuses).toEqual([204]);
      expect(await running()).toBe('running');
    } finally {
      await served.close();
    }
  });

  it('with POST=1 LIBPOD_VOLUMES=1: volumes are created and removed, pods are not', async () => {
    const served = await serve(createSocketFilter({ policy: linuxserverPreset({ POST: '1', LIBPOD_VOLUMES: '1' }), socketPath: podman.socketPath }));
    try {
      expect(
        await checkAll(served, [
          ['POST', `${V}/pods/create`, 'deny'],
          ['POST', `${V}/containers/create`, 'deny'],
        ]),
      ).toEqual([]);
      const body = JSON.stringify({ Name: 'dsf-libpod-vol' });
      const created = await rawExchange(
        served.port,
        httpRequest('POST', `${V}/volumes/create`, { 'Content-Type': 'application/json', 'Content-Length': String(body.length), Connection: 'close' }, body),
      );
      expect(created.statuses).toEqual([201]);
      expect((await dockerRequest(podman.socketPath, 'GET', `${V}/volumes/dsf-libpod-vol/exists`)).status).toBe(204);
      const removed = await rawExchange(served.port, httpRequest('DELETE', `${V}/volumes/dsf-libpod-vol`, { Connection: 'close' }));
      expect(removed.statuses).toEqual([204]);
      expect((await dockerRequest(podman.socketPath, 'GET', `${V}/volumes/dsf-libpod-vol/exists`)).status).toBe(404);
    } finally {
      await served.close();
    }
  });
});
