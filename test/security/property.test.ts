/**
 * Property: for any target, if `evaluate` allows it, the forwarded path is canonical and dockerd
 * routes it to a section the policy grants. dockerd's reading of a target is modelled here on its
 * own (Go's unescaping, gorilla/mux's path cleaning and version prefix), not with our code.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { createSocketFilter, linuxserverPreset, tecnativaPreset } from '../../src/index.js';

/** Go's url.PathUnescape; null where Go answers 400. */
function goUnescape(path: string): string | null {
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const ch = path[i]!;
    if (ch === '%') {
      const hex = path.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) return null;
      out += String.fromCharCode(parseInt(hex, 16));
      i += 2;
    } else out += ch;
  }
  return out;
}

/** Go's path.Clean as used by gorilla/mux's cleanPath (which keeps a trailing slash). */
function muxCleanPath(p: string): string {
  if (p === '') return '/';
  if (!p.startsWith('/')) p = '/' + p;
  const out: string[] = [];
  for (const segment of p.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') out.pop();
    else out.push(segment);
  }
  let cleaned = '/' + out.join('/');
  if (p.endsWith('/') && cleaned !== '/') cleaned += '/';
  return cleaned;
}

interface Routed {
  readonly section: string;
  readonly rest: string;
}

/** How dockerd reads an origin-form target: null when it would not run the request as-is. */
function dockerdRoute(target: string): Routed | null {
  if (/[\u0000-\u0020\u007f-\uffff]/.test(target)) return null;
  const hash = target.indexOf('#');
  if (hash >= 0) return null;
  const query = target.indexOf('?');
  const rawPath = query < 0 ? target : target.slice(0, query);
  if (!rawPath.startsWith('/')) return null;
  const path = goUnescape(rawPath);
  if (path === null) return null;
  if (muxCleanPath(path) !== path) return null; // a 301, the request does not run
  const version = /^\/v[0-9.]+(?=\/)/.exec(path);
  const rest = version ? path.slice(version[0].length) : path;
  const section = rest.split('/')[1] ?? '';
  return { section, rest };
}

const PIECES = [
  '/', '/', '/', '.', '..', 'containers', 'images', 'json', '_ping', 'version', 'events', 'exec', 'v1.41', 'v1.23', 'v1.41.0',
  'libpod', 'start', 'kill', 'attach', 'ws', 'web', 'parent', 'C', '%2f', '%2F', '%2e', '%2E', '%25', '%252f', '%', '%6', '%63',
  '%69', '%00', '%0a', '%20', '\\', '%5c', '?', '#', '&', '=', ' ', '\t', '\r\n', ':', '@', 'http://h', '*', '~', '%3f', '%23', 'é',
];

/** Mostly well-formed targets with one or two twists, so that a good share is allowed. */
const SEGMENTS = ['json', 'web', 'start', 'kill', 'attach', 'ws', 'logs', 'parent', 'a.b', 'x-1_y', '%77eb', '..', '.', '', '%2f', 'C', '*', ':', '@', '%3F'];
const structured = fc
  .tuple(
    fc.constantFrom('', '', '/v1.41', '/v1.24', '/v1.23', '/v1.41.0', '/v01.41', '/v4.0.0', 'http://docker/v1.41', '/V1.41'),
    fc.constantFrom('containers', 'containers', '_ping', 'version', 'events', 'images', 'libpod/containers', 'libpod/pods', '%63ontainers', 'CONTAINERS', 'containersX', 'exec'),
    fc.array(fc.constantFrom(...SEGMENTS), { maxLength: 4 }),
    fc.constantFrom('', '', '?all=1', '?x=/../images', '?', '#f', '?a=%0a'),
  )
  .map(([version, section, rest, query]) => `${version}/${section}${rest.map((segment) => '/' + segment).join('')}${query}`);

const targets = fc.oneof(
  { arbitrary: structured, weight: 4 },
  fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 10 }).map((parts) => parts.join('')),
  fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 10 }).map((parts) => '/' + parts.join('')),
  fc.string({ maxLength: 40 }).map((s) => '/' + s),
  fc.string({ unit: 'grapheme-ascii', maxLength: 40 }).map((s) => '/v1.41/' + s),
);
const methods = fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'get');
const requests = fc.record({ upgrade: fc.boolean(), bodyLength: fc.integer({ min: -1, max: 20 }) }, { requiredKeys: [] });

const POLICIES = [
  ['tecnativa CONTAINERS=1', tecnativaPreset({ CONTAINERS: '1' }), new Set(['containers', '_ping', 'version', 'events'])],
  ['tecnativa POST=1 ALLOW_START=1', tecnativaPreset({ POST: '1', ALLOW_START: '1' }), new Set(['containers', '_ping', 'version', 'events'])],
  ['tecnativa default', tecnativaPreset({}), new Set(['_ping', 'version', 'events'])],
  ['linuxserver ALLOW_START=1 LIBPOD_CONTAINERS=1', linuxserverPreset({ ALLOW_START: '1', LIBPOD_CONTAINERS: '1' }), new Set(['containers', 'libpod', '_ping', 'version', 'events'])],
] as const;

describe.each(POLICIES)('%s', (_name, policy, grantedSections) => {
  const { evaluate } = createSocketFilter({ policy });

  test('an allowed target is forwarded canonical, to a granted section, and re-decides the same', () => {
    let allowed = 0;
    fc.assert(
      fc.property(methods, targets, requests, (method, target, request) => {
        const decision = evaluate(method, target, request);
        if (!decision.allowed) {
          expect([400, 403]).toContain(decision.status);
          return;
        }
        expect(decision.status).toBe(200);
        allowed++;
        const forwarded = decision.path;
        expect(typeof forwarded).toBe('string');
        const routed = dockerdRoute(forwarded!);
        expect(routed, `dockerd would not run ${JSON.stringify(forwarded)} as-is`).not.toBeNull();
        expect(grantedSections.has(routed!.section)).toBe(true);
        // What dockerd sees is what the client asked for, when the client's target was routable.
        const original = target.startsWith('/') ? dockerdRoute(target) : null;
        if (original) expect(routed!.rest).toBe(original.rest);
        // Canonical: deciding on the forwarded target changes nothing.
        expect(evaluate(method, forwarded!, request)).toEqual(decision);
      }),
      { numRuns: 4000 },
    );
    // The generator must reach allowed targets, or the property says nothing.
    expect(allowed).toBeGreaterThan(15);
  });

  test('a target dockerd would redirect or refuse is never allowed', () => {
    let unroutable = 0;
    fc.assert(
      fc.property(methods, targets, (method, target) => {
        if (!target.startsWith('/') || dockerdRoute(target) !== null) return;
        unroutable++;
        expect(evaluate(method, target).allowed).toBe(false);
      }),
      { numRuns: 4000 },
    );
    expect(unroutable).toBeGreaterThan(400);
  });
});
