import { describe, expect, test } from 'vitest';
import { createSocketFilter, definePolicy, tecnativaPreset, type PolicySpec } from '../../src/index.js';

const evaluateWith = (spec: PolicySpec) => createSocketFilter({ policy: definePolicy(spec) }).evaluate;

describe('definePolicy: string rules', () => {
  const traefik = evaluateWith({
    name: 'traefik',
    allow: ['GET /containers/json', 'GET /containers/*/json', 'GET /events', 'GET,HEAD /_ping', 'GET /version'],
  });

  test.each([
    ['GET', '/v1.41/containers/json', true],
    ['GET', '/v1.41/containers/web/json', true],
    ['HEAD', '/_ping', true],
    ['GET', '/v1.41/events?since=1', true],
    ['GET', '/v1.41/containers/web/logs', false],
    ['GET', '/v1.41/containers/parent/alias/json', false],
    ['POST', '/v1.41/containers/json', false],
    ['HEAD', '/v1.41/version', false],
    ['GET', '/v1.41/images/json', false],
    ['GET', '/v1.41/containers/web/../json', false],
  ])('%s %s allowed=%s', (method, target, allowed) => {
    expect(traefik(method, target).allowed).toBe(allowed);
  });

  test('the rule id is the rule as written', () => {
    expect(traefik('GET', '/v1.41/containers/web/json').rule).toBe('allow GET /containers/*/json');
    expect(traefik('GET', '/v1.41/info')).toMatchObject({ rule: 'default-deny' });
    expect(traefik('GET', '/v1.41/info').reason).toContain('traefik');
  });

  test('* means every method', () => {
    const evaluate = evaluateWith({ allow: ['* /volumes/**'] });
    for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'DELETE']) expect(evaluate(method, '/v1.41/volumes/data').allowed).toBe(true);
    expect(evaluate('OPTIONS', '/v1.41/volumes/data').allowed).toBe(false);
  });
});

describe('definePolicy: deny wins over allow', () => {
  test.each([
    [['* /containers/**'], ['* /containers/*/exec'], 'POST', '/v1.41/containers/web/exec', false],
    [['* /containers/**'], ['* /containers/*/exec'], 'POST', '/v1.41/containers/web/start', true],
    [['GET /containers/*/logs'], ['GET /containers/**'], 'GET', '/v1.41/containers/web/logs', false],
  ])('allow %j deny %j: %s %s allowed=%s', (allow, deny, method, target, allowed) => {
    expect(evaluateWith({ allow, deny })(method, target).allowed).toBe(allowed);
  });
});

describe('definePolicy: extending and narrowing a preset', () => {
  const deployer = evaluateWith({
    extends: tecnativaPreset({ CONTAINERS: '1' }),
    allow: ['POST /containers/*/start', 'POST /containers/*/stop'],
    deny: ['* /containers/*/exec', '* /containers/*/archive'],
  });

  test.each([
    ['GET', '/v1.41/containers/json', true, 'CONTAINERS'],
    ['POST', '/v1.41/containers/web/start', true, 'allow POST /containers/*/start'],
    ['POST', '/v1.41/containers/web/stop', true, 'allow POST /containers/*/stop'],
    ['POST', '/v1.41/containers/web/kill', false, 'POST'],
    ['POST', '/v1.41/containers/web/exec', false, 'deny * /containers/*/exec'],
    ['GET', '/v1.41/containers/web/archive?path=/etc', false, 'deny * /containers/*/archive'],
    ['POST', '/v1.41/containers/create', false, 'POST'],
  ])('%s %s allowed=%s by %s', (method, target, allowed, rule) => {
    expect(deployer(method, target)).toMatchObject({ allowed, rule });
  });

  test('the name and hints follow the preset', () => {
    const policy = definePolicy({ extends: tecnativaPreset({}), allow: ['GET /info'] });
    expect(policy.name).toBe('tecnativa+custom');
    expect(createSocketFilter({ policy }).evaluate('POST', '/v1.41/containers/create').reason).toBe(
      'docker-socket-filter denied POST /v1.41/containers/create: it needs POST=1 and CONTAINERS=1',
    );
  });

  test('the stricter checks hold for custom rules too', () => {
    const evaluate = evaluateWith({ allow: ['* /containers/**'] });
    expect(evaluate('POST', '/v1.41/containers/parent/alias/start')).toMatchObject({ allowed: false, rule: 'container-name' });
    expect(evaluate('POST', '/v1.23/containers/web/start')).toMatchObject({ allowed: false, rule: 'min-api-version' });
    expect(evaluate('POST', '/v1.41/containers/web/start', { bodyLength: 200 })).toMatchObject({ allowed: false, rule: 'start-body' });
    expect(evaluate('OPTIONS', '/v1.41/containers/json')).toMatchObject({ allowed: false, rule: 'method' });
  });
});

describe('definePolicy: invalid rules throw at creation, naming the rule', () => {
  test.each([
    [{ allow: ['PATCH /containers/json'] }, 'allow[0] ("PATCH /containers/json")', '"PATCH"'],
    [{ allow: ['GET'] }, 'allow[0] ("GET")', 'METHODS GLOB'],
    [{ allow: ['GET /a', 'GET containers'] }, 'allow[1] ("GET containers")', 'must start with /'],
    [{ deny: ['* /containers/[x'] }, 'deny[0] ("* /containers/[x")', 'not a valid glob'],
    [{ deny: ['get /x'] }, 'deny[0] ("get /x")', '"get"'],
    [{ allow: [{ paths: '/x', methods: ['GET'], when: 1 }] }, 'allow[0]', 'unknown key `when`'],
    [{ allow: [{ paths: '/x/../y' }] }, 'allow[0]', 'dot segment'],
    [{ allow: [42] }, 'allow[0]', 'string or an object'],
  ])('%j', (spec, where, message) => {
    let error: (TypeError & { code?: string }) | undefined;
    try {
      definePolicy(spec as PolicySpec);
    } catch (thrown) {
      error = thrown as TypeError & { code?: string };
    }
    expect(error).toBeInstanceOf(TypeError);
    expect(error?.code).toBe('ERR_DSF_INVALID_RULE');
    expect(error?.message).toContain(`\`${where}\``);
    expect(error?.message).toContain(message);
  });

  test.each([
    [{ allow: 'GET /x' }, '`allow`'],
    [{ alow: ['GET /x'] }, '`alow`'],
    [{ extends: 'tecnativa' }, '`extends`'],
    [{ name: '' }, '`name`'],
  ])('%j is refused naming %s', (spec, name) => {
    expect(() => definePolicy(spec as unknown as PolicySpec)).toThrow(name);
  });

  test('object rules', () => {
    const evaluate = evaluateWith({
      allow: [{ id: 'deploy', methods: ['POST'], paths: ['/containers/*/start', '/containers/*/stop'], reason: 'is a deploy' }],
    });
    expect(evaluate('POST', '/v1.41/containers/web/stop')).toMatchObject({
      allowed: true,
      rule: 'deploy',
      reason: 'POST /v1.41/containers/web/stop is a deploy',
    });
  });
});

describe('filters share nothing mutable', () => {
  test('two filters with different policies decide independently', () => {
    const readOnly = createSocketFilter({ policy: tecnativaPreset({ CONTAINERS: '1' }) });
    const writer = createSocketFilter({ policy: tecnativaPreset({ CONTAINERS: '1', POST: '1' }) });
    expect(readOnly.evaluate('POST', '/v1.41/containers/create').allowed).toBe(false);
    expect(writer.evaluate('POST', '/v1.41/containers/create').allowed).toBe(true);
    expect(readOnly.evaluate('POST', '/v1.41/containers/create').allowed).toBe(false);
    expect(Object.isFrozen(readOnly.policy?.rules)).toBe(true);
  });
});
