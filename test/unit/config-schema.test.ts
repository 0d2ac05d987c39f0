import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse } from 'yaml';
import { describe, expect, test } from 'vitest';
import { CONFIG_KEYS, PRESET_VARIABLES, parseConfig } from '../../src/config/index.js';
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
shutdownGrace: 2.5
socketMode: "0600"`,
  ],
  ['IPv6 clients', 'clients: [{ name: v6, match: { address: ["fd00::/64", "::1"] }, policy: { preset: tecnativa } }]'],
];

/** Files both must refuse: everything a schema can say. */
const INVALID: readonly [string, string][] = [
  ['neither clients nor policy', 'logLevel: info'],
  ['both clients and policy', `${preset}\nclients: [{ name: a, match: { address: ["1.2.3.4"] }, policy: { preset: tecnativa } }]`],
  ['an unknown top-level key', `${preset}\nlisten_on: x`],
  ['a misspelt key', 'polcy: { preset: tecnativa }'],
  ['an unknown preset', 'policy: { preset: haproxy }'],
  ['an unknown variable', 'policy: { preset: tecnativa, env: { CONTAINER: 1 } }'],
  ['a linuxserver variable in tecnativa', 'policy: { preset: tecnativa, env: { ALLOW_LOGS: 1 } }'],
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
  ['a grace period too long', `${preset}\nshutdownGrace: 3601`],
  ['a bad API version', `${preset}\nminApiVersion: "1"`],
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
  ])('%s', (_name, node, keys) => {
    expect(keysOf(node())).toEqual(sorted(keys));
    expect(node().additionalProperties).toBe(false);
  });

  test.each(Object.entries(PRESET_VARIABLES))('the variables of the %s preset', (preset, variables) => {
    expect(keysOf(defs[`${preset}Env`])).toEqual(sorted(variables));
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
