import { describe, expect, test } from 'vitest';
import { createSocketFilter, TECNATIVA_DEFAULTS, tecnativaPreset, type EnvLike } from '../../src/index.js';

const evaluateWith = (env: EnvLike) => createSocketFilter({ policy: tecnativaPreset(env) }).evaluate;

/** Every section variable of the reference, with a GET and a write under its section. */
const SECTIONS: ReadonlyArray<readonly [string, string, string]> = [
  ['AUTH', '/v1.41/auth', '/v1.41/auth'],
  ['BUILD', '/v1.41/build/prune', '/v1.41/build'],
  ['COMMIT', '/v1.41/commit', '/v1.41/commit?container=abc'],
  ['CONFIGS', '/v1.41/configs', '/v1.41/configs/create'],
  ['CONTAINERS', '/v1.41/containers/json', '/v1.41/containers/create'],
  ['DISTRIBUTION', '/v1.41/distribution/busybox/json', '/v1.41/distribution/busybox/json'],
  ['EVENTS', '/v1.41/events', '/v1.41/events'],
  ['EXEC', '/v1.41/exec/abc/json', '/v1.41/exec/abc/start'],
  ['GRPC', '/v1.41/grpc', '/v1.41/grpc'],
  ['IMAGES', '/v1.41/images/json', '/v1.41/images/create?fromImage=busybox'],
  ['INFO', '/v1.41/info', '/v1.41/info'],
  ['NETWORKS', '/v1.41/networks', '/v1.41/networks/create'],
  ['NODES', '/v1.41/nodes', '/v1.41/nodes/abc/update'],
  ['PING', '/_ping', '/_ping'],
  ['PLUGINS', '/v1.41/plugins', '/v1.41/plugins/pull'],
  ['SECRETS', '/v1.41/secrets', '/v1.41/secrets/create'],
  ['SERVICES', '/v1.41/services', '/v1.41/services/create'],
  ['SESSION', '/v1.41/session', '/v1.41/session'],
  ['SWARM', '/v1.41/swarm', '/v1.41/swarm/init'],
  ['SYSTEM', '/v1.41/system/df', '/v1.41/system/df'],
  ['TASKS', '/v1.41/tasks', '/v1.41/tasks'],
  ['VERSION', '/v1.41/version', '/version'],
  ['VOLUMES', '/v1.41/volumes', '/v1.41/volumes/create'],
];

describe('tecnativaPreset: defaults', () => {
  test('grants exactly EVENTS, PING and VERSION', () => {
    const granted = Object.entries(TECNATIVA_DEFAULTS).filter(([, on]) => on).map(([name]) => name);
    expect(granted.sort()).toEqual(['EVENTS', 'PING', 'VERSION']);
  });

  test('knows every variable of the reference', () => {
    expect(Object.keys(TECNATIVA_DEFAULTS).sort()).toEqual(
      [...SECTIONS.map(([name]) => name), 'POST', 'ALLOW_START', 'ALLOW_STOP', 'ALLOW_RESTARTS'].sort(),
    );
  });

  test.each(SECTIONS)('%s by default', (variable, readPath) => {
    const decision = evaluateWith({})('GET', readPath);
    expect(decision.allowed).toBe(TECNATIVA_DEFAULTS[variable]);
    expect(decision.rule).toBe(TECNATIVA_DEFAULTS[variable] ? variable : 'default-deny');
  });

  test('createSocketFilter() without a policy is the built-in default', () => {
    const evaluate = createSocketFilter().evaluate;
    expect(evaluate('GET', '/v1.41/version').allowed).toBe(true);
    expect(evaluate('GET', '/_ping').allowed).toBe(true);
    expect(evaluate('GET', '/v1.41/events?since=1').allowed).toBe(true);
    expect(evaluate('GET', '/v1.41/containers/json').allowed).toBe(false);
    expect(evaluate('GET', '/v1.41/info').allowed).toBe(false);
  });

  test.each(['/v1.41/constructor', '/toString/x', '/v1.41/__proto__', '/hasOwnProperty', '/valueOf/abc'])(
    'a path named after an Object.prototype member (%s) is denied with a plain reason',
    (path) => {
      const decision = evaluateWith({})('GET', path);
      expect(decision).toMatchObject({ allowed: false, status: 403, rule: 'default-deny' });
      expect(decision.reason).toBe(`docker-socket-filter denied GET ${path}: no rule of the tecnativa policy allows it`);
    },
  );

  test('the reason names the variables to enable', () => {
    expect(evaluateWith({})('POST', '/v1.41/containers/create').reason).toBe(
      'docker-socket-filter denied POST /v1.41/containers/create: it needs POST=1 and CONTAINERS=1',
    );
    expect(evaluateWith({ POST: '1' })('POST', '/v1.41/containers/create').reason).toBe(
      'docker-socket-filter denied POST /v1.41/containers/create: it needs CONTAINERS=1',
    );
    expect(evaluateWith({ CONTAINERS: '1' })('POST', '/v1.41/containers/create').reason).toBe(
      'docker-socket-filter denied POST /v1.41/containers/create: it needs POST=1',
    );
  });
});

describe('tecnativaPreset: each section variable on and off', () => {
  test.each(SECTIONS)('%s=1 grants reads of its section', (variable, readPath) => {
    const all = Object.fromEntries(Object.keys(TECNATIVA_DEFAULTS).map((name) => [name, '0']));
    const decision = evaluateWith({ ...all, [variable]: '1' })('GET', readPath);
    expect(decision).toMatchObject({ allowed: true, status: 200, rule: variable });
  });

  test.each(SECTIONS)('%s=0 denies reads of its section', (variable, readPath) => {
    const decision = evaluateWith({ [variable]: '0' })('GET', readPath);
    expect(decision).toMatchObject({ allowed: false, status: 403, rule: 'default-deny' });
    expect(decision.reason).toContain(`${variable}=1`);
  });

  test.each(SECTIONS)('%s=1 without POST=1 denies writes to its section', (variable, _readPath, writePath) => {
    const decision = evaluateWith({ [variable]: '1' })('POST', writePath);
    expect(decision).toMatchObject({ allowed: false, status: 403, rule: 'POST' });
  });

  test.each(SECTIONS)('%s=1 POST=1 grants writes to its section', (variable, _readPath, writePath) => {
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const decision = evaluateWith({ [variable]: '1', POST: '1' })(method, writePath);
      expect(decision).toMatchObject({ allowed: true, rule: variable });
    }
  });

  test.each(SECTIONS.filter(([name]) => !TECNATIVA_DEFAULTS[name]))('POST=1 alone does not grant %s', (_variable, readPath, writePath) => {
    const evaluate = evaluateWith({ POST: '1' });
    expect(evaluate('GET', readPath).allowed).toBe(false);
    expect(evaluate('POST', writePath).allowed).toBe(false);
  });
});

describe('tecnativaPreset: the write gate comes first', () => {
  test.each([
    ['GET', true],
    ['HEAD', true],
    ['POST', false],
    ['PUT', false],
    ['DELETE', false],
  ])('%s with CONTAINERS=1 POST=0: allowed=%s', (method, allowed) => {
    expect(evaluateWith({ CONTAINERS: '1' })(method, '/v1.41/containers/abc').allowed).toBe(allowed);
  });

  test.each(['ALLOW_START', 'ALLOW_STOP', 'ALLOW_RESTARTS'])('%s has no effect without POST=1', (variable) => {
    const action = variable === 'ALLOW_START' ? 'start' : 'stop';
    const decision = evaluateWith({ [variable]: '1' })('POST', `/v1.41/containers/web/${action}`);
    expect(decision).toMatchObject({ allowed: false, rule: 'POST' });
  });
});

describe('tecnativaPreset: ALLOW_START, ALLOW_STOP, ALLOW_RESTARTS with POST=1', () => {
  const actions = ['start', 'stop', 'restart', 'kill', 'pause', 'unpause', 'rename', 'update', 'exec', 'attach', 'wait'];
  const grants: Record<string, readonly string[]> = {
    ALLOW_START: ['start'],
    ALLOW_STOP: ['stop'],
    ALLOW_RESTARTS: ['stop', 'restart', 'kill'],
  };
  const cases = Object.entries(grants).flatMap(([variable, granted]) =>
    actions.map((action) => [variable, action, granted.includes(action)] as const),
  );

  // Each action with a query parameter it has in the Docker API.
  const ownQuery: Record<string, string> = { start: '?detachKeys=ctrl-x', stop: '?t=5', restart: '?t=5&signal=SIGTERM', kill: '?signal=SIGKILL' };

  test.each(cases)('%s: POST /containers/<name>/%s allowed=%s', (variable, action, allowed) => {
    const evaluate = evaluateWith({ POST: '1', [variable]: '1' });
    const decision = evaluate('POST', `/v1.41/containers/my_web-1.x/${action}${ownQuery[action] ?? ''}`);
    expect(decision.allowed).toBe(allowed);
    // An exec create needs EXEC as well (see the exec gate below).
    expect(decision.rule).toBe(allowed ? variable : action === 'exec' ? 'EXEC' : 'default-deny');
  });

  // The query is configuration too: `start?checkpoint=…` restores a CRIU checkpoint from a
  // directory the client chose on a daemon run with --experimental.
  test.each([
    ['ALLOW_START', '/v1.41/containers/web/start?checkpoint=../../../tmp/x', 'checkpoint', 'detachKeys'],
    ['ALLOW_START', '/v1.41/containers/web/start?checkpoint-dir=/tmp&checkpoint=c', 'checkpoint-dir', 'detachKeys'],
    ['ALLOW_START', '/v1.41/containers/web/start?t=5', 't', 'detachKeys'],
    ['ALLOW_STOP', '/v1.41/containers/web/stop?t=5&force=1', 'force', 't, signal'],
    ['ALLOW_RESTARTS', '/v1.41/containers/web/kill?t=1', 't', 'signal'],
    ['ALLOW_START', '/v1.41/containers/web/start?%63heckpoint=x', 'checkpoint', 'detachKeys'],
  ])('%s refuses %s, naming `%s`', (variable, target, name, allowed) => {
    const decision = evaluateWith({ POST: '1', [variable]: '1' })('POST', target);
    expect(decision).toMatchObject({ allowed: false, status: 403, rule: variable, field: `query.${name}` });
    expect(decision.reason).toContain(`${variable} allows no query parameter "${name}" (it allows: ${allowed})`);
  });

  test.each([
    ['a ";" (Go releases split on it differently)', '/v1.41/containers/web/start?detachKeys=x;checkpoint=c', {}],
    ['a malformed escape', '/v1.41/containers/web/start?detachKeys=%zz', {}],
    ['a form body (dockerd reads its fields as parameters)', '/v1.41/containers/web/start', { contentType: 'application/x-www-form-urlencoded' }],
    ['a multipart form body', '/v1.41/containers/web/start', { contentType: 'multipart/form-data; boundary=x' }],
  ])('ALLOW_START refuses with 400 %s', (_name, target, request) => {
    const decision = evaluateWith({ POST: '1', ALLOW_START: '1' })('POST', target, request);
    expect(decision).toMatchObject({ allowed: false, status: 400, rule: 'ALLOW_START' });
  });

  test('a section grant (CONTAINERS with POST) is not an action rule: it does not restrict the query', () => {
    expect(evaluateWith({ POST: '1', CONTAINERS: '1', ALLOW_START: '1' })('POST', '/v1.41/containers/web/stop?t=5&force=1').allowed).toBe(true);
  });

  test.each(Object.keys(grants))('%s only applies to POST', (variable) => {
    const action = grants[variable]![0]!;
    const evaluate = evaluateWith({ POST: '1', [variable]: '1' });
    expect(evaluate('GET', `/v1.41/containers/web/${action}`).allowed).toBe(false);
    expect(evaluate('DELETE', `/v1.41/containers/web/${action}`).allowed).toBe(false);
  });

  test.each([
    '/v1.41/containers/web/start/kill',
    '/v1.41/containers/web/startx',
    '/v1.41/containers/parent/alias/start',
    '/v1.41/containers/web/start/../kill',
    '/v1.41/containers/we:b/start',
    '/v1.41/containers/start',
  ])('ALLOW_START does not allow %s', (path) => {
    expect(evaluateWith({ POST: '1', ALLOW_START: '1' })('POST', path).allowed).toBe(false);
  });
});

describe('tecnativaPreset: what counts as granted', () => {
  test.each(['1', '2', '-1', '+1', '01', '1abc', '1 ', '10'])('%j grants', (value) => {
    expect(tecnativaPreset({ CONTAINERS: value }).source?.settings.CONTAINERS).toBe(true);
    expect(evaluateWith({ CONTAINERS: value })('GET', '/v1.41/containers/json').allowed).toBe(true);
  });

  test.each(['0', '00', '-0', '+0', '0 ', '', 'false', 'FALSE', 'no', 'off'])('%j denies', (value) => {
    expect(tecnativaPreset({ EVENTS: value }).source?.settings.EVENTS).toBe(false);
    expect(evaluateWith({ EVENTS: value })('GET', '/v1.41/events').allowed).toBe(false);
  });

  test.each(['true', 'TRUE', 'yes', 'on', '0x1', ' 1', '0abc', 'enabled', '0.5', 'x'])(
    '%j is refused with a TypeError naming the variable',
    (value) => {
      let thrown: unknown;
      try {
        tecnativaPreset({ CONTAINERS: value });
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(TypeError);
      expect((thrown as TypeError).message).toContain(`\`CONTAINERS=${value}\``);
      expect((thrown as { code: string }).code).toBe('ERR_DSF_INVALID_ENV');
    },
  );

  test('a non-string value is refused', () => {
    expect(() => tecnativaPreset({ POST: 1 as unknown as string })).toThrow(/`POST`/);
  });

  test('unknown variables are ignored', () => {
    expect(() => tecnativaPreset({ PATH: '/usr/bin', HOME: '/root', containers: 'true' })).not.toThrow();
  });

  test('reads process.env by default', () => {
    const saved = process.env.CONTAINERS;
    process.env.CONTAINERS = '1';
    try {
      expect(tecnativaPreset().source?.settings.CONTAINERS).toBe(true);
    } finally {
      if (saved === undefined) delete process.env.CONTAINERS;
      else process.env.CONTAINERS = saved;
    }
  });

  test('the policy is frozen data', () => {
    const policy = tecnativaPreset({});
    expect(Object.isFrozen(policy)).toBe(true);
    expect(Object.isFrozen(policy.rules)).toBe(true);
    expect(policy.name).toBe('tecnativa');
  });
});

describe('an exec create needs EXEC, as its start does', () => {
  test.each<[Record<string, string>, boolean, string]>([
    [{ CONTAINERS: '1', POST: '1' }, false, 'it needs EXEC=1 (an exec instance is only good for an exec start, which EXEC grants)'],
    [{ CONTAINERS: '1' }, false, 'it needs POST=1 and EXEC=1'],
    [{}, false, 'it needs POST=1 and CONTAINERS=1 and EXEC=1'],
    [{ CONTAINERS: '1', POST: '1', EXEC: '1' }, true, 'is allowed by CONTAINERS'],
  ])('%j: allowed=%s (%s)', (env, allowed, reason) => {
    const decision = evaluateWith(env)('POST', '/v1.41/containers/web/exec');
    expect(decision.allowed).toBe(allowed);
    expect(decision.reason).toContain(reason);
    if (!allowed) expect(decision.rule).toBe('EXEC');
  });
});

