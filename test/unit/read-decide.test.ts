import { describe, expect, test } from 'vitest';
import { createSocketFilter, definePolicy, linuxserverPreset, tecnativaPreset, type Decision, type EnvLike } from '../../src/index.js';

const TRAEFIK = [{ key: 'traefik.enable', value: 'true' }];
const evaluateWith = (env: EnvLike) => createSocketFilter({ policy: tecnativaPreset(env) }).evaluate;
const filtersOf = (decision: Decision): unknown => {
  const path = decision.path as string;
  return JSON.parse(new URLSearchParams(path.slice(path.indexOf('?') + 1)).get('filters') as string);
};

const READER = { CONTAINERS: '1', SERVICES: '1', TASKS: '1', NETWORKS: '1', SYSTEM: '1', REDACT_ENV: '1', VISIBLE_LABELS: 'traefik.enable=true' };

describe('without a read section nothing changes', () => {
  const corpus: [string, string][] = [
    ['GET', '/v1.41/containers/json?all=1'],
    ['GET', '/v1.41/containers/web/json'],
    ['GET', '/v1.41/events?filters=%7B'],
    ['GET', '/v1.41/services'],
    ['GET', '/v1.41/tasks?filters=x'],
    ['GET', '/v1.41/exec/abc/json'],
    ['GET', '/v1.41/system/df'],
    ['POST', '/v1.41/containers/web/start'],
  ];
  test.each(corpus)('%s %s', (method, target) => {
    const plain = evaluateWith({ CONTAINERS: '1', SERVICES: '1', TASKS: '1', SYSTEM: '1', POST: '1' })(method, target);
    const switchedOff = evaluateWith({ CONTAINERS: '1', SERVICES: '1', TASKS: '1', SYSTEM: '1', POST: '1', REDACT_ENV: '0', STRICT_READ: '0', VISIBLE_LABELS: '' })(method, target);
    expect(switchedOff).toEqual(plain);
    expect(plain).not.toHaveProperty('obligations');
  });
});

describe('REDACT_ENV=1: answers that carry environment values get a response obligation', () => {
  const evaluate = evaluateWith({ CONTAINERS: '1', SERVICES: '1', TASKS: '1', EXEC: '1', REDACT_ENV: '1' });
  test.each<[string, string, unknown]>([
    ['GET', '/v1.41/containers/web/json', { response: { kind: 'container-inspect', redactEnv: true } }],
    ['GET', '/containers/web/json?size=1', { response: { kind: 'container-inspect', redactEnv: true } }],
    ['GET', '/v1.41/exec/0123/json', { response: { kind: 'exec-inspect', redactEnv: true } }],
    ['GET', '/v1.41/services', { response: { kind: 'service-list', redactEnv: true } }],
    ['GET', '/v1.41/services/web', { response: { kind: 'service-inspect', redactEnv: true } }],
    ['GET', '/v1.41/tasks', { response: { kind: 'task-list', redactEnv: true } }],
    ['GET', '/v1.41/tasks/t1', { response: { kind: 'task-inspect', redactEnv: true } }],
    ['GET', '/v1.41/events?since=0', { response: { kind: 'events', redactEnv: true } }],
  ])('%s %s', (method, target, obligations) => {
    const decision = evaluate(method, target);
    expect(decision).toMatchObject({ allowed: true, obligations });
    // Redaction alone never changes what is forwarded.
    expect(decision.path).toBe(target);
  });

  test.each<[string, string]>([
    ['GET', '/v1.41/containers/json'],
    ['GET', '/v1.41/containers/web/logs'],
    ['HEAD', '/v1.41/containers/web/archive?path=/'],
    ['GET', '/v1.41/services/web/logs'],
    ['GET', '/_ping'],
  ])('%s %s needs nothing', (method, target) => {
    expect(evaluate(method, target)).not.toHaveProperty('obligations');
  });

  test('Podman: libpod inspect is redacted, generate (kube YAML with the environment) refused', () => {
    const libpod = createSocketFilter({ policy: linuxserverPreset({ LIBPOD_CONTAINERS: '1', LIBPOD_GENERATE: '1', REDACT_ENV: '1' }) }).evaluate;
    expect(libpod('GET', '/v4.0.0/libpod/containers/web/json').obligations).toEqual({ response: { kind: 'container-inspect', redactEnv: true } });
    expect(libpod('GET', '/v4.0.0/libpod/generate/web/kube')).toMatchObject({ allowed: false, status: 403, rule: 'redact-env' });
  });
});

describe('VISIBLE_LABELS: lists merged, objects checked', () => {
  const evaluate = evaluateWith({ ...READER, POST: '1', EXEC: '1', COMMIT: '1' });

  test('the container list forwards the merged filters and drops what slips through', () => {
    const decision = evaluate('GET', '/v1.41/containers/json?all=1&filters=%7B%22status%22%3A%5B%22running%22%5D%7D');
    expect(decision.path?.startsWith('/v1.41/containers/json?all=1&filters=')).toBe(true);
    expect(filtersOf(decision)).toEqual({ status: { running: true }, label: { 'traefik.enable=true': true } });
    expect(decision.obligations).toEqual({ response: { kind: 'container-list', redactEnv: true, labels: TRAEFIK } });
  });

  test.each<[string, string, string, string]>([
    ['GET', '/v1.41/containers/web/json', 'container', 'web'],
    ['GET', '/v1.41/containers/4f1c/logs?stdout=1', 'container', '4f1c'],
    ['HEAD', '/v1.41/containers/web/archive?path=/', 'container', 'web'],
    ['GET', '/v1.41/containers/web/attach/ws', 'container', 'web'],
    ['POST', '/v1.41/containers/web/start', 'container', 'web'],
    ['POST', '/v1.41/containers/web/exec', 'container', 'web'],
    ['POST', '/v1.41/containers/web/wait?condition=next-exit', 'container', 'web'],
    ['DELETE', '/v1.41/containers/web?force=1', 'container', 'web'],
    ['DELETE', '/v1.41/containers/json', 'container', 'json'],
    ['GET', '/v1.41/containers/json/json', 'container', 'json'],
    ['POST', '/v1.41/exec/e1/start', 'exec', 'e1'],
    ['GET', '/v1.41/exec/e1/json', 'exec', 'e1'],
    ['POST', '/v1.41/exec/e1/resize?h=1&w=1', 'exec', 'e1'],
    ['GET', '/v1.41/services/web', 'service', 'web'],
    ['GET', '/v1.41/services/create', 'service', 'create'],
    ['DELETE', '/v1.41/services/web', 'service', 'web'],
    ['POST', '/v1.41/services/web/update?version=3', 'service', 'web'],
    ['GET', '/v1.41/services/web/logs', 'service', 'web'],
    ['GET', '/v1.41/tasks/t1', 'task', 't1'],
    ['GET', '/v1.41/tasks/t1/logs', 'task', 't1'],
  ])('%s %s: visible %s %s', (method, target, kind, id) => {
    const decision = evaluate(method, target);
    expect(decision.allowed).toBe(true);
    expect(decision.path).toBe(target);
    expect(decision.obligations?.visible).toEqual({ kind, id, labels: TRAEFIK });
  });

  test.each<[string, string]>([
    ['POST', '/v1.41/containers/create'],
    ['POST', '/v1.41/services/create'],
    ['GET', '/v1.41/containers/create'],
    ['GET', '/_ping'],
  ])('%s %s names no object', (method, target) => {
    expect(evaluate(method, target).obligations?.visible).toBeUndefined();
  });

  test('a task list names its service for the check', () => {
    const decision = evaluate('GET', `/v1.41/tasks?filters=${encodeURIComponent('{"service":{"websvc":true},"desired-state":{"running":true}}')}`);
    expect(decision.obligations).toEqual({ visible: { kind: 'service', id: 'websvc', labels: TRAEFIK }, response: { kind: 'task-list', redactEnv: true, labels: TRAEFIK } });
    expect(filtersOf(decision)).toEqual({ service: { websvc: true }, 'desired-state': { running: true }, label: { 'traefik.enable=true': true } });
  });

  test('events: merged filter, second line, exec verbs', () => {
    const decision = evaluate('GET', `/v1.41/events?since=0&filters=${encodeURIComponent('{"type":["container"]}')}`);
    expect(filtersOf(decision)).toEqual({ type: { container: true }, label: { 'traefik.enable=true': true } });
    expect(decision.obligations).toEqual({ response: { kind: 'events', redactEnv: true, labels: TRAEFIK } });
  });

  test('container prune only prunes visible containers, and takes no form body', () => {
    const decision = evaluate('POST', '/v1.41/containers/prune', { bodyLength: 0 });
    expect(filtersOf(decision)).toEqual({ label: { 'traefik.enable=true': true } });
    expect(evaluate('POST', '/v1.41/containers/prune', { bodyLength: 20 })).toMatchObject({ allowed: false, status: 400, rule: 'visible-labels' });
  });

  test.each<[string, string, 400 | 403]>([
    ['GET', '/v1.41/containers/json?filters=%7B%22label%21%22%3A%7B%22traefik.enable%3Dtrue%22%3Atrue%7D%7D', 400],
    ['GET', '/v1.41/containers/json?filters=%7B%22label%22%3A%7B%22a%22%3Atrue%7D%2C%22label%22%3A%7B%7D%7D', 400],
    ['GET', '/v1.41/containers/json?filters=%7B&all=1', 400],
    ['GET', '/v1.41/containers/json?filters=%7B%7D&filters=%7B%7D', 400],
    ['GET', '/v1.41/containers/json?filters=%7B%22before%22%3A%5B%22secret-db%22%5D%7D', 400],
    ['GET', '/v1.41/containers/json?all=1;filters=%7B%7D', 400],
    ['GET', '/v1.41/events?filters=%7B%22label%22%3A%5B%5D%2C%22label%22%3A%5B%5D%7D', 400],
    ['GET', '/v1.41/services?filters=%7B%22label%22%3A%5B%22traefik.enable%3Dfalse%22%5D%7D', 400],
    ['GET', '/v1.41/tasks?filters=%7B%22service%22%3A%5B%22a%22%2C%22b%22%5D%7D', 400],
    ['GET', '/v1.41/system/df', 403],
    ['POST', '/v1.41/commit?container=secret-db', 403],
  ])('%s %s is refused %d', (method, target, status) => {
    expect(evaluate(method, target)).toMatchObject({ allowed: false, status, rule: 'visible-labels' });
  });

  test('network inspect names no container', () => {
    expect(evaluate('GET', '/v1.41/networks/web').obligations).toEqual({ response: { kind: 'network-inspect', redactEnv: true, labels: TRAEFIK } });
  });

  test('Podman’s API is refused but for _ping and version', () => {
    const libpod = createSocketFilter({ policy: linuxserverPreset({ LIBPOD_CONTAINERS: '1', VISIBLE_LABELS: 'traefik.enable=true' }) }).evaluate;
    expect(libpod('GET', '/v4.0.0/libpod/containers/json')).toMatchObject({ allowed: false, status: 403, rule: 'visible-labels' });
    expect(libpod('GET', '/v4.0.0/libpod/_ping').allowed).toBe(true);
    expect(libpod('GET', '/v4.0.0/libpod/version').allowed).toBe(true);
  });

  test('a denial by a rule stays that denial', () => {
    expect(evaluateWith({ VISIBLE_LABELS: 'a' })('GET', '/v1.41/containers/json')).toMatchObject({ allowed: false, rule: 'default-deny' });
  });
});

describe('STRICT_READ=1: linuxserver’s sub-resource gates on the Tecnativa preset', () => {
  test.each(['archive', 'changes', 'export', 'logs', 'top'])('%s', (resource) => {
    const variable = `ALLOW_${resource.toUpperCase()}`;
    const target = `/v1.41/containers/web/${resource}`;
    expect(evaluateWith({ CONTAINERS: '1' })('GET', target).allowed).toBe(true);
    expect(evaluateWith({ CONTAINERS: '1', [variable]: '0' })('GET', target).allowed).toBe(true);
    expect(evaluateWith({ CONTAINERS: '1', STRICT_READ: '1' })('GET', target)).toMatchObject({ allowed: false, status: 403, rule: variable });
    expect(evaluateWith({ CONTAINERS: '1', STRICT_READ: '1' })('GET', target).reason).toContain(`${variable}=1`);
    expect(evaluateWith({ CONTAINERS: '1', STRICT_READ: '1', [variable]: '1' })('GET', target).allowed).toBe(true);
  });

  test('other reads stay allowed, and ALLOW_* alone changes nothing', () => {
    const strict = evaluateWith({ CONTAINERS: '1', STRICT_READ: '1' });
    expect(strict('GET', '/v1.41/containers/web/json').allowed).toBe(true);
    expect(strict('GET', '/v1.41/containers/json').allowed).toBe(true);
    expect(strict('GET', '/v1.41/containers/web/stats').allowed).toBe(true);
    expect(evaluateWith({ CONTAINERS: '1', ALLOW_LOGS: '1' })('GET', '/v1.41/containers/web/logs').allowed).toBe(true);
  });

  test('linuxserver reads STRICT_READ and has its gates anyway', () => {
    const evaluate = createSocketFilter({ policy: linuxserverPreset({ CONTAINERS: '1', STRICT_READ: '1' }) }).evaluate;
    expect(evaluate('GET', '/v1.41/containers/web/logs')).toMatchObject({ allowed: false, rule: 'ALLOW_LOGS' });
    expect(linuxserverPreset({ STRICT_READ: '1' }).source?.settings.STRICT_READ).toBe(true);
  });
});

describe('the variables are validated, naming them', () => {
  test.each<[EnvLike, string]>([
    [{ VISIBLE_LABELS: 'a,,b' }, '`VISIBLE_LABELS=a,,b` is not understood: item 2 is empty'],
    [{ VISIBLE_LABELS: 'name=web' }, 'VISIBLE_LABELS=name=web'],
    [{ VISIBLE_LABELS: 'a=1,a=2' }, 'names the label "a" twice'],
    [{ VISIBLE_LABELS: 'a=' }, 'requires "a" to be empty'],
    [{ REDACT_ENV: 'true' }, '`REDACT_ENV=true` is not understood'],
    [{ STRICT_READ: 'yes' }, '`STRICT_READ=yes` is not understood'],
    [{ ALLOW_LOGS: 'on' }, '`ALLOW_LOGS=on` is not understood'],
  ])('%j', (env, message) => {
    expect(() => tecnativaPreset(env)).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_DSF_INVALID_ENV', message: expect.stringContaining(message) }));
    expect(() => linuxserverPreset(env)).toThrow(TypeError);
  });

  test('the read section and the settings a preset records', () => {
    const policy = tecnativaPreset(READER);
    expect(policy.read).toEqual({ redactEnv: true, visibleLabels: TRAEFIK });
    expect(Object.isFrozen(policy.read)).toBe(true);
    expect(policy.source?.settings).toMatchObject({ REDACT_ENV: true, STRICT_READ: false, ALLOW_LOGS: false });
    expect(tecnativaPreset({})).not.toHaveProperty('read');
  });
});

describe('definePolicy({ read }) and policies given as data', () => {
  test('strings and objects, inherited through extends, never looser', () => {
    const base = tecnativaPreset({ CONTAINERS: '1', REDACT_ENV: '1' });
    const policy = definePolicy({ extends: base, read: { visibleLabels: ['traefik.enable=true', { key: 'public' }] } });
    expect(policy.read).toEqual({ redactEnv: true, visibleLabels: [...TRAEFIK, { key: 'public' }] });
    expect(definePolicy({ extends: base }).read).toEqual({ redactEnv: true });
    expect(definePolicy({ extends: base, read: { redactEnv: false } }).read).toEqual({ redactEnv: true });
    expect(definePolicy({ allow: ['GET /containers/**'], read: { visibleLabels: 'a=b, c' } }).read).toEqual({ visibleLabels: [{ key: 'a', value: 'b' }, { key: 'c' }] });
    const evaluate = createSocketFilter({ policy }).evaluate;
    expect(evaluate('GET', '/v1.41/containers/web/json').obligations?.visible?.labels).toEqual([...TRAEFIK, { key: 'public' }]);
  });

  test.each<[unknown, string]>([
    [{ redact: true }, 'The `read.redact` option is not a known option'],
    [{ redactEnv: 'yes' }, 'The `read.redactEnv` option must be a boolean'],
    [{ visibleLabels: [] }, 'The `read.visibleLabels` option must name at least one label'],
    [{ visibleLabels: ['ok', 7] }, 'The `read.visibleLabels[1]` option must be an object { key, value? }'],
    [{ visibleLabels: [{ key: 'a', values: 'b' }] }, 'The `read.visibleLabels[0]` option has the unknown key `values`'],
    [{ visibleLabels: ['a=1', 'a=2'] }, 'requires the label "a" twice'],
    [{ visibleLabels: 'image' }, 'The `read.visibleLabels` option item 1 ("image") uses the key "image"'],
    ['yes', 'The `read` option must be an object'],
  ])('%j', (read, message) => {
    expect(() => definePolicy({ allow: ['GET /_ping'], read: read as never })).toThrow(expect.objectContaining({ code: 'ERR_DSF_INVALID_OPTION', message: expect.stringContaining(message) }));
  });

  test('a policy object with a read section is validated at creation, with its path', () => {
    const policy = { name: 'p', rules: [{ id: 'x', effect: 'allow' as const, paths: ['/**'] }], read: { visibleLabels: [{ key: '' }] } };
    expect(() => createSocketFilter({ policy })).toThrow('The `policy.read.visibleLabels[0]` option has an empty label key');
    const strings = { name: 'p', rules: policy.rules, read: { visibleLabels: 'traefik.enable=true' } } as never;
    expect(createSocketFilter({ policy: strings }).evaluate('GET', '/containers/web/json').obligations?.visible?.labels).toEqual(TRAEFIK);
  });
});
