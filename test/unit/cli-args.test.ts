import { describe, expect, test } from 'vitest';
import { CLI_DEFAULTS, describeListenAddress, parseCli, type CliConfig, type ListenAddress } from '../../src/cli.js';

function config(argv: string[], env: Record<string, string> = {}): CliConfig {
  const result = parseCli(argv, env);
  if (!result.ok) throw new Error(`expected a configuration, got: ${result.message}`);
  return result.config;
}

function refusal(argv: string[], env: Record<string, string> = {}): string {
  const result = parseCli(argv, env);
  if (result.ok) throw new Error(`expected a refusal, got command ${result.config.command}`);
  return result.message;
}

describe('defaults', () => {
  test('no arguments, empty environment: serve the Tecnativa defaults on loopback, port 2375', () => {
    const c = config([]);
    expect(c).toMatchObject({
      command: 'serve',
      preset: 'tecnativa',
      socketPath: '/var/run/docker.sock',
      logLevel: 'info',
      socketMode: 0o660,
      graceMs: CLI_DEFAULTS.graceMs,
      json: false,
      check: undefined,
    });
    expect(c.listen).toEqual([{ kind: 'tcp', host: '127.0.0.1', port: 2375 }]);
    expect(c.policy?.source?.settings).toMatchObject({ EVENTS: true, PING: true, VERSION: true, CONTAINERS: false, POST: false });
  });

  test('the result is frozen', () => {
    const c = config([]);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.listen)).toBe(true);
  });

  test('empty variables count as unset', () => {
    const c = config([], { LISTEN: '', SOCKET_PATH: '', LOG_LEVEL: '', PRESET: '', SHUTDOWN_GRACE: '', LISTEN_SOCKET_MODE: '' });
    expect(c).toMatchObject({ socketPath: '/var/run/docker.sock', logLevel: 'info', preset: 'tecnativa', socketMode: 0o660 });
    expect(c.listen).toEqual([{ kind: 'tcp', host: '127.0.0.1', port: 2375 }]);
  });
});

describe('DISABLE_IPV6 (for addresses without a host, such as the image\'s LISTEN=:2375)', () => {
  test.each(['1', 'true', 'TRUE', 'yes', 'Yes', ' 1 '])('%j listens on 0.0.0.0 only', (value) => {
    expect(config([], { DISABLE_IPV6: value, LISTEN: ':2375' }).listen).toEqual([{ kind: 'tcp', host: '0.0.0.0', port: 2375 }]);
  });
  test.each(['0', 'false', 'no', '', 'on', '2'])('%j keeps the dual-stack default', (value) => {
    expect(config([], { DISABLE_IPV6: value, LISTEN: ':2375' }).listen).toEqual([{ kind: 'tcp', host: undefined, port: 2375 }]);
  });
  test('the loopback default is not changed by it', () => {
    expect(config([], { DISABLE_IPV6: '1' }).listen).toEqual([{ kind: 'tcp', host: '127.0.0.1', port: 2375 }]);
  });
  test('it also applies to a listen address without a host', () => {
    expect(config(['--listen', ':2380'], { DISABLE_IPV6: '1' }).listen).toEqual([{ kind: 'tcp', host: '0.0.0.0', port: 2380 }]);
  });
});

describe('listen addresses', () => {
  test.each<[string, ListenAddress]>([
    ['127.0.0.1:2375', { kind: 'tcp', host: '127.0.0.1', port: 2375 }],
    ['0.0.0.0:1', { kind: 'tcp', host: '0.0.0.0', port: 1 }],
    ['localhost:65535', { kind: 'tcp', host: 'localhost', port: 65535 }],
    ['docker-proxy.internal:2375', { kind: 'tcp', host: 'docker-proxy.internal', port: 2375 }],
    ['[::1]:2375', { kind: 'tcp', host: '::1', port: 2375 }],
    ['[::]:2375', { kind: 'tcp', host: '::', port: 2375 }],
    ['[fe80::1]:0', { kind: 'tcp', host: 'fe80::1', port: 0 }],
    [':2376', { kind: 'tcp', host: undefined, port: 2376 }],
    ['2377', { kind: 'tcp', host: undefined, port: 2377 }],
    ['unix:/run/dsf/docker.sock', { kind: 'unix', path: '/run/dsf/docker.sock' }],
    ['unix:///run/dsf/docker.sock', { kind: 'unix', path: '/run/dsf/docker.sock' }],
  ])('--listen %s', (text, expected) => {
    expect(config(['--listen', text]).listen).toEqual([expected]);
    expect(config([`--listen=${text}`]).listen).toEqual([expected]);
    expect(config([], { LISTEN: text }).listen).toEqual([expected]);
  });

  test('a relative unix path is made absolute', () => {
    expect(config(['--listen', 'unix:dsf.sock']).listen).toEqual([{ kind: 'unix', path: `${process.cwd()}/dsf.sock` }]);
  });

  test('--listen repeats; LISTEN is comma-separated with blanks ignored', () => {
    const expected = [
      { kind: 'tcp', host: '127.0.0.1', port: 2375 },
      { kind: 'unix', path: '/run/a.sock' },
    ];
    expect(config(['--listen', '127.0.0.1:2375', '--listen', 'unix:/run/a.sock']).listen).toEqual(expected);
    expect(config([], { LISTEN: ' 127.0.0.1:2375 , unix:/run/a.sock,' }).listen).toEqual(expected);
  });

  test('--listen replaces LISTEN', () => {
    expect(config(['--listen', '127.0.0.1:1'], { LISTEN: '127.0.0.1:2' }).listen).toEqual([{ kind: 'tcp', host: '127.0.0.1', port: 1 }]);
  });

  test.each<[string, RegExp]>([
    ['127.0.0.1', /expected host:port/],
    ['127.0.0.1:', /port must be a number/],
    ['127.0.0.1:65536', /port must be a number/],
    ['127.0.0.1:-1', /port must be a number/],
    ['127.0.0.1:http', /port must be a number/],
    ['::1:2375', /IPv6 address in brackets, as \[::1\]:2375/],
    ['[::1]', /expected \[ipv6-address\]:port/],
    ['[not-v6]:2375', /expected \[ipv6-address\]:port/],
    ['bad_host!:2375', /is not a host name or address/],
    ['unix:', /expected unix:\/path\/to.sock/],
    [`unix:/${'x'.repeat(110)}`, /at most 107 bytes/],
  ])('--listen %j is refused', (text, message) => {
    expect(refusal(['--listen', text])).toMatch(message);
    expect(refusal([], { LISTEN: text })).toMatch(message);
  });

  test('messages name where the address came from', () => {
    expect(refusal(['--listen', 'nope'])).toMatch(/^--listen `nope`: /);
    expect(refusal([], { LISTEN: 'nope' })).toMatch(/^LISTEN `nope`: /);
  });

  test('LISTEN with only separators names no address', () => {
    expect(refusal([], { LISTEN: ' , ' })).toBe('`LISTEN` names no address');
  });

  test('the same address twice is refused', () => {
    expect(refusal(['--listen', '127.0.0.1:2375', '--listen', '127.0.0.1:2375'])).toBe('127.0.0.1:2375 is listed twice');
  });

  test.each<[ListenAddress, string]>([
    [{ kind: 'tcp', host: undefined, port: 2375 }, '*:2375'],
    [{ kind: 'tcp', host: '::1', port: 2375 }, '[::1]:2375'],
    [{ kind: 'tcp', host: '127.0.0.1', port: 1 }, '127.0.0.1:1'],
    [{ kind: 'unix', path: '/run/a.sock' }, 'unix:/run/a.sock'],
  ])('describeListenAddress(%j) is %s', (address, text) => {
    expect(describeListenAddress(address)).toBe(text);
  });
});

describe('socket mode and grace', () => {
  test.each<[string, number]>([
    ['0660', 0o660],
    ['660', 0o660],
    ['0o600', 0o600],
    ['0777', 0o777],
    ['000', 0],
  ])('--socket-mode %s', (text, mode) => {
    expect(config(['--socket-mode', text]).socketMode).toBe(mode);
    expect(config([], { LISTEN_SOCKET_MODE: text }).socketMode).toBe(mode);
  });

  test.each(['0888', '66', '01777', 'rw-rw----', '-1'])('--socket-mode %j is refused', (text) => {
    expect(refusal([`--socket-mode=${text}`])).toMatch(/expected an octal file mode such as 0660/);
    expect(refusal([], { LISTEN_SOCKET_MODE: text })).toMatch(/^LISTEN_SOCKET_MODE `.*`: expected an octal file mode/);
  });

  test.each<[string, number]>([
    ['0', 0],
    ['10', 10_000],
    ['2.5', 2_500],
    ['3600', 3_600_000],
  ])('--grace %s', (text, ms) => {
    expect(config(['--grace', text]).graceMs).toBe(ms);
    expect(config([], { SHUTDOWN_GRACE: text }).graceMs).toBe(ms);
  });

  test.each(['-1', '10s', 'ten', '3601', '1e3'])('--grace %j is refused', (text) => {
    expect(refusal(['--grace', text])).toMatch(/expected a number of seconds from 0 to 3600/);
  });

  test('the flag wins over the variable', () => {
    expect(config(['--grace', '1', '--socket-mode', '600'], { SHUTDOWN_GRACE: '9', LISTEN_SOCKET_MODE: '666' })).toMatchObject({
      graceMs: 1_000,
      socketMode: 0o600,
    });
  });
});

describe('connection limits', () => {
  test('defaults: 4096 client connections, 512 to dockerd', () => {
    expect(config([])).toMatchObject({ maxConnections: 4096, maxUpstreamConnections: 512 });
  });

  test.each<[string, number]>([
    ['1', 1],
    ['64', 64],
    ['1000000', 1_000_000],
  ])('--max-upstream-connections %s', (text, value) => {
    expect(config(['--max-upstream-connections', text]).maxUpstreamConnections).toBe(value);
    expect(config([], { MAX_UPSTREAM_CONNECTIONS: text }).maxUpstreamConnections).toBe(value);
  });

  test.each(['0', '-1', '1e3', 'many', '1000001'])('--max-upstream-connections %j is refused', (text) => {
    expect(refusal(['--max-upstream-connections', text])).toMatch(/expected a number of connections to dockerd from 1 to 1000000/);
    expect(refusal([], { MAX_UPSTREAM_CONNECTIONS: text })).toMatch(/^MAX_UPSTREAM_CONNECTIONS `.*`: expected/);
  });

  test('the budget of held bytes: 16 MiB by default', () => {
    expect(config([]).maxHeldBytes).toBe(16 * 1024 * 1024);
  });

  test.each<[string, number]>([
    ['1048576', 1024 * 1024],
    ['1024k', 1024 * 1024],
    ['1024KiB', 1024 * 1024],
    ['16m', 16 * 1024 * 1024],
    ['16MB', 16 * 1024 * 1024],
    [' 64 MiB ', 64 * 1024 * 1024],
    ['2g', 2 * 1024 ** 3],
    ['64GiB', 64 * 1024 ** 3],
  ])('--max-held-bytes %j', (text, value) => {
    expect(config(['--max-held-bytes', text]).maxHeldBytes).toBe(value);
    expect(config([], { MAX_HELD_BYTES: text }).maxHeldBytes).toBe(value);
  });

  test('the flag wins over the variable', () => {
    expect(config(['--max-held-bytes', '2m'], { MAX_HELD_BYTES: '4m' }).maxHeldBytes).toBe(2 * 1024 * 1024);
  });

  test.each(['0', '1048575', '1000k', '65g', '16 M B', '16TB', '-16m', '1.5m', 'lots', '9999999999999999g'])('--max-held-bytes %j is refused', (text) => {
    expect(refusal(['--max-held-bytes', text])).toBe(`--max-held-bytes \`${text}\`: expected a size from 1MiB to 64GiB, in bytes or with a unit (512KiB, 16MiB, 1GiB)`);
    expect(refusal([], { MAX_HELD_BYTES: text })).toMatch(/^MAX_HELD_BYTES `.*`: expected a size from 1MiB to 64GiB/);
  });

  test.each([
    ['1', 1],
    ['2', 2],
    [' 64 ', 64],
    ['auto', 'auto'],
    ['AUTO', 'auto'],
  ] as const)('--workers %j', (text, value) => {
    expect(config(['--workers', text]).workers).toBe(value);
    expect(config([], { WORKERS: text }).workers).toBe(value);
  });

  test('one process unless asked; the flag wins over WORKERS', () => {
    expect(config([]).workers).toBe(1);
    expect(config(['--workers', '2'], { WORKERS: 'auto' }).workers).toBe(2);
  });

  test.each(['0', '-1', '65', '1.5', 'all', 'two'])('--workers %j is refused', (text) => {
    expect(refusal(['--workers', text])).toBe(`--workers \`${text}\`: expected auto (one per core) or a number of processes from 1 to 64`);
    expect(refusal([], { WORKERS: text })).toBe(`WORKERS \`${text}\`: expected auto (one per core) or a number of processes from 1 to 64`);
  });
});

describe('environment of the Tecnativa image', () => {
  test('section variables reach the preset', () => {
    const settings = config([], { CONTAINERS: '1', POST: '1', EVENTS: '0' }).policy?.source?.settings;
    expect(settings).toMatchObject({ CONTAINERS: true, POST: true, EVENTS: false, PING: true });
  });

  test.each([
    ['CONTAINERS', 'true'],
    ['POST', 'yes'],
    ['EVENTS', '0x1'],
  ])('%s=%s is refused with the preset message', (name, value) => {
    expect(refusal([], { [name]: value })).toMatch(new RegExp(`^\`${name}=${value}\` is not understood`));
  });

  test.each<[string, string]>([
    ['tecnativa', 'tecnativa'],
    ['linuxserver', 'linuxserver'],
    ['LinuxServer', 'linuxserver'],
  ])('PRESET=%s', (value, preset) => {
    const c = config([], { PRESET: value });
    expect(c.preset).toBe(preset);
    expect(c.policy?.source?.preset).toBe(preset);
  });

  test('the linuxserver preset reads its own variables', () => {
    expect(config([], { PRESET: 'linuxserver', ALLOW_LOGS: '1' }).policy?.source?.settings).toMatchObject({ ALLOW_LOGS: true });
    expect(refusal([], { PRESET: 'linuxserver', LIBPOD_PING: 'on' })).toMatch(/^`LIBPOD_PING=on` is not understood/);
  });

  test('an unknown preset is refused', () => {
    expect(refusal([], { PRESET: 'haproxy' })).toBe('`PRESET=haproxy` is not a preset: use tecnativa or linuxserver');
  });

  test.each(['debug', 'info', 'notice', 'warning', 'err', 'crit', 'alert', 'emerg', 'WARNING', ' debug '])('LOG_LEVEL=%j', (value) => {
    expect(config([], { LOG_LEVEL: value }).logLevel).toBe(value.trim().toLowerCase());
  });

  test.each(['verbose', 'error', 'warn', '7'])('LOG_LEVEL=%j is refused', (value) => {
    expect(refusal([], { LOG_LEVEL: value })).toBe(
      `\`LOG_LEVEL=${value}\` is not a level: use one of debug, info, notice, warning, err, crit, alert, emerg`,
    );
  });

  test('SOCKET_PATH', () => {
    expect(config([], { SOCKET_PATH: '/run/user/1000/docker.sock' }).socketPath).toBe('/run/user/1000/docker.sock');
  });
});

describe('commands and flags', () => {
  test.each<[string[], CliConfig['command']]>([
    [['--help'], 'help'],
    [['-h'], 'help'],
    [['--version'], 'version'],
    [['--print-policy'], 'print-policy'],
    [['--healthcheck'], 'healthcheck'],
    [['check', 'GET', '/_ping'], 'check'],
    [['--listen', '127.0.0.1:1'], 'serve'],
  ])('%j -> %s', (argv, command) => {
    expect(config(argv).command).toBe(command);
  });

  test('--help and --version answer even when the environment is wrong', () => {
    expect(config(['--help'], { CONTAINERS: 'true', LOG_LEVEL: 'loud' }).command).toBe('help');
    expect(config(['--version', '--listen', 'nope'], { PRESET: 'x' }).command).toBe('version');
  });

  test('--print-policy and check read the environment', () => {
    expect(refusal(['--print-policy'], { POST: 'on' })).toMatch(/^`POST=on` is not understood/);
    expect(refusal(['check', 'GET', '/_ping'], { PING: 'yes' })).toMatch(/^`PING=yes` is not understood/);
  });

  test('check takes METHOD and PATH, and --json anywhere', () => {
    expect(config(['check', 'POST', '/v1.41/containers/create'])).toMatchObject({
      command: 'check',
      check: { method: 'POST', target: '/v1.41/containers/create' },
      json: false,
    });
    expect(config(['--json', 'check', 'GET', '/_ping']).json).toBe(true);
    expect(config(['check', 'GET', '/_ping', '--json']).json).toBe(true);
    expect(config(['check', '--', 'GET', '-weird']).check).toEqual({ method: 'GET', target: '-weird' });
  });

  test.each<[string[], string]>([
    [['--nope'], 'unknown option `--nope` (see --help)'],
    [['-x'], 'unknown option `-x` (see --help)'],
    [['--listen'], 'option `--listen` needs a value (see --help)'],
    [['--grace'], 'option `--grace` needs a value (see --help)'],
    [['--grace', '1', '--grace', '2'], 'option `--grace` was given twice'],
    [['--socket-mode=600', '--socket-mode=660'], 'option `--socket-mode` was given twice'],
    [['--help=yes'], 'option `--help` takes no value'],
    [['serve'], 'unknown command `serve` (see --help)'],
    [['check', 'GET'], 'usage: docker-socket-filter check [--config FILE [--client ADDR] [--listener NAME]] METHOD PATH (e.g. check GET /v1.41/containers/json)'],
    [['check', 'GET', '/_ping', 'extra'], 'usage: docker-socket-filter check [--config FILE [--client ADDR] [--listener NAME]] METHOD PATH (e.g. check GET /v1.41/containers/json)'],
    [['--print-policy', '--healthcheck'], 'only one of --print-policy, --healthcheck can be given'],
    [['--print-policy', 'check', 'GET', '/_ping'], 'only one of --print-policy, check can be given'],
    [['--json'], 'option `--json` only applies to `check`'],
    [['--json', '--print-policy'], 'option `--json` only applies to `check`'],
  ])('%j is refused: %s', (argv, message) => {
    expect(refusal(argv)).toBe(message);
  });

  test('every refusal is one line', () => {
    for (const argv of [['--nope'], ['--listen', '::1:2']]) expect(refusal(argv)).not.toContain('\n');
    expect(refusal([], { CONTAINERS: 'true' })).not.toContain('\n');
  });
});

describe('config file, metrics and client flags', () => {
  test('--config and CONFIG name the file; preset variables are then not read from the environment', () => {
    const c = config(['--config', '/etc/dsf.yaml'], { CONTAINERS: 'true', PRESET: 'linuxserver' });
    expect(c).toMatchObject({ command: 'serve', configFile: '/etc/dsf.yaml', policy: undefined, clients: undefined });
    expect(config([], { CONFIG: '/etc/dsf.json' }).configFile).toBe('/etc/dsf.json');
    expect(config(['--config', '/a.yaml'], { CONFIG: '/b.yaml' }).configFile).toBe('/a.yaml');
  });

  test('validate FILE', () => {
    expect(config(['validate', 'policy.yaml'])).toMatchObject({ command: 'validate', configFile: 'policy.yaml' });
    expect(refusal(['validate'])).toBe('usage: docker-socket-filter validate FILE');
    expect(refusal(['validate', 'a.yaml', '--config', 'b.yaml'])).toBe('`validate` takes its FILE itself, not `--config`');
    expect(refusal(['validate', 'a.yaml', '--print-policy'])).toBe('only one of --print-policy, validate can be given');
  });

  test('check --client/--listener', () => {
    expect(config(['check', '--config', 'p.yaml', '--client', '172.25.0.2', '--listener', 'tcp', 'GET', '/_ping']).check).toEqual({
      method: 'GET',
      target: '/_ping',
      client: { address: '172.25.0.2', listener: 'tcp' },
    });
    expect(config(['check', '--config', 'p.yaml', '--listener', 'ro', 'GET', '/_ping']).check?.client).toEqual({ listener: 'ro' });
    expect(refusal(['check', '--client', '172.25.0.2', 'GET', '/_ping'])).toBe('option `--client` needs `--config FILE`: clients are defined in a policy file');
    expect(refusal(['--client', '172.25.0.2', '--config', 'p.yaml'])).toBe('option `--client` only applies to `check`');
    expect(refusal(['check', '--config', 'p.yaml', '--client', 'traefik', 'GET', '/'])).toBe('--client `traefik`: expected an IP address');
    expect(refusal(['check', '--config', 'p.yaml', '--listener', 'a b', 'GET', '/'])).toBe('--listener `a b`: expected a listener name');
  });

  test('--metrics-listen and METRICS_LISTEN; never a Docker API address', () => {
    expect(config(['--metrics-listen', '127.0.0.1:9180']).metricsListen).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 9180 });
    expect(config([], { METRICS_LISTEN: 'unix:/run/m.sock' }).metricsListen).toEqual({ kind: 'unix', path: '/run/m.sock' });
    expect(config([]).metricsListen).toBeUndefined();
    expect(refusal(['--metrics-listen', '127.0.0.1:2375'])).toBe(
      'the metrics address 127.0.0.1:2375 is also a Docker API address (127.0.0.1:2375): metrics get a listener of their own',
    );
    expect(refusal(['--listen', 'unix:/run/a.sock', '--metrics-listen', 'unix:/run/a.sock'])).toMatch(/is also a Docker API address/);
    expect(config(['--listen', '127.0.0.1:2375', '--metrics-listen', '127.0.0.2:2375']).metricsListen).toMatchObject({ port: 2375 });
  });

  test('origins say where each setting came from', () => {
    expect(config(['--listen', ':1', '--grace', '1'], { SOCKET_PATH: '/x', MAX_CONNECTIONS: '5' }).origins).toEqual({
      listen: 'flag',
      socketPath: 'env',
      logLevel: 'default',
      socketMode: 'default',
      graceMs: 'flag',
      maxConnections: 'env',
      maxUpstreamConnections: 'default',
      maxHeldBytes: 'default',
      metricsListen: 'default',
    });
    expect(config(['--max-held-bytes', '2m']).origins.maxHeldBytes).toBe('flag');
    expect(config([], { MAX_HELD_BYTES: '2m' }).origins.maxHeldBytes).toBe('env');
  });
});
