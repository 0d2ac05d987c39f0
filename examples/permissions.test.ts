// Copy this into your project: it proves, without a daemon, what your guard lets through.
// Run: npx vitest run examples/permissions.test.ts
import { describe, expect, test } from 'vitest';
import { createSocketFilter, definePolicy, permissionTable, tecnativaPreset } from 'docker-socket-filter';

// The environment of your docker-socket-proxy service (e.g. from your compose file).
const traefik = createSocketFilter({ policy: tecnativaPreset({ CONTAINERS: '1' }) });

describe('Traefik may discover containers and nothing else', () => {
  test.each([
    ['GET', '/v1.41/containers/json', true],
    ['GET', '/v1.41/containers/4f1c2d0e9a7b/json', true],
    ['GET', '/v1.41/events', true],
    ['POST', '/v1.41/containers/create', false],
    ['POST', '/v1.41/containers/4f1c2d0e9a7b/exec', false],
    ['GET', '/v1.41/containers/4f1c2d0e9a7b/attach/ws?stdin=1', false],
    ['GET', '/v1.41/images/json', false],
    ['GET', '/v1.41/containers/../images/json', false],
  ])('%s %s allowed=%s', (method, path, allowed) => {
    expect(traefik.evaluate(method, path).allowed).toBe(allowed);
  });
});

test('a custom policy for Traefik: list containers and read events, nothing else', () => {
  const traefikOnly = createSocketFilter({
    policy: definePolicy({
      name: 'traefik',
      allow: ['GET /containers/json', 'GET /containers/*/json', 'GET /events', 'GET,HEAD /_ping', 'GET /version'],
    }),
  });
  expect(traefikOnly.evaluate('GET', '/v1.41/containers/web/json').allowed).toBe(true);
  expect(traefikOnly.evaluate('GET', '/v1.41/containers/web/logs').allowed).toBe(false);
  expect(traefikOnly.evaluate('GET', '/v1.41/containers/parent/alias/json').allowed).toBe(false);
});

test('the deploy job may start and stop, nothing may exec', () => {
  const deploy = createSocketFilter({
    policy: definePolicy({
      extends: tecnativaPreset({ CONTAINERS: '1' }),
      allow: ['POST /containers/*/start', 'POST /containers/*/stop'],
      deny: ['* /containers/*/exec', '* /exec/**', '* /containers/*/archive'],
    }),
  });
  expect(deploy.evaluate('POST', '/v1.41/containers/web/start').allowed).toBe(true);
  expect(deploy.evaluate('POST', '/v1.41/containers/web/stop').allowed).toBe(true);
  expect(deploy.evaluate('POST', '/v1.41/containers/web/exec')).toMatchObject({ allowed: false, rule: 'deny * /containers/*/exec' });
  expect(deploy.evaluate('POST', '/v1.41/containers/web/kill').allowed).toBe(false);
});

test('the whole permission set, as a table', () => {
  const table = permissionTable(tecnativaPreset({ CONTAINERS: '1' }));
  const writes = table.rows.filter((row) => row.methods.POST?.allowed === true || row.methods.DELETE?.allowed === true);
  expect(writes).toEqual([]);
});
