import { describe, expect, test } from 'vitest';
import { createSocketFilter, tecnativaPreset, type DaemonFacts, type EnvLike } from '../../src/index.js';

// The tutorials' Portainer setup, with the host checks on.
const BASE: EnvLike = { CONTAINERS: '1', IMAGES: '1', NETWORKS: '1', VOLUMES: '1', SERVICES: '1', PLUGINS: '1', BUILD: '1', EXEC: '1', POST: '1', PROTECT_HOST: '1' };
const DAEMON: DaemonFacts = { defaultRuntime: 'runc', cgroupVersion: '2', apiVersion: '1.41', engineVersion: '20.10.24' };

const filters = new Map<string, ReturnType<typeof createSocketFilter>>();
function filterWith(env: EnvLike = {}) {
  const key = JSON.stringify(env);
  let filter = filters.get(key);
  if (filter === undefined) {
    filter = createSocketFilter({ policy: tecnativaPreset({ ...BASE, ...env }) });
    filters.set(key, filter);
  }
  return filter;
}

function send(target: string, body: unknown, env: EnvLike = {}, daemon: DaemonFacts = DAEMON, contentType: string | string[] = 'application/json') {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return filterWith(env).evaluate('POST', target, { body: text, contentType, bodyLength: Buffer.byteLength(text), daemon });
}
const create = (hostConfig: object, extra: object = {}, env: EnvLike = {}, daemon?: DaemonFacts) =>
  send('/v1.41/containers/create', { Image: 'busybox', ...extra, HostConfig: hostConfig }, env, daemon);

type Case = readonly [name: string, target: string, body: unknown, rule: string, field: string | undefined, allowEnv: EnvLike];

const C = '/v1.41/containers/create';
const body = (hostConfig: object, extra: object = {}) => ({ Image: 'busybox', ...extra, HostConfig: hostConfig });

const REFUSED: readonly Case[] = [
  ['privileged', C, body({ Privileged: true }), 'ALLOW_PRIVILEGED', 'HostConfig.Privileged', { ALLOW_PRIVILEGED: '1' }],
  ['privileged, lower-case key', C, body({ privileged: true }), 'ALLOW_PRIVILEGED', 'HostConfig.Privileged', { ALLOW_PRIVILEGED: '1' }],
  ['privileged, Go 1.21 dotless-i key', C, body({ 'Pr\u0131vileged': true }), 'ALLOW_PRIVILEGED', 'HostConfig.Privileged', { ALLOW_PRIVILEGED: '1' }],
  ['privileged, lower-case HostConfig key', C, { Image: 'busybox', hostconfig: { Privileged: true } }, 'ALLOW_PRIVILEGED', 'HostConfig.Privileged', { ALLOW_PRIVILEGED: '1' }],
  ['privileged at the top level (20.10 reads it into a HostConfig)', C, { Image: 'busybox', Privileged: true }, 'ALLOW_PRIVILEGED', 'Privileged', { ALLOW_PRIVILEGED: '1' }],
  ['privileged at the top level next to a HostConfig', C, { Image: 'busybox', Privileged: true, HostConfig: {} }, 'ALLOW_PRIVILEGED', 'Privileged', { ALLOW_PRIVILEGED: '1' }],
  ['exec privileged', '/v1.41/containers/web/exec', { Cmd: ['sh'], Privileged: true }, 'ALLOW_PRIVILEGED', 'Privileged', { ALLOW_PRIVILEGED: '1' }],
  ['exec privileged, upper-case key', '/v1.41/containers/web/exec', { Cmd: ['sh'], PRIVILEGED: true }, 'ALLOW_PRIVILEGED', 'Privileged', { ALLOW_PRIVILEGED: '1' }],
  ['--pid=host', C, body({ PidMode: 'host' }), 'ALLOW_HOST_NAMESPACES', 'HostConfig.PidMode', { ALLOW_HOST_NAMESPACES: '1' }],
  ['--pid=container:x', C, body({ PidMode: 'container:web' }), 'ALLOW_HOST_NAMESPACES', 'HostConfig.PidMode', { ALLOW_HOST_NAMESPACES: '1' }],
  ['--ipc=host', C, body({ IpcMode: 'host' }), 'ALLOW_HOST_NAMESPACES', 'HostConfig.IpcMode', { ALLOW_HOST_NAMESPACES: '1' }],
  ['--uts=host', C, body({ UTSMode: 'host' }), 'ALLOW_HOST_NAMESPACES', 'HostConfig.UTSMode', { ALLOW_HOST_NAMESPACES: '1' }],
  ['--userns=host', C, body({ UsernsMode: 'host' }), 'ALLOW_HOST_NAMESPACES', 'HostConfig.UsernsMode', { ALLOW_HOST_NAMESPACES: '1' }],
  ['--cgroupns=host on cgroup v2', C, body({ CgroupnsMode: 'host' }), 'ALLOW_HOST_NAMESPACES', 'HostConfig.CgroupnsMode', { ALLOW_HOST_NAMESPACES: '1' }],
  ['--network=host', C, body({ NetworkMode: 'host' }), 'ALLOW_HOST_NAMESPACES', 'HostConfig.NetworkMode', { ALLOW_HOST_NAMESPACES: '1' }],
  ['--network=container:x', C, body({ NetworkMode: 'container:web' }), 'ALLOW_HOST_NAMESPACES', 'HostConfig.NetworkMode', { ALLOW_HOST_NAMESPACES: '1' }],
  ['an endpoint on the host network', C, { Image: 'busybox', NetworkingConfig: { EndpointsConfig: { host: {} } } }, 'ALLOW_HOST_NAMESPACES', 'NetworkingConfig.EndpointsConfig["host"]', { ALLOW_HOST_NAMESPACES: '1' }],
  ['--cap-add=SYS_ADMIN', C, body({ CapAdd: ['SYS_ADMIN'] }), 'ALLOW_CAPABILITIES', 'HostConfig.CapAdd[0]', { ALLOW_CAPABILITIES: 'SYS_ADMIN' }],
  ['--cap-add=cap_sys_admin', C, body({ CapAdd: ['cap_sys_admin'] }), 'ALLOW_CAPABILITIES', 'HostConfig.CapAdd[0]', { ALLOW_CAPABILITIES: 'SYS_ADMIN' }],
  ['--cap-add=ALL', C, body({ CapAdd: ['ALL'] }), 'ALLOW_CAPABILITIES', 'HostConfig.CapAdd[0]', { ALLOW_CAPABILITIES: 'ALL' }],
  ['CapAdd as one string (20.10 StrSlice)', C, body({ CapAdd: 'SYS_ADMIN' }), 'ALLOW_CAPABILITIES', 'HostConfig.CapAdd[0]', { ALLOW_CAPABILITIES: 'ALL' }],
  ['--device', C, body({ Devices: [{ PathOnHost: '/dev/sda', PathInContainer: '/dev/sda', CgroupPermissions: 'rwm' }] }), 'ALLOW_DEVICES', 'HostConfig.Devices[0]', { ALLOW_DEVICES: '1' }],
  ['--gpus', C, body({ DeviceRequests: [{ Count: -1, Capabilities: [['gpu']] }] }), 'ALLOW_DEVICES', 'HostConfig.DeviceRequests[0]', { ALLOW_DEVICES: '1' }],
  ['--device-cgroup-rule', C, body({ DeviceCgroupRules: ['a *:* rwm'] }), 'ALLOW_DEVICES', 'HostConfig.DeviceCgroupRules[0]', { ALLOW_DEVICES: '1' }],
  ['seccomp=unconfined', C, body({ SecurityOpt: ['seccomp=unconfined'] }), 'ALLOW_UNCONFINED', 'HostConfig.SecurityOpt[0]', { ALLOW_UNCONFINED: '1' }],
  ['seccomp:unconfined', C, body({ SecurityOpt: ['seccomp:unconfined'] }), 'ALLOW_UNCONFINED', 'HostConfig.SecurityOpt[0]', { ALLOW_UNCONFINED: '1' }],
  ['apparmor=unconfined', C, body({ SecurityOpt: ['apparmor=unconfined'] }), 'ALLOW_UNCONFINED', 'HostConfig.SecurityOpt[0]', { ALLOW_UNCONFINED: '1' }],
  ['label=disable', C, body({ SecurityOpt: ['label=disable'] }), 'ALLOW_UNCONFINED', 'HostConfig.SecurityOpt[0]', { ALLOW_UNCONFINED: '1' }],
  ['label:disable', C, body({ SecurityOpt: ['label:disable'] }), 'ALLOW_UNCONFINED', 'HostConfig.SecurityOpt[0]', { ALLOW_UNCONFINED: '1' }],
  ['label=type:spc_t', C, body({ SecurityOpt: ['label=type:spc_t'] }), 'ALLOW_UNCONFINED', 'HostConfig.SecurityOpt[0]', { ALLOW_UNCONFINED: '1' }],
  ['systempaths=unconfined', C, body({ SecurityOpt: ['systempaths=unconfined'] }), 'ALLOW_UNCONFINED', 'HostConfig.SecurityOpt[0]', { ALLOW_UNCONFINED: '1' }],
  ['a custom seccomp profile', C, body({ SecurityOpt: [`seccomp=${JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW' })}`] }), 'ALLOW_UNCONFINED', 'HostConfig.SecurityOpt[0]', { ALLOW_UNCONFINED: '1' }],
  ['MaskedPaths emptied', C, body({ MaskedPaths: [] }), 'ALLOW_UNCONFINED', 'HostConfig.MaskedPaths', { ALLOW_UNCONFINED: '1' }],
  ['ReadonlyPaths emptied', C, body({ ReadonlyPaths: [] }), 'ALLOW_UNCONFINED', 'HostConfig.ReadonlyPaths', { ALLOW_UNCONFINED: '1' }],
  ['another runtime', C, body({ Runtime: 'kata' }), 'ALLOW_UNCONFINED', 'HostConfig.Runtime', { ALLOW_UNCONFINED: '1' }],
  ['a cgroup parent', C, body({ CgroupParent: '/' }), 'ALLOW_UNCONFINED', 'HostConfig.CgroupParent', { ALLOW_UNCONFINED: '1' }],
  ['a host sysctl', C, body({ Sysctls: { 'kernel.core_pattern': '|/x' } }), 'ALLOW_UNCONFINED', 'HostConfig.Sysctls["kernel.core_pattern"]', { ALLOW_UNCONFINED: '1' }],
  ['a host sysctl with slashes', C, body({ Sysctls: { 'kernel/core_pattern': '|/x' } }), 'ALLOW_UNCONFINED', 'HostConfig.Sysctls["kernel/core_pattern"]', { ALLOW_UNCONFINED: '1' }],
  ['runtime annotations', C, body({ Annotations: { 'run.oci.x': '1' } }), 'ALLOW_UNCONFINED', 'HostConfig.Annotations', { ALLOW_UNCONFINED: '1' }],
  ['-v /:/host', C, body({ Binds: ['/:/host'] }), 'ALLOW_BIND_MOUNTS', 'HostConfig.Binds[0]', { ALLOW_BIND_MOUNTS: '/' }],
  ['-v /etc:/etc:ro, second bind', C, body({ Binds: ['data:/data', '/etc:/etc:ro'] }), 'ALLOW_BIND_MOUNTS', 'HostConfig.Binds[1]', { ALLOW_BIND_MOUNTS: '/etc' }],
  ['-v //etc:/x', C, body({ Binds: ['//etc:/x'] }), 'ALLOW_BIND_MOUNTS', 'HostConfig.Binds[0]', { ALLOW_BIND_MOUNTS: '/etc' }],
  ['-v /srvx:/x next to /srv', C, body({ Binds: ['/srvx:/x'] }), 'ALLOW_BIND_MOUNTS', 'HostConfig.Binds[0]', { ALLOW_BIND_MOUNTS: '/srv,/srvx' }],
  ['-v /var/run/docker.sock', C, body({ Binds: ['/var/run/docker.sock:/var/run/docker.sock'] }), 'ALLOW_BIND_MOUNTS', 'HostConfig.Binds[0]', { ALLOW_BIND_MOUNTS: '/var/run/docker.sock' }],
  ['-v /run/docker.sock', C, body({ Binds: ['/run/docker.sock:/s'] }), 'ALLOW_BIND_MOUNTS', 'HostConfig.Binds[0]', { ALLOW_BIND_MOUNTS: '/run/docker.sock' }],
  ['-v /var/run', C, body({ Binds: ['/var/run:/r'] }), 'ALLOW_BIND_MOUNTS', 'HostConfig.Binds[0]', { ALLOW_BIND_MOUNTS: '/var/run' }],
  ['-v /run with / allowed', C, body({ Binds: ['/run:/r'] }), 'ALLOW_BIND_MOUNTS', 'HostConfig.Binds[0]', { ALLOW_BIND_MOUNTS: '/run' }],
  ['-v /var with /var allowed as a prefix only', C, body({ Binds: ['/var/:/v'] }), 'ALLOW_BIND_MOUNTS', 'HostConfig.Binds[0]', { ALLOW_BIND_MOUNTS: '/var' }],
  ['any docker.sock', C, body({ Binds: ['/srv/docker.sock:/s'] }), 'ALLOW_BIND_MOUNTS', 'HostConfig.Binds[0]', { ALLOW_BIND_MOUNTS: '/srv/docker.sock' }],
  ['--mount type=bind', C, body({ Mounts: [{ Type: 'bind', Source: '/etc', Target: '/x' }] }), 'ALLOW_BIND_MOUNTS', 'HostConfig.Mounts[0].Source', { ALLOW_BIND_MOUNTS: '/etc' }],
  ['--mount with lower-case keys', C, body({ mounts: [{ type: 'bind', source: '/etc', target: '/x' }] }), 'ALLOW_BIND_MOUNTS', 'HostConfig.Mounts[0].Source', { ALLOW_BIND_MOUNTS: '/etc' }],
  [
    'an inline volume binding /etc',
    C,
    body({ Mounts: [{ Type: 'volume', Source: 'etc', Target: '/x', VolumeOptions: { DriverConfig: { Name: 'local', Options: { type: 'none', o: 'bind', device: '/etc' } } } }] }),
    'ALLOW_BIND_MOUNTS',
    'HostConfig.Mounts[0].VolumeOptions.DriverConfig.Options["device"]',
    { ALLOW_BIND_MOUNTS: '/etc' },
  ],
  ['--volumes-from', C, body({ VolumesFrom: ['docker-proxy'] }), 'ALLOW_VOLUMES_FROM', 'HostConfig.VolumesFrom[0]', { ALLOW_VOLUMES_FROM: '1' }],
  ['binds at the top level', C, { Image: 'busybox', Binds: ['/:/host'] }, 'ALLOW_BIND_MOUNTS', 'Binds[0]', { ALLOW_BIND_MOUNTS: '/' }],
  ['volume create -o o=bind -o device=/etc', '/v1.41/volumes/create', { Name: 'etc', DriverOpts: { type: 'none', o: 'bind', device: '/etc' } }, 'ALLOW_BIND_MOUNTS', 'DriverOpts["device"]', { ALLOW_BIND_MOUNTS: '/etc' }],
  ['volume create -o o=rbind,ro', '/v1.41/volumes/create', { Name: 'etc', DriverOpts: { type: 'none', o: 'rbind,ro', device: '/etc' } }, 'ALLOW_BIND_MOUNTS', 'DriverOpts["device"]', { ALLOW_BIND_MOUNTS: '/etc' }],
  ['volume create of a host disk', '/v1.41/volumes/create', { Name: 'd', DriverOpts: { type: 'ext4', device: '/dev/sda1' } }, 'ALLOW_VOLUME_OPTIONS', 'DriverOpts["type"]', { ALLOW_VOLUME_OPTIONS: '1' }],
  ['volume create with another driver', '/v1.41/volumes/create', { Name: 'd', Driver: 'local-persist', DriverOpts: { mountpoint: '/etc' } }, 'ALLOW_VOLUME_OPTIONS', 'DriverOpts', { ALLOW_VOLUME_OPTIONS: '1' }],
  ['update --device-cgroup-rule', '/v1.41/containers/web/update', { DeviceCgroupRules: ['a *:* rwm'] }, 'ALLOW_DEVICES', 'DeviceCgroupRules[0]', { ALLOW_DEVICES: '1' }],
  ['service --mount type=bind', '/v1.41/services/create', { Name: 's', TaskTemplate: { ContainerSpec: { Image: 'busybox', Mounts: [{ Type: 'bind', Source: '/', Target: '/h' }] } } }, 'ALLOW_BIND_MOUNTS', 'TaskTemplate.ContainerSpec.Mounts[0].Source', { ALLOW_BIND_MOUNTS: '/' }],
  ['service --cap-add', '/v1.41/services/create', { TaskTemplate: { ContainerSpec: { Image: 'b', CapabilityAdd: ['CAP_SYS_ADMIN'] } } }, 'ALLOW_CAPABILITIES', 'TaskTemplate.ContainerSpec.CapabilityAdd[0]', { ALLOW_CAPABILITIES: 'SYS_ADMIN' }],
  ['service --network host', '/v1.41/services/web/update', { TaskTemplate: { ContainerSpec: { Image: 'b' }, Networks: [{ Target: 'host' }] } }, 'ALLOW_HOST_NAMESPACES', 'TaskTemplate.Networks[0].Target', { ALLOW_HOST_NAMESPACES: '1' }],
  ['service on the host network (deprecated field)', '/v1.41/services/create', { TaskTemplate: { ContainerSpec: { Image: 'b' } }, Networks: [{ Target: 'host' }] }, 'ALLOW_HOST_NAMESPACES', 'Networks[0].Target', { ALLOW_HOST_NAMESPACES: '1' }],
  ['service seccomp unconfined', '/v1.41/services/create', { TaskTemplate: { ContainerSpec: { Image: 'b', Privileges: { Seccomp: { Mode: 'unconfined' } } } } }, 'ALLOW_UNCONFINED', 'TaskTemplate.ContainerSpec.Privileges.Seccomp.Mode', { ALLOW_UNCONFINED: '1' }],
  ['service SELinux disabled', '/v1.41/services/create', { TaskTemplate: { ContainerSpec: { Image: 'b', Privileges: { SELinuxContext: { Disable: true } } } } }, 'ALLOW_UNCONFINED', 'TaskTemplate.ContainerSpec.Privileges.SELinuxContext.Disable', { ALLOW_UNCONFINED: '1' }],
  ['service host sysctl', '/v1.41/services/create', { TaskTemplate: { ContainerSpec: { Image: 'b', Sysctls: { 'kernel.panic': '1' } } } }, 'ALLOW_UNCONFINED', 'TaskTemplate.ContainerSpec.Sysctls["kernel.panic"]', { ALLOW_UNCONFINED: '1' }],
  ['service plugin runtime', '/v1.41/services/create', { TaskTemplate: { PluginSpec: { Name: 'x' }, Runtime: 'plugin' } }, 'ALLOW_PLUGIN_INSTALL', 'TaskTemplate.PluginSpec', { ALLOW_PLUGIN_INSTALL: '1' }],
  ['plugin set of a mount source', '/v1.41/plugins/p/set', ['DEBUG=1', 'data.source=/etc'], 'ALLOW_PLUGIN_INSTALL', '[1]', { ALLOW_PLUGIN_INSTALL: '1' }],
  ['plugin set of a device path', '/v1.41/plugins/p/set', ['dev.path=/dev/sda'], 'ALLOW_PLUGIN_INSTALL', '[0]', { ALLOW_PLUGIN_INSTALL: '1' }],
];

describe('PROTECT_HOST=1: each escape is refused with its field and variable, and passes with that variable', () => {
  test.each(REFUSED)('%s', (_name, target, body, rule, field, allowEnv) => {
    const decision = send(target, body);
    expect(decision).toMatchObject({ allowed: false, status: 403, rule, field });
    const variable = Object.keys(allowEnv)[0] as string;
    expect(decision.reason).toMatch(/^docker-socket-filter denied POST \/v1\.41\//);
    expect(decision.reason).toContain(field);
    expect(decision.reason).toContain(variable);
    const allowed = send(target, body, allowEnv);
    expect(allowed.allowed).toBe(true);
    expect(allowed.status).toBe(200);
  });
});

describe('PROTECT_HOST=1: checks on the path and the query', () => {
  test.each([
    ['plugin install', '/v1.41/plugins/pull?remote=evil/plugin', 'ALLOW_PLUGIN_INSTALL'],
    ['plugin upgrade', '/v1.41/plugins/p/upgrade?remote=evil/plugin', 'ALLOW_PLUGIN_INSTALL'],
    ['plugin create', '/v1.41/plugins/create?name=p', 'ALLOW_PLUGIN_INSTALL'],
    ['build --network host', '/v1.41/build?networkmode=host&t=x', 'ALLOW_HOST_NETWORK_BUILD'],
    ['build from a remote context', '/v1.41/build?remote=https%3A%2F%2Fexample.invalid%2Fctx.tar', 'ALLOW_REMOTE_FETCH'],
    ['build with a cgroup parent', '/v1.41/build?cgroupparent=%2F', 'ALLOW_UNCONFINED'],
    ['build with seccomp unconfined', '/v1.41/build?securityopt=seccomp%3Dunconfined', 'ALLOW_UNCONFINED'],
    ['import from a URL', '/v1.41/images/create?fromSrc=http%3A%2F%2F169.254.169.254%2F', 'ALLOW_REMOTE_FETCH'],
  ])('%s is refused by the query, named by %s, and passes with it', (_name, target, rule) => {
    const decision = filterWith().evaluate('POST', target, { bodyLength: 0 });
    expect(decision).toMatchObject({ allowed: false, status: 403, rule });
    expect(decision.reason).toContain(`${rule}=1`);
    expect(filterWith({ [rule]: '1' }).evaluate('POST', target, { bodyLength: 0 }).allowed).toBe(true);
  });

  test.each([
    ['a checkpoint directory on the host', '/v1.41/containers/web/start?checkpoint=c&checkpoint-dir=%2Fetc', 'ALLOW_BIND_MOUNTS', 403],
    ['a checkpoint name with ..', '/v1.41/containers/web/start?checkpoint=..%2F..%2Fx', 'PROTECT_HOST', 403],
    ['a checkpoint directory with ..', '/v1.41/containers/web/start?checkpoint=c&checkpoint-dir=%2Fsrv%2F..%2Fetc', 'PROTECT_HOST', 403],
    ['a query Go releases read differently', '/v1.41/build?networkmode=none;networkmode=host', 'PROTECT_HOST', 400],
  ])('%s', (_name, target, rule, status) => {
    expect(filterWith().evaluate('POST', target, { bodyLength: 0 })).toMatchObject({ allowed: false, status, rule });
  });

  test.each([
    ['/srv/../etc:/x'],
    ['/srv/a/../../etc:/x'],
  ])('a bind through .. (%s) is refused whatever ALLOW_BIND_MOUNTS lists', (bind) => {
    const decision = send(C, body({ Binds: [bind] }), { ALLOW_BIND_MOUNTS: '/' });
    expect(decision).toMatchObject({ allowed: false, status: 403, rule: 'PROTECT_HOST', field: 'HostConfig.Binds[0]' });
    expect(decision.reason).toContain('no setting allows it');
  });

  test('a build whose form body could carry networkmode is refused', () => {
    const decision = filterWith().evaluate('POST', '/v1.41/build', { bodyLength: 20, contentType: 'application/x-www-form-urlencoded' });
    expect(decision).toMatchObject({ allowed: false, status: 400, rule: 'PROTECT_HOST' });
  });

  test('Podman configuration endpoints are refused (their bodies are not read)', () => {
    const filter = createSocketFilter({ policy: tecnativaPreset({ ...BASE }) });
    const libpod = createSocketFilter({
      policy: (() => {
        // The linuxserver preset opens /libpod/containers.
        return { ...tecnativaPreset({ ...BASE }), rules: [{ id: 'LIBPOD', effect: 'allow' as const, paths: ['/libpod/**'] }] };
      })(),
    });
    expect(filter.evaluate('POST', '/v4.0.0/libpod/containers/create').allowed).toBe(false);
    expect(libpod.evaluate('POST', '/v4.0.0/libpod/containers/create')).toMatchObject({ allowed: false, rule: 'PROTECT_HOST' });
    expect(libpod.evaluate('POST', '/v4.0.0/libpod/containers/web/exec')).toMatchObject({ allowed: false, rule: 'PROTECT_HOST' });
    expect(libpod.evaluate('POST', '/v4.0.0/libpod/containers/web/start').allowed).toBe(true);
  });
});

describe('PROTECT_HOST=1: what cannot be read one way only is a 400', () => {
  test.each([
    ['two spellings of Privileged', '{"Image":"b","HostConfig":{"Privileged":false,"privileged":true}}', 'HostConfig.Privileged'],
    ['the same key twice', '{"Image":"b","HostConfig":{"Binds":[],"Binds":["/:/h"]}}', 'HostConfig.Binds'],
    ['a KELVIN SIGN spelling next to the field', '{"Image":"b","HostConfig":{"Sysctls":{},"\u017Fysctls":{"kernel.panic":"1"}}}', 'HostConfig.Sysctls'],
    ['HostConfig twice', '{"Image":"b","HostConfig":{},"hostConfig":{"Privileged":true}}', 'HostConfig'],
    ['a field of another type', '{"Image":"b","HostConfig":{"Privileged":"true"}}', 'HostConfig.Privileged'],
    ['a mixed array', '{"Image":"b","HostConfig":{"Binds":["/srv:/s",1]}}', 'HostConfig.Binds[1]'],
    ['an unknown HostConfig field', '{"Image":"b","HostConfig":{"Privilegedx":true}}', 'HostConfig.Privilegedx'],
    ['an unknown top-level field', '{"Image":"b","Escape":true}', 'Escape'],
    ['an unknown mount type', '{"Image":"b","HostConfig":{"Mounts":[{"Type":"BIND","Source":"/","Target":"/h"}]}}', 'HostConfig.Mounts[0].Type'],
    ['a bind with three colons', '{"Image":"b","HostConfig":{"Binds":["/a:/b:ro:x"]}}', 'HostConfig.Binds[0]'],
  ])('%s', (_name, text, field) => {
    expect(send(C, text)).toMatchObject({ allowed: false, status: 400, rule: 'PROTECT_HOST', field });
  });

  test.each([
    ['not JSON', '{"Image":'],
    ['trailing data', '{"Image":"b"}{"HostConfig":{"Privileged":true}}'],
    ['a BOM', '\uFEFF{"Image":"b"}'],
    ['an empty body', ''],
  ])('%s', (_name, text) => {
    expect(send(C, text)).toMatchObject({ allowed: false, status: 400, rule: 'PROTECT_HOST' });
  });

  test.each([
    ['text/plain', 'text/plain', 400],
    ['no Content-Type', [], 400],
    ['two Content-Types', ['application/json', 'application/json'], 400],
    ['a form', 'application/x-www-form-urlencoded', 400],
  ])('Content-Type %s is refused', (_name, contentType, status) => {
    expect(send(C, { Image: 'b' }, {}, DAEMON, contentType as string[])).toMatchObject({ allowed: false, status });
  });

  test('an unusual but accepted Content-Type passes', () => {
    expect(send(C, { Image: 'b' }, {}, DAEMON, 'Application/JSON; charset=UTF-8').allowed).toBe(true);
  });

  test('services and plugin settings may come without a Content-Type (dockerd does not require one there)', () => {
    expect(send('/v1.41/services/create', { TaskTemplate: { ContainerSpec: { Image: 'b' } } }, {}, DAEMON, []).allowed).toBe(true);
  });

  test('over the bound: 413, declared or sent', () => {
    const filter = filterWith();
    expect(filter.evaluate('POST', C, { bodyLength: 2 * 1024 * 1024 })).toMatchObject({ allowed: false, status: 413 });
    const big = JSON.stringify({ Image: 'b', Env: ['X='.padEnd(1024 * 1024 + 10, 'x')] });
    expect(filter.evaluate('POST', C, { body: big, contentType: 'application/json', daemon: DAEMON })).toMatchObject({ allowed: false, status: 413 });
  });
});

describe('PROTECT_HOST=1: values equal to what dockerd uses by default are not escapes', () => {
  test.each([
    ['CgroupnsMode host on a cgroup v1 host', { CgroupnsMode: 'host' }, { ...DAEMON, cgroupVersion: '1' }],
    ['CgroupnsMode private', { CgroupnsMode: 'private' }, DAEMON],
    ['IpcMode private, shareable, none', { IpcMode: 'shareable' }, DAEMON],
    ['the default runtime by name', { Runtime: 'runc' }, DAEMON],
    ["the daemon's own default runtime", { Runtime: 'nvidia' }, { ...DAEMON, defaultRuntime: 'nvidia' }],
    ['a default capability', { CapAdd: ['CHOWN', 'cap_kill'] }, DAEMON],
    ['namespaced sysctls', { Sysctls: { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '1', 'fs.mqueue.msg_max': '1' } }, DAEMON],
    ['no-new-privileges', { SecurityOpt: ['no-new-privileges', 'no-new-privileges:true', 'label=level:s0:c100,c200', 'apparmor=docker-default'] }, DAEMON],
    [
      "20.10's default masked and read-only paths (a create from inspect output)",
      {
        MaskedPaths: ['/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware'],
        ReadonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
      },
      DAEMON,
    ],
    ['empty lists and nulls', { Devices: [], DeviceRequests: null, DeviceCgroupRules: null, CapAdd: null, SecurityOpt: null, VolumesFrom: null, Binds: null, Mounts: null }, DAEMON],
  ])('%s', (_name, hostConfig, daemon) => {
    expect(create(hostConfig, {}, {}, daemon).allowed).toBe(true);
  });

  test("without daemon facts the checks are conservative: cgroupns host and a daemon's own runtime are refused", () => {
    const filter = filterWith();
    const evaluate = (hostConfig: object) =>
      filter.evaluate('POST', C, { body: JSON.stringify({ Image: 'b', HostConfig: hostConfig }), contentType: 'application/json' });
    expect(evaluate({ CgroupnsMode: 'host' }).rule).toBe('ALLOW_HOST_NAMESPACES');
    expect(evaluate({ Runtime: 'nvidia' }).rule).toBe('ALLOW_UNCONFINED');
    expect(evaluate({ MaskedPaths: ['/proc/asound'] }).rule).toBe('ALLOW_UNCONFINED');
  });

  test("an engine's later default masked paths are required of a create for that engine", () => {
    const twentyEight = { ...DAEMON, engineVersion: '28.5.2' };
    const old = ['/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware'];
    expect(create({ MaskedPaths: old }, {}, {}, twentyEight).rule).toBe('ALLOW_UNCONFINED');
    expect(create({ MaskedPaths: [...old, '/sys/devices/virtual/powercap', '/proc/interrupts'] }, {}, {}, twentyEight).allowed).toBe(true);
  });
});

describe('PROTECT_HOST=1: ordinary workloads pass', () => {
  test.each([
    ['a named volume, ports, env, labels, restart, healthcheck, limits', {
      Image: 'nginx', Env: ['A=1'], Labels: { 'com.example': 'x' }, ExposedPorts: { '80/tcp': {} },
      Healthcheck: { Test: ['CMD', 'true'], Interval: 1e9 },
      HostConfig: { Binds: ['data:/data'], PortBindings: { '80/tcp': [{ HostPort: '8080' }] }, RestartPolicy: { Name: 'unless-stopped' }, Memory: 1 << 28, NanoCpus: 5e8, PidsLimit: 100, LogConfig: { Type: 'json-file', Config: {} } },
    }],
    ['an allowed bind and a tmpfs', { Image: 'b', HostConfig: { Binds: ['/srv/app:/app:ro'], Tmpfs: { '/run': 'size=64m' }, Mounts: [{ Type: 'tmpfs', Target: '/t' }] } }],
    ['an allowed bind spelled with // and a trailing /', { Image: 'b', HostConfig: { Binds: ['/srv//app/./x/:/app'] } }],
    ['a --mount volume and an anonymous volume', { Image: 'b', Volumes: { '/cache': {} }, HostConfig: { Binds: ['/anon'], Mounts: [{ Type: 'volume', Source: 'v', Target: '/v' }] } }],
    ['a volume on NFS', { Image: 'b', HostConfig: { Mounts: [{ Type: 'volume', Source: 'n', Target: '/n', VolumeOptions: { DriverConfig: { Options: { type: 'nfs', o: 'addr=10.0.0.1,rw', device: ':/export' } } } }] } }],
  ])('%s', (_name, payload) => {
    const decision = send(C, payload, { ALLOW_BIND_MOUNTS: '/srv' });
    expect(decision.allowed).toBe(true);
  });

  test('a named volume a create would make becomes an obligation when VOLUMES is not granted', () => {
    const decision = send(C, { Image: 'b', HostConfig: { Binds: ['data:/d', 'data:/e'], Mounts: [{ Type: 'volume', Source: 'cache', Target: '/c' }] } }, { VOLUMES: '0' });
    expect(decision.allowed).toBe(true);
    expect(decision.obligations?.existingVolumes).toMatchObject({ names: ['data', 'cache'], rule: 'VOLUMES' });
    expect(decision.obligations?.existingVolumes?.reason).toContain('{name}');
    expect(decision.obligations?.existingVolumes?.reason).toContain('VOLUMES=1');
    expect(send(C, { Image: 'b', HostConfig: { Binds: ['data:/d'] } }).obligations).toBeUndefined();
  });

  test('a user-defined network (a name, an ID) is asked of dockerd: it could be the host network', () => {
    const decision = send(C, { Image: 'b', HostConfig: { NetworkMode: 'web_default' }, NetworkingConfig: { EndpointsConfig: { web_default: {}, '8f83fc5b2385': {} } } });
    expect(decision.allowed).toBe(true);
    expect(decision.obligations?.notHostNetworks).toMatchObject({ names: ['web_default', '8f83fc5b2385'], rule: 'ALLOW_HOST_NAMESPACES' });
    const service = send('/v1.41/services/create', { TaskTemplate: { ContainerSpec: { Image: 'b' }, Networks: [{ Target: '8f83fc5b2385ee13' }] } });
    expect(service.obligations?.notHostNetworks?.names).toEqual(['8f83fc5b2385ee13']);
    expect(send(C, { Image: 'b', HostConfig: { NetworkMode: 'none' } }).obligations).toBeUndefined();
    expect(send(C, { Image: 'b', HostConfig: { NetworkMode: 'web_default' } }, { ALLOW_HOST_NAMESPACES: '1' }).obligations).toBeUndefined();
  });

  test('without a body, a checked endpoint asks for it', () => {
    expect(filterWith().evaluate('POST', C, { bodyLength: 300 })).toMatchObject({ allowed: true, obligations: { body: { maxBytes: 1024 * 1024 } } });
  });

  test('endpoints without a check are decided as before', () => {
    const filter = filterWith();
    expect(filter.evaluate('POST', '/v1.41/containers/web/stop').obligations).toBeUndefined();
    expect(filter.evaluate('GET', '/v1.41/containers/json').obligations).toBeUndefined();
  });
});

describe('without PROTECT_HOST both presets decide exactly as before', () => {
  test.each(REFUSED)('%s is allowed as it was', (_name, target) => {
    const env = { ...BASE, PROTECT_HOST: '0' };
    const plain = createSocketFilter({ policy: tecnativaPreset(env) });
    const before = createSocketFilter({ policy: tecnativaPreset({ ...BASE, PROTECT_HOST: undefined }) });
    const decision = plain.evaluate('POST', target, { bodyLength: 100 });
    expect(decision).toEqual(before.evaluate('POST', target, { bodyLength: 100 }));
    expect(decision.obligations).toBeUndefined();
  });
});
