import { describe, expect, test } from 'vitest';
import { canonicalize } from '../../src/policy/canonical.js';

describe('canonicalize: targets dockerd routes as-is', () => {
  test.each([
    ['/_ping', '/_ping', '/_ping', -1],
    ['/v1.41/containers/json', '/v1.41/containers/json', '/containers/json', 10041],
    ['/v1.41/containers/json?all=1&filters=%7B%22a%22%7D', '/v1.41/containers/json?all=1&filters=%7B%22a%22%7D', '/containers/json', 10041],
    ['/v1.24/version', '/v1.24/version', '/version', 10024],
    ['/v4.0.0/libpod/containers/json', '/v4.0.0/libpod/containers/json', '/libpod/containers/json', 40000],
    // Percent-decoding happens once, as in dockerd, and the forwarded form is the canonical encoding.
    ['/v1.41/%76ersion', '/v1.41/version', '/version', 10041],
    ['/v1.41/images/localhost:5000/app:1.0/json', '/v1.41/images/localhost:5000/app:1.0/json', '/images/localhost:5000/app:1.0/json', 10041],
    ['/v1.41/images/app%40sha256:abc/json', '/v1.41/images/app@sha256:abc/json', '/images/app@sha256:abc/json', 10041],
    ['/v1.41/networks/a%3Fb', '/v1.41/networks/a%3Fb', '/networks/a?b', 10041],
    ['/v1.41/networks/a%22b', '/v1.41/networks/a%22b', '/networks/a"b', 10041],
    ['/v1.41/networks/a"b', '/v1.41/networks/a%22b', '/networks/a"b', 10041],
    // Absolute-form is routed by its path; we forward origin-form.
    ['http://docker/v1.41/version', '/v1.41/version', '/version', 10041],
    ['HTTPS://docker:2375/_ping?x=1', '/_ping?x=1', '/_ping', -1],
    // Not a version prefix for dockerd either (it needs v[0-9.]+): an ordinary first segment.
    ['/vfoo/json', '/vfoo/json', '/vfoo/json', -1],
    ['/v/json', '/v/json', '/v/json', -1],
    // Three dots are a name, not a dot segment (Go's path.Clean keeps them).
    ['/v1.41/volumes/...', '/v1.41/volumes/...', '/volumes/...', 10041],
    // Names dockerd accepts with a space or letters beyond ASCII: decided decoded, forwarded in the
    // one canonical encoding (upper-case UTF-8 escapes).
    ['/v1.41/networks/test%2001', '/v1.41/networks/test%2001', '/networks/test 01', 10041],
    ['/v1.41/networks/r%C3%A9seau', '/v1.41/networks/r%C3%A9seau', '/networks/réseau', 10041],
    ['/v1.41/networks/r%c3%a9seau', '/v1.41/networks/r%C3%A9seau', '/networks/réseau', 10041],
    ['/v1.41/volumes/%E6%97%A5%E6%9C%AC', '/v1.41/volumes/%E6%97%A5%E6%9C%AC', '/volumes/日本', 10041],
    ['/v1.41/volumes/%F0%9F%90%B3', '/v1.41/volumes/%F0%9F%90%B3', '/volumes/🐳', 10041],
    ['/v1.41/volumes/a%E2%88%95b', '/v1.41/volumes/a%E2%88%95b', '/volumes/a∕b', 10041],
    // A byte-order mark is a character like another inside a path: kept, not stripped.
    ['/v1.41/networks/%EF%BB%BFx', '/v1.41/networks/%EF%BB%BFx', '/networks/\uFEFFx', 10041],
  ])('%s -> %s', (raw, target, rest, version) => {
    const query = target.indexOf('?');
    const path = query < 0 ? target : target.slice(0, query);
    expect(canonicalize(raw)).toEqual({ target, path, rest, version });
  });
});

describe('canonicalize: targets refused as malformed', () => {
  test.each([
    ['', 'empty'],
    ['*', 'absolute path'],
    ['containers/json', 'absolute path'],
    ['docker:2375', 'absolute path'],
    ['http://user@docker/_ping', 'absolute path'],
    ['http://docker', 'absolute path'],
    ['http:///_ping', 'absolute path'],
    ['/', 'empty'],
    ['/v1.41/', 'ends with a slash'],
    ['/containers/json/', 'ends with a slash'],
    ['//containers/json', 'empty segment'],
    ['/v1.41//containers/json', 'empty segment'],
    ['/v1.41/./containers/json', 'dot segment'],
    ['/v1.41/containers/../images/json', 'dot segment'],
    ['/v1.41/containers/..', 'dot segment'],
    ['/v1.41/containers/.', 'dot segment'],
    ['/v1.41/%2e%2e/images/json', 'dot segment'],
    ['/v1.41/.%2E/images/json', 'dot segment'],
    ['/v1.41/containers\\..\\images/json', 'backslash'],
    ['/v1.41/containers%5cjson', 'encoded slash or backslash'],
    ['/v1.41/containers%2Fjson', 'encoded slash or backslash'],
    ['/v1.41/containers%2fjson', 'encoded slash or backslash'],
    ['/v1.41/containers%252Fjson', 'double encoding'],
    ['/v1.41/containers%25', 'double encoding'],
    ['/v1.41/containers%', 'percent-escape'],
    ['/v1.41/containers%2', 'percent-escape'],
    ['/v1.41/containers%zzjson', 'percent-escape'],
    ['/v1.41/containers%00/json', 'encoded control'],
    ['/v1.41/containers%0a/json', 'encoded control'],
    ['/v1.41/containers%7F/json', 'encoded control'],
    ['/v1.41/networks/%FF', 'not UTF-8'],
    ['/v1.41/networks/r%C3seau', 'not UTF-8'],
    ['/v1.41/networks/%C0%AF', 'not UTF-8'],
    ['/v1.41/networks/%ED%A0%80', 'not UTF-8'],
    ['/v1.41/networks/%F4%90%80%80', 'not UTF-8'],
    ['/v1.41/containers/json#frag', 'fragment'],
    ['/v1.41/containers/json?all=1#frag', 'fragment'],
    ['/v1.41/containers/json ', 'control character'],
    ['/v1.41/containers/json\t', 'control character'],
    ['/v1.41/containers/\u0000json', 'control character'],
    ['/v1.41/containers/json\r\nX: y', 'control character'],
    ['/v1.41/containers/jsön', 'control character'],
    ['/v1.41/containers/json?a=\u0001', 'query contains'],
    ['/v1.41/containers/json?a= b', 'query contains'],
    ['/v1.41', 'nothing after the API version'],
    ['/v1/containers/json', 'not of the form'],
    ['/v1.41./containers/json', 'not of the form'],
    ['/v01.41/containers/json', 'not of the form'],
    ['/v1.041/containers/json', 'not of the form'],
    ['/v1..41/containers/json', 'not of the form'],
    ['/v1.41.0.0/containers/json', 'not of the form'],
    ['/v./containers/json', 'not of the form'],
    ['/v123456.1/containers/json', 'not of the form'],
  ])('%j is refused (%s)', (raw, why) => {
    const result = canonicalize(raw);
    expect(result).toHaveProperty('malformed');
    expect((result as { malformed: string }).malformed).toContain(why);
  });
});
