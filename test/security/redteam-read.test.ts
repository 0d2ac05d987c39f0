/**
 * Attack class: a reading client (`CONTAINERS=1`, `REDACT_ENV=1`, `VISIBLE_LABELS=…`) learning what
 * the read settings hide, through answer shapes and options the rewrite did not know. Judged on the
 * real dockerd's answers through the guard: a hidden container's ID or name, or an environment value,
 * must not appear anywhere in what the client gets.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { rawExchange } from '../helpers/raw-http.js';
import { createSocketFilter, tecnativaPreset, type EnvLike } from '../../src/index.js';
import { dockerRequest } from '../helpers/dockerd.js';
import { removeContainer } from '../helpers/fixtures.js';
import { serve, type ServedFilter } from '../helpers/filter-server.js';
import { ask, createLabelled } from '../helpers/read.js';

const socketPath = inject('dockerSocket');
const REQUIREMENT = 'traefik.enable=true';
const SECRET = 'redteam-secret-value';

let visible: string;
let hidden: string;
const served: ServedFilter[] = [];

async function guard(env: EnvLike): Promise<ServedFilter> {
  const filter = await serve(createSocketFilter({ policy: tecnativaPreset(env), socketPath }));
  served.push(filter);
  return filter;
}

beforeAll(async () => {
  visible = await createLabelled(socketPath, { name: 'rt-read-visible', labels: { 'traefik.enable': 'true' }, env: [`TOKEN=${SECRET}`] });
  hidden = await createLabelled(socketPath, { name: 'rt-read-hidden', env: [`TOKEN=${SECRET}`] });
});

afterAll(async () => {
  for (const filter of served) await filter.close();
  for (const id of [visible, hidden]) if (id !== undefined) await removeContainer(socketPath, id);
});

describe('VISIBLE_LABELS: a network list does not name hidden containers', () => {
  // dockerd answers a list asked with API < 1.28 in detail: every network with its containers.
  it.each(['/v1.24/networks', '/v1.27/networks', '/v1.27/networks?filters=%7B%22name%22%3A%7B%22none%22%3Atrue%7D%7D', '/v1.41/networks', '/networks'])(
    'GET %s',
    async (path) => {
      const direct = await ask({ socketPath }, 'GET', path);
      const filter = await guard({ CONTAINERS: '1', NETWORKS: '1', VISIBLE_LABELS: REQUIREMENT });
      const answer = await ask({ port: filter.port }, 'GET', path);
      expect(answer.status).toBe(200);
      // The networks themselves are listed as dockerd lists them.
      const names = (text: string) => (JSON.parse(text) as { Name: string }[]).map((network) => network.Name).sort();
      expect(names(answer.body)).toEqual(names(direct.body));
      expect(answer.body).not.toContain(hidden);
      expect(answer.body).not.toContain('rt-read-hidden');
    },
  );
});

describe('VISIBLE_LABELS on keys dockerd writes into container events', () => {
  // A hidden container's `resize` event carries `width` and `height`, its `rename` event `oldName`:
  // a requirement on such a key would let the events through (dockerd's filter reads attributes).
  it.each(['width', 'height', 'oldName', 'comment', 'imageID', 'imageRef', 'execDuration'])('VISIBLE_LABELS=%s is refused at start-up', (key) => {
    expect(() => tecnativaPreset({ CONTAINERS: '1', VISIBLE_LABELS: key })).toThrow(/dockerd also writes into events/);
  });

  it('what the check is for: a hidden container resized and renamed shows up under VISIBLE_LABELS=width,oldName only without it', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    const created = await dockerRequest(socketPath, 'POST', '/containers/create?name=rt-read-tty', {
      Image: 'dsf-busybox:latest',
      Cmd: ['sleep', '60'],
      Tty: true,
      HostConfig: { NetworkMode: 'none' },
    });
    const id = (JSON.parse(created.body) as { Id: string }).Id;
    try {
      expect((await dockerRequest(socketPath, 'POST', `/containers/${id}/start`)).status).toBe(204);
      expect((await dockerRequest(socketPath, 'POST', `/containers/${id}/resize?h=20&w=30`)).status).toBe(200);
      expect((await dockerRequest(socketPath, 'POST', `/containers/${id}/rename?name=rt-read-tty2`)).status).toBe(204);
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const until = Math.floor(Date.now() / 1000);
      // dockerd itself, with the label filter the guard would have merged: the events are there.
      const filters = encodeURIComponent(JSON.stringify({ label: { width: true } }));
      const direct = await ask({ socketPath }, 'GET', `/v1.41/events?since=${since}&until=${until}&filters=${filters}`);
      expect(direct.body).toContain(id);
      // The guard with an ordinary requirement delivers none of them.
      const filter = await guard({ CONTAINERS: '1', VISIBLE_LABELS: REQUIREMENT });
      const answer = await ask({ port: filter.port }, 'GET', `/v1.41/events?since=${since}&until=${until}`);
      expect(answer.status).toBe(200);
      expect(answer.body).not.toContain(id);
    } finally {
      await removeContainer(socketPath, id);
    }
  });
});

describe('REDACT_ENV: top does not print environment values', () => {
  it.each(['aux%20e', 'e', '-axe', '-e%20-x', '-ef%20-x', '-ef%20e', '-o%20pid,args%20e', 'eww'])('GET /containers/<id>/top?ps_args=%s is refused (ps prints the environment)', async (args) => {
    const path = `/v1.41/containers/${visible}/top?ps_args=${args}`;
    // What dockerd gives without the guard: the value.
    expect((await ask({ socketPath }, 'GET', path)).body).toContain(SECRET);
    const filter = await guard({ CONTAINERS: '1', REDACT_ENV: '1' });
    const answer = await ask({ port: filter.port }, 'GET', path);
    expect(answer.status).toBe(403);
    expect(answer.body).not.toContain(SECRET);
    expect(JSON.parse(answer.body)).toEqual({ message: expect.stringContaining('REDACT_ENV') });
  });

  it.each(['', '?ps_args=-ef', '?ps_args=aux', '?ps_args=-eo%20pid,comm,start_time', '?ps_args=-o%20pid,user,args', '?ps_args=-efL'])('GET /containers/<id>/top%s is answered, without the value', async (query) => {
    const filter = await guard({ CONTAINERS: '1', REDACT_ENV: '1' });
    const answer = await ask({ port: filter.port }, 'GET', `/v1.41/containers/${visible}/top${query}`);
    expect(answer.status, answer.body).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ Processes: [expect.any(Array)] });
    expect(answer.body).not.toContain(SECRET);
  });

  it('the redacted inspect still has the names (the test container does carry the value)', async () => {
    const filter = await guard({ CONTAINERS: '1', REDACT_ENV: '1' });
    const answer = await ask({ port: filter.port }, 'GET', `/v1.41/containers/${visible}/json`);
    expect((JSON.parse(answer.body) as { Config: { Env: string[] } }).Config.Env).toContain('TOKEN=[redacted]');
    expect((await ask({ socketPath }, 'GET', `/v1.41/containers/${visible}/json`)).body).toContain(SECRET);
  });
});

describe('a rewritten answer asked as an upgrade (POST=1 grants upgrades)', () => {
  // The upgrade handler relays dockerd's answer as it is: without the rewrite, an inspect carried
  // the environment values and a list or an event stream what VISIBLE_LABELS hides.
  it.each([
    ['a container inspect', () => `/v1.41/containers/${visible}/json`, SECRET],
    ['a container inspect under a version prefix', () => `/v1.24/containers/${visible}/json`, SECRET],
    ['a container list', () => '/v1.41/containers/json?all=1', 'rt-read-hidden'],
    ['a network list for API 1.24', () => '/v1.24/networks', 'rt-read-hidden'],
  ])('%s is refused', async (_name, path, needle) => {
    const filter = await guard({ CONTAINERS: '1', NETWORKS: '1', POST: '1', REDACT_ENV: '1', VISIBLE_LABELS: REQUIREMENT });
    const { text } = await rawExchange(filter.port, `GET ${path()} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`, { timeoutMs: 2_000 });
    expect(text).toMatch(/^HTTP\/1\.1 400 /);
    expect(text).not.toContain(needle);
    expect(text).not.toContain(hidden);
  });
});
