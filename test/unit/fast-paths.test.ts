/**
 * The hot path's shortcuts must answer exactly what the plain formulation they replace answers:
 * each is checked here against that formulation, on inputs built to reach its edges.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { canonicalize, plainPathEnd } from '../../src/policy/canonical.js';
import { codeUnits, compilePolicy, regionEquals } from '../../src/policy/compile.js';

describe('regionEquals', () => {
  test('is startsWith at an offset', () => {
    const text = fc.string({ unit: fc.constantFrom('/', 'a', 'b', 'é'), maxLength: 8 });
    fc.assert(
      fc.property(text, fc.nat(10), text, (haystack, offset, literal) => {
        expect(regionEquals(haystack, offset, codeUnits(literal))).toBe(haystack.startsWith(literal, offset));
      }),
      { numRuns: 5000 },
    );
  });
});

describe('plainPathEnd', () => {
  // The single expression it replaces, and where that answer put the end of the path.
  const PLAIN_TARGET = /^(?:\/(?!\.\.?(?:[/?]|$))[A-Za-z0-9\-._~!$&'()*+,;=:@]+)+(?:\?[\x21\x22\x24-\x7e]*)?$/;
  const reference = (raw: string): number => {
    if (!PLAIN_TARGET.test(raw)) return -1;
    const query = raw.indexOf('?');
    return query < 0 ? raw.length : query;
  };

  const EDGES = ['/_ping', '/v1.41/containers/json?all=1', '/a/..', '/a/../b', '/a/.../b', '/a/.?x', '/a?', '/a?#', '/a?b?c/d'];
  test.each([...EDGES, '//a', '/a/', '/', '?a', '/%61'])('%j', (raw) => {
    expect(plainPathEnd(raw)).toBe(reference(raw));
  });

  test('agrees with the single expression', () => {
    const unit = fc.constantFrom('/', '/', '.', '.', 'a', '?', '#', '%', ' ', '\n', 'é', '\x7f', '"', '~');
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 12 }), (raw) => {
        expect(plainPathEnd(raw)).toBe(reference(raw));
      }),
      { numRuns: 20000 },
    );
  });
});

describe('canonicalize: the usual version prefix read at fixed positions', () => {
  test.each([
    ['/v1.41/_ping', 10041],
    ['/v1.10/_ping', 10010],
    ['/v1.99/_ping', 10099],
    ['/v1.4/_ping', 10004],
    ['/v1.100/_ping', 10100],
    ['/v2.41/_ping', 20041],
    ['/v1.41x/_ping', -1],
    ['/v1:41/_ping', -1],
  ])('%s -> %d', (raw, version) => {
    expect(canonicalize(raw)).toMatchObject({ version });
  });

  test.each([
    ['/v1.05/_ping', 'not of the form'],
    ['/v1.41', 'nothing after'],
    ['/v1.41?x=1', 'nothing after'],
  ])('%s is refused (%s)', (raw, why) => {
    expect(canonicalize(raw)).toEqual({ malformed: expect.stringContaining(why) });
  });
});

describe('compiled rules: literal and subtree globs within their section', () => {
  const GLOBS = ['/a', '/a/b', '/a/b/c', '/a/**', '/a/b/**', '/a/b/c/**'];
  const reference = (glob: string, path: string): boolean =>
    glob.endsWith('/**') ? path === glob.slice(0, -3) || path.startsWith(glob.slice(0, -2)) : path === glob;

  test('match what the glob says, wherever the path sits in the target', () => {
    const matchers = GLOBS.map((glob) => {
      const entries = compilePolicy({ name: 't', rules: [{ id: glob, effect: 'allow', paths: [glob] }] }).bySection.get('a');
      return [glob, entries![0]!.matches] as const;
    });
    // Paths whose first segment is `a`, as the evaluator hands them over: after a prefix, before a query.
    const segment = fc.constantFrom('a', 'b', 'c', 'bc', 'b.', 'ab');
    const path = fc.array(segment, { maxLength: 4 }).map((rest) => ['/a', ...rest].join('/'));
    fc.assert(
      fc.property(path, fc.constantFrom('', '/v1.41', '/x'), fc.constantFrom('', '?q=/a/b', '/c'), (rest, prefix, after) => {
        const text = prefix + rest + after;
        for (const [glob, matches] of matchers) {
          expect(matches(text, prefix.length, prefix.length + rest.length), `${glob} on ${rest}`).toBe(reference(glob, rest));
        }
      }),
      { numRuns: 3000 },
    );
  });
});
