import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { REDACTED, redactEnvList, rewriteEvent, rewriteResponse, type LabelRequirement, type ResponseRewrite } from '../../src/index.js';
import { parseDockerJson, stringifyDockerJson } from '../../src/policy/read/json.js';

// Answers recorded from dockerd 20.10.24 (and Podman 4.3's compat API where named so): see
// test/fixtures/read/README.md.
const fixture = (name: string): string => readFileSync(new URL(`../fixtures/read/${name}`, import.meta.url), 'utf8');
const parsed = (name: string): unknown => parseDockerJson(fixture(name));

const TRAEFIK: LabelRequirement[] = [{ key: 'traefik.enable', value: 'true' }];
const redact = (kind: ResponseRewrite['kind']): ResponseRewrite => ({ kind, redactEnv: true });
const visible = (kind: ResponseRewrite['kind'], redactEnv = false): ResponseRewrite => ({ kind, redactEnv, labels: TRAEFIK });

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}

/** Every string in a value, to assert that no secret is left anywhere. */
function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (typeof value !== 'object' || value === null) return [];
  return Object.values(value).flatMap(strings);
}

type Inspect = { Config: { Env: string[] } } & Record<string, unknown>;

describe('parseDockerJson and stringifyDockerJson give back dockerd’s bytes', () => {
  test.each([
    'container-inspect.json',
    'container-inspect-bind.json',
    'container-list.json',
    'exec-inspect.json',
    'service-inspect.json',
    'service-list.json',
    'task-inspect.json',
    'task-list.json',
    'network-inspect.json',
  ])('%s', (name) => {
    expect(stringifyDockerJson(parseDockerJson(fixture(name)))).toBe(fixture(name));
  });

  test('every event, with its 19-digit timeNano', () => {
    for (const line of fixture('events.ndjson').split('\n').filter(Boolean)) expect(stringifyDockerJson(parseDockerJson(line))).toBe(`${line}\n`);
  });

  test('numbers beyond double precision are kept', () => {
    expect(stringifyDockerJson(parseDockerJson('{"Memory":9223372036854775807,"Swap":-1,"Ratio":1.50}'))).toBe('{"Memory":9223372036854775807,"Swap":-1,"Ratio":1.50}\n');
  });
});

describe('redactEnvList', () => {
  test.each<[unknown, unknown]>([
    [['DB_PASSWORD=hunter2', 'PATH=/bin', 'PLAIN', 'EMPTY=', 'A=b=c'], [`DB_PASSWORD=${REDACTED}`, `PATH=${REDACTED}`, 'PLAIN', `EMPTY=${REDACTED}`, `A=${REDACTED}`]],
    [[], []],
    [null, null],
    ['A=b', 'A=b'],
    [[1, 'A=b'], [1, `A=${REDACTED}`]],
  ])('%j', (env, expected) => {
    expect(redactEnvList(env)).toEqual(expected);
  });
});

describe('rewriteResponse on dockerd’s answers', () => {
  test('container inspect: every value of Config.Env, names kept, nothing else changed', () => {
    const original = deepFreeze(parsed('container-inspect.json') as Inspect);
    const rewritten = rewriteResponse(redact('container-inspect'), original) as Inspect;
    expect(rewritten.Config.Env).toEqual(original.Config.Env.map((entry) => (entry.includes('=') ? `${entry.slice(0, entry.indexOf('=') + 1)}${REDACTED}` : entry)));
    expect(rewritten.Config.Env).toContain(`DB_PASSWORD=${REDACTED}`);
    expect(rewritten.Config.Env).toContain('PLAIN');
    expect(strings(rewritten).join('\n')).not.toContain('hunter2');
    expect({ ...rewritten, Config: { ...rewritten.Config, Env: null } }).toEqual({ ...original, Config: { ...original.Config, Env: null } });
  });

  test('container inspect from Podman’s compat API has the same shape', () => {
    const rewritten = rewriteResponse(redact('container-inspect'), parsed('container-inspect-podman-4.3.json')) as Inspect;
    expect(rewritten.Config.Env).toContain(`DB_PASSWORD=${REDACTED}`);
    expect(strings(rewritten).join('\n')).not.toContain('psecret');
  });

  test('without redactEnv, an inspect is returned as it is', () => {
    const original = parsed('container-inspect.json');
    expect(rewriteResponse({ kind: 'container-inspect', redactEnv: false }, original)).toBe(original);
  });

  test('container list: only the labelled containers', () => {
    const list = deepFreeze(parsed('container-list.json') as { Names: string[] }[]);
    const rewritten = rewriteResponse(visible('container-list'), list) as { Names: string[] }[];
    expect(rewritten.map((item) => item.Names[0])).toEqual(['/web']);
    expect(list.length).toBeGreaterThan(1);
    const podman = rewriteResponse(visible('container-list'), parsed('container-list-podman-4.3.json')) as { Names: string[] }[];
    expect(podman.map((item) => item.Names[0])).toEqual(['/pweb']);
  });

  test('service inspect: the spec and the previous spec', () => {
    const original = deepFreeze(parsed('service-inspect.json'));
    const text = JSON.stringify(rewriteResponse(redact('service-inspect'), original));
    expect(JSON.stringify(original)).toContain('svcsecret');
    expect(text).not.toContain('svcsecret');
    expect(text).not.toContain('tok123');
    expect(text).toContain(`"Env":["DB_PASSWORD=${REDACTED}","API_TOKEN=${REDACTED}"]`);
    expect(text).toContain(`"Env":["DB_PASSWORD=${REDACTED}"]`);
  });

  test('service list: hidden services dropped, the rest redacted', () => {
    const rewritten = rewriteResponse(visible('service-list', true), deepFreeze(parsed('service-list.json'))) as { Spec: { Name: string } }[];
    expect(rewritten.map((service) => service.Spec.Name)).toEqual(['websvc']);
    expect(JSON.stringify(rewritten)).not.toMatch(/svcsecret|tok123|hidden/);
  });

  test('task inspect and list', () => {
    expect(JSON.stringify(rewriteResponse(redact('task-inspect'), deepFreeze(parsed('task-inspect.json'))))).toContain(`"Env":["DB_PASSWORD=${REDACTED}"`);
    const list = rewriteResponse(redact('task-list'), deepFreeze(parsed('task-list.json')));
    expect(JSON.stringify(parsed('task-list.json'))).toMatch(/svcsecret/);
    expect(JSON.stringify(list)).not.toMatch(/svcsecret|tok123|DB_PASSWORD=hidden/);
  });

  test('exec inspect: the command line', () => {
    const rewritten = rewriteResponse(redact('exec-inspect'), deepFreeze(parsed('exec-inspect.json'))) as { ProcessConfig: Record<string, unknown> };
    expect(rewritten.ProcessConfig).toEqual({ tty: false, entrypoint: 'sh', arguments: [REDACTED, REDACTED], privileged: false });
    const podmanLike = rewriteResponse(redact('exec-inspect'), { ProcessConfig: { arguments: ['x'], env: ['TOKEN=t'] } });
    expect(podmanLike).toEqual({ ProcessConfig: { arguments: [REDACTED], env: [`TOKEN=${REDACTED}`] } });
  });

  test('network inspect under visibility names no container', () => {
    const network = { Name: 'web', Containers: { abc: { Name: 'secret-db' } }, Services: { s: {} } };
    expect(rewriteResponse(visible('network-inspect'), deepFreeze(network))).toEqual({ Name: 'web', Containers: {}, Services: {} });
    expect(rewriteResponse({ kind: 'network-inspect', redactEnv: true }, network)).toBe(network);
  });

  test.each<[ResponseRewrite['kind'], unknown]>([
    ['container-inspect', null],
    ['container-inspect', 'text'],
    ['container-inspect', { Config: null }],
    ['container-list', { not: 'a list' }],
    ['service-list', null],
    ['task-list', 7],
    ['exec-inspect', []],
  ])('%s of an unexpected shape %j is returned as it is', (kind, body) => {
    expect(rewriteResponse({ kind, redactEnv: true, labels: TRAEFIK }, body)).toBe(body);
  });
});

describe('rewriteEvent, one event at a time', () => {
  const events = fixture('events.ndjson')
    .split('\n')
    .filter(Boolean)
    .map((line) => deepFreeze(parseDockerJson(line)) as { Type: string; Action: string; status?: string; Actor: { Attributes: Record<string, string> } });

  test('the recorded stream replays exec command lines and every label', () => {
    const text = JSON.stringify(events);
    expect(text).toContain('exec_create: sh -c echo DB_PASSWORD=$DB_PASSWORD');
    expect(text).toContain('basicauth.users');
  });

  test('with labels: only events of labelled containers', () => {
    const kept = events.map((event) => rewriteEvent(visible('events'), event)).filter((event) => event !== null) as typeof events;
    expect(kept.length).toBeGreaterThan(0);
    for (const event of kept) {
      expect(event.Type).toBe('container');
      expect(event.Actor.Attributes['traefik.enable']).toBe('true');
    }
    expect(JSON.stringify(kept)).not.toMatch(/secret-db|basicauth|cdc61650/);
    // Network events name containers by id in their attributes: dropped, whatever they name.
    expect(events.some((event) => event.Type === 'network')).toBe(true);
  });

  test('with redactEnv: exec actions cut to their verb, the rest untouched', () => {
    const shown = events.map((event) => rewriteEvent(redact('events'), event)) as typeof events;
    expect(shown.every((event) => event !== null)).toBe(true);
    expect(JSON.stringify(shown)).not.toContain('DB_PASSWORD');
    const actions = new Set(shown.map((event) => event.Action));
    expect(actions).toContain('exec_create');
    expect(actions).toContain('exec_start');
    expect(actions).toContain('start');
    for (const event of shown) if (event.status !== undefined) expect(event.status).toBe(event.Action);
    expect(shown.filter((event) => !event.Action.startsWith('exec_'))).toEqual(events.filter((event) => !event.Action.startsWith('exec_')));
  });

  test.each<[string, string]>([
    ['exec_create: sh -c echo x', 'exec_create'],
    ['exec_start: env ', 'exec_start'],
    ['exec_die', 'exec_die'],
    ['health_status: healthy', 'health_status: healthy'],
    ['start', 'start'],
  ])('%j -> %j', (action, verb) => {
    expect(rewriteEvent(redact('events'), { Type: 'container', Action: action, status: action })).toEqual({ Type: 'container', Action: verb, status: verb });
  });

  test.each<[unknown]>([[null], ['text'], [[]], [{ Type: 'container' }], [{ Type: 'image', Actor: { Attributes: { 'traefik.enable': 'true' } } }]])('%j is dropped under visibility', (event) => {
    expect(rewriteEvent(visible('events'), event)).toBeNull();
  });
});
