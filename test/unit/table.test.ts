import { describe, expect, test } from 'vitest';
import { definePolicy, formatPermissionTable, linuxserverPreset, permissionTable, tecnativaPreset } from '../../src/index.js';

const cell = (table: ReturnType<typeof permissionTable>, path: string, method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE') =>
  table.rows.find((row) => row.path === path)?.methods[method];

describe('permissionTable', () => {
  test('the default preset', () => {
    const table = permissionTable(tecnativaPreset({}));
    expect(table.policy).toBe('tecnativa');
    const allowed = table.rows.flatMap((row) => table.methods.filter((m) => row.methods[m].allowed).map((m) => `${m} ${row.path}`));
    expect(allowed.sort()).toEqual(['GET /_ping', 'GET /events', 'GET /version', 'HEAD /_ping', 'HEAD /events', 'HEAD /version']);
  });

  test.each([
    [{ CONTAINERS: '1' }, '/containers/json', 'GET', true, 'CONTAINERS'],
    [{ CONTAINERS: '1' }, '/containers/create', 'POST', false, 'POST'],
    [{ CONTAINERS: '1' }, '/containers/{name}/attach/ws', 'GET', false, 'POST'],
    [{ CONTAINERS: '1', POST: '1' }, '/containers/{name}/attach/ws', 'GET', true, 'CONTAINERS'],
    [{ POST: '1', ALLOW_START: '1' }, '/containers/{name}/start', 'POST', true, 'ALLOW_START'],
    [{ POST: '1', ALLOW_START: '1' }, '/containers/{name}/stop', 'POST', false, 'default-deny'],
  ] as const)('tecnativa %j: %s %s allowed=%s (%s)', (env, path, method, allowed, rule) => {
    expect(cell(permissionTable(tecnativaPreset(env)), path, method)).toEqual({ allowed, rule });
  });

  test('custom sections get rows of their own', () => {
    const table = permissionTable(linuxserverPreset({ LIBPOD_PODS: '1' }));
    expect(cell(table, '/libpod/pods', 'GET')).toEqual({ allowed: true, rule: 'LIBPOD_PODS' });
    const custom = permissionTable(definePolicy({ allow: ['GET /plugins/privileges'] }));
    expect(cell(custom, '/plugins/privileges', 'GET')).toEqual({ allowed: true, rule: 'allow GET /plugins/privileges' });
  });

  test('formatPermissionTable renders one aligned line per route', () => {
    const text = formatPermissionTable(tecnativaPreset({ CONTAINERS: '1' }));
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('policy: tecnativa');
    expect(lines[1]).toMatch(/^route\s+GET\s+HEAD\s+POST\s+PUT\s+DELETE\s+allowed by$/);
    expect(lines.some((line) => /^\/containers\/json\s+yes\s+yes\s+-\s+-\s+-\s+CONTAINERS$/.test(line))).toBe(true);
    expect(lines.find((line) => line.startsWith('/images '))).toMatch(/^\/images\s+-\s+-\s+-\s+-\s+-$/);
  });
});
