import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { createSocketFilter, REDACTED, rewriteResponse, tecnativaPreset, type EnvLike } from '../../src/index.js';
import { dockerCli, type DockerCli } from '../helpers/docker-cli.js';
import { dockerRequest } from '../helpers/dockerd.js';
import { serve, type ServedFilter } from '../helpers/filter-server.js';
import { rawExchange } from '../helpers/raw-http.js';
import { ask, createLabelled, shape, type Answer } from '../helpers/read.js';

// What a reading client behind CONTAINERS=1 sees, with and without REDACT_ENV, VISIBLE_LABELS and
// STRICT_READ, against the real dockerd: labelled and unlabelled containers with secrets in their
// environment. State is judged on dockerd's own socket.

const socketPath = inject('dockerSocket');
const RUN = randomBytes(3).toString('hex');
const WEB = `web-${RUN}`;
const WEB_EXITED = `webx-${RUN}`;
// The hidden container and a missing one, of the same length: their answers must be byte-equal.
const HIDDEN = `secret-db-${RUN}`;
const MISSING = `secret-dx-${RUN}`;
const BINDER = `binder-${RUN}`;
const WEB_SECRET = `hunter2-${RUN}`;
const HIDDEN_SECRET = `topsecret-${RUN}`;
const LABEL = { 'traefik.enable': 'true', 'traefik.http.routers.web.rule': 'Host(`web.localhost`)' };
const READER: EnvLike = { CONTAINERS: '1', REDACT_ENV: '1', VISIBLE_LABELS: 'traefik.enable=true' };

interface Served {
  readonly served: ServedFilter;
  readonly docker: DockerCli;
  readonly port: number;
}

async function serveWith(env: EnvLike): Promise<Served> {
  const served = await serve(createSocketFilter({ policy: tecnativaPreset(env), socketPath }));
  return { served, docker: dockerCli(served.dockerHost), port: served.port };
}

/** A reference of the same length as `ref` that names no container (hex when `ref` is). */
function missingLike(ref: string, taken: readonly string[]): string {
  for (;;) {
    const candidate = /^[0-9a-f]+$/.test(ref) ? randomBytes(32).toString('hex').slice(0, ref.length) : `${ref.slice(0, -1)}~`.replace('~', 'q');
    if (!taken.some((id) => id.startsWith(candidate)) && candidate !== ref) return candidate;
  }
}

async function allIds(): Promise<string[]> {
  const { body } = await dockerRequest(socketPath, 'GET', '/containers/json?all=1');
  return (JSON.parse(body) as { Id: string }[]).map((container) => container.Id);
}

async function inspectDirect(ref: string): Promise<{ State: { Running: boolean }; ExecIDs: string[] | null }> {
  const { status, body } = await dockerRequest(socketPath, 'GET', `/containers/${ref}/json`);
  if (status !== 200) throw new Error(`${ref}: ${status}`);
  return JSON.parse(body) as { State: { Running: boolean }; ExecIDs: string[] | null };
}

const now = (): number => Math.floor(Date.now() / 1000) + 1;
const filters = (value: unknown): string => encodeURIComponent(JSON.stringify(value));

let plain: Served;
let reader: Served;
let writer: Served;
let webId: string;
let hiddenId: string;
let binderId: string;
let hostDirectory: string;
const created: string[] = [];

beforeAll(async () => {
  hostDirectory = await mkdtemp(join(tmpdir(), 'dsf-host-'));
  await writeFile(join(hostDirectory, 'host-secret.txt'), `host file ${RUN}\n`);
  webId = await createLabelled(socketPath, { name: WEB, labels: LABEL, env: [`DB_PASSWORD=${WEB_SECRET}`, 'PLAIN'] });
  created.push(webId);
  created.push(await createLabelled(socketPath, { name: WEB_EXITED, labels: LABEL, cmd: ['true'] }));
  hiddenId = await createLabelled(socketPath, {
    name: HIDDEN,
    labels: { 'basicauth.users': 'admin:$apr1$xyz' },
    env: [`DB_PASSWORD=${HIDDEN_SECRET}`],
  });
  created.push(hiddenId);
  binderId = await createLabelled(socketPath, { name: BINDER, binds: [`${hostDirectory}:/host:ro`], cmd: ['true'] });
  created.push(binderId);
  // An exec in each, as a client with exec rights would run one: its command line goes into events.
  for (const id of [webId, hiddenId]) {
    const exec = await dockerRequest(socketPath, 'POST', `/containers/${id}/exec`, { Cmd: ['sh', '-c', `echo DB_PASSWORD=${RUN}`] });
    const execId = (JSON.parse(exec.body) as { Id: string }).Id;
    await dockerRequest(socketPath, 'POST', `/exec/${execId}/start`, { Detach: true });
  }
  plain = await serveWith({ CONTAINERS: '1' });
  reader = await serveWith(READER);
  writer = await serveWith({ ...READER, POST: '1', EXEC: '1' });
});

afterAll(async () => {
  for (const served of [plain, reader, writer]) {
    await served?.served.close();
    served?.docker.dispose();
  }
  for (const id of created) await dockerRequest(socketPath, 'DELETE', `/containers/${id}?force=1&v=1`).catch(() => undefined);
  await rm(hostDirectory, { recursive: true, force: true });
});

describe('CONTAINERS=1 alone: what a "read-only" client reads (the measurement behind the issue)', () => {
  it('every container, every environment value, exec command lines and labels in events, host files', async () => {
    const list = await ask({ port: plain.port }, 'GET', '/v1.41/containers/json?all=1');
    expect(list.body).toContain(HIDDEN);
    expect((await ask({ port: plain.port }, 'GET', `/v1.41/containers/${HIDDEN}/json`)).body).toContain(HIDDEN_SECRET);
    const events = await ask({ port: plain.port }, 'GET', `/v1.41/events?since=0&until=${now()}`);
    expect(events.body).toContain(`exec_create: sh -c echo DB_PASSWORD=${RUN}`);
    expect(events.body).toContain('basicauth.users');
    const archive = await ask({ port: plain.port }, 'GET', `/v1.41/containers/${BINDER}/archive?path=/host/host-secret.txt`);
    expect(archive.status).toBe(200);
    expect(archive.body).toContain(`host file ${RUN}`);
    const inspect = JSON.parse((await ask({ port: plain.port }, 'GET', `/v1.41/containers/${BINDER}/json`)).body) as { HostConfig: { Binds: string[] }; GraphDriver: { Data: unknown } };
    expect(inspect.HostConfig.Binds[0]).toContain(hostDirectory);
  });

  it('STRICT_READ=1 closes archive, export, logs, top and changes unless granted one by one', async () => {
    const strict = await serveWith({ CONTAINERS: '1', STRICT_READ: '1', ALLOW_LOGS: '1' });
    try {
      const archive = await ask({ port: strict.port }, 'GET', `/v1.41/containers/${BINDER}/archive?path=/host/host-secret.txt`);
      expect(archive.status).toBe(403);
      expect(JSON.parse(archive.body)).toEqual({ message: expect.stringContaining('needs ALLOW_ARCHIVE=1') });
      for (const [path, variable] of [['export', 'ALLOW_EXPORT'], ['top', 'ALLOW_TOP'], ['changes', 'ALLOW_CHANGES']]) {
        expect((await ask({ port: strict.port }, 'GET', `/v1.41/containers/${WEB}/${path}`)).body).toContain(`${variable}=1`);
      }
      expect((await ask({ port: strict.port }, 'GET', `/v1.41/containers/${WEB}/logs?stdout=1`)).status).toBe(200);
      const cli = await strict.docker.run(['cp', `${BINDER}:/host/host-secret.txt`, '-']);
      expect(cli.code).not.toBe(0);
      expect(cli.stderr).toContain('ALLOW_ARCHIVE=1');
    } finally {
      await strict.served.close();
      strict.docker.dispose();
    }
  });
});

describe('the docker CLI behind CONTAINERS=1 REDACT_ENV=1 VISIBLE_LABELS=traefik.enable=true', () => {
  const withName = (text: string, from: string, to: string): string => text.split(from).join(to);

  it('ps and ps -a list only labelled containers', async () => {
    const running = await reader.docker.run(['ps', '--format', '{{.Names}}']);
    expect(running.code, running.stderr).toBe(0);
    expect(running.stdout.split('\n')).toContain(WEB);
    expect(running.stdout).not.toContain(HIDDEN);
    const all = await reader.docker.run(['ps', '-a', '--no-trunc', '--format', '{{.ID}} {{.Names}}']);
    expect(all.stdout).toContain(WEB_EXITED);
    expect(all.stdout).not.toMatch(new RegExp(`${HIDDEN}|${BINDER}|${hiddenId}`));
    // Every container listed is labelled, as dockerd itself says.
    for (const line of all.stdout.trim().split('\n')) {
      const labels = (await inspectDirect(line.split(' ')[0] as string)) as unknown as { Config: { Labels: Record<string, string> } };
      expect(labels.Config.Labels['traefik.enable']).toBe('true');
    }
  });

  it('inspect shows the names of the environment, never its values', async () => {
    const env = await reader.docker.run(['container', 'inspect', WEB, '--format', '{{json .Config.Env}}']);
    expect(env.code, env.stderr).toBe(0);
    const entries = JSON.parse(env.stdout) as string[];
    expect(entries).toContain(`DB_PASSWORD=${REDACTED}`);
    expect(entries).toContain('PLAIN');
    expect(env.stdout).not.toContain(WEB_SECRET);
    const labels = await reader.docker.run(['container', 'inspect', WEB, '--format', '{{json .Config.Labels}}']);
    expect(JSON.parse(labels.stdout)).toEqual(LABEL);
  });

  it.each([
    [['container', 'inspect']],
    [['logs']],
    [['top']],
    [['diff']],
    [['port']],
    [['stats', '--no-stream']],
  ])('%j of a hidden container says what it says of a missing one', async (command) => {
    const hidden = await reader.docker.run([...command, HIDDEN]);
    const missing = await reader.docker.run([...command, MISSING]);
    expect(hidden.code).not.toBe(0);
    expect(hidden.code).toBe(missing.code);
    expect(hidden.stdout).toBe(withName(missing.stdout, MISSING, HIDDEN));
    expect(hidden.stderr).toBe(withName(missing.stderr, MISSING, HIDDEN));
    expect(hidden.stderr).not.toContain(HIDDEN_SECRET);
  });

  it('logs of a visible container', async () => {
    const exited = await reader.docker.run(['logs', WEB_EXITED]);
    expect(exited.code, exited.stderr).toBe(0);
  });

  it('events: labelled containers only, exec command lines cut to their verb', async () => {
    const until = String(now());
    const all = await reader.docker.run(['events', '--since', '0', '--until', until, '--format', '{{.Type}} {{.Actor.Attributes.name}} {{.Action}}']);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toContain(`container ${WEB} start`);
    expect(all.stdout).toContain(`container ${WEB} exec_create\n`);
    expect(all.stdout).not.toMatch(new RegExp(`${HIDDEN}|${BINDER}|DB_PASSWORD|basicauth`));
    for (const line of all.stdout.trim().split('\n')) expect(line.startsWith('container ')).toBe(true);
    for (const filter of [`container=${HIDDEN}`, `container=${hiddenId}`, 'label=basicauth.users', 'type=network', 'type=image']) {
      const filtered = await reader.docker.run(['events', '--since', '0', '--until', until, '--filter', filter]);
      expect(filtered.code, filtered.stderr).toBe(0);
      expect(filtered.stdout, filter).toBe('');
    }
    const mine = await reader.docker.run(['events', '--since', '0', '--until', until, '--filter', `container=${WEB}`, '--filter', 'event=start', '--format', '{{.Actor.Attributes.name}}']);
    expect(mine.stdout.trim()).toBe(WEB);
  });

  it('exec (with EXEC and POST): in a visible container it runs; in a hidden one it is missing, and nothing ran', async () => {
    const ran = await writer.docker.run(['exec', WEB, 'sh', '-c', 'echo ran']);
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toBe('ran\n');
    const before = (await inspectDirect(hiddenId)).ExecIDs;
    const hidden = await writer.docker.run(['exec', HIDDEN, 'true']);
    const missing = await writer.docker.run(['exec', MISSING, 'true']);
    expect(hidden.code).not.toBe(0);
    expect(hidden.code).toBe(missing.code);
    expect(hidden.stderr).toBe(withName(missing.stderr, MISSING, HIDDEN));
    expect((await inspectDirect(hiddenId)).ExecIDs).toEqual(before);
  });

  it('stop, kill, pause, rm -f of a hidden container: missing, and dockerd’s state unchanged', async () => {
    for (const command of [['stop', '-t', '1'], ['kill'], ['pause'], ['restart', '-t', '1'], ['rename', HIDDEN], ['rm', '-f']]) {
      const args = command[0] === 'rename' ? ['rename', HIDDEN, `renamed-${RUN}`] : [...command, HIDDEN];
      const missingArgs = command[0] === 'rename' ? ['rename', MISSING, `renamed-${RUN}`] : [...command, MISSING];
      const hidden = await writer.docker.run(args);
      const missing = await writer.docker.run(missingArgs);
      // `rm -f` of a missing container succeeds quietly: the same for a hidden one.
      expect(hidden.code, command.join(' ')).toBe(missing.code);
      if (command[0] !== 'rm') expect(hidden.code, command.join(' ')).not.toBe(0);
      expect(hidden.stderr, command.join(' ')).toBe(withName(missing.stderr, MISSING, HIDDEN));
    }
    const state = await inspectDirect(hiddenId);
    expect(state.State.Running).toBe(true);
    expect((await inspectDirect(HIDDEN)).State.Running).toBe(true);
  });
});

describe('a visible container’s answers are dockerd’s', () => {
  const dockerdHeaders = (answer: Answer): string[] => shape(answer).split('\n\n')[0]?.split('\n').filter((line) => !line.startsWith('Content-Length')) ?? [];

  it('inspect: dockerd’s status and headers, a correct length, the body redacted and nothing else', async () => {
    for (const path of [`/v1.41/containers/${WEB}/json`, `/v1.24/containers/${webId.slice(0, 12)}/json?size=1`]) {
      const through = await ask({ port: reader.port }, 'GET', path);
      const direct = await ask({ socketPath }, 'GET', path);
      expect(through.status).toBe(200);
      expect(dockerdHeaders(through)).toEqual(dockerdHeaders(direct));
      const length = through.rawHeaders[through.rawHeaders.findIndex((name) => name.toLowerCase() === 'content-length') + 1];
      expect(Number(length)).toBe(Buffer.byteLength(through.body));
      expect(JSON.parse(through.body)).toEqual(rewriteResponse({ kind: 'container-inspect', redactEnv: true }, JSON.parse(direct.body)));
    }
  });

  it('without REDACT_ENV, byte for byte', async () => {
    const visibleOnly = await serveWith({ CONTAINERS: '1', VISIBLE_LABELS: 'traefik.enable=true' });
    try {
      for (const path of [`/v1.41/containers/${WEB}/json`, `/v1.41/containers/${WEB_EXITED}/logs?stdout=1`, '/v1.41/containers/json?all=1']) {
        const through = await ask({ port: visibleOnly.port }, 'GET', path);
        const direct = await ask({ socketPath }, 'GET', path.replace('/json?all=1', `/json?all=1&filters=${filters({ label: ['traefik.enable=true'] })}`));
        expect(through.status, path).toBe(200);
        // A running container's list entry says "Up N seconds": N may tick between the two requests.
        const steady = (body: string): string => body.replace(/"Status":"Up [^"]*"/g, '"Status":"Up"');
        expect(steady(through.body), path).toBe(steady(direct.body));
      }
    } finally {
      await visibleOnly.served.close();
      visibleOnly.docker.dispose();
    }
  });
});

describe('dockerode behind the reader', () => {
  it('lists, inspects and misses as dockerd would without the hidden containers', async () => {
    const docker = new Docker({ host: '127.0.0.1', port: reader.port, protocol: 'http' });
    const names = (await docker.listContainers({ all: true })).flatMap((container) => container.Names);
    expect(names).toContain(`/${WEB}`);
    expect(names).toContain(`/${WEB_EXITED}`);
    expect(names).not.toContain(`/${HIDDEN}`);
    const inspected = await docker.getContainer(WEB).inspect();
    expect(inspected.Config.Env).toContain(`DB_PASSWORD=${REDACTED}`);
    const hidden = await docker.getContainer(HIDDEN).inspect().catch((error: { statusCode: number; json: unknown }) => error);
    const missing = await docker.getContainer(MISSING).inspect().catch((error: { statusCode: number; json: unknown }) => error);
    expect(hidden).toMatchObject({ statusCode: 404, json: { message: `No such container: ${HIDDEN}` } });
    expect(missing).toMatchObject({ statusCode: 404, json: { message: `No such container: ${MISSING}` } });
  });
});

describe('a Traefik-like client', () => {
  it('pings, lists, inspects and routes on the events of labelled containers only', async () => {
    const to = { port: reader.port };
    expect((await ask(to, 'GET', '/_ping')).body).toBe('OK');
    expect(JSON.parse((await ask(to, 'GET', '/v1.41/version')).body)).toMatchObject({ ApiVersion: '1.41' });
    for (const query of ['', `?filters=${filters({ status: ['running'] })}`, `?limit=0&filters=${filters({ label: { 'traefik.enable=true': true } })}`]) {
      const list = JSON.parse((await ask(to, 'GET', `/v1.41/containers/json${query}`)).body) as { Id: string; Names: string[]; Labels: Record<string, string> }[];
      expect(list.map((container) => container.Names[0])).toContain(`/${WEB}`);
      for (const container of list) {
        expect(container.Labels['traefik.enable']).toBe('true');
        const inspected = JSON.parse((await ask(to, 'GET', `/v1.41/containers/${container.Id}/json`)).body) as { Config: { Env: string[]; Labels: Record<string, string> } };
        expect(inspected.Config.Labels['traefik.enable']).toBe('true');
        for (const entry of inspected.Config.Env) if (entry.includes('=')) expect(entry.endsWith(`=${REDACTED}`)).toBe(true);
      }
    }

    // A long events stream: an unlabelled container starts, then a labelled one; events arrive in
    // order, so once the labelled start is here the unlabelled one's would have been too.
    const received: string[] = [];
    let resolveMarker: () => void = () => undefined;
    const marker = new Promise<void>((resolve) => (resolveMarker = resolve));
    const lateWeb = `late-web-${RUN}`;
    const lateHidden = `late-db-${RUN}`;
    const stream = request({ host: '127.0.0.1', port: reader.port, path: `/v1.41/events?filters=${filters({ type: { container: true } })}`, agent: false });
    stream.on('response', (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8');
        const lines = text.split('\n');
        text = lines.pop() as string;
        for (const line of lines) {
          received.push(line);
          const event = JSON.parse(line) as { Action: string; Actor: { Attributes: Record<string, string> } };
          if (event.Action === 'start' && event.Actor.Attributes.name === lateWeb) resolveMarker();
        }
      });
      res.on('error', () => undefined);
    });
    stream.on('error', () => undefined);
    stream.end();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const lateHiddenId = await createLabelled(socketPath, { name: lateHidden, env: ['TOKEN=x'] });
    created.push(lateHiddenId);
    const lateWebId = await createLabelled(socketPath, { name: lateWeb, labels: LABEL });
    created.push(lateWebId);
    await marker;
    stream.destroy();
    const text = received.join('\n');
    expect(text).toContain(lateWebId);
    expect(text).not.toContain(lateHidden);
    expect(text).not.toContain(lateHiddenId);
    // dockerd did send the unlabelled start to an unfiltered client.
    const direct = await dockerRequest(socketPath, 'GET', `/events?since=0&until=${now()}&filters=${filters({ container: [lateHiddenId], event: ['start'] })}`);
    expect(direct.body).toContain(lateHiddenId);
  });
});

describe('hiding attempts: a hidden container answers exactly as a missing one', () => {
  const READS: [string, string][] = [
    ['GET', 'json'],
    ['GET', 'logs?stdout=1'],
    ['GET', 'top'],
    ['GET', 'changes'],
    ['GET', 'export'],
    ['GET', 'stats?stream=0'],
    ['GET', 'archive?path=/'],
    ['HEAD', 'archive?path=/'],
  ];
  const WRITES: [string, string, string?][] = [
    ['POST', 'start'],
    ['POST', 'stop?t=1'],
    ['POST', 'restart?t=1'],
    ['POST', 'kill'],
    ['POST', 'kill?signal=NOPE'],
    ['POST', 'pause'],
    ['POST', 'unpause'],
    ['POST', 'wait?condition=next-exit'],
    ['POST', 'resize?h=1&w=1'],
    ['POST', 'resize?h=x'],
    ['POST', 'rename?name=x'],
    ['POST', 'update', '{}'],
    ['POST', 'exec', '{"Cmd":["true"]}'],
    ['POST', 'exec', '{}'],
    ['POST', 'attach?stream=1&stdout=1'],
    ['GET', 'attach/ws?stream=1'],
    ['PUT', 'archive?path=/tmp', ''],
    ['DELETE', ''],
  ];

  async function compare(port: number, method: string, suffix: string, hiddenRef: string, missingRef: string, body?: string): Promise<void> {
    const path = (ref: string): string => `/v1.41/containers/${ref}${suffix === '' ? '' : `/${suffix}`}`;
    const options = body === undefined ? {} : { body };
    const hidden = await ask({ port }, method, path(hiddenRef), options);
    const missing = await ask({ port }, method, path(missingRef), options);
    const direct = await ask({ socketPath }, method, path(missingRef), options);
    const label = `${method} ${path(hiddenRef)}`;
    // Through the filter, byte for byte (but Date); against dockerd, its status, headers and body.
    expect(shape(hidden, 'all'), label).toBe(shape(missing, 'all').split(missingRef).join(hiddenRef));
    // A hijack refused before its upgrade is read until dockerd closes; the filter sends its length.
    const length = /\ncontent-length: \d+/i;
    const unframed = !direct.rawHeaders.some((name) => name.toLowerCase() === 'content-length');
    expect(unframed ? shape(missing).replace(length, '') : shape(missing), label).toBe(shape(direct));
    expect(hidden.status, label).not.toBe(200);
  }

  it.each(READS)('reader: %s …/%s by name, full id and id prefix', async (method, suffix) => {
    const ids = await allIds();
    for (const ref of [HIDDEN, hiddenId, hiddenId.slice(0, 12)]) await compare(reader.port, method, suffix, ref, ref === HIDDEN ? MISSING : missingLike(ref, ids));
  });

  it.each(WRITES)('writer: %s …/%s %s', async (method, suffix, body) => {
    const ids = await allIds();
    for (const ref of [HIDDEN, hiddenId.slice(0, 10)]) await compare(writer.port, method, suffix, ref, ref === HIDDEN ? MISSING : missingLike(ref, ids), body);
    const state = await inspectDirect(hiddenId);
    expect(state.State.Running).toBe(true);
  });

  it('hijacked attach of a hidden container gets dockerd’s raw answer for a missing one', async () => {
    const attach = (ref: string): string => `POST /v1.41/containers/${ref}/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n`;
    const hidden = await rawExchange(writer.port, attach(HIDDEN));
    const missing = await rawExchange(writer.port, attach(MISSING));
    expect(hidden.text).toBe(missing.text.split(MISSING).join(HIDDEN));
    expect(hidden.text).toBe(`HTTP/1.1 404 Not Found\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\nNo such container: ${HIDDEN}\r\n`);
    const visible = await rawExchange(writer.port, attach(WEB), { until: (text) => text.includes('\r\n\r\n'), timeoutMs: 3_000 });
    expect(visible.statuses).toEqual([101]);
  });

  it('a prefix shared with hidden containers resolves among the visible ones, as if they did not exist', async () => {
    const visibleIds = async (): Promise<string[]> =>
      (JSON.parse((await ask({ port: reader.port }, 'GET', '/v1.41/containers/json?all=1')).body) as { Id: string }[]).map((container) => container.Id);
    const prefix = webId.slice(0, 1);
    const hiddenWith = async (start: string): Promise<string[]> => {
      const visible = await visibleIds();
      return (await allIds()).filter((id) => id.startsWith(start) && !visible.includes(id));
    };
    // Hidden containers until one shares web's first character, and two hidden ones share another
    // that no visible container has.
    const visible = await visibleIds();
    const lonely = (): string | undefined => '0123456789abcdef'.split('').find((char) => !visible.some((id) => id.startsWith(char)));
    for (let tries = 0; tries < 300; tries++) {
      const char = lonely();
      if ((await hiddenWith(prefix)).length > 0 && char !== undefined && (await hiddenWith(char)).length >= 2) break;
      created.push(await createLabelled(socketPath, { name: `amb-${RUN}-${tries}`, start: false }));
    }
    expect((await hiddenWith(prefix)).length).toBeGreaterThan(0);
    const direct = await ask({ socketPath }, 'GET', `/v1.41/containers/${prefix}/json`);
    expect(direct.status).toBe(500);
    expect(direct.body).toBe(`{"message":"Multiple IDs found with provided prefix: ${prefix}"}\n`);
    const through = await ask({ port: reader.port }, 'GET', `/v1.41/containers/${prefix}/json`);
    const matching = (await visibleIds()).filter((id) => id.startsWith(prefix));
    if (matching.length === 1) {
      expect(through.status).toBe(200);
      expect((JSON.parse(through.body) as { Id: string }).Id).toBe(webId);
    } else {
      // Ambiguous among visible containers too: dockerd's own answer.
      expect(shape(through)).toBe(shape(direct));
    }
    // A prefix only hidden containers have, ambiguous among them: missing, as if they did not exist.
    const char = lonely() as string;
    expect((await hiddenWith(char)).length).toBeGreaterThanOrEqual(2);
    expect((await ask({ socketPath }, 'GET', `/v1.41/containers/${char}/json`)).status).toBe(500);
    const hiddenOnly = await ask({ port: reader.port }, 'GET', `/v1.41/containers/${char}/json`);
    const absent = await ask({ socketPath }, 'GET', '/v1.41/containers/q/json');
    expect(shape(hiddenOnly)).toBe(shape(absent).replace('No such container: q', `No such container: ${char}`));
  });

  it('exec inspect and start of a hidden container’s exec: missing, and it never ran', async () => {
    const exec = await dockerRequest(socketPath, 'POST', `/containers/${hiddenId}/exec`, { Cmd: ['true'] });
    const execId = (JSON.parse(exec.body) as { Id: string }).Id;
    const absent = randomBytes(32).toString('hex');
    for (const [method, suffix, body] of [['GET', 'json'], ['POST', 'start', '{"Detach":true}'], ['POST', 'resize?h=1&w=1']] as const) {
      const options = body === undefined ? {} : { body };
      const hidden = await ask({ port: writer.port }, method, `/v1.41/exec/${execId}/${suffix}`, options);
      const missing = await ask({ port: writer.port }, method, `/v1.41/exec/${absent}/${suffix}`, options);
      expect(shape(hidden, 'all')).toBe(shape(missing, 'all').split(absent).join(execId));
      expect(hidden.status).toBe(404);
    }
    // Hijacked, as `docker exec` starts it.
    const start = (id: string): string => {
      const body = '{"Detach":false,"Tty":false}';
      return `POST /v1.41/exec/${id}/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    };
    const hijackHidden = await rawExchange(writer.port, start(execId));
    const hijackMissing = await rawExchange(writer.port, start(absent));
    const withoutDate = (text: string): string => text.replace(/\r\nDate: [^\r]*/, '');
    expect(withoutDate(hijackHidden.text)).toBe(withoutDate(hijackMissing.text).split(absent).join(execId));
    expect(hijackHidden.statuses).toEqual([404]);
    expect(hijackHidden.text).toContain(`{"message":"No such exec instance: ${execId}"}`);
    const state = JSON.parse((await dockerRequest(socketPath, 'GET', `/exec/${execId}/json`)).body) as { Running: boolean; Pid: number };
    expect(state.Pid).toBe(0);
    const visibleExec = await dockerRequest(socketPath, 'POST', `/containers/${webId}/exec`, { Cmd: ['sh', '-c', `echo DB_PASSWORD=${RUN}`] });
    const visibleId = (JSON.parse(visibleExec.body) as { Id: string }).Id;
    const inspected = JSON.parse((await ask({ port: writer.port }, 'GET', `/v1.41/exec/${visibleId}/json`)).body) as { ProcessConfig: { arguments: string[] } };
    expect(inspected.ProcessConfig.arguments).toEqual([REDACTED, REDACTED]);
  });
});

describe('hiding attempts through filters and queries', () => {
  const list = async (query: string): Promise<Answer> => ask({ port: reader.port }, 'GET', `/v1.41/containers/json?${query}`);
  const names = (answer: Answer): string[] => (JSON.parse(answer.body) as { Names: string[] }[]).flatMap((container) => container.Names);

  it.each([
    'all=1',
    'all=1&all=0',
    `all=1&filters=${filters({ name: [HIDDEN] })}`,
    'all=1&filters=HIDDEN_ID',
    `all=1&filters=${filters({ label: ['basicauth.users'] })}`,
    `all=1&filters=${filters({ label: { 'traefik.enable=false': true } })}`,
    `all=1&filters=${filters({ label: { 'traefik.enable=true': false } })}`,
    `all=1&filters=${filters({ status: ['running', 'exited', 'created'] })}`,
    `all=1&filters=${filters({ label: [] })}`,
  ])('%s never lists a hidden container', async (query) => {
    const answer = await list(query.replace('HIDDEN_ID', filters({ id: [hiddenId] })));
    expect(answer.status, answer.body).toBe(200);
    expect(names(answer).join()).not.toContain(HIDDEN);
    expect(names(answer).join()).not.toContain(BINDER);
  });

  it.each<[string, string]>([
    [`filters=${filters({ 'label!': ['traefik.enable=true'] })}`, 'the filter "label!" is not one this endpoint knows'],
    [`filters=${filters({ 'label!': { 'traefik.enable': true } })}&all=1`, 'the filter "label!"'],
    [`filters=${encodeURIComponent('{"label":["traefik.enable=true"],"label":[]}')}`, 'the key "label" is given twice'],
    [`filters=${filters({ label: ['traefik.enable=true'] })}&filters=${filters({})}`, 'the `filters` parameter is given 2 times'],
    [`filters=${filters({})}&filt%65rs=${filters({})}`, 'the `filters` parameter is given 2 times'],
    ['filters=%7B%22label%22', 'not valid Docker filters JSON'],
    ['filters=%7B%22label%22%3Anull%7D', 'not valid Docker filters JSON'],
    [`filters=${filters({ before: [HIDDEN] })}`, 'the `before` filter names another container'],
    [`filters=${filters({ since: [HIDDEN] })}`, 'the `since` filter names another container'],
    [`all=1;filters=${filters({})}`, 'the query contains a ";"'],
  ])('%s is refused with 400', async (query, message) => {
    const answer = await list(query);
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body)).toEqual({ message: expect.stringContaining(message) });
  });

  it('events: no hidden container in any replay, whatever the filters', async () => {
    for (const value of [{ container: [HIDDEN] }, { container: [hiddenId] }, { label: ['basicauth.users'] }, { type: ['network'] }, { type: ['image'] }, { event: ['exec_create'] }, {}]) {
      const answer = await ask({ port: reader.port }, 'GET', `/v1.41/events?since=0&until=${now()}&filters=${filters(value)}`);
      expect(answer.status, JSON.stringify(value)).toBe(200);
      expect(answer.body, JSON.stringify(value)).not.toMatch(new RegExp(`${HIDDEN}|${hiddenId}|${BINDER}|basicauth|DB_PASSWORD`));
    }
    for (const query of [`filters=${filters({ 'label!': ['x'] })}`, 'filters=%5B%5D', `filters=${filters({})}&filters=${filters({})}`]) {
      expect((await ask({ port: reader.port }, 'GET', `/v1.41/events?since=0&until=${now()}&${query}`)).status, query).toBe(400);
    }
  });
});
