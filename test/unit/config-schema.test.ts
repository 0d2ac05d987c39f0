import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse } from 'yaml';
import { describe, expect, test } from 'vitest';
import { CONFIG_KEYS, PRESET_VARIABLE_KINDS, PRESET_VARIABLES, parseConfig } from '../../src/config/index.js';
import { LINUXSERVER_DEFAULTS, TECNATIVA_DEFAULTS } from '../../src/index.js';
import { LOG_LEVELS } from '../../src/log.js';

// The published schema (editors complete and check files with it) and the validator (the guard
// refuses to start with a bad file) must agree: this file keeps them in step.
const schema = JSON.parse(readFileSync(new URL('../../schema/config.schema.json', import.meta.url), 'utf8')) as Record<string, any>;
const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
const check = ajv.compile(schema);

function validatorAccepts(text: string): boolean {
  try {
    parseConfig(text);
    return true;
  } catch (error) {
    if (error instanceof TypeError && (error as { code?: string }).code === 'ERR_DSF_INVALID_CONFIG') return false;
    throw error;
  }
}

const preset = 'policy: { preset: tecnativa, env: { CONTAINERS: 1 } }';

/** Files both must accept. */
const VALID: readonly [string, string][] = [
  ['one preset', preset],
  ['one preset, no env', 'policy: { preset: linuxserver }'],
  ['string values', "policy: { preset: tecnativa, env: { CONTAINERS: '1', POST: '0', EVENTS: 'false', PING: off } }"],
  ['a custom policy', 'policy: { name: mine, allow: ["GET /containers/json", "GET,HEAD /_ping"], deny: ["* /exec/**"] }'],
  ['rule objects', 'policy: { allow: [{ id: ro, methods: [GET, HEAD], paths: ["/a", "/b/**"], access: read, reason: because }, { methods: "*", paths: /c }] }'],
  ['extends', 'policy: { extends: { preset: linuxserver, env: { ALLOW_LOGS: 1 } }, deny: ["* /containers/*/exec"] }'],
  [
    'the issue example',
    `listen:
  - { name: tcp, address: "0.0.0.0:2375" }
  - { name: ro, address: "unix:/run/docker-socket-filter/ro.sock" }
clients:
  - name: traefik
    match: { address: ["172.25.0.2"] }
    policy: { preset: tecnativa, env: { CONTAINERS: 1 } }
  - name: portainer
    match: { address: ["172.25.0.3/32"] }
    policy:
      extends: { preset: tecnativa, env: { CONTAINERS: 1, POST: 1 } }
      deny: ["* /containers/*/exec"]
  - name: dozzle
    match: { listener: ro }
    policy: { preset: linuxserver, env: { CONTAINERS: 1, ALLOW_LOGS: 1 } }`,
  ],
  [
    'every operational key',
    `$schema: ../schema/config.schema.json
${preset}
listen: [{ name: a, address: "[::1]:2375" }, { name: b, address: ":2376" }, { name: c, address: "2377" }]
socketPath: /run/docker.sock
minApiVersion: "1.40"
logLevel: warning
metricsListen: 127.0.0.1:9180
maxConnections: 0
maxUpstreamConnections: 64
maxHeldBytes: 64MiB
shutdownGrace: 2.5
socketMode: "0600"`,
  ],
  ['a budget of held bytes in bytes', `${preset}\nmaxHeldBytes: 1048576`],
  ['a budget of held bytes with a unit', `${preset}\nmaxHeldBytes: "2g"`],
  ['IPv6 clients', 'clients: [{ name: v6, match: { address: ["fd00::/64", "::1"] }, policy: { preset: tecnativa } }]'],
  // The host protection and read variables (issues 14 and 16) and definePolicy's sections.
  ['PROTECT_HOST with string lists', 'policy: { preset: tecnativa, env: { CONTAINERS: 1, POST: 1, PROTECT_HOST: 1, ALLOW_BIND_MOUNTS: "/srv, /opt/appdata", ALLOW_CAPABILITIES: "NET_ADMIN,cap_sys_time" } }'],
  ['PROTECT_HOST with YAML lists', 'policy: { preset: linuxserver, env: { PROTECT_HOST: "1", ALLOW_BIND_MOUNTS: [/srv, /opt/appdata], ALLOW_CAPABILITIES: [ALL] } }'],
  [
    'every host switch',
    'policy: { preset: tecnativa, env: { PROTECT_HOST: 1, ALLOW_PRIVILEGED: 1, ALLOW_HOST_NAMESPACES: 0, ALLOW_DEVICES: "1", ALLOW_UNCONFINED: "0", ALLOW_VOLUMES_FROM: 1, ALLOW_VOLUME_OPTIONS: 1, ALLOW_PLUGIN_INSTALL: 0, ALLOW_HOST_NETWORK_BUILD: 0, ALLOW_REMOTE_FETCH: 1 } }',
  ],
  ['the read variables (tecnativa)', 'policy: { preset: tecnativa, env: { CONTAINERS: 1, REDACT_ENV: 1, VISIBLE_LABELS: traefik.enable=true, STRICT_READ: 1, ALLOW_LOGS: 1, ALLOW_ARCHIVE: "0", ALLOW_CHANGES: 0, ALLOW_EXPORT: 0, ALLOW_TOP: 1 } }'],
  ['the read variables (linuxserver)', 'policy: { preset: linuxserver, env: { REDACT_ENV: "1", VISIBLE_LABELS: [traefik.enable=true, com.example.public], STRICT_READ: 0 } }'],
  ['empty list strings (unset)', 'policy: { preset: tecnativa, env: { ALLOW_BIND_MOUNTS: "", ALLOW_CAPABILITIES: "", VISIBLE_LABELS: "" } }'],
  ['an empty protectHost section', 'policy: { allow: ["* /containers/**"], protectHost: {} }'],
  [
    'every protectHost key',
    `policy:
  extends: { preset: tecnativa, env: { CONTAINERS: 1, POST: 1 } }
  protectHost:
    allowPrivileged: false
    allowHostNamespaces: true
    allowCapabilities: [NET_ADMIN, CAP_SYS_TIME]
    allowDevices: false
    allowUnconfined: false
    allowBindMounts: [/srv, /opt/appdata]
    allowVolumesFrom: false
    allowVolumeOptions: false
    allowPluginInstall: false
    allowHostNetworkBuild: false
    allowRemoteFetch: false
    dockerSockets: [/run/user/1000/docker.sock]
    maxBodyBytes: 2097152`,
  ],
  ['a read section', 'policy: { extends: { preset: tecnativa, env: { CONTAINERS: 1 } }, read: { redactEnv: true, visibleLabels: traefik.enable=true } }'],
  ['read labels as a list', 'policy: { allow: ["GET /containers/json"], read: { redactEnv: false, visibleLabels: [a, "b=c", { key: d, value: "e" }, { key: f }] } }'],
  ['both sections in a client', 'clients: [{ name: p, match: { address: ["172.25.0.3"] }, policy: { extends: { preset: linuxserver, env: { POST: 1 } }, deny: ["* /build"], protectHost: { allowBindMounts: [/srv] }, read: { redactEnv: true } } }]'],
];

/** Files both must refuse: everything a schema can say. */
const INVALID: readonly [string, string][] = [
  ['neither clients nor policy', 'logLevel: info'],
  ['both clients and policy', `${preset}\nclients: [{ name: a, match: { address: ["1.2.3.4"] }, policy: { preset: tecnativa } }]`],
  ['an unknown top-level key', `${preset}\nlisten_on: x`],
  ['a misspelt key', 'polcy: { preset: tecnativa }'],
  ['an unknown preset', 'policy: { preset: haproxy }'],
  ['an unknown variable', 'policy: { preset: tecnativa, env: { CONTAINER: 1 } }'],
  ['a linuxserver variable in tecnativa', 'policy: { preset: tecnativa, env: { LIBPOD_CONTAINERS: 1 } }'],
  ['a tecnativa variable in linuxserver', 'policy: { preset: linuxserver, env: { GRPC: 1 } }'],
  ['a boolean value', 'policy: { preset: tecnativa, env: { CONTAINERS: true } }'],
  ['an unclear string', "policy: { preset: tecnativa, env: { CONTAINERS: 'yes' } }"],
  ['a fractional number', 'policy: { preset: tecnativa, env: { CONTAINERS: 1.5 } }'],
  ['a 0x value', "policy: { preset: tecnativa, env: { CONTAINERS: '0x1' } }"],
  ['preset with allow', 'policy: { preset: tecnativa, allow: ["GET /x"] }'],
  ['an empty custom policy', 'policy: { name: x }'],
  ['a rule without a glob', 'policy: { allow: ["GET"] }'],
  ['a bad method', 'policy: { allow: [{ methods: [PATCH], paths: /x }] }'],
  ['a rule key unknown', 'policy: { allow: [{ paths: /x, when: 1 }] }'],
  ['a glob without /', 'policy: { allow: [{ paths: x }] }'],
  ['a bad access', 'policy: { allow: [{ paths: /x, access: readonly }] }'],
  ['an empty client list', 'clients: []'],
  ['a client without match', 'clients: [{ name: a, policy: { preset: tecnativa } }]'],
  ['an empty match', 'clients: [{ name: a, match: {}, policy: { preset: tecnativa } }]'],
  ['a header match', 'clients: [{ name: a, match: { header: X-Forwarded-For }, policy: { preset: tecnativa } }]'],
  ['a client name with a space', 'clients: [{ name: "a b", match: { address: ["1.2.3.4"] }, policy: { preset: tecnativa } }]'],
  ['a host name for an address', 'clients: [{ name: a, match: { address: ["traefik"] }, policy: { preset: tecnativa } }]'],
  ['a listen entry without a name', `${preset}\nlisten: [{ address: ":2375" }]`],
  ['a listen address without a port', `${preset}\nlisten: [{ name: a, address: "127.0.0.1" }]`],
  ['a relative unix socket', `${preset}\nlisten: [{ name: a, address: "unix:x.sock" }]`],
  ['a bad log level', `${preset}\nlogLevel: verbose`],
  ['an unquoted socket mode', `${preset}\nsocketMode: 0660`],
  ['a negative connection limit', `${preset}\nmaxConnections: -1`],
  ['no upstream connection at all', `${preset}\nmaxUpstreamConnections: 0`],
  ['a budget of held bytes below 1 MiB', `${preset}\nmaxHeldBytes: 1000`],
  ['a budget of held bytes in an unknown unit', `${preset}\nmaxHeldBytes: 16MB2`],
  ['a budget of held bytes as a list', `${preset}\nmaxHeldBytes: [16MiB]`],
  ['a grace period too long', `${preset}\nshutdownGrace: 3601`],
  ['a bad API version', `${preset}\nminApiVersion: "1"`],
  ['PROTECT_HOST as a boolean', 'policy: { preset: tecnativa, env: { PROTECT_HOST: true } }'],
  ['PROTECT_HOST as yes', "policy: { preset: linuxserver, env: { PROTECT_HOST: 'yes' } }"],
  ['a host switch as a list', 'policy: { preset: tecnativa, env: { ALLOW_PRIVILEGED: [1] } }'],
  ['REDACT_ENV on', 'policy: { preset: tecnativa, env: { REDACT_ENV: on } }'],
  ['STRICT_READ true', "policy: { preset: linuxserver, env: { STRICT_READ: 'true' } }"],
  ['an unclear sub-resource gate', "policy: { preset: tecnativa, env: { ALLOW_ARCHIVE: '0x1' } }"],
  ['SOCKET_PATH under env', 'policy: { preset: tecnativa, env: { SOCKET_PATH: /run/docker.sock } }'],
  ['a number for a bind mount list', 'policy: { preset: tecnativa, env: { ALLOW_BIND_MOUNTS: 1 } }'],
  ['a relative bind mount', 'policy: { preset: tecnativa, env: { ALLOW_BIND_MOUNTS: "/srv,opt" } }'],
  ['an empty bind mount entry', 'policy: { preset: tecnativa, env: { ALLOW_BIND_MOUNTS: "/srv,,/opt" } }'],
  ['a relative bind mount in a list', 'policy: { preset: linuxserver, env: { ALLOW_BIND_MOUNTS: [/srv, opt] } }'],
  ['an empty bind mount list', 'policy: { preset: tecnativa, env: { ALLOW_BIND_MOUNTS: [] } }'],
  ['a comma in a bind mount entry', 'policy: { preset: tecnativa, env: { ALLOW_BIND_MOUNTS: ["/srv,/opt"] } }'],
  ['a bad capability', 'policy: { preset: tecnativa, env: { ALLOW_CAPABILITIES: "NET-ADMIN" } }'],
  ['a number in a capability list', 'policy: { preset: tecnativa, env: { ALLOW_CAPABILITIES: [NET_ADMIN, 1] } }'],
  ['a boolean for the visible labels', 'policy: { preset: tecnativa, env: { VISIBLE_LABELS: true } }'],
  ['an empty label list', 'policy: { preset: linuxserver, env: { VISIBLE_LABELS: [] } }'],
  ['a comma in a label list entry', 'policy: { preset: tecnativa, env: { VISIBLE_LABELS: ["a=1,b"] } }'],
  ['protectHost on a preset entry', 'policy: { preset: tecnativa, protectHost: {} }'],
  ['protectHost alone', 'policy: { protectHost: {} }'],
  ['protectHost not an object', 'policy: { allow: ["GET /x"], protectHost: true }'],
  ['an unknown protectHost key', 'policy: { allow: ["GET /x"], protectHost: { allowPrivilegd: true } }'],
  ['a variable name in protectHost', 'policy: { allow: ["GET /x"], protectHost: { ALLOW_PRIVILEGED: true } }'],
  ['a protectHost switch as 1', 'policy: { allow: ["GET /x"], protectHost: { allowPrivileged: 1 } }'],
  ['a protectHost list as a string', 'policy: { allow: ["GET /x"], protectHost: { allowBindMounts: /srv } }'],
  ['a relative protectHost bind mount', 'policy: { allow: ["GET /x"], protectHost: { allowBindMounts: [srv] } }'],
  ['a bad protectHost capability', 'policy: { allow: ["GET /x"], protectHost: { allowCapabilities: [NET-ADMIN] } }'],
  ['a relative docker socket', 'policy: { allow: ["GET /x"], protectHost: { dockerSockets: [docker.sock] } }'],
  ['a body limit too small', 'policy: { allow: ["GET /x"], protectHost: { maxBodyBytes: 10 } }'],
  ['a body limit not an integer', 'policy: { allow: ["GET /x"], protectHost: { maxBodyBytes: 2048.5 } }'],
  ['read on a preset entry', 'policy: { preset: tecnativa, read: { redactEnv: true } }'],
  ['read alone', 'policy: { read: { redactEnv: true } }'],
  ['an unknown read key', 'policy: { allow: ["GET /x"], read: { redact: true } }'],
  ['redactEnv as 1', 'policy: { allow: ["GET /x"], read: { redactEnv: 1 } }'],
  ['empty visibleLabels', 'policy: { allow: ["GET /x"], read: { visibleLabels: "" } }'],
  ['an empty visibleLabels list', 'policy: { allow: ["GET /x"], read: { visibleLabels: [] } }'],
  ['a label value not a string', 'policy: { allow: ["GET /x"], read: { visibleLabels: [{ key: traefik.enable, value: true }] } }'],
  ['an unknown label key', 'policy: { allow: ["GET /x"], read: { visibleLabels: [{ key: a, val: b }] } }'],
  ['a label object without a key', 'policy: { allow: ["GET /x"], read: { visibleLabels: [{ value: b }] } }'],
  ['visibleLabels as a number', 'policy: { allow: ["GET /x"], read: { visibleLabels: 1 } }'],
];

/**
 * What only the validator can judge (a schema cannot compare items with each other or run the
 * checks of a glob, a CIDR or a port number): the schema accepts these, the validator refuses them.
 */
const VALIDATOR_ONLY: readonly [string, string][] = [
  [
    'two clients with one name',
    'clients: [{ name: a, match: { address: ["1.2.3.4"] }, policy: { preset: tecnativa } }, { name: a, match: { address: ["1.2.3.5"] }, policy: { preset: tecnativa } }]',
  ],
  ['a listener no listen entry has', 'clients: [{ name: a, match: { listener: ro }, policy: { preset: tecnativa } }]'],
  ['host bits past a prefix', 'clients: [{ name: a, match: { address: ["172.25.0.3/24"] }, policy: { preset: tecnativa } }]'],
  ['an invalid IPv4 address', 'clients: [{ name: a, match: { address: ["300.1.2.3"] }, policy: { preset: tecnativa } }]'],
  ['an invalid glob', 'policy: { allow: ["GET /containers/[a"] }'],
  ['a ** inside a segment', 'policy: { allow: ["GET /containers/a**"] }'],
  ['a port over 65535', `${preset}\nlisten: [{ name: a, address: "127.0.0.1:70000" }]`],
  ['two listen entries with one name', `${preset}\nlisten: [{ name: a, address: ":1" }, { name: a, address: ":2" }]`],
  ['metrics on the API port', `${preset}\nlisten: [{ name: a, address: "127.0.0.1:2375" }]\nmetricsListen: 127.0.0.1:2375`],
  ['a repeated key', 'policy: { preset: tecnativa }\npolicy: { preset: linuxserver }'],
  ['a .. segment in a bind mount', 'policy: { preset: tecnativa, env: { ALLOW_BIND_MOUNTS: "/srv/../etc" } }'],
  ['a .. segment in a protectHost bind mount', 'policy: { allow: ["GET /x"], protectHost: { allowBindMounts: [/srv/../etc] } }'],
  ['an event attribute as a visible label', 'policy: { preset: tecnativa, env: { VISIBLE_LABELS: name=web } }'],
  ['an empty item in the visible labels', 'policy: { preset: tecnativa, env: { VISIBLE_LABELS: "a,,b" } }'],
  ['one label key twice', 'policy: { preset: linuxserver, env: { VISIBLE_LABELS: [a=1, a=2] } }'],
  ['one label key twice in a read section', 'policy: { allow: ["GET /x"], read: { visibleLabels: [a=1, a=2] } }'],
  ['an empty label value', 'policy: { allow: ["GET /x"], read: { visibleLabels: "a=" } }'],
  ['blank visibleLabels', 'policy: { allow: ["GET /x"], read: { visibleLabels: "  " } }'],
];

describe('the schema and the validator give the same verdict', () => {
  test.each(VALID)('valid: %s', (_name, text) => {
    expect(validatorAccepts(text)).toBe(true);
    expect(check(parse(text)), JSON.stringify(check.errors)).toBe(true);
  });
  test.each(INVALID)('invalid: %s', (_name, text) => {
    expect(validatorAccepts(text)).toBe(false);
    expect(check(parse(text))).toBe(false);
  });
  test.each(VALIDATOR_ONLY)('only the validator refuses: %s', (_name, text) => {
    expect(validatorAccepts(text)).toBe(false);
    // yaml's own parse keeps the last of a repeated key, as a schema-checking editor would see it.
    expect(check(parse(text, { uniqueKeys: false }))).toBe(true);
  });
});

describe('the schema knows every key the validator knows, and no other', () => {
  const defs = schema.$defs as Record<string, any>;
  const keysOf = (node: { properties: Record<string, unknown> }): string[] => Object.keys(node.properties).sort();
  const sorted = (keys: readonly string[]): string[] => [...keys].sort();

  test.each<[string, () => { properties: Record<string, unknown>; additionalProperties?: unknown }, readonly string[]]>([
    ['top level', () => schema as never, CONFIG_KEYS.top],
    ['listen entries', () => schema.properties.listen.items, CONFIG_KEYS.listen],
    ['clients', () => defs.client, CONFIG_KEYS.client],
    ['match', () => defs.client.properties.match, CONFIG_KEYS.match],
    ['preset policies', () => defs.preset, CONFIG_KEYS.presetPolicy],
    ['custom policies', () => defs.custom, CONFIG_KEYS.customPolicy],
    ['rule objects', () => defs.rule.oneOf[1], CONFIG_KEYS.rule],
    ['protectHost sections', () => defs.protectHost, CONFIG_KEYS.protectHost],
    ['read sections', () => defs.read, CONFIG_KEYS.read],
  ])('%s', (_name, node, keys) => {
    expect(keysOf(node())).toEqual(sorted(keys));
    expect(node().additionalProperties).toBe(false);
  });

  test.each(Object.entries(PRESET_VARIABLES))('the variables of the %s preset', (preset, variables) => {
    expect(keysOf(defs[`${preset}Env`])).toEqual(sorted(variables));
  });

  test.each(Object.entries(PRESET_VARIABLE_KINDS))('each variable of the %s preset takes what the validator takes', (preset, kinds) => {
    const properties = defs[`${preset}Env`].properties as Record<string, { $ref: string }>;
    for (const [name, kind] of Object.entries(kinds)) {
      if (kind === 'switch') expect(properties[name]?.$ref, name).toBe('#/$defs/grant');
      else expect(properties[name]?.$ref, name).toMatch(/^#\/\$defs\/(bindMountList|capabilityList|labelList)$/);
    }
  });

  test('the variables and sections of host protection and reading are described', () => {
    const original = new Set([...Object.keys(TECNATIVA_DEFAULTS), ...Object.keys(LINUXSERVER_DEFAULTS)]);
    const undescribed: string[] = [];
    for (const preset of Object.keys(PRESET_VARIABLES)) {
      for (const [name, value] of Object.entries(defs[`${preset}Env`].properties as Record<string, { description?: string }>)) {
        if (!original.has(name) && value.description === undefined) undescribed.push(`${preset}Env.${name}`);
      }
    }
    for (const section of ['protectHost', 'read']) {
      if (defs[section].description === undefined) undescribed.push(section);
      for (const [key, value] of Object.entries(defs[section].properties as Record<string, { description?: string }>)) {
        if (value.description === undefined) undescribed.push(`${section}.${key}`);
      }
    }
    expect(undescribed).toEqual([]);
  });

  test('log levels and presets', () => {
    expect(schema.properties.logLevel.enum).toEqual([...LOG_LEVELS]);
    expect(defs.preset.properties.preset.enum).toEqual(Object.keys(PRESET_VARIABLES));
  });

  test('every property has a description or is a reference to a described definition', () => {
    const undescribed: string[] = [];
    const walk = (node: unknown, path: string): void => {
      if (typeof node !== 'object' || node === null) return;
      const properties = (node as { properties?: Record<string, any> }).properties;
      if (properties !== undefined && path.split('.').length < 3) {
        for (const [key, value] of Object.entries(properties)) {
          if (value !== true && value.description === undefined && value.$ref === undefined && !['id', 'methods', 'paths', 'access', 'reason'].includes(key)) {
            undescribed.push(`${path}.${key}`);
          }
        }
      }
      for (const [key, value] of Object.entries(node)) walk(value, `${path}.${key}`);
    };
    walk(schema.properties, 'properties');
    expect(undescribed).toEqual([]);
  });
});
