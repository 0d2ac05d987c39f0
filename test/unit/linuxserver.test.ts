import { describe, expect, test } from 'vitest';
import { createSocketFilter, LINUXSERVER_DEFAULTS, linuxserverPreset, type EnvLike } from '../../src/index.js';

const evaluateWith = (env: EnvLike) => createSocketFilter({ policy: linuxserverPreset(env) }).evaluate;

describe('linuxserverPreset: defaults', () => {
  test('grants EVENTS, PING, VERSION, LIBPOD_PING and LIBPOD_VERSION', () => {
    const granted = Object.entries(LINUXSERVER_DEFAULTS).filter(([, on]) => on).map(([name]) => name);
    expect(granted.sort()).toEqual(['EVENTS', 'LIBPOD_PING', 'LIBPOD_VERSION', 'PING', 'VERSION']);
  });

  test('has no GRPC section', () => {
    expect(LINUXSERVER_DEFAULTS).not.toHaveProperty('GRPC');
    expect(evaluateWith({ GRPC: '1', POST: '1' })('POST', '/v1.41/grpc').allowed).toBe(false);
  });

  test.each([
    ['GET', '/v4.0.0/libpod/_ping', true],
    ['GET', '/v4.0.0/libpod/version', true],
    ['GET', '/v4.0.0/libpod/containers/json', false],
    ['GET', '/v1.41/containers/json', false],
  ])('%s %s allowed=%s', (method, path, allowed) => {
    expect(evaluateWith({})(method, path).allowed).toBe(allowed);
  });
});

describe('linuxserverPreset: actions come before the write gate', () => {
  const actions: ReadonlyArray<readonly [string, string, string]> = [
    ['ALLOW_START', '/containers', 'start'],
    ['ALLOW_STOP', '/containers', 'stop'],
    ['ALLOW_RESTARTS', '/containers', 'restart'],
    ['ALLOW_RESTARTS', '/containers', 'kill'],
    ['ALLOW_PAUSE', '/containers', 'pause'],
    ['ALLOW_UNPAUSE', '/containers', 'unpause'],
    ['LIBPOD_ALLOW_START', '/libpod/containers', 'start'],
    ['LIBPOD_ALLOW_STOP', '/libpod/containers', 'stop'],
    ['LIBPOD_ALLOW_RESTARTS', '/libpod/containers', 'kill'],
    ['LIBPOD_ALLOW_PAUSE', '/libpod/containers', 'pause'],
    ['LIBPOD_ALLOW_UNPAUSE', '/libpod/containers', 'unpause'],
    ['LIBPOD_ALLOW_POD_START', '/libpod/pods', 'start'],
    ['LIBPOD_ALLOW_POD_STOP', '/libpod/pods', 'stop'],
    ['LIBPOD_ALLOW_POD_RESTARTS', '/libpod/pods', 'restart'],
    ['LIBPOD_ALLOW_POD_PAUSE', '/libpod/pods', 'pause'],
    ['LIBPOD_ALLOW_POD_UNPAUSE', '/libpod/pods', 'unpause'],
  ];

  test.each(actions)('%s=1 POST=0 allows POST %s/<name>/%s', (variable, base, action) => {
    const decision = evaluateWith({ [variable]: '1', POST: '0' })('POST', `/v1.41${base}/web/${action}`);
    expect(decision).toMatchObject({ allowed: true, rule: variable });
  });

  test.each(actions)('%s=0 denies POST %s/<name>/%s', (variable, base, action) => {
    expect(evaluateWith({ [variable]: '0' })('POST', `/v1.41${base}/web/${action}`).allowed).toBe(false);
  });

  test('ALLOW_START does not open the libpod route, nor the reverse', () => {
    expect(evaluateWith({ ALLOW_START: '1' })('POST', '/v4.0.0/libpod/containers/web/start').allowed).toBe(false);
    expect(evaluateWith({ LIBPOD_ALLOW_START: '1' })('POST', '/v1.41/containers/web/start').allowed).toBe(false);
  });

  test('POST=0 still gates every other write', () => {
    const evaluate = evaluateWith({ ALLOW_START: '1', CONTAINERS: '1' });
    expect(evaluate('POST', '/v1.41/containers/create')).toMatchObject({ allowed: false, rule: 'POST' });
    expect(evaluate('DELETE', '/v1.41/containers/web')).toMatchObject({ allowed: false, rule: 'POST' });
  });
});

describe('linuxserverPreset: container sub-resource gates', () => {
  const resources = ['archive', 'changes', 'export', 'logs', 'top'];
  test.each(resources)('CONTAINERS=1 still denies /containers/<name>/%s', (resource) => {
    const decision = evaluateWith({ CONTAINERS: '1' })('GET', `/v1.41/containers/web/${resource}`);
    expect(decision).toMatchObject({ allowed: false, rule: `ALLOW_${resource.toUpperCase()}` });
    expect(decision.reason).toContain(`ALLOW_${resource.toUpperCase()}=1`);
  });

  test.each(resources)('ALLOW_%s=1 with CONTAINERS=1 allows it', (resource) => {
    const decision = evaluateWith({ CONTAINERS: '1', [`ALLOW_${resource.toUpperCase()}`]: '1' })(
      'GET',
      `/v1.41/containers/web/${resource}`,
    );
    expect(decision).toMatchObject({ allowed: true, rule: 'CONTAINERS' });
  });

  test.each(resources)('ALLOW_%s=1 alone does not grant containers', (resource) => {
    expect(evaluateWith({ [`ALLOW_${resource.toUpperCase()}`]: '1' })('GET', `/v1.41/containers/web/${resource}`).allowed).toBe(false);
  });

  test.each(resources)('the %s gate also covers /libpod/containers', (resource) => {
    const decision = evaluateWith({ LIBPOD_CONTAINERS: '1' })('GET', `/v4.0.0/libpod/containers/web/${resource}`);
    expect(decision).toMatchObject({ allowed: false, rule: `ALLOW_${resource.toUpperCase()}` });
  });

  test('PUT archive (writing files into a container) is gated too', () => {
    const decision = evaluateWith({ CONTAINERS: '1', POST: '1' })('PUT', '/v1.41/containers/web/archive?path=/');
    expect(decision).toMatchObject({ allowed: false, rule: 'ALLOW_ARCHIVE' });
  });

  test('other container reads stay allowed with CONTAINERS=1', () => {
    expect(evaluateWith({ CONTAINERS: '1' })('GET', '/v1.41/containers/web/json').allowed).toBe(true);
  });
});

describe('linuxserverPreset: Podman sections', () => {
  const libpod = Object.keys(LINUXSERVER_DEFAULTS).filter((name) => /^LIBPOD_[A-Z_]+$/.test(name) && !name.includes('ALLOW'));
  test('knows the LIBPOD_* section variables', () => {
    expect(libpod.sort()).toEqual(
      ['CONTAINERS', 'EVENTS', 'EXEC', 'GENERATE', 'IMAGES', 'INFO', 'MANIFESTS', 'NETWORKS', 'PING', 'PLAY', 'PODS', 'SECRETS', 'SYSTEM', 'VERSION', 'VOLUMES']
        .map((name) => `LIBPOD_${name}`)
        .sort(),
    );
  });

  test.each(libpod)('%s on and off', (variable) => {
    const segment = variable === 'LIBPOD_PING' ? '_ping' : variable.slice(7).toLowerCase();
    const path = `/v4.0.0/libpod/${segment}/json`;
    expect(evaluateWith({ [variable]: '1' })('GET', path)).toMatchObject({ allowed: true, rule: variable });
    const off = evaluateWith({ [variable]: '0' })('GET', path);
    expect(off).toMatchObject({ allowed: false, rule: 'default-deny' });
    expect(off.reason).toContain(`${variable}=1`);
  });

  test('CONTAINERS does not grant /libpod/containers', () => {
    expect(evaluateWith({ CONTAINERS: '1' })('GET', '/v4.0.0/libpod/containers/json').allowed).toBe(false);
  });

  test('values are read as in the Tecnativa image', () => {
    expect(() => linuxserverPreset({ LIBPOD_PODS: 'yes' })).toThrow(/`LIBPOD_PODS=yes`/);
    expect(linuxserverPreset({ LIBPOD_PODS: '2' }).source?.settings.LIBPOD_PODS).toBe(true);
  });
});

// linuxserver/docker-socket-proxy's current HAProxy template (root/templates/haproxy.cfg), its
// sub-resource gates as data: `http-request deny if { path,url_dec -m reg -i
// ^(/v[\d\.]+)?(/libpod)?/(containers|pods)/[a-zA-Z0-9_.-]+/(<resource>) } !allow_<resource>`.
// Each regular expression is unanchored at its end, so `change` also gates `changes`.
const LINUXSERVER_GATES: ReadonlyArray<readonly [string, string]> = [
  ['archive', 'ALLOW_ARCHIVE'],
  ['change', 'ALLOW_CHANGES'],
  ['export', 'ALLOW_EXPORT'],
  ['logs', 'ALLOW_LOGS'],
  ['top', 'ALLOW_TOP'],
];
// The routes those expressions cover that a daemon serves (dockerd's and Podman's), by resource.
const ROUTES_BY_RESOURCE: Readonly<Record<string, readonly string[]>> = {
  archive: ['archive'],
  change: ['changes'],
  export: ['export'],
  logs: ['logs'],
  top: ['top'],
};

describe('linuxserver parity: every route its current configuration gates is gated here', () => {
  // Everything else granted, so that only the gate can refuse.
  const everything = {
    CONTAINERS: '1',
    POST: '1',
    LIBPOD_CONTAINERS: '1',
    LIBPOD_PODS: '1',
  };
  const cases = LINUXSERVER_GATES.flatMap(([resource, variable]) =>
    (ROUTES_BY_RESOURCE[resource] ?? []).flatMap((route) =>
      ['', '/v1.41', '/v4.0.0'].flatMap((version) =>
        ['/containers', '/libpod/containers', '/libpod/pods', '/pods'].flatMap((base) =>
          ['GET', 'HEAD', 'PUT', 'POST'].map((method) => [method, `${version}${base}/web_1.x/${route}`, variable] as const),
        ),
      ),
    ),
  );

  test.each(cases)('%s %s is denied unless %s', (method, path, variable) => {
    expect(evaluateWith(everything)(method, path).allowed).toBe(false);
    const granted = evaluateWith({ ...everything, [variable]: '1' })(method, path);
    // With the variable, only the section decides (and `/pods` is no section of either daemon).
    if (path.includes('/libpod/') || !path.includes('/pods/')) expect(granted.rule).not.toBe(variable);
  });

  test('/libpod/pods/<name>/top is gated by ALLOW_TOP (it was opened by LIBPOD_PODS alone)', () => {
    expect(evaluateWith({ LIBPOD_PODS: '1' })('GET', '/v4.0.0/libpod/pods/web/top')).toMatchObject({ allowed: false, rule: 'ALLOW_TOP' });
    expect(evaluateWith({ LIBPOD_PODS: '1', ALLOW_TOP: '1' })('GET', '/v4.0.0/libpod/pods/web/top')).toMatchObject({ allowed: true, rule: 'LIBPOD_PODS' });
  });

  test.each([
    ['POST', '/v1.41/containers/web/attach?logs=1&stream=1&stdout=1'],
    ['POST', '/v1.41/containers/web/attach?logs=yes'],
    ['POST', '/v1.41/containers/web/attach?l%6Fgs=1'],
    ['GET', '/v1.41/containers/web/attach/ws?logs=1&stream=1'],
    ['POST', '/v4.0.0/libpod/containers/web/attach?logs=true'],
  ])('attach with logs=1 replays the logs: %s %s needs ALLOW_LOGS', (method, path) => {
    const env = { ...everything, POST: '1' };
    expect(evaluateWith(env)(method, path, { upgrade: true })).toMatchObject({ allowed: false, rule: 'ALLOW_LOGS' });
    expect(evaluateWith({ ...env, ALLOW_LOGS: '1' })(method, path, { upgrade: true }).allowed).toBe(true);
  });

  test.each([
    ['an attach without logs', '/v1.41/containers/web/attach?stream=1&stdout=1', {}],
    ['logs=0', '/v1.41/containers/web/attach?logs=0&stream=1', {}],
    ['logs=false', '/v1.41/containers/web/attach?logs=false', {}],
  ])('%s is not gated', (_name, path, request) => {
    expect(evaluateWith({ ...everything })('POST', path, { upgrade: true, ...request }).allowed).toBe(true);
  });

  test.each([
    ['a form body (its fields are parameters to dockerd)', '/v1.41/containers/web/attach?stream=1', { contentType: 'application/x-www-form-urlencoded' }],
    ['a query Go releases read differently', '/v1.41/containers/web/attach?stream=1;logs=1', {}],
  ])('%s counts as logs=1', (_name, path, request) => {
    expect(evaluateWith({ ...everything })('POST', path, { upgrade: true, ...request })).toMatchObject({ allowed: false, rule: 'ALLOW_LOGS' });
  });

  test('an exec create needs EXEC (docker), LIBPOD_EXEC (Podman), as the exec start does', () => {
    expect(evaluateWith(everything)('POST', '/v1.41/containers/web/exec')).toMatchObject({ allowed: false, rule: 'EXEC' });
    expect(evaluateWith({ ...everything, EXEC: '1' })('POST', '/v1.41/containers/web/exec').allowed).toBe(true);
    expect(evaluateWith(everything)('POST', '/v4.0.0/libpod/containers/web/exec')).toMatchObject({ allowed: false, rule: 'LIBPOD_EXEC' });
    expect(evaluateWith({ ...everything, LIBPOD_EXEC: '1' })('POST', '/v4.0.0/libpod/containers/web/exec').allowed).toBe(true);
  });
});
