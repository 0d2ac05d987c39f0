/**
 * One regression test per bypass class of the reference: each payload would pass Tecnativa's
 * HAProxy rules (or reach another section in dockerd) and must not pass ours.
 */
import { describe, expect, test } from 'vitest';
import { createSocketFilter, linuxserverPreset, tecnativaPreset } from '../../src/index.js';

/** A typical Traefik setup: read containers, nothing else. */
const readOnly = createSocketFilter({ policy: tecnativaPreset({ CONTAINERS: '1' }) }).evaluate;
/** A deploy job that may start containers and nothing else. */
const startOnly = createSocketFilter({ policy: tecnativaPreset({ POST: '1', ALLOW_START: '1' }) }).evaluate;
const restartsOnly = createSocketFilter({ policy: tecnativaPreset({ POST: '1', ALLOW_RESTARTS: '1' }) }).evaluate;
const lsStart = createSocketFilter({ policy: linuxserverPreset({ ALLOW_START: '1' }) }).evaluate;

describe('encoding', () => {
  test.each([
    ['GET', '/v1.41/%69mages/json'],
    ['GET', '/v1.41/%49MAGES/json'],
    ['GET', '/v1.41/containers%2F..%2Fimages/json'],
    ['GET', '/v1.41/containers/%2e%2e/images/json'],
    ['GET', '/v1.41/containers%252F..%252Fimages/json'],
    ['GET', '/v1.41/containers/json%00'],
    ['GET', '/v1.41/containers%zz/json'],
  ])('%s %s does not reach images', (method, target) => {
    const decision = readOnly(method, target);
    expect(decision.allowed).toBe(false);
  });

  test('an encoded letter decodes to what dockerd routes, and that is what is forwarded', () => {
    expect(readOnly('GET', '/v1.41/%63ontainers/json')).toMatchObject({ allowed: true, path: '/v1.41/containers/json' });
    expect(readOnly('GET', '/v1.41/%69mages/json')).toMatchObject({ allowed: false, path: '/v1.41/images/json' });
  });
});

describe('dot segments and slashes', () => {
  test.each([
    '/v1.41/containers/../images/json',
    '/v1.41/containers/./../images/json',
    '/containers/../v1.41/images/json',
    '/v1.41/containers/json/..',
    '//v1.41/containers/json',
    '/v1.41//containers/json',
    '/v1.41/containers//json',
    '/v1.41/containers/json/',
    '/v1.41/containers\\..\\images\\json',
  ])('%s is refused with 400 and nothing forwarded', (target) => {
    expect(readOnly('GET', target)).toMatchObject({ allowed: false, status: 400, path: null });
  });
});

describe('case', () => {
  test.each(['/v1.41/CONTAINERS/json', '/v1.41/Containers/json', '/V1.41/containers/json'])(
    '%s does not match the containers section (dockerd routes are case-sensitive)',
    (target) => {
      expect(readOnly('GET', target).allowed).toBe(false);
    },
  );

  test.each(['get', 'Get', 'post'])('method %s is refused (methods are case-sensitive)', (method) => {
    expect(readOnly(method, '/v1.41/containers/json')).toMatchObject({ allowed: false, rule: 'method' });
  });
});

describe('section boundaries', () => {
  test.each(['/v1.41/containersXYZ', '/v1.41/containers_json', '/v1.41/_pingx', '/v1.41/versions', '/eventsfoo'])(
    '%s is not a granted section',
    (target) => {
      const evaluate = createSocketFilter().evaluate;
      expect(evaluate('GET', target).allowed).toBe(false);
      expect(readOnly('GET', target).allowed).toBe(false);
    },
  );
});

describe('version prefixes', () => {
  test.each([
    ['/v1.41.0/containers/json', true],
    ['/v1.41/containers/json', true],
    ['/v1.24/containers/json', true],
    ['/containers/json', true],
    ['/v01.41/containers/json', false],
    ['/v1.41./containers/json', false],
    ['/v1/containers/json', false],
    ['/v/containers/json', false],
    ['/v1.41/v1.41/containers/json', false],
    ['/vv1.41/containers/json', false],
  ])('%s allowed=%s', (target, allowed) => {
    expect(readOnly('GET', target).allowed).toBe(allowed);
  });
});

describe('old API versions', () => {
  test.each(['/v1.23/containers/web/start', '/v1.12/containers/web/start', '/v1.0/containers/web/start'])(
    'POST %s is refused by default',
    (target) => {
      expect(startOnly('POST', target)).toMatchObject({ allowed: false, status: 400, rule: 'min-api-version' });
    },
  );

  test('the minimum is configurable', () => {
    const legacy = createSocketFilter({ policy: tecnativaPreset({ CONTAINERS: '1' }), minApiVersion: '1.12' }).evaluate;
    expect(legacy('GET', '/v1.12/containers/json').allowed).toBe(true);
    expect(legacy('GET', '/v1.11/containers/json').allowed).toBe(false);
  });
});

describe('absolute-form', () => {
  test.each([
    ['http://localhost/v1.41/containers/json', 'localhost', true, '/v1.41/containers/json'],
    ['http://LOCALHOST/v1.41/containers/json', 'localhost', true, '/v1.41/containers/json'],
    ['http://localhost:2375/v1.41/images/json', 'localhost:2375', false, '/v1.41/images/json'],
    ['http://localhost/v1.41/containers/../images/json', 'localhost', false, null],
    ['http://localhost', 'localhost', false, null],
    ['http://user:pw@localhost/v1.41/containers/json', 'localhost', false, null],
    ['ftp://localhost/v1.41/containers/json', 'localhost', false, null],
  ])('%s (Host: %s) allowed=%s forwards %s', (target, host, allowed, path) => {
    expect(readOnly('GET', target, { host })).toMatchObject({ allowed, path });
  });

  // Parity with HAProxy, the original: a proxy in front of the guard may route by the Host while
  // the guard decides by the target; they must be the same destination.
  test.each([
    ['http://x/v1.41/containers/json', 'localhost'],
    ['http://localhost/v1.41/containers/json', 'localhost:2375'],
    ['http://localhost:2375/v1.41/containers/json', 'localhost'],
    ['http://localhost/v1.41/containers/json', undefined],
  ])('%s with Host %s is refused with 400: the authority is not the Host', (target, host) => {
    const decision = readOnly('GET', target, host === undefined ? {} : { host });
    expect(decision).toMatchObject({ allowed: false, status: 400, rule: null, path: null });
    expect(decision.reason).toBe('docker-socket-filter refused the request-target: an absolute-form target must name the same host as the Host header');
  });
});

describe('query and fragment', () => {
  test('the query is forwarded unchanged and never decided on', () => {
    expect(readOnly('GET', '/v1.41/containers/json?x=/../images/json')).toMatchObject({
      allowed: true,
      path: '/v1.41/containers/json?x=/../images/json',
    });
  });

  test.each(['/v1.41/images/json?/containers/json', '/v1.41/images/json?x=/containers'])(
    '%s is decided on its path',
    (target) => {
      expect(readOnly('GET', target).allowed).toBe(false);
    },
  );

  test.each(['/v1.41/containers/json#/../../images/json', '/v1.41/images/json#/containers/json'])('%s (a fragment) is refused', (target) => {
    expect(readOnly('GET', target)).toMatchObject({ allowed: false, status: 400 });
  });
});

describe('whitespace and control bytes', () => {
  test.each([
    '/v1.41/containers/json HTTP/1.1\r\nHost: x\r\n\r\nPOST /v1.41/containers/create',
    '/v1.41/containers/json\t',
    ' /v1.41/containers/json',
    '/v1.41/containers/json\u000b',
    '/v1.41/containers/json\u007f',
    '/v1.41/containers/json%0d%0a',
    '/v1.41/containers/json?a=%0d%0a\r\n',
  ])('%j is refused', (target) => {
    expect(readOnly('GET', target)).toMatchObject({ allowed: false, status: 400 });
  });
});

describe('container names with slashes (link aliases)', () => {
  test.each([
    ['POST', '/v1.41/containers/parent/alias/start'],
    ['POST', '/v1.41/containers/web/start/kill'],
    ['POST', '/v1.41/containers/parent/alias/kill'],
    ['DELETE', '/v1.41/containers/parent/alias'],
    ['PUT', '/v1.41/containers/parent/alias/archive'],
  ])('%s %s is refused even where the action is granted', (method, target) => {
    for (const evaluate of [startOnly, restartsOnly, lsStart]) {
      const decision = evaluate(method, target);
      expect(decision.allowed).toBe(false);
    }
    const everything = createSocketFilter({ policy: tecnativaPreset({ POST: '1', CONTAINERS: '1' }) }).evaluate;
    expect(everything(method, target)).toMatchObject({ allowed: false, rule: 'container-name' });
  });

  test('linuxserver sub-resource gates cannot be skipped with an alias', () => {
    const evaluate = createSocketFilter({ policy: linuxserverPreset({ CONTAINERS: '1' }) }).evaluate;
    expect(evaluate('GET', '/v1.41/containers/parent/alias/logs').allowed).toBe(false);
  });
});

describe('start with a configuration body', () => {
  test.each([
    [undefined, true],
    [0, true],
    [2, true],
    [7, true],
    [8, false],
    [4096, false],
    [-1, false],
  ])('bodyLength %s allowed=%s', (bodyLength, allowed) => {
    const request = bodyLength === undefined ? undefined : { bodyLength };
    const decision = startOnly('POST', '/v1.41/containers/web/start', request);
    expect(decision.allowed).toBe(allowed);
    if (!allowed) expect(decision.rule).toBe('start-body');
  });

  test('other actions may carry a body', () => {
    expect(restartsOnly('POST', '/v1.41/containers/web/kill', { bodyLength: 100 }).allowed).toBe(true);
  });
});

describe('upgrades are writes', () => {
  test('websocket attach is a write whatever the headers', () => {
    expect(readOnly('GET', '/v1.41/containers/web/attach/ws?stdin=1&stream=1')).toMatchObject({ allowed: false, rule: 'POST' });
    expect(readOnly('GET', '/v1.41/containers/web/attach/ws', { upgrade: false })).toMatchObject({ allowed: false });
  });

  test('any upgrade needs POST', () => {
    expect(readOnly('GET', '/v1.41/containers/web/logs?follow=1', { upgrade: true })).toMatchObject({ allowed: false, rule: 'POST' });
    const writable = createSocketFilter({ policy: tecnativaPreset({ CONTAINERS: '1', POST: '1' }) }).evaluate;
    expect(writable('POST', '/v1.41/containers/web/attach?stream=1&stdin=1', { upgrade: true }).allowed).toBe(true);
    expect(writable('GET', '/v1.41/containers/web/attach/ws?stdin=1', { upgrade: true }).allowed).toBe(true);
  });
});

describe('methods', () => {
  test.each(['OPTIONS', 'CONNECT', 'TRACE', 'PATCH', 'PROPFIND', 'FOO', '', 'GET ', 'G\u0000ET'])('%j is refused', (method) => {
    const everything = createSocketFilter({ policy: tecnativaPreset({ POST: '1', CONTAINERS: '1', PING: '1' }) }).evaluate;
    expect(everything(method, '/_ping')).toMatchObject({ allowed: false, status: 403, rule: 'method' });
  });

  test('HEAD /_ping is allowed wherever GET /_ping is', () => {
    const evaluate = createSocketFilter().evaluate;
    expect(evaluate('HEAD', '/_ping').allowed).toBe(true);
    expect(evaluate('HEAD', '/v1.41/_ping').allowed).toBe(true);
  });
});
