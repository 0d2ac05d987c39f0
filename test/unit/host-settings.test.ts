import { describe, expect, test } from 'vitest';
import { createSocketFilter, definePolicy, linuxserverPreset, tecnativaPreset } from '../../src/index.js';

const privileged = JSON.stringify({ Image: 'b', HostConfig: { Privileged: true } });
const evaluateCreate = (filter: ReturnType<typeof createSocketFilter>, body = privileged) =>
  filter.evaluate('POST', '/v1.41/containers/create', { body, contentType: 'application/json' });

describe('presets: PROTECT_HOST and its variables', () => {
  test.each([
    ['tecnativa', tecnativaPreset],
    ['linuxserver', linuxserverPreset],
  ])('%s reads PROTECT_HOST, the switches and the lists', (_name, preset) => {
    const policy = preset({ CONTAINERS: '1', POST: '1', PROTECT_HOST: '1', ALLOW_DEVICES: '1', ALLOW_CAPABILITIES: 'net_admin, SYS_TIME', ALLOW_BIND_MOUNTS: '/srv//data/,/opt/appdata', SOCKET_PATH: '/custom/docker.sock' });
    expect(policy.protectHost).toMatchObject({
      allowDevices: true,
      allowPrivileged: false,
      allowCapabilities: ['net_admin', 'SYS_TIME'],
      allowBindMounts: ['/srv/data', '/opt/appdata'],
    });
    expect(policy.protectHost?.dockerSockets).toContain('/custom/docker.sock');
    expect(policy.source?.settings.PROTECT_HOST).toBe(true);
    expect(evaluateCreate(createSocketFilter({ policy }))).toMatchObject({ allowed: false, rule: 'ALLOW_PRIVILEGED' });
  });

  test('without PROTECT_HOST=1 the ALLOW_* switches are read and have no effect', () => {
    const policy = tecnativaPreset({ CONTAINERS: '1', POST: '1', ALLOW_PRIVILEGED: '1', ALLOW_BIND_MOUNTS: '/srv' });
    expect(policy.protectHost).toBeUndefined();
    expect(evaluateCreate(createSocketFilter({ policy })).allowed).toBe(true);
  });

  test('the socket given as SOCKET_PATH, and its directory, may be bound only when listed exactly', () => {
    const policy = tecnativaPreset({ CONTAINERS: '1', POST: '1', PROTECT_HOST: '1', ALLOW_BIND_MOUNTS: '/', SOCKET_PATH: '/custom/dockerd.socket' });
    const filter = createSocketFilter({ policy });
    for (const source of ['/custom', '/custom/dockerd.socket']) {
      const decision = evaluateCreate(filter, JSON.stringify({ Image: 'b', HostConfig: { Binds: [`${source}:/c`] } }));
      expect(decision).toMatchObject({ allowed: false, rule: 'ALLOW_BIND_MOUNTS' });
      expect(decision.reason).toContain(`to list ${source} exactly`);
    }
    const exact = createSocketFilter({ policy: tecnativaPreset({ CONTAINERS: '1', POST: '1', PROTECT_HOST: '1', ALLOW_BIND_MOUNTS: '/custom', SOCKET_PATH: '/custom/dockerd.socket' }) });
    expect(evaluateCreate(exact, JSON.stringify({ Image: 'b', HostConfig: { Binds: ['/custom:/c'] } })).allowed).toBe(true);
  });

  test.each([
    [{ PROTECT_HOST: 'true' }, /`PROTECT_HOST=true` is not understood/],
    [{ ALLOW_PRIVILEGED: 'yes' }, /`ALLOW_PRIVILEGED=yes` is not understood/],
    [{ ALLOW_BIND_MOUNTS: 'srv' }, /`ALLOW_BIND_MOUNTS=srv` is not understood: entry 1 \("srv"\) is not an absolute path/],
    [{ ALLOW_BIND_MOUNTS: '/srv,/a/../etc' }, /`ALLOW_BIND_MOUNTS=\/srv,\/a\/..\/etc` is not understood: entry 2 .* contains a \.\. segment/],
    [{ ALLOW_BIND_MOUNTS: '/srv,,/opt' }, /entry 2 is empty/],
    [{ ALLOW_CAPABILITIES: 'NET ADMIN' }, /`ALLOW_CAPABILITIES=NET ADMIN` is not understood: entry 1/],
  ])('%o refuses to start', (env, message) => {
    expect(() => tecnativaPreset({ PROTECT_HOST: '1', ...env })).toThrow(message);
  });
});

describe('definePolicy: protectHost', () => {
  test('turns the checks on, reasons naming the option paths', () => {
    const filter = createSocketFilter({ policy: definePolicy({ allow: ['POST /containers/create'], protectHost: {} }) });
    const decision = evaluateCreate(filter);
    expect(decision).toMatchObject({ allowed: false, rule: 'ALLOW_PRIVILEGED', field: 'HostConfig.Privileged' });
    expect(decision.reason).toContain('it needs protectHost.allowPrivileged: true');
  });

  test('is inherited through extends, and merged key by key', () => {
    const base = tecnativaPreset({ CONTAINERS: '1', POST: '1', PROTECT_HOST: '1', ALLOW_DEVICES: '1' });
    const inherited = definePolicy({ extends: base });
    expect(inherited.protectHost).toEqual(base.protectHost);
    const merged = definePolicy({ extends: base, protectHost: { allowBindMounts: ['/srv'] } });
    expect(merged.protectHost).toMatchObject({ allowDevices: true, allowBindMounts: ['/srv'] });
    const bind = JSON.stringify({ Image: 'b', HostConfig: { Binds: ['/srv/x:/x'], Devices: [{ PathOnHost: '/dev/fuse' }] } });
    expect(evaluateCreate(createSocketFilter({ policy: merged }), bind).allowed).toBe(true);
  });

  test.each([
    [{ allowBindMounts: ['/srv', 'relative'] }, /`protectHost\.allowBindMounts\[1\]` option \("relative"\) is not an absolute path/],
    [{ allowPrivileged: 1 }, /`protectHost\.allowPrivileged` option must be true or false/],
    [{ allowCapabilities: ['SYS ADMIN'] }, /`protectHost\.allowCapabilities\[0\]` option must be a capability name/],
    [{ allowEverything: true }, /`protectHost\.allowEverything` option is not a known option/],
    [{ maxBodyBytes: 10 }, /`protectHost\.maxBodyBytes` option must be an integer/],
  ])('%o is refused with its path', (protectHost, message) => {
    expect(() => definePolicy({ allow: ['GET /_ping'], protectHost: protectHost as never })).toThrow(message);
  });

  test('a hand-written policy is validated by createSocketFilter, naming policy.protectHost', () => {
    expect(() => createSocketFilter({ policy: { name: 'x', rules: [], protectHost: { allowDevices: 'yes' } as never } })).toThrow(
      /`policy\.protectHost\.allowDevices` option must be true or false/,
    );
  });
});
