import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createSocketFilter } from '../../src/index.js';
import { configFormatOf, loadConfig, parseConfig } from '../../src/config/index.js';
import { repeatedJsonKey } from '../../src/config/json.js';

function refusal(text: string, format: 'yaml' | 'json' = 'yaml'): string {
  try {
    parseConfig(text, { format });
  } catch (error) {
    expect(error).toBeInstanceOf(TypeError);
    expect((error as { code?: string }).code).toBe('ERR_DSF_INVALID_CONFIG');
    return (error as Error).message;
  }
  throw new Error('expected a refusal');
}

const ISSUE_EXAMPLE = `
listen:
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
    policy: { preset: linuxserver, env: { CONTAINERS: 1, ALLOW_LOGS: 1 } }
`;

describe('a file becomes createSocketFilter options and the CLI settings', () => {
  test('the issue example', () => {
    const config = parseConfig(ISSUE_EXAMPLE);
    expect(config.listen).toEqual([
      { name: 'tcp', kind: 'tcp', host: '0.0.0.0', port: 2375 },
      { name: 'ro', kind: 'unix', path: '/run/docker-socket-filter/ro.sock' },
    ]);
    expect(config.filter.clients?.map((client) => [client.name, client.policy.name])).toEqual([
      ['traefik', 'tecnativa'],
      ['portainer', 'tecnativa+custom'],
      ['dozzle', 'linuxserver'],
    ]);
    expect(config.settings).toEqual({});
    const filter = createSocketFilter(config.filter);
    expect(filter.evaluate('POST', '/v1.41/containers/create', { client: { address: '172.25.0.3' } })).toMatchObject({ allowed: true, client: 'portainer' });
    expect(filter.evaluate('POST', '/v1.41/containers/x/exec', { client: { address: '172.25.0.3' } })).toMatchObject({
      allowed: false,
      rule: 'deny * /containers/*/exec',
    });
    expect(filter.evaluate('GET', '/v1.41/containers/x/logs', { client: { listener: 'ro' } })).toMatchObject({ allowed: true, client: 'dozzle' });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.filter.clients)).toBe(true);
  });

  test('env values may be numbers or strings, and mean what the variables mean', () => {
    const numbers = parseConfig('policy: { preset: tecnativa, env: { CONTAINERS: 1, EVENTS: 0 } }').filter.policy?.source?.settings;
    const strings = parseConfig("policy: { preset: tecnativa, env: { CONTAINERS: '1', EVENTS: '0' } }").filter.policy?.source?.settings;
    expect(numbers).toEqual(strings);
    expect(numbers).toMatchObject({ CONTAINERS: true, EVENTS: false, PING: true });
  });

  test('operational settings', () => {
    const config = parseConfig(`
policy: { preset: tecnativa }
socketPath: /run/docker.sock
minApiVersion: "1.40"
logLevel: debug
metricsListen: "127.0.0.1:9180"
maxConnections: 100
maxUpstreamConnections: 64
maxHeldBytes: 32MiB
shutdownGrace: 1.5
socketMode: "0600"
`);
    expect(config.settings).toEqual({
      socketPath: '/run/docker.sock',
      logLevel: 'debug',
      metricsListen: { kind: 'tcp', host: '127.0.0.1', port: 9180 },
      maxConnections: 100,
      maxUpstreamConnections: 64,
      maxHeldBytes: 32 * 1024 * 1024,
      graceMs: 1500,
      socketMode: 0o600,
    });
    expect(config.filter).toMatchObject({ socketPath: '/run/docker.sock', minApiVersion: '1.40' });
    expect(config.listen).toBeUndefined();
  });

  test('JSON reads the same', () => {
    const json = parseConfig(JSON.stringify({ policy: { preset: 'tecnativa', env: { CONTAINERS: 1 } } }), { format: 'json' });
    expect(json.filter.policy).toEqual(parseConfig('policy: { preset: tecnativa, env: { CONTAINERS: 1 } }').filter.policy);
  });
});

describe('refusals name the path', () => {
  test.each<[string, string, string | RegExp]>([
    [
      'a bad method in a rule',
      'clients:\n  - { name: a, match: { address: ["1.2.3.4"] }, policy: { preset: tecnativa } }\n  - name: b\n    match: { address: ["1.2.3.5"] }\n    policy: { allow: ["GET /x", "GET /y", "PATCH /z"] }',
      'clients[1].policy.allow[2]: "PATCH" is not a method of the Docker Engine API (GET, HEAD, POST, PUT, DELETE, or * for all)',
    ],
    ['an unclear value', "policy: { preset: tecnativa, env: { POST: 'on' } }", /^policy\.env\.POST: `POST=on` is not understood/],
    ['an unknown variable', 'policy: { preset: tecnativa, env: { CONTAINER: 1 } }', /^policy\.env\.CONTAINER: is not a variable of the tecnativa preset/],
    ['an unknown key', 'policy: { preset: tecnativa }\nlisten_on: x', /^listen_on: is not a known key \(known here: \$schema, listen, clients/],
    ['an unknown key in extends', 'policy: { extends: { preset: tecnativa, allow: [] } }', /^policy\.extends\.allow: is not a known key/],
    ['a bad address', 'clients: [{ name: a, match: { address: ["10.0.0.1", "10.0.0.300"] }, policy: { preset: tecnativa } }]', /^clients\[0\]\.match\.address\[1\]: has "10\.0\.0\.300"/],
    [
      'a repeated client name',
      'clients: [{ name: a, match: { address: ["1.2.3.4"] }, policy: { preset: tecnativa } }, { name: a, match: { address: ["1.2.3.5"] }, policy: { preset: tecnativa } }]',
      'clients[1].name: repeats the name "a": each client needs its own',
    ],
    ['an unknown listener', 'listen: [{ name: tcp, address: ":2375" }]\nclients: [{ name: a, match: { listener: ro }, policy: { preset: tecnativa } }]', 'clients[0].match.listener: names the listener "ro", which is not a `listen` entry (tcp)'],
    ['a bad listen address', 'policy: { preset: tecnativa }\nlisten: [{ name: a, address: "::1:2375" }]', 'listen[0].address: write an IPv6 address in brackets, as [::1]:2375'],
    ['a repeated listen address', 'policy: { preset: tecnativa }\nlisten: [{ name: a, address: "127.0.0.1:1" }, { name: b, address: "127.0.0.1:1" }]', 'listen[1].address: repeats 127.0.0.1:1'],
    ['both clients and policy', 'policy: { preset: tecnativa }\nclients: []', /^clients: cannot be given with `policy`/],
    ['neither', 'logLevel: info', /^\(top level\): the file must give `clients`/],
    ['not a mapping', '- a\n- b', /^\(top level\): must be a mapping/],
    ['empty', '  \n', 'the file is empty'],
    ['a YAML syntax error', 'policy: { preset: tecnativa', /^line \d+, column \d+: /],
    ['a repeated YAML key', 'clients:\n  - name: a\n    name: b\n', 'line 3, column 5: clients[0]: the key "name" is given twice (a setting read two ways is refused)'],
    ['two YAML documents', 'policy: { preset: tecnativa }\n---\npolicy: { preset: linuxserver }\n', /document/i],
    ['a merge key', 'base: &b { preset: tecnativa }\npolicy: { <<: *b }', /^base: is not a known key/],
  ])('%s', (_name, text, message) => {
    const got = refusal(text);
    if (typeof message === 'string') expect(got).toBe(message);
    else expect(got).toMatch(message);
    expect(got).not.toContain('\n');
  });

  test.each<[string, string]>([
    ['{"policy":{"preset":"tecnativa"},"policy":{"preset":"linuxserver"}}', '(top level): the key "policy" is given twice (a setting read two ways is refused)'],
    ['{"clients":[{"name":"a","match":{},"name":"b"}]}', 'clients[0]: the key "name" is given twice (a setting read two ways is refused)'],
    ['{"policy":{"preset":"tecnativa","env":{"A\\u0042":1,"AB":0}}}', 'policy.env: the key "AB" is given twice (a setting read two ways is refused)'],
    ['{"policy": {"preset": "tecnativa",}}', 'not valid JSON: '],
  ])('JSON %s', (text, message) => {
    expect(refusal(text, 'json')).toContain(message);
  });

  test('a JSON key with the same text inside a string value is not a repeat', () => {
    expect(repeatedJsonKey('{"a":"\\"a\\"","b":["a","a"],"c":{"a":1}}')).toBeUndefined();
  });
});

describe('files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dsf-config-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('the format comes from the name; the message starts with the path', async () => {
    expect(configFormatOf('/a/b.yml')).toBe('yaml');
    expect(configFormatOf('/a/b.JSON')).toBe('json');
    expect(() => configFormatOf('/a/b.toml')).toThrow('/a/b.toml: a policy file must end in .yaml, .yml or .json');
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'policy: { preset: tecnativa, env: { POST: yes } }\n');
    await expect(loadConfig(file)).rejects.toThrow(`${file}: policy.env.POST: \`POST=yes\` is not understood.`);
    await expect(loadConfig(join(dir, 'missing.yaml'))).rejects.toThrow(`${join(dir, 'missing.yaml')}: cannot be read (ENOENT)`);
    const good = join(dir, 'good.json');
    await writeFile(good, '{"policy":{"preset":"tecnativa","env":{"CONTAINERS":1}}}');
    expect((await loadConfig(good)).filter.policy?.source?.settings.CONTAINERS).toBe(true);
  });
});
