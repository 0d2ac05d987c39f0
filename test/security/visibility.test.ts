/**
 * Attack class: a client behind VISIBLE_LABELS reaching, listing or learning of a hidden object.
 *
 * 1. Every route of dockerd 20.10 that names a container, an exec, a service or a task carries a
 *    `visible` obligation for the reference the client wrote, whatever the method, so the proxy
 *    looks it up before anything is forwarded (test/integration/visibility.test.ts checks the
 *    lookup against the real dockerd).
 * 2. Property: for any query a client sends to a list endpoint, if it is allowed, dockerd (modelled
 *    here on its own: Go's ParseQuery, then filters.FromJSON) applies the required label.
 * 3. The endpoints that would list every container whatever the labels are refused.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { createSocketFilter, tecnativaPreset, type Decision } from '../../src/index.js';

const REQUIREMENT = 'traefik.enable=true';
const ALL_GRANTED = Object.fromEntries(
  ['CONTAINERS', 'EXEC', 'SERVICES', 'TASKS', 'EVENTS', 'POST', 'NETWORKS', 'SYSTEM', 'COMMIT', 'IMAGES'].map((name) => [name, '1']),
);
const evaluate = createSocketFilter({ policy: tecnativaPreset({ ...ALL_GRANTED, VISIBLE_LABELS: REQUIREMENT }) }).evaluate;

// dockerd 20.10's routes naming one object (api/server/router/{container,swarm}/*.go).
const OBJECT_ROUTES: readonly [string, string, string][] = [
  ['GET', '/containers/{ref}/export', 'container'],
  ['GET', '/containers/{ref}/changes', 'container'],
  ['GET', '/containers/{ref}/json', 'container'],
  ['GET', '/containers/{ref}/top', 'container'],
  ['GET', '/containers/{ref}/logs', 'container'],
  ['GET', '/containers/{ref}/stats', 'container'],
  ['GET', '/containers/{ref}/attach/ws', 'container'],
  ['HEAD', '/containers/{ref}/archive', 'container'],
  ['GET', '/containers/{ref}/archive', 'container'],
  ['PUT', '/containers/{ref}/archive', 'container'],
  ['POST', '/containers/{ref}/kill', 'container'],
  ['POST', '/containers/{ref}/pause', 'container'],
  ['POST', '/containers/{ref}/unpause', 'container'],
  ['POST', '/containers/{ref}/restart', 'container'],
  ['POST', '/containers/{ref}/start', 'container'],
  ['POST', '/containers/{ref}/stop', 'container'],
  ['POST', '/containers/{ref}/wait', 'container'],
  ['POST', '/containers/{ref}/resize', 'container'],
  ['POST', '/containers/{ref}/attach', 'container'],
  ['POST', '/containers/{ref}/copy', 'container'],
  ['POST', '/containers/{ref}/exec', 'container'],
  ['POST', '/containers/{ref}/rename', 'container'],
  ['POST', '/containers/{ref}/update', 'container'],
  ['DELETE', '/containers/{ref}', 'container'],
  ['GET', '/exec/{ref}/json', 'exec'],
  ['POST', '/exec/{ref}/start', 'exec'],
  ['POST', '/exec/{ref}/resize', 'exec'],
  ['GET', '/services/{ref}', 'service'],
  ['GET', '/services/{ref}/logs', 'service'],
  ['POST', '/services/{ref}/update', 'service'],
  ['DELETE', '/services/{ref}', 'service'],
  ['GET', '/tasks/{ref}', 'task'],
  ['GET', '/tasks/{ref}/logs', 'task'],
];

/** A single path segment a client may send as a reference (canonicalisation refuses the rest). */
const reference = fc.stringMatching(/^[A-Za-z0-9_.~!$&'()*+,;=:@-]{1,40}$/).filter((ref) => ref !== '.' && ref !== '..');

describe('every object route of dockerd is looked up first', () => {
  test.each(OBJECT_ROUTES)('%s %s', (method, route, kind) => {
    let allowed = 0;
    fc.assert(
      fc.property(reference, fc.constantFrom('', '/v1.41', '/v1.24'), fc.boolean(), (ref, version, upgrade) => {
        const decision = evaluate(method, `${version}${route.replace('{ref}', () => ref)}?x=1`, { upgrade, bodyLength: 0 });
        if (!decision.allowed) return;
        allowed++;
        expect(decision.obligations?.visible).toEqual({ kind, id: ref, labels: [{ key: 'traefik.enable', value: 'true' }] });
      }),
    );
    expect(allowed).toBeGreaterThan(50);
  });

  test('encoded references are decided on their decoded form', () => {
    expect(evaluate('GET', '/v1.41/containers/secret%2Ddb/json').obligations?.visible?.id).toBe('secret-db');
    expect(evaluate('GET', '/v1.41/containers/%73ecret-db/logs').obligations?.visible?.id).toBe('secret-db');
  });

  test('a multi-segment reference never reaches dockerd', () => {
    expect(evaluate('GET', '/v1.41/containers/web/secret-db/json')).toMatchObject({ allowed: false, rule: 'container-name' });
  });
});

/** Go's `url.ParseQuery` then `Get`, modelled on its own; `null` where Go would refuse the query. */
function goFirstValue(query: string, key: string): string | undefined | null {
  let found: string | undefined;
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    if (pair.includes(';')) return null;
    const [rawKey, rawValue = ''] = pair.split(/=(.*)/s) as [string, string?];
    let name: string;
    let value: string;
    try {
      name = decodeURIComponent(rawKey.replace(/\+/g, ' '));
      value = decodeURIComponent(rawValue.replace(/\+/g, ' '));
    } catch {
      return null;
    }
    if (name === key && found === undefined) found = value;
  }
  return found;
}

/** The `label` values dockerd's `filters.FromJSON` reads, or `null` where it fails (a 400/500). */
function dockerdLabels(filters: string | undefined): string[] | null {
  if (filters === undefined || filters === '') return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(filters);
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return null;
  const label = (parsed as Record<string, unknown>).label;
  if (label === undefined || label === null) return [];
  if (Array.isArray(label)) return label.every((value) => typeof value === 'string') ? (label as string[]) : null;
  if (typeof label === 'object') return Object.keys(label);
  return null;
}

const filterValue = fc.oneof(
  fc.dictionary(fc.constantFrom('label', 'label!', 'Label', 'status', 'name', 'id', 'type', 'before', 'service', 'x'), fc.oneof(fc.dictionary(fc.string(), fc.boolean()), fc.array(fc.string()), fc.constant(null), fc.integer(), fc.string())).map((value) => JSON.stringify(value)),
  fc.constantFrom('{"label":["a"],"label":[]}', '{"label":{"traefik.enable=true":false}}', '{"label":{}}', '[]', 'null', '{', '', '{"label":["traefik.enable=false"]}', '{"label":{"a":true},"label":{"b":true}}'),
  fc.string(),
);

const queryPiece = fc.oneof(
  filterValue.map((value) => `filters=${encodeURIComponent(value)}`),
  filterValue.map((value) => `filt%65rs=${encodeURIComponent(value)}`),
  filterValue.map((value) => `filters=${value}`),
  fc.constantFrom('all=1', 'limit=0', 'since=0', 'until=1', 'a=1;filters=%7B%7D', 'filters', 'x=%zz'),
);

describe('property: an allowed list request makes dockerd apply the required label', () => {
  test.each([['/v1.41/containers/json'], ['/v1.41/events'], ['/v1.41/services'], ['/v1.41/tasks'], ['/containers/json']])('%s', (path) => {
    let allowed = 0;
    fc.assert(
      fc.property(fc.array(queryPiece, { maxLength: 4 }), (pieces) => {
        const decision: Decision = evaluate('GET', `${path}?${pieces.join('&')}`);
        if (!decision.allowed) return;
        allowed++;
        const forwarded = decision.path as string;
        const query = forwarded.slice(forwarded.indexOf('?') + 1);
        const labels = dockerdLabels(goFirstValue(query, 'filters') ?? undefined);
        expect(goFirstValue(query, 'filters')).not.toBeNull();
        expect(labels).toContain(REQUIREMENT);
        expect(query.split('&').filter((pair) => goFirstValue(pair, 'filters') !== undefined)).toHaveLength(1);
      }),
      { numRuns: 400 },
    );
    expect(allowed).toBeGreaterThan(20);
  });
});

describe('what would list every container is refused', () => {
  test.each([
    ['GET', '/v1.41/system/df'],
    ['POST', '/v1.41/commit?container=secret-db'],
    ['GET', '/v1.41/containers/json?filters=%7B%22since%22%3A%5B%22secret-db%22%5D%7D'],
  ])('%s %s', (method, target) => {
    expect(evaluate(method, target).allowed).toBe(false);
  });

  test('network inspect and events carry their second line', () => {
    expect(evaluate('GET', '/v1.41/networks/bridge').obligations?.response?.kind).toBe('network-inspect');
    expect(evaluate('GET', '/v1.41/events').obligations?.response).toMatchObject({ kind: 'events', labels: [{ key: 'traefik.enable', value: 'true' }] });
    expect(evaluate('GET', '/v1.41/containers/json').obligations?.response).toMatchObject({ kind: 'container-list' });
  });
});
