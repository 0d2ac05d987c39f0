// Copy this beside your policy file: it proves, without a daemon, what each of your tools may do,
// from the very file the guard runs with. Run: npx vitest run examples/policies/tutorials.test.ts
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { createSocketFilter } from 'docker-socket-filter';
import { loadConfig } from 'docker-socket-filter/config';

const config = await loadConfig(fileURLToPath(new URL('./tutorials.yaml', import.meta.url)));
const guard = createSocketFilter(config.filter);

const TRAEFIK = { address: '172.25.0.2', listener: 'tcp' };
const PORTAINER = { address: '172.25.0.3', listener: 'tcp' };
const WATCHTOWER = { address: '172.25.0.4', listener: 'tcp' };
const MONITORING = { listener: 'ro' };

describe.each<[string, { address?: string; listener: string }, [string, string, boolean][]]>([
  [
    'traefik',
    TRAEFIK,
    [
      ['GET', '/v1.41/containers/json', true],
      ['GET', '/v1.41/events', true],
      ['GET', '/v1.41/containers/web/json', true],
      ['POST', '/v1.41/containers/create', false],
      ['POST', '/v1.41/containers/web/exec', false],
      ['GET', '/v1.41/images/json', false],
    ],
  ],
  [
    'portainer',
    PORTAINER,
    [
      ['POST', '/v1.41/containers/create', true],
      ['DELETE', '/v1.41/volumes/data', true],
      ['POST', '/v1.41/networks/create', true],
      ['POST', '/v1.41/build', false],
      ['POST', '/v1.41/swarm/init', false],
    ],
  ],
  [
    'watchtower',
    WATCHTOWER,
    [
      ['POST', '/v1.41/images/create?fromImage=nginx&tag=latest', true],
      ['POST', '/v1.41/containers/web/stop', true],
      ['POST', '/v1.41/containers/web/rename?name=web-old', true],
      ['POST', '/v1.41/containers/create?name=web', true],
      ['DELETE', '/v1.41/containers/web-old', true],
      ['POST', '/v1.41/exec/abc/start', false],
      ['GET', '/v1.41/networks', false],
    ],
  ],
  [
    'monitoring (Dozzle, Glances)',
    MONITORING,
    [
      ['GET', '/v1.41/containers/json?all=1', true],
      ['GET', '/v1.41/containers/web/logs?follow=1&stdout=1', true],
      ['GET', '/v1.41/containers/web/stats', true],
      ['GET', '/v1.41/info', true],
      ['GET', '/v1.41/containers/web/archive?path=/etc', false],
      ['GET', '/v1.41/containers/web/export', false],
      ['GET', '/v1.41/containers/web/changes', false],
      ['POST', '/v1.41/containers/web/start', false],
      ['POST', '/v1.41/containers/web/attach?stream=1', false],
    ],
  ],
])('%s', (name, client, table) => {
  test.each(table)(`${name}: %s %s allowed=%s`, (method, target, allowed) => {
    const decision = guard.evaluate(method, target, { client });
    expect(decision.client).toBe(name.split(' ')[0]);
    expect(decision.allowed).toBe(allowed);
  });
});

test('Dozzle may read logs, Traefik may not copy files; each is told by its connection, not by a header', () => {
  expect(guard.evaluate('GET', '/v1.41/containers/web/logs', { client: MONITORING }).allowed).toBe(true);
  expect(guard.evaluate('GET', '/v1.41/containers/web/archive?path=/', { client: MONITORING }).allowed).toBe(false);
});

const create = (hostConfig: object) => ({
  body: JSON.stringify({ Image: 'busybox', HostConfig: hostConfig }),
  contentType: 'application/json',
});

test('Portainer creates containers, but none that takes the host (PROTECT_HOST)', () => {
  const client = PORTAINER;
  // Without the body the guard cannot judge: it asks for it (the proxy reads it, within a bound).
  expect(guard.evaluate('POST', '/v1.41/containers/create', { client, bodyLength: 100 }).obligations?.body).toEqual({ maxBytes: 1048576 });
  expect(guard.evaluate('POST', '/v1.41/containers/create', { client, ...create({ Binds: ['/opt/appdata/nextcloud:/data'] }) }).allowed).toBe(true);
  expect(guard.evaluate('POST', '/v1.41/containers/create', { client, ...create({ Privileged: true }) })).toMatchObject({
    allowed: false,
    status: 403,
    rule: 'ALLOW_PRIVILEGED',
    field: 'HostConfig.Privileged',
  });
  expect(guard.evaluate('POST', '/v1.41/containers/create', { client, ...create({ Binds: ['/:/host'] }) })).toMatchObject({
    allowed: false,
    rule: 'ALLOW_BIND_MOUNTS',
    field: 'HostConfig.Binds[0]',
  });
  expect(guard.evaluate('POST', '/v1.41/containers/create', { client, ...create({ Binds: ['/var/run/docker.sock:/var/run/docker.sock'] }) })).toMatchObject({
    allowed: false,
    rule: 'ALLOW_BIND_MOUNTS',
  });
});

test('Traefik sees only the containers it routes (traefik.enable=true), without their environment values', () => {
  const list = guard.evaluate('GET', '/v1.41/containers/json?all=1', { client: TRAEFIK });
  expect(list.allowed).toBe(true);
  // dockerd does the filtering: the guard adds the label to the query it forwards.
  expect(decodeURIComponent(list.path ?? '')).toBe('/v1.41/containers/json?all=1&filters={"label":{"traefik.enable=true":true}}');
  const inspect = guard.evaluate('GET', '/v1.41/containers/web/json', { client: TRAEFIK });
  expect(inspect.obligations?.visible).toMatchObject({ kind: 'container', id: 'web', labels: [{ key: 'traefik.enable', value: 'true' }] });
  expect(inspect.obligations?.response).toMatchObject({ kind: 'container-inspect', redactEnv: true });
  // The other clients' answers are not rewritten.
  expect(guard.evaluate('GET', '/v1.41/containers/json', { client: WATCHTOWER }).path).toBe('/v1.41/containers/json');
});

test('the monitoring tools read logs and stats, not files (STRICT_READ)', () => {
  expect(guard.evaluate('GET', '/v1.41/containers/web/archive?path=/', { client: MONITORING })).toMatchObject({ allowed: false, rule: 'ALLOW_ARCHIVE' });
  expect(guard.evaluate('GET', '/v1.41/containers/web/top', { client: MONITORING })).toMatchObject({ allowed: false, rule: 'ALLOW_TOP' });
  expect(guard.evaluate('GET', '/v1.41/containers/web/logs?stdout=1', { client: MONITORING }).allowed).toBe(true);
});

test('a tool at an address the file does not list is refused, whatever it asks', () => {
  for (const [method, target] of [['GET', '/_ping'], ['GET', '/v1.41/containers/json']]) {
    expect(guard.evaluate(method as string, target as string, { client: { address: '172.25.0.9', listener: 'tcp' } })).toMatchObject({
      allowed: false,
      status: 403,
      rule: 'clients',
      reason: `docker-socket-filter denied ${method} ${target}: no client matches 172.25.0.9 (listener tcp)`,
    });
  }
});

test('portainer at the right address but on the read-only socket is not portainer', () => {
  expect(guard.evaluate('POST', '/v1.41/containers/create', { client: { address: '172.25.0.3', listener: 'ro' } }).client).toBe('monitoring');
});

test('the guard listens where the tutorials point the tools, and serves metrics apart', () => {
  expect(config.listen?.map((address) => address.name)).toEqual(['tcp', 'ro']);
  expect(config.settings.metricsListen).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 9180 });
});
