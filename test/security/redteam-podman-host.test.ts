/**
 * Attack class: PROTECT_HOST in front of Podman's Docker-compatible API (linuxserver preset).
 *
 * Podman 4.3 does not act on a create body the way dockerd does: it turns it into its own
 * command-line options and parses those with Podman's grammar (src/policy/host/podman.ts). Each body
 * below passed the guard's dockerd reading and gave the Podman container the host: `/` or `/etc`
 * bound read-write, the host's network namespace, writes landing in a host directory, a directory or
 * a file made on the host. Judged by Podman's state (the containers it holds and their mounts) and
 * by the host's file system, never by the status alone.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSocketFilter, linuxserverPreset } from '../../src/index.js';
import { dockerRequest } from '../helpers/dockerd.js';
import { serve, type ServedFilter } from '../helpers/filter-server.js';
import { startPodman, PODMAN_IMAGE, type Podman } from '../helpers/podman.js';
import { ask } from '../helpers/read.js';

const LABEL = 'dsf.redteam';

let podman: Podman;
let guard: ServedFilter;
let work: string;
let allowed: string;
let outside: string;

beforeAll(async () => {
  work = await mkdtemp('/tmp/dsf-rt-');
  allowed = join(work, 'allowed');
  outside = join(work, 'outside');
  await mkdir(allowed);
  await mkdir(join(outside, 'upper'), { recursive: true });
  await mkdir(join(outside, 'work'));
  podman = await startPodman();
  // The tutorials' Portainer grant on the linuxserver preset, with the host checks on. VOLUMES=1:
  // named volumes are the client's to make, so a source read as a volume name is not looked up.
  const policy = linuxserverPreset({ CONTAINERS: '1', POST: '1', VOLUMES: '1', PROTECT_HOST: '1', ALLOW_BIND_MOUNTS: allowed });
  guard = await serve(createSocketFilter({ policy, socketPath: podman.socketPath }));
});

afterAll(async () => {
  await guard?.close();
  await podman?.stop();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

interface Held {
  readonly id: string;
  readonly sources: readonly string[];
  readonly networkMode: string;
  readonly logPath: string;
}

/** The containers Podman holds that this file made, with what they mount from the host. */
async function held(): Promise<Held[]> {
  const filter = encodeURIComponent(JSON.stringify({ label: [LABEL] }));
  const listed = JSON.parse((await dockerRequest(podman.socketPath, 'GET', `/containers/json?all=1&filters=${filter}`)).body) as { Id: string }[];
  const out: Held[] = [];
  for (const { Id } of listed) {
    const inspected = JSON.parse((await dockerRequest(podman.socketPath, 'GET', `/containers/${Id}/json`)).body) as {
      Mounts?: { Source?: string }[];
      HostConfig?: { NetworkMode?: string; LogConfig?: { Config?: Record<string, string> } };
      LogPath?: string;
    };
    out.push({
      id: Id,
      sources: (inspected.Mounts ?? []).map((mount) => mount.Source ?? ''),
      networkMode: inspected.HostConfig?.NetworkMode ?? '',
      logPath: inspected.LogPath ?? '',
    });
  }
  return out;
}

async function removeHeld(): Promise<void> {
  for (const { id } of await held()) await dockerRequest(podman.socketPath, 'DELETE', `/containers/${id}?force=1&v=1`);
}

const create = (hostConfig: object, extra: object = {}) =>
  ask({ port: guard.port }, 'POST', '/v1.41/containers/create', {
    body: JSON.stringify({ Image: PODMAN_IMAGE, Cmd: ['sleep', '60'], Labels: { [LABEL]: '1' }, ...extra, HostConfig: hostConfig }),
  });

describe('PROTECT_HOST=1 in front of Podman 4.3 (linuxserver preset)', () => {
  it('an ordinary create with an allowed bind reaches Podman (the guard is not simply refusing everything)', async () => {
    const answer = await create({ Binds: [`${allowed}:/data:ro`] });
    expect(answer.status, answer.body).toBe(201);
    const containers = await held();
    expect(containers).toHaveLength(1);
    expect(containers[0]?.sources).toEqual([allowed]);
    await removeHeld();
  });

  // Each would have given the container the host (measured without the checks of podman.ts).
  it.each<[string, () => object, () => object]>([
    ['a Binds source starting with "." (a host path for Podman: `/` from any working directory)', () => ({ Binds: ['../../../../../../../../:/host'] }), () => ({})],
    ['a Binds source "./" (the service working directory)', () => ({ Binds: ['./:/host'] }), () => ({})],
    ['an overlay bind whose upperdir is a host directory', () => ({ Binds: [`${allowed}:/x:O,upperdir=${outside}/upper,workdir=${outside}/work`] }), () => ({})],
    ['a Volumes key read by Podman as a -v spec', () => ({}), () => ({ Volumes: { [`${outside}:/host`]: {} } })],
    ['a Mounts Target that adds `source=/` to the mount string', () => ({ Mounts: [{ Type: 'bind', Source: allowed, Target: '/x,source=/' }] }), () => ({})],
    ['a Mounts Consistency that adds a source', () => ({ Mounts: [{ Type: 'bind', Source: allowed, Target: '/y', Consistency: `cached,source=${outside}` }] }), () => ({})],
    ['a Mounts bind propagation that adds a source', () => ({ Mounts: [{ Type: 'bind', Source: allowed, Target: '/z', BindOptions: { Propagation: 'rprivate,source=/' } }] }), () => ({})],
    ['NetworkMode ns:/proc/self/ns/net (the host network namespace)', () => ({ NetworkMode: 'ns:/proc/self/ns/net' }), () => ({})],
  ])('%s is refused and Podman holds no container', async (_name, hostConfig, extra) => {
    const answer = await create(hostConfig(), extra());
    expect([400, 403], answer.body).toContain(answer.status);
    expect(answer.body).toContain('docker-socket-filter denied POST');
    expect(await held()).toEqual([]);
    expect(existsSync(join(outside, 'upper', 'x'))).toBe(false);
    await removeHeld();
  });

  it('absolute sources of tmpfs, image and volume mounts are judged as host paths: Podman makes them on the host', async () => {
    for (const type of ['tmpfs', 'image', 'volume']) {
      const made = join(outside, `made-by-${type}`);
      const answer = await create({ Mounts: [{ Type: type, Source: made, Target: '/t' }] });
      expect(answer.status, `${type}: ${answer.body}`).toBe(403);
      expect(existsSync(made), `${type} made ${made} on the host`).toBe(false);
    }
    expect(await held()).toEqual([]);
    await removeHeld();
  });

  it('a log path outside the allowed directories is refused: Podman appends the container output to it', async () => {
    const file = join(outside, 'written-by-podman');
    for (const type of ['k8s-file', 'json-file']) {
      const answer = await create({ LogConfig: { Type: type, Config: { path: file } } });
      expect(answer.status, `${type}: ${answer.body}`).toBe(403);
    }
    expect(await held()).toEqual([]);
    expect(existsSync(file)).toBe(false);
    await removeHeld();
  });
});
