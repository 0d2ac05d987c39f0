/**
 * The hot path's shortcuts must answer exactly what the plain formulation they replace answers:
 * each is checked here against that formulation, on inputs built to reach its edges.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { canonicalize, plainPathEnd } from '../../src/policy/canonical.js';

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
