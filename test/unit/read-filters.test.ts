import { describe, expect, test } from 'vitest';
import { encodeFilters, mergeLabelFilter, mergeQuery, parseFilters, type FilterKind, type LabelRequirement } from '../../src/index.js';
import { withVisibleRef, MISSING_REF } from '../../src/policy/read/target.js';

const TRAEFIK: LabelRequirement[] = [{ key: 'traefik.enable', value: 'true' }];
const q = (filters: unknown): string => `filters=${encodeURIComponent(typeof filters === 'string' ? filters : JSON.stringify(filters))}`;
/** The `filters` a merged query forwards, parsed back. */
const forwarded = (query: string): unknown => JSON.parse(new URLSearchParams(query).get('filters') as string);

describe('parseFilters reads filters.FromJSON’s two forms, strictly', () => {
  test.each<[string, Record<string, Record<string, boolean>>]>([
    ['', {}],
    ['{}', {}],
    [' { } ', {}],
    ['{"label":{"a=b":true}}', { label: { 'a=b': true } }],
    ['{"label":{"a=b":false}}', { label: { 'a=b': false } }],
    ['{"label":{}}', { label: {} }],
    ['{"label":["a=b","c"]}', { label: { 'a=b': true, c: true } }],
    ['{"label":[],"status":["running"]}', { label: {}, status: { running: true } }],
    ['{"label":{"\\u0061=\\"b\\"":true}}', { label: { 'a="b"': true } }],
    ['{"x":{"\\ud83d\\ude00":true}}', { x: { '\u{1F600}': true } }],
    ['\n{"type" : {"container": true} }\t', { type: { container: true } }],
  ])('%j', (text, expected) => {
    const parsed = parseFilters(text);
    expect(parsed.problem).toBeNull();
    expect(Object.fromEntries([...(parsed.args ?? new Map())].map(([key, set]) => [key, Object.fromEntries(set)]))).toEqual(expected);
  });

  test.each<[string, string]>([
    ['null', 'expected an object'],
    ['[]', 'expected an object'],
    ['"label"', 'expected an object'],
    ['{', 'expected """ at character 2'],
    ['{"label":{"a":true}', 'expected "," or "}"'],
    ['{"label":{"a":true}}x', 'unexpected text after the value'],
    ['{"label":{"a":true},"label":{"b":true}}', 'the key "label" is given twice'],
    ['{"label":{"a":true,"a":false}}', 'the key "a" is given twice'],
    ['{"label":["a","a"]}', 'the value "a" of "label" is given twice'],
    ['{"label":["a"],"status":{"running":true}}', 'expected "["'],
    ['{"label":{"a":true},"status":["running"]}', 'expected an object of booleans'],
    ['{"label":{"a":"true"}}', 'expected true or false'],
    ['{"label":{"a":1}}', 'expected true or false'],
    ['{"label":{"a":null}}', 'expected true or false'],
    ['{"label":null}', 'expected an object of booleans'],
    ['{"label":[1]}', 'expected a string in the legacy form'],
    ['{"label":[null]}', 'expected a string in the legacy form'],
    ['{"label":"a"}', 'expected an object of booleans'],
    ['{"label":{"\\ud800":true}}', 'lone surrogate escape'],
    ['{"label":{"\\udc00":true}}', 'lone surrogate escape'],
    ['{"label":{"\\x":true}}', 'invalid escape'],
    ['{"label":{"a\nb":true}}', 'control character in a string'],
    ["{'label':{'a':true}}", 'expected """'],
    ['{"label":{"a":true,}}', 'expected """ at character 20'],
  ])('%j is refused (%s)', (text, problem) => {
    const parsed = parseFilters(text);
    expect(parsed.args).toBeNull();
    expect(parsed.problem).toContain(problem);
  });
});

describe('mergeLabelFilter: only objects that satisfy both', () => {
  const merge = (kind: FilterKind, text: string, requirements = TRAEFIK) => {
    const parsed = parseFilters(text);
    if (parsed.args === null) throw new Error(parsed.problem);
    const merged = mergeLabelFilter(kind, parsed.args, requirements);
    return merged.args === null ? { problem: merged.problem } : { filters: JSON.parse(encodeFilters(merged.args)) as unknown };
  };

  test.each<[FilterKind, string, unknown]>([
    ['containers', '', { label: { 'traefik.enable=true': true } }],
    ['containers', '{"status":{"running":true}}', { status: { running: true }, label: { 'traefik.enable=true': true } }],
    // MatchKVList: every value must hold, so the client's labels and ours are simply both required.
    ['containers', '{"label":{"a=b":true}}', { label: { 'a=b': true, 'traefik.enable=true': true } }],
    ['containers', '{"label":{"traefik.enable=false":true}}', { label: { 'traefik.enable=false': true, 'traefik.enable=true': true } }],
    ['containers', '{"label":{"traefik.enable=true":false}}', { label: { 'traefik.enable=true': false } }],
    ['containers', '{"label":["x"]}', { label: { x: true, 'traefik.enable=true': true } }],
    ['containers', '{"name":{"web":true},"id":{"ab":true}}', { name: { web: true }, id: { ab: true }, label: { 'traefik.enable=true': true } }],
    ['containers-prune', '{"label!":{"keep":true},"until":{"24h":true}}', { 'label!': { keep: true }, until: { '24h': true }, label: { 'traefik.enable=true': true } }],
    ['events', '{"type":{"container":true},"event":{"start":true}}', { type: { container: true }, event: { start: true }, label: { 'traefik.enable=true': true } }],
    ['services', '{"label":{"traefik.enable=true":true}}', { label: { 'traefik.enable=true': true } }],
    ['services', '{"label":{"other":true},"mode":{"global":true}}', { label: { other: true, 'traefik.enable=true': true }, mode: { global: true } }],
    ['tasks', '{"service":{"web":true},"desired-state":{"running":true}}', { service: { web: true }, 'desired-state': { running: true }, label: { 'traefik.enable=true': true } }],
  ])('%s %j', (kind, text, filters) => {
    expect(merge(kind, text)).toEqual({ filters });
  });

  test.each<[FilterKind, string, string]>([
    ['containers', '{"label!":{"traefik.enable=true":true}}', 'the filter "label!" is not one this endpoint knows'],
    ['containers', '{"Label":{"x":true}}', 'the filter "Label" is not one this endpoint knows'],
    ['containers', '{"before":{"secret-db":true}}', 'the `before` filter names another container'],
    ['containers', '{"since":{"secret-db":true}}', 'the `since` filter names another container'],
    ['services', '{"label!":{"a":true}}', 'the filter "label!" is not one this endpoint knows'],
    // Swarm keeps one value per label key: the client's and ours would not both hold.
    ['services', '{"label":{"traefik.enable=false":true}}', 'names the label "traefik.enable" that visibility requires, with another meaning'],
    ['services', '{"label":{"traefik.enable":true}}', 'names the label "traefik.enable" that visibility requires'],
    ['tasks', '{"label":{"traefik.enable=":true}}', 'names the label "traefik.enable" that visibility requires'],
    ['events', '{"label!":{"x":true}}', 'the filter "label!" is not one this endpoint knows'],
    ['containers-prune', '{"name":{"x":true}}', 'the filter "name" is not one this endpoint knows'],
  ])('%s %j is refused', (kind, text, problem) => {
    expect(merge(kind, text)).toEqual({ problem: expect.stringContaining(problem) });
  });

  test('a key-only requirement matches a client label of the same key alone in swarm', () => {
    expect(merge('services', '{"label":{"public":true}}', [{ key: 'public' }])).toEqual({ filters: { label: { public: true } } });
    expect(merge('services', '{"label":{"public=x":true}}', [{ key: 'public' }])).toEqual({ problem: expect.stringContaining('"public"') });
  });
});

describe('mergeQuery: the rest of the query byte for byte, one merged filters', () => {
  test('other parameters are kept as sent', () => {
    const merged = mergeQuery('containers', 'all=1&limit=5&size=%31', TRAEFIK);
    expect(merged.problem).toBeNull();
    expect(merged.query?.startsWith('all=1&limit=5&size=%31&filters=')).toBe(true);
    expect(forwarded(merged.query as string)).toEqual({ label: { 'traefik.enable=true': true } });
  });

  test('the client’s filters are replaced, wherever and however spelled', () => {
    const merged = mergeQuery('containers', `a=1&${q({ status: ['exited'] })}&b=2`, TRAEFIK);
    expect(merged.query?.startsWith('a=1&b=2&filters=')).toBe(true);
    expect(forwarded(merged.query as string)).toEqual({ status: { exited: true }, label: { 'traefik.enable=true': true } });
    const encodedKey = mergeQuery('containers', `filt%65rs=${encodeURIComponent('{"status":{"exited":true}}')}`, TRAEFIK);
    expect(encodedKey.query?.includes('filt%65rs')).toBe(false);
    expect(forwarded(encodedKey.query as string)).toEqual({ status: { exited: true }, label: { 'traefik.enable=true': true } });
  });

  test.each<[string, string]>([
    [`${q({})}&${q({ label: ['x'] })}`, 'the `filters` parameter is given 2 times'],
    [`${q({})}&filt%65rs=%7B%7D`, 'the `filters` parameter is given 2 times'],
    ['filters=%7B', 'not valid Docker filters JSON'],
    ['filters=%7B%7D;all=1', 'the query contains a ";"'],
    ['filters=%zz', 'malformed percent-escape'],
  ])('%j is refused', (query, problem) => {
    expect(mergeQuery('containers', query, TRAEFIK)).toEqual({ query: null, problem: expect.stringContaining(problem) });
  });

  test('filters sent unencoded are read as Go reads them', () => {
    expect(forwarded(mergeQuery('containers', 'filters={"label":["a"]}', TRAEFIK).query as string)).toEqual({ label: { a: true, 'traefik.enable=true': true } });
  });

  test('a task list names its one service for the visibility check', () => {
    const merged = mergeQuery('tasks', q({ service: { web: true }, 'desired-state': { running: true } }), TRAEFIK);
    expect(merged).toMatchObject({ service: 'web', problem: null });
    expect(mergeQuery('tasks', q({ service: ['a', 'b'] }), TRAEFIK).problem).toContain('one service only');
    expect(mergeQuery('tasks', '', TRAEFIK)).not.toHaveProperty('service');
  });
});

describe('withVisibleRef puts the resolved reference where the client’s was', () => {
  test.each<[string, string, string]>([
    ['/v1.41/containers/web/json', 'abc', '/v1.41/containers/abc/json'],
    ['/containers/web/logs?stdout=1&follow=1', 'abc', '/containers/abc/logs?stdout=1&follow=1'],
    ['/v1.41/containers/we%22b/attach/ws?stream=1', MISSING_REF, `/v1.41/containers/${MISSING_REF}/attach/ws?stream=1`],
    ['/v1.41/containers/web', 'abc', '/v1.41/containers/abc'],
    ['/v1.41/exec/123/start', 'x', '/v1.41/exec/x/start'],
    ['/v1.24/services/web', 'id', '/v1.24/services/id'],
    ['/tasks/t1/logs', 'id', '/tasks/id/logs'],
  ])('%s', (target, ref, expected) => {
    expect(withVisibleRef(target, ref)).toBe(expected);
  });

  test('a task list’s service filter', () => {
    const merged = mergeQuery('tasks', `a=1&${q({ service: { web: true } })}`, TRAEFIK);
    const target = withVisibleRef(`/v1.41/tasks?${merged.query as string}`, 'svcid');
    const query = target.slice(target.indexOf('?') + 1);
    expect(query.startsWith('a=1&filters=')).toBe(true);
    expect(forwarded(query)).toEqual({ service: { svcid: true }, label: { 'traefik.enable=true': true } });
  });
});
