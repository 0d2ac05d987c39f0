import { describe, expect, test } from 'vitest';
import { parseCli, type CliConfig } from '../../src/cli/args.js';
import { applyConfigFile, unreloadable } from '../../src/cli/config-file.js';
import { parseConfig } from '../../src/config/index.js';

function cli(argv: string[], env: Record<string, string> = {}): CliConfig {
  const result = parseCli(['--config', '/etc/dsf.yaml', ...argv], env);
  if (!result.ok) throw new Error(result.message);
  return result.config;
}

const FILE = `
listen: [{ name: tcp, address: ":2375" }, { name: ro, address: "unix:/run/dsf/ro.sock" }]
clients: [{ name: dozzle, match: { listener: ro }, policy: { preset: linuxserver, env: { ALLOW_LOGS: 1 } } }]
socketPath: /run/docker.sock
logLevel: warning
shutdownGrace: 2
`;

describe('a config file with the command line and the environment', () => {
  test('the file sets the policy, where to listen, and replaces variables of the environment', () => {
    const config = applyConfigFile(cli([], { SOCKET_PATH: '/var/run/docker.sock', LOG_LEVEL: 'info', SHUTDOWN_GRACE: '9' }), parseConfig(FILE), false);
    expect(config.clients?.map((client) => client.name)).toEqual(['dozzle']);
    expect(config.policy).toBeUndefined();
    expect(config.listen).toEqual([
      { name: 'tcp', kind: 'tcp', host: undefined, port: 2375 },
      { name: 'ro', kind: 'unix', path: '/run/dsf/ro.sock' },
    ]);
    expect(config).toMatchObject({ socketPath: '/run/docker.sock', logLevel: 'warning', graceMs: 2000 });
  });

  test('what the file does not set keeps coming from flags and the environment', () => {
    const config = applyConfigFile(cli(['--max-connections', '7'], { LISTEN_SOCKET_MODE: '0600' }), parseConfig('policy: { preset: tecnativa }'), false);
    expect(config).toMatchObject({ maxConnections: 7, socketMode: 0o600, socketPath: '/var/run/docker.sock' });
    expect(config.listen).toEqual([{ kind: 'tcp', host: '127.0.0.1', port: 2375 }]);
    expect(config.policy?.name).toBe('tecnativa');
  });

  test('DISABLE_IPV6 applies to the file listen addresses without a host', () => {
    expect(applyConfigFile(cli([]), parseConfig(FILE), true).listen[0]).toEqual({ name: 'tcp', kind: 'tcp', host: '0.0.0.0', port: 2375 });
  });

  test.each<[string, string[], Record<string, string>, string]>([
    ['--listen', ['--listen', ':1'], {}, 'option `--listen` and `listen` of /etc/dsf.yaml both set it: keep one'],
    ['LISTEN', [], { LISTEN: ':1' }, '`LISTEN` and `listen` of /etc/dsf.yaml both set it: keep one'],
    ['--grace', ['--grace', '1'], {}, 'option `--grace` and `shutdownGrace` of /etc/dsf.yaml both set it'],
  ])('%s and the file both set it: refused', (_name, argv, env, message) => {
    expect(() => applyConfigFile(cli(argv, env), parseConfig(FILE), false)).toThrow(message);
  });

  test('the metrics address is checked against the file listen addresses', () => {
    expect(() => applyConfigFile(cli(['--metrics-listen', '127.0.0.1:2375']), parseConfig(FILE), false)).toThrow(
      'the metrics address 127.0.0.1:2375 is also a Docker API address (tcp)'.replace(' (tcp)', ''),
    );
  });

  test('a reload may change clients and policy only', () => {
    const running = applyConfigFile(cli([]), parseConfig(FILE), false);
    const policyOnly = applyConfigFile(cli([]), parseConfig(FILE.replace('ALLOW_LOGS: 1', 'ALLOW_LOGS: 0')), false);
    expect(unreloadable(running, policyOnly)).toBeUndefined();
    expect(unreloadable(running, applyConfigFile(cli([]), parseConfig(FILE.replace(':2375', ':2376')), false))).toBe('listen');
    expect(unreloadable(running, applyConfigFile(cli([]), parseConfig(FILE.replace('warning', 'debug')), false))).toBe('logLevel');
    expect(unreloadable(running, applyConfigFile(cli([]), parseConfig(FILE.replace('shutdownGrace: 2', 'shutdownGrace: 3')), false))).toBe('shutdownGrace');
  });
});
