import { describe, expect, test } from 'vitest';
import { PRESET_VARIABLE_KINDS, PRESET_VARIABLES, parseConfig } from '../../src/config/index.js';
import { DEFAULT_DOCKER_SOCKETS } from '../../src/policy/host/settings.js';
import type { Policy } from '../../src/policy/types.js';
import { createSocketFilter, linuxserverPreset, tecnativaPreset } from '../../src/index.js';

// What issues 14 and 16 added to the presets and to definePolicy, in a policy file: the host
// protection and read variables under `env`, and the `protectHost` and `read` sections.

function refusal(text: string): string {
  try {
    parseConfig(text);
  } catch (error) {
    expect((error as { code?: string }).code).toBe('ERR_DSF_INVALID_CONFIG');
    return (error as Error).message;
  }
  throw new Error('expected a refusal');
}

const policyOf = (text: string, socketPath?: string): Policy => parseConfig(text, { socketPath }).filter.policy as Policy;
const json = (type: string, config: object): { body: string; contentType: string } => ({ body: JSON.stringify(config), contentType: type });
const createBody = (hostConfig: object) => json('application/json', { Image: 'busybox', HostConfig: hostConfig });

describe('the file knows exactly the variables the presets read', () => {
  /** The names a preset reads from its env, found by watching it read (switches granted on a second pass). */
  function variablesRead(preset: (env: Record<string, string | undefined>) => Policy, kinds: Readonly<Record<string, string>>): string[] {
    const read = new Set<string>();
    for (const grant of [undefined, '1']) {
      const env = new Proxy({} as Record<string, string | undefined>, {
        get: (_target, name) => {
          if (typeof name !== 'string') return undefined;
          read.add(name);
          return kinds[name] === 'switch' ? grant : undefined;
        },
      });
      preset(env);
    }
    return [...read].sort();
  }

  test.each([
    ['tecnativa', tecnativaPreset],
    ['linuxserver', linuxserverPreset],
  ] as const)('%s', (name, preset) => {
    // SOCKET_PATH is read too: the guard's socket, passed by the file reader, never a variable of `env`.
    expect(variablesRead(preset, PRESET_VARIABLE_KINDS[name])).toEqual([...PRESET_VARIABLES[name], 'SOCKET_PATH'].sort());
  });

  test('the list variables take strings; the others are switches', () => {
    for (const kinds of Object.values(PRESET_VARIABLE_KINDS)) {
      expect(Object.keys(kinds).filter((name) => kinds[name] === 'list')).toEqual(['ALLOW_BIND_MOUNTS', 'ALLOW_CAPABILITIES', 'VISIBLE_LABELS']);
    }
    expect(PRESET_VARIABLES.tecnativa).toEqual(expect.arrayContaining(['PROTECT_HOST', 'ALLOW_PRIVILEGED', 'REDACT_ENV', 'STRICT_READ', 'ALLOW_ARCHIVE', 'ALLOW_LOGS']));
    expect(PRESET_VARIABLES.linuxserver).toEqual(expect.arrayContaining(['PROTECT_HOST', 'ALLOW_REMOTE_FETCH', 'REDACT_ENV', 'STRICT_READ']));
  });
});

describe('env: the host protection and read variables', () => {
  test('PROTECT_HOST and its lists build what the preset builds from the same variables', () => {
    const fromFile = policyOf('policy: { preset: tecnativa, env: { CONTAINERS: 1, POST: 1, PROTECT_HOST: 1, ALLOW_BIND_MOUNTS: "/srv,/opt/appdata", ALLOW_CAPABILITIES: NET_ADMIN, ALLOW_DEVICES: "1" } }');
    const fromEnv = tecnativaPreset({ CONTAINERS: '1', POST: '1', PROTECT_HOST: '1', ALLOW_BIND_MOUNTS: '/srv,/opt/appdata', ALLOW_CAPABILITIES: 'NET_ADMIN', ALLOW_DEVICES: '1' });
    expect(fromFile).toEqual(fromEnv);
    expect(fromFile.protectHost).toMatchObject({ allowBindMounts: ['/srv', '/opt/appdata'], allowCapabilities: ['NET_ADMIN'], allowDevices: true, allowPrivileged: false });
  });

  test('a YAML list reads as the comma-separated string', () => {
    expect(policyOf('policy: { preset: linuxserver, env: { PROTECT_HOST: 1, ALLOW_BIND_MOUNTS: [/srv, /opt/appdata], ALLOW_CAPABILITIES: [NET_ADMIN, cap_sys_time] } }')).toEqual(
      policyOf('policy: { preset: linuxserver, env: { PROTECT_HOST: 1, ALLOW_BIND_MOUNTS: "/srv,/opt/appdata", ALLOW_CAPABILITIES: "NET_ADMIN,cap_sys_time" } }'),
    );
    expect(policyOf('policy: { preset: tecnativa, env: { VISIBLE_LABELS: [traefik.enable=true, com.example.public] } }').read).toEqual({
      visibleLabels: [{ key: 'traefik.enable', value: 'true' }, { key: 'com.example.public' }],
    });
  });

  test('REDACT_ENV, VISIBLE_LABELS and STRICT_READ with its gates', () => {
    const policy = policyOf('policy: { preset: tecnativa, env: { CONTAINERS: 1, REDACT_ENV: 1, VISIBLE_LABELS: traefik.enable=true, STRICT_READ: 1, ALLOW_LOGS: 1 } }');
    expect(policy).toEqual(tecnativaPreset({ CONTAINERS: '1', REDACT_ENV: '1', VISIBLE_LABELS: 'traefik.enable=true', STRICT_READ: '1', ALLOW_LOGS: '1' }));
    const { evaluate } = createSocketFilter({ policy });
    expect(evaluate('GET', '/v1.41/containers/web/logs').allowed).toBe(true);
    expect(evaluate('GET', '/v1.41/containers/web/archive?path=/')).toMatchObject({ allowed: false, rule: 'ALLOW_ARCHIVE' });
    expect(decodeURIComponent(evaluate('GET', '/v1.41/containers/json').path ?? '')).toBe('/v1.41/containers/json?filters={"label":{"traefik.enable=true":true}}');
  });

  test('an empty list string counts as unset, as in the environment', () => {
    expect(policyOf('policy: { preset: tecnativa, env: { VISIBLE_LABELS: "", ALLOW_BIND_MOUNTS: "" } }')).toEqual(tecnativaPreset({}));
  });

  test.each<[string, string, string | RegExp]>([
    [
      'a relative bind mount, in a client',
      'clients: [{ name: a, match: { address: ["1.2.3.4"] }, policy: { preset: tecnativa } }, { name: b, match: { address: ["1.2.3.5"] }, policy: { extends: { preset: tecnativa, env: { ALLOW_BIND_MOUNTS: "/srv,opt" } }, deny: ["* /exec/**"] } }]',
      'clients[1].policy.extends.env.ALLOW_BIND_MOUNTS: `ALLOW_BIND_MOUNTS=/srv,opt` is not understood: entry 2 ("opt") is not an absolute path; list absolute host directories such as /srv,/opt/appdata',
    ],
    ['a .. segment in a list', 'policy: { preset: tecnativa, env: { ALLOW_BIND_MOUNTS: [/srv, /srv/../etc] } }', /^policy\.env\.ALLOW_BIND_MOUNTS: `ALLOW_BIND_MOUNTS=\/srv,\/srv\/\.\.\/etc` is not understood: entry 2 .* contains a \.\. segment/],
    ['a comma inside a list entry', 'policy: { preset: tecnativa, env: { ALLOW_BIND_MOUNTS: [/srv, "/a,/b"] } }', 'policy.env.ALLOW_BIND_MOUNTS[1]: ("/a,/b") contains a comma, which would split it into two entries'],
    ['an empty list entry', 'policy: { preset: tecnativa, env: { ALLOW_CAPABILITIES: [NET_ADMIN, " "] } }', 'policy.env.ALLOW_CAPABILITIES[1]: must be a non-empty string'],
    ['an empty list', 'policy: { preset: tecnativa, env: { VISIBLE_LABELS: [] } }', 'policy.env.VISIBLE_LABELS: must list at least one entry (leave the variable out for none)'],
    ['a number for a list', 'policy: { preset: tecnativa, env: { ALLOW_CAPABILITIES: 1 } }', 'policy.env.ALLOW_CAPABILITIES: must be a comma-separated string or a list of strings, not 1'],
    ['a bad capability', 'policy: { preset: linuxserver, env: { ALLOW_CAPABILITIES: "NET-ADMIN" } }', /^policy\.env\.ALLOW_CAPABILITIES: `ALLOW_CAPABILITIES=NET-ADMIN` is not understood: entry 1/],
    ['a bad label list', 'policy: { preset: tecnativa, env: { VISIBLE_LABELS: "a,,b" } }', /^policy\.env\.VISIBLE_LABELS: `VISIBLE_LABELS=a,,b` is not understood: item 2 is empty/],
    ['an event attribute as a label', 'policy: { preset: tecnativa, env: { VISIBLE_LABELS: [name=web] } }', /^policy\.env\.VISIBLE_LABELS: .*uses the key "name"/],
    ['a boolean for a switch', 'policy: { preset: tecnativa, env: { PROTECT_HOST: true } }', 'policy.env.PROTECT_HOST: must be 1 or 0 (a number or a string), not true'],
    ['an unclear switch', "policy: { preset: linuxserver, env: { REDACT_ENV: 'on' } }", /^policy\.env\.REDACT_ENV: `REDACT_ENV=on` is not understood/],
    ['a list for a switch', 'policy: { preset: tecnativa, env: { STRICT_READ: [1] } }', 'policy.env.STRICT_READ: must be 1 or 0 (a number or a string), not [1]'],
    ['SOCKET_PATH', 'policy: { preset: tecnativa, env: { SOCKET_PATH: /run/docker.sock } }', /^policy\.env\.SOCKET_PATH: is not a preset variable: dockerd's socket is the file's `socketPath`/],
    ['a Tecnativa gate in linuxserver is its own; GRPC is not', 'policy: { preset: linuxserver, env: { GRPC: 1 } }', /^policy\.env\.GRPC: is not a variable of the linuxserver preset/],
  ])('refused, naming the path: %s', (_name, text, message) => {
    const got = refusal(text);
    if (typeof message === 'string') expect(got).toBe(message);
    else expect(got).toMatch(message);
  });
});

describe("SOCKET_PATH: the guard's socket joins the sockets a bind must not expose", () => {
  const env = 'policy: { preset: tecnativa, env: { CONTAINERS: 1, POST: 1, PROTECT_HOST: 1, ALLOW_BIND_MOUNTS: /run } }';
  const bind = createBody({ Binds: ['/run/user/1000:/x'] });

  test('the caller passes it (the CLI: SOCKET_PATH); a bind of its directory is then refused', () => {
    const without = createSocketFilter({ policy: policyOf(env) });
    expect(without.evaluate('POST', '/v1.41/containers/create', bind).allowed).toBe(true);
    const policy = policyOf(env, '/run/user/1000/docker.sock');
    expect(policy.protectHost?.dockerSockets).toEqual([...DEFAULT_DOCKER_SOCKETS, '/run/user/1000/docker.sock']);
    expect(policy).toEqual(tecnativaPreset({ CONTAINERS: '1', POST: '1', PROTECT_HOST: '1', ALLOW_BIND_MOUNTS: '/run', SOCKET_PATH: '/run/user/1000/docker.sock' }));
    expect(createSocketFilter({ policy }).evaluate('POST', '/v1.41/containers/create', bind)).toMatchObject({ allowed: false, rule: 'ALLOW_BIND_MOUNTS', field: 'HostConfig.Binds[0]' });
  });

  test("the file's socketPath replaces the caller's, as it does for the guard", () => {
    const policy = parseConfig(`${env}\nsocketPath: /srv/docker.sock`, { socketPath: '/run/user/1000/docker.sock' }).filter.policy;
    expect(policy?.protectHost?.dockerSockets).toEqual([...DEFAULT_DOCKER_SOCKETS, '/srv/docker.sock']);
  });

  test('a protectHost section gets it too: over its own dockerSockets, or over what it would have', () => {
    const socket = '/run/user/1000/docker.sock';
    expect(policyOf('policy: { allow: ["* /containers/**"], protectHost: {} }', socket).protectHost?.dockerSockets).toEqual([...DEFAULT_DOCKER_SOCKETS, socket]);
    expect(policyOf('policy: { allow: ["* /containers/**"], protectHost: { dockerSockets: [/x.sock] } }', socket).protectHost?.dockerSockets).toEqual(['/x.sock', socket]);
    expect(
      policyOf('policy: { extends: { preset: tecnativa, env: { PROTECT_HOST: 1 } }, protectHost: { allowDevices: true } }', socket).protectHost?.dockerSockets,
    ).toEqual([...DEFAULT_DOCKER_SOCKETS, socket]);
    // Without a socket path, the section is definePolicy's as written.
    expect(policyOf('policy: { allow: ["* /containers/**"], protectHost: {} }').protectHost).toEqual({});
  });

  test('a relative socket path names no host path: the defaults hold', () => {
    expect(policyOf(env, 'docker.sock').protectHost?.dockerSockets).toEqual(DEFAULT_DOCKER_SOCKETS);
  });

  test('the option is checked', () => {
    expect(() => parseConfig(env, { socketPath: 'a\0b' })).toThrow('The `socketPath` option must be a path');
  });
});

describe('protectHost: the section of definePolicy', () => {
  const portainer = `
clients:
  - name: portainer
    match: { address: ["172.25.0.3"] }
    policy:
      extends: { preset: tecnativa, env: { CONTAINERS: 1, VOLUMES: 1, POST: 1 } }
      protectHost: { allowBindMounts: [/srv, /opt/appdata], allowCapabilities: [NET_ADMIN], maxBodyBytes: 2097152 }
`;
  const client = { client: { address: '172.25.0.3' } };

  test('turns the checks on, with its keys re-opening them; reasons name the option', () => {
    const { evaluate } = createSocketFilter(parseConfig(portainer).filter);
    expect(evaluate('POST', '/v1.41/containers/create', { ...client, ...createBody({ Binds: ['/srv/www:/w'], CapAdd: ['NET_ADMIN'] }) }).allowed).toBe(true);
    expect(evaluate('POST', '/v1.41/containers/create', { ...client, ...createBody({ Privileged: true }) })).toMatchObject({
      allowed: false,
      rule: 'ALLOW_PRIVILEGED',
      field: 'HostConfig.Privileged',
      reason: 'docker-socket-filter denied POST /v1.41/containers/create: HostConfig.Privileged is true; it needs protectHost.allowPrivileged: true',
    });
    expect(evaluate('POST', '/v1.41/containers/create', { ...client, bodyLength: 10 }).obligations?.body).toEqual({ maxBytes: 2097152 });
  });

  test('is definePolicy({ protectHost }) over the preset', () => {
    const policy = parseConfig(portainer).filter.clients?.[0]?.policy;
    expect(policy?.protectHost).toEqual({ allowBindMounts: ['/srv', '/opt/appdata'], allowCapabilities: ['NET_ADMIN'], maxBodyBytes: 2097152 });
    expect(policyOf('policy: { extends: { preset: tecnativa, env: { PROTECT_HOST: 1, ALLOW_BIND_MOUNTS: /srv } }, protectHost: { allowDevices: true } }').protectHost).toMatchObject({
      allowBindMounts: ['/srv'],
      allowDevices: true,
    });
  });

  test.each<[string, string, string]>([
    ['an unknown key', 'policy: { allow: ["GET /x"], protectHost: { allowPrivilegd: true } }', 'policy.protectHost.allowPrivilegd: is not a known key (known here: allowPrivileged, allowHostNamespaces, allowDevices, allowUnconfined, allowVolumesFrom, allowVolumeOptions, allowPluginInstall, allowHostNetworkBuild, allowRemoteFetch, allowCapabilities, allowBindMounts, dockerSockets, maxBodyBytes)'],
    ['a number for a switch', 'policy: { allow: ["GET /x"], protectHost: { allowPrivileged: 1 } }', 'policy.protectHost.allowPrivileged: must be true or false'],
    ['a string for a list', 'policy: { allow: ["GET /x"], protectHost: { allowBindMounts: /srv } }', 'policy.protectHost.allowBindMounts: must be an array of strings'],
    [
      'a relative path, in a client',
      'clients: [{ name: a, match: { address: ["1.2.3.4"] }, policy: { preset: tecnativa } }, { name: b, match: { address: ["1.2.3.5"] }, policy: { extends: { preset: tecnativa }, protectHost: { allowBindMounts: [/srv, srv] } } }]',
      'clients[1].policy.protectHost.allowBindMounts[1]: ("srv") is not an absolute path; give an absolute path',
    ],
    ['a bad capability', 'policy: { allow: ["GET /x"], protectHost: { allowCapabilities: [NET-ADMIN] } }', 'policy.protectHost.allowCapabilities[0]: must be a capability name such as NET_ADMIN (or ALL)'],
    ['a body limit too small', 'policy: { allow: ["GET /x"], protectHost: { maxBodyBytes: 10 } }', 'policy.protectHost.maxBodyBytes: must be an integer from 1024 to 67108864'],
    ['not an object', 'policy: { allow: ["GET /x"], protectHost: true }', 'policy.protectHost: must be an object of host-protection settings, such as `{ allowBindMounts: [/srv] }`'],
    ['on a preset entry', 'policy: { preset: tecnativa, protectHost: {} }', 'policy.protectHost: is not a known key (known here: preset, env)'],
    ['alone', 'policy: { protectHost: {} }', 'policy: must give `preset`, or `extends`, `allow` or `deny` (`protectHost` and `read` only narrow a policy)'],
  ])('refused, naming the path: %s', (_name, text, message) => {
    expect(refusal(text)).toBe(message);
  });
});

describe('read: the section of definePolicy', () => {
  test('redaction and visibility, added to the preset’s', () => {
    const policy = policyOf('policy: { extends: { preset: tecnativa, env: { CONTAINERS: 1, VISIBLE_LABELS: team=web } }, read: { redactEnv: true, visibleLabels: traefik.enable=true } }');
    expect(policy.read).toEqual({ redactEnv: true, visibleLabels: [{ key: 'team', value: 'web' }, { key: 'traefik.enable', value: 'true' }] });
    const { evaluate } = createSocketFilter({ policy });
    expect(evaluate('GET', '/v1.41/containers/web/json').obligations?.response).toMatchObject({ kind: 'container-inspect', redactEnv: true });
  });

  test('visibleLabels as a list of strings and { key, value } objects', () => {
    expect(policyOf('policy: { allow: ["GET /containers/json"], read: { visibleLabels: [a, "b=c", { key: d, value: "e" }] } }').read).toEqual({
      visibleLabels: [{ key: 'a' }, { key: 'b', value: 'c' }, { key: 'd', value: 'e' }],
    });
  });

  test.each<[string, string, string | RegExp]>([
    ['an unknown key', 'policy: { allow: ["GET /x"], read: { redact: true } }', 'policy.read.redact: is not a known key (known here: redactEnv, visibleLabels)'],
    ['a number for redactEnv', 'policy: { allow: ["GET /x"], read: { redactEnv: 1 } }', 'policy.read.redactEnv: must be a boolean'],
    ['an unquoted true as a value', 'policy: { allow: ["GET /x"], read: { visibleLabels: [{ key: traefik.enable, value: true }] } }', 'policy.read.visibleLabels[0]: `value` must be a string'],
    ['an empty list', 'policy: { allow: ["GET /x"], read: { visibleLabels: [] } }', 'policy.read.visibleLabels: must name at least one label'],
    ['an event attribute', 'clients: [{ name: a, match: { address: ["1.2.3.4"] }, policy: { extends: { preset: tecnativa }, read: { visibleLabels: [a, image] } } }]', /^clients\[0\]\.policy\.read\.visibleLabels\[1\]: item 1 \("image"\) uses the key "image"/],
    ['two meanings of one key', 'policy: { allow: ["GET /x"], read: { visibleLabels: [a=1, a=2] } }', 'policy.read.visibleLabels: requires the label "a" twice, with two meanings'],
    ['on a preset entry', 'policy: { preset: tecnativa, read: {} }', 'policy.read: is not a known key (known here: preset, env)'],
  ])('refused, naming the path: %s', (_name, text, message) => {
    const got = refusal(text);
    if (typeof message === 'string') expect(got).toBe(message);
    else expect(got).toMatch(message);
  });
});
