import { isIPv4, isIPv6 } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import { DEFAULT_SOCKET_PATH } from '../filter.js';
import { PROXY_DEFAULTS } from '../proxy/index.js';
import { DEFAULT_LOG_LEVEL, LOG_LEVELS, parseLogLevel, type LogLevel } from '../log.js';
import type { ClientSpec } from '../policy/clients.js';
import type { ClientInfo, Policy } from '../policy/types.js';
import type { EnvLike } from '../presets/env.js';
import { linuxserverPreset } from '../presets/linuxserver.js';
import { tecnativaPreset } from '../presets/tecnativa.js';

/**
 * Where the guard listens: a TCP address, or a unix socket.
 *
 * `host: undefined` means every interface: dual-stack `[::]` where the kernel has IPv6, else
 * `0.0.0.0` (Node's own choice when no host is given), which is what Tecnativa's `:2375` means.
 *
 * @example
 * ```ts
 * const tcp: ListenAddress = { kind: 'tcp', host: '127.0.0.1', port: 2375 };
 * const unix: ListenAddress = { kind: 'unix', path: '/run/dsf/docker.sock' };
 * ```
 */
export type ListenAddress =
  | { readonly kind: 'tcp'; readonly host: string | undefined; readonly port: number; readonly name?: string }
  | { readonly kind: 'unix'; readonly path: string; readonly name?: string };

/** What the CLI was asked to do. */
export type CliCommand = 'serve' | 'help' | 'version' | 'print-policy' | 'check' | 'healthcheck' | 'validate';

/** Names of the presets `PRESET` accepts. */
export const PRESETS = ['tecnativa', 'linuxserver'] as const;

/** Defaults of the CLI's own settings (the preset variables have the preset's defaults). */
export const CLI_DEFAULTS = Object.freeze({
  preset: 'tecnativa' as (typeof PRESETS)[number],
  // Loopback only: on a bare host, every interface would offer the Docker API to the network.
  // The image sets LISTEN=:2375 explicitly, as Tecnativa's image listens.
  host: '127.0.0.1',
  port: 2375,
  socketMode: 0o660,
  // Below `docker stop`'s 10 s before SIGKILL, so the guard can still end streams and exit 0.
  graceMs: 5_000,
  // Far above what a reverse proxy or a CI runner holds, well below the file descriptors a
  // container gets (each connection costs two: the client's and dockerd's).
  maxConnections: 4096,
  // Streams count: size it above the `events`/`logs -f`/attach streams the clients hold at once.
  maxUpstreamConnections: 512,
  // Checked bodies and rewritten answers held whole, all connections together (see PROXY_DEFAULTS).
  maxHeldBytes: PROXY_DEFAULTS.maxHeldBytes,
  // One process: most installs are small hosts, where memory matters more than a second core.
  workers: 1,
});

/** The most worker processes `--workers` starts (each costs an event loop's memory). */
export const MAX_WORKERS = 64;

/**
 * The validated configuration of one CLI run. Built by `parseCli`; frozen.
 *
 * @example
 * ```ts
 * const result = parseCli(['--listen', '127.0.0.1:2375'], { CONTAINERS: '1' });
 * if (result.ok) result.config.listen; // [{ kind: 'tcp', host: '127.0.0.1', port: 2375 }]
 * ```
 */
export interface CliConfig {
  readonly command: CliCommand;
  readonly preset: (typeof PRESETS)[number];
  /**
   * The policy for every request: the preset's, from the environment; with a config file, the
   * file's `policy` (once the file is read, see `applyConfigFile`), `undefined` when it has `clients`.
   */
  readonly policy: Policy | undefined;
  /** With a config file that has `clients`: a policy per client. */
  readonly clients: readonly ClientSpec[] | undefined;
  /** `--config FILE` / `CONFIG`, or the FILE of `validate FILE`. */
  readonly configFile: string | undefined;
  /** The config file's `minApiVersion`, if it sets one. */
  readonly minApiVersion: string | undefined;
  /** Where to serve metrics and `/healthz` (`--metrics-listen`, `METRICS_LISTEN`); off when `undefined`. */
  readonly metricsListen: ListenAddress | undefined;
  /** Where each operational setting came from, so a config file can tell a flag it conflicts with. */
  readonly origins: Readonly<Record<OperationalSetting, 'flag' | 'env' | 'default'>>;
  /** dockerd's socket (`SOCKET_PATH`). */
  readonly socketPath: string;
  readonly logLevel: LogLevel;
  readonly listen: readonly ListenAddress[];
  /** File mode of unix listening sockets (`--socket-mode`, `LISTEN_SOCKET_MODE`). */
  readonly socketMode: number;
  /** How long in-flight requests may run after SIGTERM/SIGINT (`--grace`, `SHUTDOWN_GRACE`). */
  readonly graceMs: number;
  /** Connections served at once; more get 503 (`--max-connections`, `MAX_CONNECTIONS`; 0: no limit). */
  readonly maxConnections: number;
  /** Connections to dockerd at once (`--max-upstream-connections`, `MAX_UPSTREAM_CONNECTIONS`). */
  readonly maxUpstreamConnections: number;
  /**
   * Bytes held whole at once, checked bodies and rewritten answers of all connections together
   * (`--max-held-bytes`, `MAX_HELD_BYTES`).
   */
  readonly maxHeldBytes: number;
  /**
   * Processes serving (`--workers`, `WORKERS`): `1` is this process alone; `auto` one per core the
   * process may use. The limits above are the guard's, shared out between the workers.
   */
  readonly workers: number | 'auto';
  /** `check METHOD TARGET`: the request to decide, and who sends it (`--client`, `--listener`). */
  readonly check: { readonly method: string; readonly target: string; readonly client?: ClientInfo } | undefined;
  /** `check --json`: print the decision as JSON. */
  readonly json: boolean;
}

/**
 * The settings that come from flags, the environment or a config file.
 *
 * @example
 * ```ts
 * const setting: OperationalSetting = 'listen';
 * ```
 */
export type OperationalSetting =
  | 'listen'
  | 'socketPath'
  | 'logLevel'
  | 'socketMode'
  | 'graceMs'
  | 'maxConnections'
  | 'maxUpstreamConnections'
  | 'maxHeldBytes'
  | 'metricsListen';

/**
 * What `parseCli` returns: a configuration, or the one-line reason it was refused (exit code 2).
 *
 * @example
 * ```ts
 * const result: CliParseResult = parseCli(['--nope'], {});
 * if (!result.ok) console.error(result.message); // unknown option `--nope` (see --help)
 * ```
 */
export type CliParseResult = { readonly ok: true; readonly config: CliConfig } | { readonly ok: false; readonly message: string };

/** Options taking a value, and whether they may repeat. */
const VALUE_OPTIONS: Readonly<Record<string, { repeat: boolean }>> = {
  '--listen': { repeat: true },
  '--socket-mode': { repeat: false },
  '--grace': { repeat: false },
  '--max-connections': { repeat: false },
  '--config': { repeat: false },
  '--metrics-listen': { repeat: false },
  '--client': { repeat: false },
  '--listener': { repeat: false },
  '--max-upstream-connections': { repeat: false },
  '--max-held-bytes': { repeat: false },
  '--workers': { repeat: false },
};

const FLAG_OPTIONS: Readonly<Record<string, CliCommand | 'json'>> = {
  '--help': 'help',
  '-h': 'help',
  '--version': 'version',
  '--print-policy': 'print-policy',
  '--healthcheck': 'healthcheck',
  '--json': 'json',
};

// Longest path the kernel accepts for a unix socket is 107 bytes plus the terminating NUL.
const UNIX_PATH_MAX = 107;

class ParseError extends Error {}

const fail = (message: string): never => {
  throw new ParseError(message);
};

/** Empty variables count as unset: compose files often carry `LISTEN=` or `SOCKET_PATH=`. */
function variable(env: EnvLike, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

function parsePort(text: string, where: string): number {
  if (!/^[0-9]{1,5}$/.test(text) || Number(text) > 65_535) {
    fail(`${where}: the port must be a number from 0 to 65535`);
  }
  return Number(text);
}

/**
 * Reads one listen address: `host:port`, `[v6]:port`, `:port` or `port` (every interface), or
 * `unix:/path/to.sock`.
 *
 * @throws Error (the message is the one line to print) when the address cannot be read.
 * @example
 * ```ts
 * parseListenAddress('[::1]:2375', 'LISTEN'); // { kind: 'tcp', host: '::1', port: 2375 }
 * parseListenAddress('unix:/run/dsf.sock', '--listen'); // { kind: 'unix', path: '/run/dsf.sock' }
 * ```
 */
export function parseListenAddress(text: string, source: string, defaultHost?: string): ListenAddress {
  const where = `${source} \`${text}\``;
  const value = text.trim();
  if (value.startsWith('unix:')) {
    const path = value.slice('unix:'.length).replace(/^\/\/(?=\/)/, '');
    if (path === '' || path.includes('\0')) fail(`${where}: expected unix:/path/to.sock`);
    const absolute = isAbsolute(path) ? path : resolve(path);
    if (Buffer.byteLength(absolute) > UNIX_PATH_MAX) {
      fail(`${where}: a unix socket path must be at most ${UNIX_PATH_MAX} bytes`);
    }
    return { kind: 'unix', path: absolute };
  }
  if (/^[0-9]+$/.test(value)) return { kind: 'tcp', host: defaultHost, port: parsePort(value, where) };
  if (value.startsWith('[')) {
    const match = /^\[([^\]]+)\]:([^:]*)$/.exec(value);
    if (!match || !isIPv6(match[1] as string)) fail(`${where}: expected [ipv6-address]:port`);
    return { kind: 'tcp', host: (match as RegExpExecArray)[1], port: parsePort((match as RegExpExecArray)[2] as string, where) };
  }
  const colon = value.lastIndexOf(':');
  if (colon === -1) fail(`${where}: expected host:port, [ipv6]:port or unix:/path`);
  const host = value.slice(0, colon);
  const port = parsePort(value.slice(colon + 1), where);
  if (host === '') return { kind: 'tcp', host: defaultHost, port };
  if (host.includes(':')) fail(`${where}: write an IPv6 address in brackets, as [${host}]:${port}`);
  if (!isIPv4(host) && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) fail(`${where}: \`${host}\` is not a host name or address`);
  return { kind: 'tcp', host, port };
}

/**
 * Reads a file mode: `660`, `0660` or `0o660`, at most `0777`.
 *
 * @example
 * ```ts
 * parseSocketMode('0660', '--socket-mode'); // 0o660
 * ```
 */
export function parseSocketMode(text: string, source: string): number {
  const match = /^(?:0o?)?([0-7]{3})$/.exec(text.trim());
  if (!match) fail(`${source} \`${text}\`: expected an octal file mode such as 0660`);
  return Number.parseInt((match as RegExpExecArray)[1] as string, 8);
}

/**
 * Reads a shutdown grace period in seconds (`10`, `2.5`, `0`).
 *
 * @example
 * ```ts
 * parseGrace('2.5', 'SHUTDOWN_GRACE'); // 2500
 * ```
 */
export function parseGrace(text: string, source: string): number {
  const value = text.trim();
  if (!/^[0-9]+(\.[0-9]+)?$/.test(value) || Number(value) > 3600) {
    fail(`${source} \`${text}\`: expected a number of seconds from 0 to 3600`);
  }
  return Math.round(Number(value) * 1000);
}

/**
 * Reads a connection limit: a whole number from 0 (no limit) to 1,000,000.
 *
 * @example
 * ```ts
 * parseMaxConnections('512', 'MAX_CONNECTIONS'); // 512
 * ```
 */
export function parseMaxConnections(text: string, source: string): number {
  const value = text.trim();
  if (!/^[0-9]{1,7}$/.test(value) || Number(value) > 1_000_000) {
    fail(`${source} \`${text}\`: expected a number of connections from 0 (no limit) to 1000000`);
  }
  return Number(value);
}

/**
 * Reads a limit on connections to dockerd: a whole number from 1 to 1,000,000.
 *
 * @example
 * ```ts
 * parseMaxUpstreamConnections('256', 'MAX_UPSTREAM_CONNECTIONS'); // 256
 * ```
 */
export function parseMaxUpstreamConnections(text: string, source: string): number {
  const value = text.trim();
  if (!/^[0-9]{1,7}$/.test(value) || Number(value) < 1 || Number(value) > 1_000_000) {
    fail(`${source} \`${text}\`: expected a number of connections to dockerd from 1 to 1000000`);
  }
  return Number(value);
}

/** The smallest `MAX_HELD_BYTES`: the largest body a host check reads must fit in an idle guard. */
export const MIN_HELD_BYTES = 1024 * 1024;
/** The largest `MAX_HELD_BYTES`. */
export const MAX_HELD_BYTES = 64 * 1024 * 1024 * 1024;

const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3 };

/**
 * Reads a size in bytes, bare or with a unit, as Docker reads `--memory` (`k`, `m`, `g`, also
 * written `KiB`, `MB`, …: all of them powers of 1024), from `MIN_HELD_BYTES` to `MAX_HELD_BYTES`.
 *
 * @example
 * ```ts
 * parseHeldBytes('64MiB', 'MAX_HELD_BYTES'); // 67108864
 * parseHeldBytes('1048576', '--max-held-bytes'); // 1048576
 * ```
 */
export function parseHeldBytes(text: string, source: string): number {
  const match = /^([0-9]{1,15})\s*([a-z]*)$/i.exec(text.trim());
  const unit = match === null ? undefined : SIZE_UNITS[(match[2] as string).toLowerCase()];
  const value = match === null || unit === undefined ? Number.NaN : Number(match[1]) * unit;
  if (!(value >= MIN_HELD_BYTES && value <= MAX_HELD_BYTES)) {
    fail(`${source} \`${text}\`: expected a size from 1MiB to 64GiB, in bytes or with a unit (512KiB, 16MiB, 1GiB)`);
  }
  return value;
}

/**
 * Reads a number of worker processes: `auto`, or a whole number from 1 to `MAX_WORKERS`.
 *
 * @example
 * ```ts
 * parseWorkers('2', 'WORKERS'); // 2
 * parseWorkers('auto', '--workers'); // 'auto'
 * ```
 */
export function parseWorkers(text: string, source: string): number | 'auto' {
  const value = text.trim().toLowerCase();
  if (value === 'auto') return 'auto';
  if (!/^[0-9]{1,2}$/.test(value) || Number(value) < 1 || Number(value) > MAX_WORKERS) {
    fail(`${source} \`${text}\`: expected auto (one per core) or a number of processes from 1 to ${MAX_WORKERS}`);
  }
  return Number(value);
}

/**
 * Tecnativa's reading of `DISABLE_IPV6`: `1`, `true` or `yes`, any case; everything else keeps IPv6.
 *
 * @example
 * ```ts
 * ipv6Disabled({ DISABLE_IPV6: 'yes' }); // true
 * ```
 */
export function ipv6Disabled(env: EnvLike): boolean {
  return ['1', 'true', 'yes'].includes((env.DISABLE_IPV6 ?? '').trim().toLowerCase());
}

/**
 * Reads the command line and the environment into a configuration, without any I/O: it is the
 * whole of the CLI's validation, so a unit test can cover it. Flags win over variables.
 *
 * @param argv - arguments after the program (`process.argv.slice(2)`).
 * @param env - the environment (`process.env`): the preset's variables, `PRESET`, `SOCKET_PATH`,
 *   `LOG_LEVEL`, `DISABLE_IPV6`, `LISTEN`, `LISTEN_SOCKET_MODE`, `SHUTDOWN_GRACE`, `MAX_CONNECTIONS`,
 *   `MAX_UPSTREAM_CONNECTIONS`, `MAX_HELD_BYTES`, `WORKERS`.
 * @example
 * ```ts
 * const result = parseCli(['check', 'GET', '/containers/json'], { CONTAINERS: '1' });
 * if (!result.ok) { console.error(result.message); process.exit(2); }
 * ```
 */
export function parseCli(argv: readonly string[], env: EnvLike): CliParseResult {
  try {
    return { ok: true, config: parseOrThrow(argv, env) };
  } catch (error) {
    if (error instanceof ParseError) return { ok: false, message: error.message };
    // The presets' TypeError names the variable and says what to write instead.
    if (error instanceof TypeError) return { ok: false, message: error.message };
    throw error;
  }
}

function parseOrThrow(argv: readonly string[], env: EnvLike): CliConfig {
  const values: Record<string, string[]> = {};
  const commands = new Set<CliCommand>();
  let json = false;
  const positional: string[] = [];

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    const option = VALUE_OPTIONS[name];
    if (option !== undefined) {
      let value: string;
      if (eq !== -1) value = arg.slice(eq + 1);
      else {
        const next = argv[i + 1];
        if (next === undefined) fail(`option \`${name}\` needs a value (see --help)`);
        value = next as string;
        i++;
      }
      const list = (values[name] ??= []);
      if (list.length > 0 && !option.repeat) fail(`option \`${name}\` was given twice`);
      list.push(value);
      continue;
    }
    const flag = eq === -1 ? FLAG_OPTIONS[name] : undefined;
    if (flag === undefined) {
      fail(FLAG_OPTIONS[name] !== undefined ? `option \`${name}\` takes no value` : `unknown option \`${name}\` (see --help)`);
    }
    if (flag === 'json') json = true;
    else commands.add(flag as CliCommand);
  }

  // Help and version answer even when the environment is wrong: they are how one finds out why.
  if (commands.has('help')) return config('help');
  if (commands.has('version')) return config('version');

  let check: CliConfig['check'];
  let configFile = values['--config']?.[0] ?? variable(env, 'CONFIG');
  if (configFile !== undefined && configFile.trim() === '') fail('option `--config` needs a file');
  if (positional.length > 0) {
    if (positional[0] === 'validate') {
      if (positional.length !== 2) fail('usage: docker-socket-filter validate FILE');
      if (values['--config'] !== undefined) fail('`validate` takes its FILE itself, not `--config`');
      commands.add('validate');
      configFile = positional[1] as string;
    } else if (positional[0] === 'check') {
      if (positional.length !== 3) fail('usage: docker-socket-filter check [--config FILE [--client ADDR] [--listener NAME]] METHOD PATH (e.g. check GET /v1.41/containers/json)');
      commands.add('check');
      check = { method: positional[1] as string, target: positional[2] as string };
    } else fail(`unknown command \`${positional[0]}\` (see --help)`);
  }
  const named = (c: CliCommand): string => (c === 'check' || c === 'validate' ? c : `--${c}`);
  if (commands.size > 1) fail(`only one of ${[...commands].map(named).join(', ')} can be given`);
  const command: CliCommand = [...commands][0] ?? 'serve';
  if (json && command !== 'check') fail('option `--json` only applies to `check`');
  const clientFlag = values['--client']?.[0];
  const listenerFlag = values['--listener']?.[0];
  if (clientFlag !== undefined || listenerFlag !== undefined) {
    const flag = clientFlag !== undefined ? '--client' : '--listener';
    if (command !== 'check') fail(`option \`${flag}\` only applies to \`check\``);
    if (configFile === undefined) fail(`option \`${flag}\` needs \`--config FILE\`: clients are defined in a policy file`);
    if (clientFlag !== undefined && !isIPv4(clientFlag) && !isIPv6(clientFlag)) fail(`--client \`${clientFlag}\`: expected an IP address`);
    if (listenerFlag !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(listenerFlag)) fail(`--listener \`${listenerFlag}\`: expected a listener name`);
    check = {
      ...(check as NonNullable<CliConfig['check']>),
      client: Object.freeze({ ...(clientFlag !== undefined ? { address: clientFlag } : {}), ...(listenerFlag !== undefined ? { listener: listenerFlag } : {}) }),
    };
  }

  // With a config file the preset and its variables come from the file only: one source of truth
  // (the image's ENV sets every variable, and would otherwise be read as well).
  const presetName = (variable(env, 'PRESET') ?? CLI_DEFAULTS.preset).trim().toLowerCase();
  if (!(PRESETS as readonly string[]).includes(presetName)) {
    fail(`\`PRESET=${env.PRESET}\` is not a preset: use ${PRESETS.join(' or ')}`);
  }
  const preset = presetName as (typeof PRESETS)[number];
  const policy = configFile !== undefined ? undefined : preset === 'linuxserver' ? linuxserverPreset(env) : tecnativaPreset(env);

  const rawLevel = variable(env, 'LOG_LEVEL');
  const logLevel = rawLevel === undefined ? DEFAULT_LOG_LEVEL : parseLogLevel(rawLevel);
  if (logLevel === undefined) fail(`\`LOG_LEVEL=${rawLevel}\` is not a level: use one of ${LOG_LEVELS.join(', ')}`);

  const socketPath = variable(env, 'SOCKET_PATH') ?? DEFAULT_SOCKET_PATH;
  if (socketPath.includes('\0')) fail('`SOCKET_PATH` must be a path');

  const defaultHost = ipv6Disabled(env) ? '0.0.0.0' : undefined;
  let listen: ListenAddress[];
  const origin = (flag: string | undefined, name: string): 'flag' | 'env' | 'default' =>
    values[flag ?? ''] !== undefined ? 'flag' : variable(env, name) !== undefined ? 'env' : 'default';
  if (values['--listen'] !== undefined) {
    listen = values['--listen'].map((text) => parseListenAddress(text, '--listen', defaultHost));
  } else {
    const fromEnv = variable(env, 'LISTEN');
    listen =
      fromEnv === undefined
        ? [{ kind: 'tcp', host: CLI_DEFAULTS.host, port: CLI_DEFAULTS.port }]
        : fromEnv
            .split(',')
            .filter((part) => part.trim() !== '')
            .map((part) => parseListenAddress(part, 'LISTEN', defaultHost));
    if (listen.length === 0) fail('`LISTEN` names no address');
  }
  const seen = new Set<string>();
  for (const address of listen) {
    const key = describeListenAddress(address);
    if (seen.has(key)) fail(`${key} is listed twice`);
    seen.add(key);
  }

  const modeFlag = values['--socket-mode']?.[0];
  const modeVar = variable(env, 'LISTEN_SOCKET_MODE');
  const socketMode =
    modeFlag !== undefined
      ? parseSocketMode(modeFlag, '--socket-mode')
      : modeVar !== undefined
        ? parseSocketMode(modeVar, 'LISTEN_SOCKET_MODE')
        : CLI_DEFAULTS.socketMode;

  const graceFlag = values['--grace']?.[0];
  const graceVar = variable(env, 'SHUTDOWN_GRACE');
  const graceMs =
    graceFlag !== undefined
      ? parseGrace(graceFlag, '--grace')
      : graceVar !== undefined
        ? parseGrace(graceVar, 'SHUTDOWN_GRACE')
        : CLI_DEFAULTS.graceMs;

  const maxFlag = values['--max-connections']?.[0];
  const maxVar = variable(env, 'MAX_CONNECTIONS');
  const maxConnections =
    maxFlag !== undefined
      ? parseMaxConnections(maxFlag, '--max-connections')
      : maxVar !== undefined
        ? parseMaxConnections(maxVar, 'MAX_CONNECTIONS')
        : CLI_DEFAULTS.maxConnections;

  const upstreamFlag = values['--max-upstream-connections']?.[0];
  const upstreamVar = variable(env, 'MAX_UPSTREAM_CONNECTIONS');
  const maxUpstreamConnections =
    upstreamFlag !== undefined
      ? parseMaxUpstreamConnections(upstreamFlag, '--max-upstream-connections')
      : upstreamVar !== undefined
        ? parseMaxUpstreamConnections(upstreamVar, 'MAX_UPSTREAM_CONNECTIONS')
        : CLI_DEFAULTS.maxUpstreamConnections;

  const heldFlag = values['--max-held-bytes']?.[0];
  const heldVar = variable(env, 'MAX_HELD_BYTES');
  const maxHeldBytes =
    heldFlag !== undefined
      ? parseHeldBytes(heldFlag, '--max-held-bytes')
      : heldVar !== undefined
        ? parseHeldBytes(heldVar, 'MAX_HELD_BYTES')
        : CLI_DEFAULTS.maxHeldBytes;

  const workersFlag = values['--workers']?.[0];
  const workersVar = variable(env, 'WORKERS');
  const workers =
    workersFlag !== undefined
      ? parseWorkers(workersFlag, '--workers')
      : workersVar !== undefined
        ? parseWorkers(workersVar, 'WORKERS')
        : CLI_DEFAULTS.workers;

  const metricsFlag = values['--metrics-listen']?.[0];
  const metricsVar = variable(env, 'METRICS_LISTEN');
  const metricsListen =
    metricsFlag !== undefined
      ? parseListenAddress(metricsFlag, '--metrics-listen', defaultHost)
      : metricsVar !== undefined
        ? parseListenAddress(metricsVar, 'METRICS_LISTEN', defaultHost)
        : undefined;
  if (metricsListen !== undefined) checkMetricsApart(metricsListen, listen);

  return Object.freeze({
    command,
    preset,
    policy,
    clients: undefined,
    configFile,
    minApiVersion: undefined,
    metricsListen,
    origins: Object.freeze({
      listen: origin('--listen', 'LISTEN'),
      socketPath: origin(undefined, 'SOCKET_PATH'),
      logLevel: origin(undefined, 'LOG_LEVEL'),
      socketMode: origin('--socket-mode', 'LISTEN_SOCKET_MODE'),
      graceMs: origin('--grace', 'SHUTDOWN_GRACE'),
      maxConnections: origin('--max-connections', 'MAX_CONNECTIONS'),
      maxUpstreamConnections: origin('--max-upstream-connections', 'MAX_UPSTREAM_CONNECTIONS'),
      maxHeldBytes: origin('--max-held-bytes', 'MAX_HELD_BYTES'),
      metricsListen: origin('--metrics-listen', 'METRICS_LISTEN'),
    }),
    socketPath,
    logLevel: logLevel as LogLevel,
    listen: Object.freeze(listen),
    socketMode,
    graceMs,
    maxConnections,
    maxUpstreamConnections,
    maxHeldBytes,
    workers,
    check: check === undefined ? undefined : Object.freeze(check),
    json,
  });
}

/**
 * Refuses a metrics address that is also a Docker API address: metrics are never served where
 * Docker clients connect, nor forwarded.
 *
 * @throws Error (the one line to print) when it is.
 * @example
 * ```ts
 * checkMetricsApart({ kind: 'tcp', host: '127.0.0.1', port: 9180 }, config.listen);
 * ```
 */
export function checkMetricsApart(metrics: ListenAddress, listen: readonly ListenAddress[]): void {
  const where = describeListenAddress(metrics);
  const wildcard = (host: string | undefined): boolean => host === undefined || host === '0.0.0.0' || host === '::';
  const clash = listen.find((address) => {
    if (address.kind === 'unix' || metrics.kind === 'unix') return describeListenAddress(address) === where;
    // Port 0 is a new port each time; otherwise a wildcard host takes the port on every address.
    if (address.port === 0 || address.port !== metrics.port) return false;
    return address.host === metrics.host || wildcard(address.host) || wildcard(metrics.host);
  });
  if (clash !== undefined) {
    fail(`the metrics address ${where} is also a Docker API address (${describeListenAddress(clash)}): metrics get a listener of their own`);
  }
}

/** A configuration for `--help`/`--version`, which read nothing else. */
function config(command: 'help' | 'version'): CliConfig {
  return Object.freeze({
    command,
    preset: CLI_DEFAULTS.preset,
    policy: tecnativaPreset({}),
    clients: undefined,
    configFile: undefined,
    minApiVersion: undefined,
    metricsListen: undefined,
    origins: Object.freeze({
      listen: 'default',
      socketPath: 'default',
      logLevel: 'default',
      socketMode: 'default',
      graceMs: 'default',
      maxConnections: 'default',
      maxUpstreamConnections: 'default',
      maxHeldBytes: 'default',
      metricsListen: 'default',
    } as const),
    socketPath: DEFAULT_SOCKET_PATH,
    logLevel: DEFAULT_LOG_LEVEL,
    listen: Object.freeze([]),
    socketMode: CLI_DEFAULTS.socketMode,
    graceMs: CLI_DEFAULTS.graceMs,
    maxConnections: CLI_DEFAULTS.maxConnections,
    maxUpstreamConnections: CLI_DEFAULTS.maxUpstreamConnections,
    maxHeldBytes: CLI_DEFAULTS.maxHeldBytes,
    workers: CLI_DEFAULTS.workers,
    check: undefined,
    json: false,
  });
}

/**
 * A listen address as written in logs: `127.0.0.1:2375`, `[::1]:2375`, `*:2375` (every interface),
 * `unix:/run/dsf.sock`.
 *
 * @example
 * ```ts
 * describeListenAddress({ kind: 'tcp', host: undefined, port: 2375 }); // '*:2375'
 * ```
 */
export function describeListenAddress(address: ListenAddress): string {
  if (address.kind === 'unix') return `unix:${address.path}`;
  const host = address.host === undefined ? '*' : address.host.includes(':') ? `[${address.host}]` : address.host;
  return `${host}:${address.port}`;
}
