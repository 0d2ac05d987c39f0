import { describe, expect, test } from 'vitest';
import {
  createSocketFilter,
  definePolicy,
  isSocketFilterError,
  linuxserverPreset,
  tecnativaPreset,
  type ClientSpec,
  type RequestInfo,
} from '../../src/index.js';

function thrownBy(fn: () => unknown): TypeError & { code?: string } {
  try {
    fn();
  } catch (error) {
    return error as TypeError & { code?: string };
  }
  throw new Error('expected a throw');
}

const traefik = tecnativaPreset({ CONTAINERS: '1' });
const portainer = definePolicy({
  extends: tecnativaPreset({ CONTAINERS: '1', POST: '1' }),
  deny: ['* /containers/*/exec'],
});
const dozzle = linuxserverPreset({ CONTAINERS: '1', ALLOW_LOGS: '1' });

const clients: ClientSpec[] = [
  { name: 'traefik', match: { address: ['172.25.0.2'] }, policy: traefik },
  { name: 'portainer', match: { address: ['172.25.0.3/32', 'fd00:25::3'] }, policy: portainer },
  { name: 'dozzle', match: { listener: 'ro' }, policy: dozzle },
  { name: 'lan-ci', match: { address: ['10.1.0.0/16'], listener: 'tcp' }, policy: tecnativaPreset({ IMAGES: '1' }) },
];
const filter = createSocketFilter({ clients });

describe('the first client whose match holds decides, with its own policy', () => {
  test.each<[string, string, string, RequestInfo['client'], string | undefined, boolean]>([
    ['traefik lists containers', 'GET', '/v1.41/containers/json', { address: '172.25.0.2', listener: 'tcp' }, 'traefik', true],
    ['traefik may not read logs', 'GET', '/v1.41/containers/web/logs', { address: '172.25.0.2' }, 'traefik', true],
    ['traefik may not create', 'POST', '/v1.41/containers/create', { address: '172.25.0.2' }, 'traefik', false],
    ['portainer creates', 'POST', '/v1.41/containers/create', { address: '172.25.0.3' }, 'portainer', true],
    ['portainer may not exec', 'POST', '/v1.41/containers/web/exec', { address: '172.25.0.3' }, 'portainer', false],
    ['an IPv4-mapped address is its IPv4 address', 'POST', '/v1.41/containers/create', { address: '::ffff:172.25.0.3' }, 'portainer', true],
    ['IPv6, written another way', 'POST', '/v1.41/containers/create', { address: 'fd00:25:0::3' }, 'portainer', true],
    ['dozzle reads logs on the ro listener', 'GET', '/v1.41/containers/web/logs', { listener: 'ro' }, 'dozzle', true],
    ['dozzle on ro, whatever its address', 'GET', '/v1.41/containers/web/logs', { address: '192.0.2.1', listener: 'ro' }, 'dozzle', true],
    ['dozzle may not start', 'POST', '/v1.41/containers/web/start', { listener: 'ro' }, 'dozzle', false],
    ['address and listener both hold', 'GET', '/v1.41/images/json', { address: '10.1.200.7', listener: 'tcp' }, 'lan-ci', true],
  ])('%s', (_name, method, target, client, name, allowed) => {
    const decision = filter.evaluate(method, target, client === undefined ? {} : { client });
    expect(decision.client).toBe(name);
    expect(decision.allowed).toBe(allowed);
  });

  test('traefik may read logs under tecnativa (CONTAINERS covers them); dozzle is the one with ALLOW_LOGS', () => {
    const strict = createSocketFilter({
      clients: [
        { name: 'traefik', match: { address: ['172.25.0.2'] }, policy: linuxserverPreset({ CONTAINERS: '1' }) },
        { name: 'dozzle', match: { address: ['172.25.0.4'] }, policy: dozzle },
      ],
    });
    expect(strict.evaluate('GET', '/v1.41/containers/web/logs', { client: { address: '172.25.0.2' } })).toMatchObject({
      allowed: false,
      client: 'traefik',
      rule: 'ALLOW_LOGS',
    });
    expect(strict.evaluate('GET', '/v1.41/containers/web/logs', { client: { address: '172.25.0.4' } })).toMatchObject({
      allowed: true,
      client: 'dozzle',
    });
  });

  test('first match wins: a narrower client listed after a wider one never decides', () => {
    const ordered = createSocketFilter({
      clients: [
        { name: 'subnet', match: { address: ['172.25.0.0/24'] }, policy: tecnativaPreset({}) },
        { name: 'one', match: { address: ['172.25.0.9'] }, policy: tecnativaPreset({ CONTAINERS: '1' }) },
      ],
    });
    expect(ordered.evaluate('GET', '/v1.41/containers/json', { client: { address: '172.25.0.9' } })).toMatchObject({
      allowed: false,
      client: 'subnet',
    });
  });

  test('hardening checks still run for a matched client, and name it', () => {
    expect(filter.evaluate('GET', '/v1.41/containers/../images/json', { client: { address: '172.25.0.2' } })).toMatchObject({
      status: 400,
      client: 'traefik',
    });
  });
});

describe('no client matches: 403, rule `clients`, the reason names the address or the listener', () => {
  test.each<[string, string, string, RequestInfo['client'], string, string | null]>([
    [
      'an unknown address',
      'GET',
      '/v1.41/info',
      { address: '172.25.0.9', listener: 'tcp' },
      'docker-socket-filter denied GET /v1.41/info: no client matches 172.25.0.9 (listener tcp)',
      '/v1.41/info',
    ],
    [
      'an unknown address without listener',
      'GET',
      '/v1.41/info?x=1',
      { address: '::ffff:172.25.0.9' },
      'docker-socket-filter denied GET /v1.41/info: no client matches 172.25.0.9',
      '/v1.41/info?x=1',
    ],
    [
      'a unix socket of another listener',
      'GET',
      '/_ping',
      { listener: 'rw' },
      'docker-socket-filter denied GET /_ping: no client matches listener rw',
      '/_ping',
    ],
    [
      'the right subnet on the wrong listener',
      'GET',
      '/_ping',
      { address: '10.1.0.1', listener: 'other' },
      'docker-socket-filter denied GET /_ping: no client matches 10.1.0.1 (listener other)',
      '/_ping',
    ],
    [
      'no client information at all',
      'GET',
      '/_ping',
      undefined,
      'docker-socket-filter denied GET /_ping: no client matches a request without client information (no peer address, no listener)',
      '/_ping',
    ],
    [
      'a malformed target',
      'GET',
      '/a/../b',
      { address: '198.51.100.1' },
      'docker-socket-filter denied GET: no client matches 198.51.100.1',
      null,
    ],
    [
      'an unreadable address',
      'GET',
      '/_ping',
      { address: 'not-an-ip' },
      'docker-socket-filter denied GET /_ping: no client matches the unreadable address "not-an-ip"',
      '/_ping',
    ],
  ])('%s', (_name, method, target, client, reason, path) => {
    const decision = filter.evaluate(method, target, client === undefined ? {} : { client });
    expect(decision).toEqual({ allowed: false, status: 403, rule: 'clients', reason, path });
  });

  test('headers cannot name a client: only the connection does (the proxy passes `client`; there is no header field)', () => {
    // evaluate has no header input at all; a request with client information for no client is refused.
    expect(filter.evaluate('GET', '/_ping', { host: '172.25.0.2', client: {} }).rule).toBe('clients');
  });
});

describe('validation', () => {
  const policy = tecnativaPreset({});
  test.each<[string, unknown, string]>([
    ['clients and policy together', { clients, policy }, 'The `clients` and `policy` options cannot both be given'],
    ['an empty list', { clients: [] }, '`clients` option must be a non-empty list'],
    ['not a list', { clients: {} }, '`clients` option must be a non-empty list'],
    ['an unknown key', { clients: [{ name: 'a', match: { listener: 'x' }, policy, extra: 1 }] }, '`clients[0].extra`'],
    ['a bad name', { clients: [{ name: 'a b', match: { listener: 'x' }, policy }] }, '`clients[0].name`'],
    [
      'a repeated name',
      { clients: [{ name: 'a', match: { listener: 'x' }, policy }, { name: 'a', match: { listener: 'y' }, policy }] },
      '`clients[1].name` option repeats the name "a"',
    ],
    ['an empty match', { clients: [{ name: 'a', match: {}, policy }] }, '`clients[0].match` option must give `address`, `listener` or both'],
    ['an unknown match key', { clients: [{ name: 'a', match: { header: 'x' }, policy }] }, '`clients[0].match.header`'],
    ['an empty address list', { clients: [{ name: 'a', match: { address: [] }, policy }] }, '`clients[0].match.address`'],
    ['a host name', { clients: [{ name: 'a', match: { address: ['traefik'] }, policy }] }, '`clients[0].match.address[0]`'],
    ['a short IPv4 form', { clients: [{ name: 'a', match: { address: ['10.5'] }, policy }] }, '`clients[0].match.address[0]`'],
    ['a hex IPv4 form', { clients: [{ name: 'a', match: { address: ['0x0a.0.0.1'] }, policy }] }, 'not an IPv4 address in dotted form'],
    ['a zone index', { clients: [{ name: 'a', match: { address: ['fe80::1%eth0'] }, policy }] }, '`clients[0].match.address[0]`'],
    ['a prefix too long', { clients: [{ name: 'a', match: { address: ['10.0.0.0/33'] }, policy }] }, 'from 0 to 32'],
    [
      'host bits past the prefix',
      { clients: [{ name: 'a', match: { address: ['10.0.0.3', '172.25.0.3/24'] }, policy }] },
      '`clients[0].match.address[1]` option has "172.25.0.3/24", which has bits set past its prefix: write 172.25.0.0/24',
    ],
    ['an empty listener', { clients: [{ name: 'a', match: { listener: '' }, policy }] }, '`clients[0].match.listener`'],
    ['no policy', { clients: [{ name: 'a', match: { listener: 'x' } }] }, '`clients[0].policy` option must be a policy object'],
    [
      'a bad rule in a client policy',
      { clients: [{ name: 'a', match: { listener: 'x' }, policy: { name: 'p', rules: [{ id: 'x', effect: 'allow', paths: ['nope'] }] } }] },
      'Invalid rule `clients[0].policy.rules[0] (x)`',
    ],
  ])('%s', (_name, options, message) => {
    const error = thrownBy(() => createSocketFilter(options as never));
    expect(error).toBeInstanceOf(TypeError);
    expect(isSocketFilterError(error)).toBe(true);
    expect(error.message).toContain(message);
  });

  test('an IPv4-mapped CIDR of /96 or more is the IPv4 range it carries', () => {
    const mapped = createSocketFilter({ clients: [{ name: 'a', match: { address: ['::ffff:10.0.0.0/120'] }, policy: tecnativaPreset({}) }] });
    expect(mapped.evaluate('GET', '/_ping', { client: { address: '10.0.0.200' } }).client).toBe('a');
    expect(mapped.evaluate('GET', '/_ping', { client: { address: '10.0.1.1' } }).rule).toBe('clients');
  });

  test('filter.clients and options are what was given, frozen; policy is undefined', () => {
    expect(filter.policy).toBeUndefined();
    expect(filter.clients?.map((client) => client.name)).toEqual(['traefik', 'portainer', 'dozzle', 'lan-ci']);
    expect(Object.isFrozen(filter.clients)).toBe(true);
    expect(Object.isFrozen(filter.options)).toBe(true);
  });
});

describe('update: a new policy or new clients for the requests decided from now on', () => {
  test('swaps the policy; the evaluate function stays the same one', () => {
    const swapped = createSocketFilter({ policy: tecnativaPreset({}) });
    const evaluate = swapped.evaluate;
    expect(evaluate('GET', '/v1.41/containers/json').allowed).toBe(false);
    swapped.update({ policy: tecnativaPreset({ CONTAINERS: '1' }) });
    expect(evaluate('GET', '/v1.41/containers/json').allowed).toBe(true);
    expect(swapped.policy?.source?.settings.CONTAINERS).toBe(true);
  });

  test('from one policy to clients and back', () => {
    const swapped = createSocketFilter({ policy: tecnativaPreset({}) });
    swapped.update({ clients });
    expect(swapped.evaluate('GET', '/v1.41/info', { client: { address: '172.25.0.9' } }).rule).toBe('clients');
    expect(swapped.options.policy).toBeUndefined();
    swapped.update({ policy: tecnativaPreset({ INFO: '1' }) });
    expect(swapped.evaluate('GET', '/v1.41/info', { client: { address: '172.25.0.9' } })).toMatchObject({ allowed: true, rule: 'INFO' });
    expect(swapped.clients).toBeUndefined();
  });

  test.each<[string, unknown, string]>([
    ['an unknown key', { socketPath: '/x' }, '`socketPath` option is not an option `update` takes'],
    ['nothing', {}, 'must give `policy` or `clients`'],
    ['both', { policy: tecnativaPreset({}), clients }, 'cannot both be given'],
    ['a bad client', { clients: [{ name: 'x', match: { address: ['300.0.0.1'] }, policy: tecnativaPreset({}) }] }, '`clients[0].match.address[0]`'],
    ['a bad policy', { policy: { name: 'x', rules: [{ id: 'x', effect: 'permit', paths: ['/x'] }] } }, 'policy.rules[0]'],
  ])('a failed update (%s) throws the same TypeError and changes nothing', (_name, next, message) => {
    const kept = createSocketFilter({ clients });
    const before = kept.options;
    const error = thrownBy(() => kept.update(next as never));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toContain(message);
    expect(kept.options).toBe(before);
    expect(kept.evaluate('GET', '/v1.41/containers/json', { client: { address: '172.25.0.2' } })).toMatchObject({
      allowed: true,
      client: 'traefik',
    });
  });
});
