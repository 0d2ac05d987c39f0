import { describe, expect, test } from 'vitest';
import { definePolicy, formatPermissionTable, linuxserverPreset, permissionTable, tecnativaPreset } from '../../src/index.js';

const cell = (table: ReturnType<typeof permissionTable>, path: string, method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE') =>
  table.rows.find((row) => row.path === path)?.methods[method];

describe('permissionTable', () => {
  test('the default preset', () => {
    const table = permissionTable(tecnativaPreset({}));
    expect(table.policy).toBe('tecnativa');
    const allowed = table.rows.flatMap((row) => table.methods.filter((m) => row.methods[m]?.allowed === true).map((m) => `${m} ${row.path}`));
    expect(allowed.sort()).toEqual(['GET /_ping', 'GET /events', 'GET /version', 'HEAD /_ping']);
  });

  test.each([
    [{ CONTAINERS: '1' }, '/containers/json', 'GET', { allowed: true, rule: 'CONTAINERS' }],
    [{ CONTAINERS: '1' }, '/containers/create', 'POST', { allowed: false, rule: 'POST', needs: 'POST=1' }],
    [{}, '/containers/create', 'POST', { allowed: false, rule: 'POST', needs: 'POST=1 and CONTAINERS=1' }],
    [{ POST: '1' }, '/containers/create', 'POST', { allowed: false, rule: 'default-deny', needs: 'CONTAINERS=1' }],
    [{ CONTAINERS: '1' }, '/containers/{name}/attach/ws', 'GET', { allowed: false, rule: 'POST', needs: 'POST=1' }],
    [{ CONTAINERS: '1', POST: '1' }, '/containers/{name}/attach/ws', 'GET', { allowed: true, rule: 'CONTAINERS' }],
    [{ POST: '1', ALLOW_START: '1' }, '/containers/{name}/start', 'POST', { allowed: true, rule: 'ALLOW_START' }],
    [{ POST: '1', ALLOW_START: '1' }, '/containers/{name}/stop', 'POST', { allowed: false, rule: 'default-deny', needs: 'CONTAINERS=1' }],
  ] as const)('tecnativa %j: %s %s is %j', (env, path, method, expected) => {
    expect(cell(permissionTable(tecnativaPreset(env)), path, method)).toEqual(expected);
  });

  test.each([
    ['/containers/create', ['POST']],
    ['/containers/json', ['GET']],
    ['/containers/{name}', ['DELETE']],
    ['/containers/{name}/archive', ['GET', 'HEAD', 'PUT']],
    ['/_ping', ['GET', 'HEAD']],
  ])('%s has cells for the methods dockerd routes there only: %j', (path, methods) => {
    const row = permissionTable(tecnativaPreset({})).rows.find((candidate) => candidate.path === path);
    expect(Object.keys(row?.methods ?? {})).toEqual(methods);
  });

  test('custom sections get rows of their own, with every method', () => {
    const table = permissionTable(linuxserverPreset({ LIBPOD_PODS: '1' }));
    expect(cell(table, '/libpod/pods', 'GET')).toEqual({ allowed: true, rule: 'LIBPOD_PODS' });
    expect(Object.keys(table.rows.find((row) => row.path === '/libpod/pods')?.methods ?? {})).toHaveLength(5);
    const custom = permissionTable(definePolicy({ allow: ['GET /plugins/privileges'] }));
    expect(cell(custom, '/plugins/privileges', 'GET')).toEqual({ allowed: true, rule: 'allow GET /plugins/privileges' });
    // A preset's section covered by the routes above gets no row of its own.
    expect(permissionTable(tecnativaPreset({ CONTAINERS: '1' })).rows.map((row) => row.path)).not.toContain('/containers');
  });

  test('a linuxserver sub-resource gate says what grants it', () => {
    expect(cell(permissionTable(linuxserverPreset({ CONTAINERS: '1' })), '/containers/{name}/logs', 'GET')).toEqual({
      allowed: false,
      rule: 'ALLOW_LOGS',
      needs: 'ALLOW_LOGS=1',
    });
  });

  test('formatPermissionTable renders one aligned line per route: allowed methods, then what would grant the rest', () => {
    const text = formatPermissionTable(tecnativaPreset({ CONTAINERS: '1' }));
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('policy: tecnativa');
    expect(lines[1]).toMatch(/^route\s+allowed\s+denied: what would grant it$/);
    expect(lines).toContainEqual(expect.stringMatching(/^\/containers\/json\s+GET \(CONTAINERS\)$/));
    expect(lines).toContainEqual(expect.stringMatching(/^\/containers\/create\s+-\s+POST: POST=1$/));
    expect(lines).toContainEqual(expect.stringMatching(/^\/containers\/\{name\}\/archive\s+GET HEAD \(CONTAINERS\)\s+PUT: POST=1$/));
    expect(lines).toContainEqual(expect.stringMatching(/^\/images\/create\s+-\s+POST: POST=1 and IMAGES=1$/));
    expect(lines).toContainEqual(expect.stringMatching(/^\/_ping\s+GET HEAD \(PING\)$/));
  });
});
