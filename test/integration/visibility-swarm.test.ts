import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSocketFilter, REDACTED, tecnativaPreset } from '../../src/index.js';
import { dockerCli, type DockerCli } from '../helpers/docker-cli.js';
import { BUSYBOX_IMAGE, dockerRequest, startDockerd, type Dockerd } from '../helpers/dockerd.js';
import { serve, type ServedFilter } from '../helpers/filter-server.js';
import { ask, shape } from '../helpers/read.js';

// Services and tasks behind SERVICES=1 TASKS=1 REDACT_ENV=1 VISIBLE_LABELS=traefik.enable=true, on a
// daemon of its own (swarm mode would change the shared one for every other file).

const WEB = 'websvc';
// Hidden and missing, of the same length: their answers must be byte-equal.
const HIDDEN = 'hiddensvc';
const MISSING = 'missingsv';

let dockerd: Dockerd;
let served: ServedFilter;
let docker: DockerCli;
let webId: string;
let hiddenId: string;

async function createService(name: string, labels: Record<string, string>, env: string[]): Promise<string> {
  const created = await dockerRequest(dockerd.socketPath, 'POST', '/services/create', {
    Name: name,
    Labels: labels,
    TaskTemplate: { ContainerSpec: { Image: BUSYBOX_IMAGE, Args: ['sleep', '600'], Env: env }, Networks: [] },
    Mode: { Replicated: { Replicas: 1 } },
  });
  if (created.status !== 201) throw new Error(`service create: ${created.status} ${created.body}`);
  return (JSON.parse(created.body) as { ID: string }).ID;
}

async function tasksOf(serviceId: string): Promise<{ ID: string }[]> {
  const { body } = await dockerRequest(dockerd.socketPath, 'GET', `/tasks?filters=${encodeURIComponent(JSON.stringify({ service: [serviceId] }))}`);
  return JSON.parse(body) as { ID: string }[];
}

beforeAll(async () => {
  dockerd = await startDockerd();
  const init = await dockerRequest(dockerd.socketPath, 'POST', '/swarm/init', { ListenAddr: '127.0.0.1:0', AdvertiseAddr: '127.0.0.1' });
  if (init.status !== 200) throw new Error(`swarm init: ${init.status} ${init.body}`);
  webId = await createService(WEB, { 'traefik.enable': 'true' }, ['DB_PASSWORD=svcsecret']);
  hiddenId = await createService(HIDDEN, {}, ['DB_PASSWORD=hidden']);
  // An update, so the service carries its previous spec (and environment) too.
  const { body } = await dockerRequest(dockerd.socketPath, 'GET', `/services/${webId}`);
  const service = JSON.parse(body) as { Version: { Index: number }; Spec: { TaskTemplate: { ContainerSpec: { Env: string[] } } } };
  service.Spec.TaskTemplate.ContainerSpec.Env.push('API_TOKEN=tok123');
  const updated = await dockerRequest(dockerd.socketPath, 'POST', `/services/${webId}/update?version=${service.Version.Index}`, service.Spec);
  if (updated.status !== 200) throw new Error(`service update: ${updated.status} ${updated.body}`);
  const deadline = Date.now() + 60_000;
  while ((await tasksOf(webId)).length === 0 || (await tasksOf(hiddenId)).length === 0) {
    if (Date.now() > deadline) throw new Error('no tasks were scheduled');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  served = await serve(
    createSocketFilter({
      policy: tecnativaPreset({ SERVICES: '1', TASKS: '1', REDACT_ENV: '1', VISIBLE_LABELS: 'traefik.enable=true' }),
      socketPath: dockerd.socketPath,
    }),
  );
  docker = dockerCli(served.dockerHost);
}, 180_000);

afterAll(async () => {
  await served?.close();
  docker?.dispose();
  await dockerd?.stop();
}, 120_000);

describe('services and tasks behind VISIBLE_LABELS and REDACT_ENV', () => {
  it('lists only labelled services, without environment values, previous spec included', async () => {
    const list = await ask({ port: served.port }, 'GET', '/v1.41/services?status=true');
    expect(list.status).toBe(200);
    const services = JSON.parse(list.body) as { ID: string; PreviousSpec?: unknown }[];
    expect(services.map((service) => service.ID)).toEqual([webId]);
    expect(services[0]?.PreviousSpec).toBeDefined();
    expect(list.body).not.toMatch(/svcsecret|tok123|hidden/);
    expect(list.body).toContain(`DB_PASSWORD=${REDACTED}`);
    const cli = await docker.run(['service', 'ls', '--format', '{{.Name}}']);
    expect(cli.stdout.trim()).toBe(WEB);
  });

  it('inspects a labelled service by name, id or prefix; a hidden one is missing', async () => {
    for (const ref of [WEB, webId, webId.slice(0, 6)]) {
      const answer = await ask({ port: served.port }, 'GET', `/v1.41/services/${ref}`);
      expect(answer.status, ref).toBe(200);
      expect(answer.body).not.toContain('svcsecret');
    }
    for (const [path, suffix] of [['services', ''], ['services', '/logs?stdout=1']]) {
      const hidden = await ask({ port: served.port }, 'GET', `/v1.41/${path}/${HIDDEN}${suffix}`);
      const missing = await ask({ port: served.port }, 'GET', `/v1.41/${path}/${MISSING}${suffix}`);
      const direct = await ask({ socketPath: dockerd.socketPath }, 'GET', `/v1.41/${path}/${MISSING}${suffix}`);
      expect(shape(hidden, 'all')).toBe(shape(missing, 'all').split(MISSING).join(HIDDEN));
      expect(shape(missing)).toBe(shape(direct));
      expect(hidden.status).toBe(404);
    }
    const byId = await ask({ port: served.port }, 'GET', `/v1.41/services/${hiddenId}`);
    expect(byId.status).toBe(404);
    expect(JSON.parse(byId.body)).toEqual({ message: `service ${hiddenId} not found` });
    const cli = await docker.run(['service', 'inspect', HIDDEN]);
    const cliMissing = await docker.run(['service', 'inspect', MISSING]);
    expect(cli.code).toBe(cliMissing.code);
    expect(cli.stderr).toBe(cliMissing.stderr.split(MISSING).join(HIDDEN));
  });

  it('tasks: only the labelled service’s, redacted; a hidden service named in the filter is missing', async () => {
    const all = await ask({ port: served.port }, 'GET', '/v1.41/tasks');
    const tasks = JSON.parse(all.body) as { ServiceID: string }[];
    expect(tasks.length).toBeGreaterThan(0);
    expect(new Set(tasks.map((task) => task.ServiceID))).toEqual(new Set([webId]));
    expect(all.body).not.toMatch(/svcsecret|DB_PASSWORD=hidden/);
    const forWeb = await ask({ port: served.port }, 'GET', `/v1.41/tasks?filters=${encodeURIComponent(JSON.stringify({ service: { [WEB]: true } }))}`);
    expect((JSON.parse(forWeb.body) as unknown[]).length).toBeGreaterThan(0);
    const query = (name: string): string => `/v1.41/tasks?filters=${encodeURIComponent(JSON.stringify({ service: { [name]: true } }))}`;
    const hidden = await ask({ port: served.port }, 'GET', query(HIDDEN));
    const missing = await ask({ port: served.port }, 'GET', query(MISSING));
    const direct = await ask({ socketPath: dockerd.socketPath }, 'GET', query(MISSING));
    expect(shape(hidden, 'all')).toBe(shape(missing, 'all').split(MISSING).join(HIDDEN));
    expect(shape(missing)).toBe(shape(direct));
    const ps = await docker.run(['service', 'ps', WEB, '--format', '{{.Name}}']);
    expect(ps.code, ps.stderr).toBe(0);
    expect(ps.stdout).toContain(`${WEB}.1`);
    const psHidden = await docker.run(['service', 'ps', HIDDEN]);
    const psMissing = await docker.run(['service', 'ps', MISSING]);
    expect(psHidden.code).not.toBe(0);
    expect(psHidden.stderr).toBe(psMissing.stderr.split(MISSING).join(HIDDEN));
  });

  it('a task of a hidden service is missing; one of a labelled service is redacted', async () => {
    const [hiddenTask] = await tasksOf(hiddenId);
    const [webTask] = await tasksOf(webId);
    const absent = 'zzzzzzzzzzzzzzzzzzzzzzzzz'.slice(0, (hiddenTask as { ID: string }).ID.length);
    for (const suffix of ['', '/logs?stdout=1']) {
      const hidden = await ask({ port: served.port }, 'GET', `/v1.41/tasks/${(hiddenTask as { ID: string }).ID}${suffix}`);
      const missing = await ask({ port: served.port }, 'GET', `/v1.41/tasks/${absent}${suffix}`);
      expect(shape(hidden, 'all')).toBe(shape(missing, 'all').split(absent).join((hiddenTask as { ID: string }).ID));
      expect(hidden.status).toBe(404);
    }
    const visible = await ask({ port: served.port }, 'GET', `/v1.41/tasks/${(webTask as { ID: string }).ID}`);
    expect(visible.status).toBe(200);
    expect(visible.body).toContain(`DB_PASSWORD=${REDACTED}`);
    expect(visible.body).not.toContain('svcsecret');
  });
});
