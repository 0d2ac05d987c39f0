import type { SocketFilterConfig } from '../config/validate.js';
import type { SocketFilterOptions } from '../filter.js';
import { checkMetricsApart, describeListenAddress, type CliConfig, type ListenAddress, type OperationalSetting } from './args.js';

/** How each operational setting is named on the command line, in the environment and in a file. */
const NAMES: Readonly<Record<OperationalSetting, { flag?: string; variable: string; key: string }>> = {
  listen: { flag: '--listen', variable: 'LISTEN', key: 'listen' },
  socketPath: { variable: 'SOCKET_PATH', key: 'socketPath' },
  logLevel: { variable: 'LOG_LEVEL', key: 'logLevel' },
  socketMode: { flag: '--socket-mode', variable: 'LISTEN_SOCKET_MODE', key: 'socketMode' },
  graceMs: { flag: '--grace', variable: 'SHUTDOWN_GRACE', key: 'shutdownGrace' },
  maxConnections: { flag: '--max-connections', variable: 'MAX_CONNECTIONS', key: 'maxConnections' },
  maxUpstreamConnections: { flag: '--max-upstream-connections', variable: 'MAX_UPSTREAM_CONNECTIONS', key: 'maxUpstreamConnections' },
  maxHeldBytes: { flag: '--max-held-bytes', variable: 'MAX_HELD_BYTES', key: 'maxHeldBytes' },
  metricsListen: { flag: '--metrics-listen', variable: 'METRICS_LISTEN', key: 'metricsListen' },
};

/**
 * Combines the command line and environment with a policy file. The file is the one source of the
 * policy (preset variables in the environment are not read). For the operational settings the
 * file wins over the environment (an image's `ENV` sets `SOCKET_PATH`, `LOG_LEVEL`, …); a flag and
 * the file setting the same thing is an error, and so are `LISTEN` and the file's `listen`: two
 * places saying where to listen is a mistake, not a precedence.
 *
 * @throws Error (the one line to print, exit 2) on a conflict.
 * @example
 * ```ts
 * const config = applyConfigFile(parsed.config, await loadConfig(parsed.config.configFile), env);
 * ```
 */
export function applyConfigFile(cli: CliConfig, file: SocketFilterConfig, ipv6Disabled: boolean): CliConfig {
  const path = cli.configFile ?? 'the config file';
  const given = (setting: OperationalSetting, inFile: boolean): boolean => {
    if (!inFile) return false;
    const origin = cli.origins[setting];
    const names = NAMES[setting];
    if (origin === 'flag' || (origin === 'env' && setting === 'listen')) {
      const used = origin === 'flag' ? `option \`${names.flag}\`` : `\`${names.variable}\``;
      throw new Error(`${used} and \`${names.key}\` of ${path} both set it: keep one (the file's \`${names.key}\` replaces ${names.flag ?? names.variable}/${names.variable})`);
    }
    return true;
  };
  const settings = file.settings;
  const listen: readonly ListenAddress[] = given('listen', file.listen !== undefined)
    ? (file.listen as readonly ListenAddress[]).map((address) =>
        address.kind === 'tcp' && address.host === undefined && ipv6Disabled ? { ...address, host: '0.0.0.0' } : address,
      )
    : cli.listen;
  const metricsListen = given('metricsListen', settings.metricsListen !== undefined) ? settings.metricsListen : cli.metricsListen;
  if (metricsListen !== undefined) checkMetricsApart(metricsListen, listen);
  return Object.freeze({
    ...cli,
    policy: file.filter.policy,
    clients: file.filter.clients,
    minApiVersion: file.filter.minApiVersion,
    listen: Object.freeze([...listen]),
    metricsListen,
    socketPath: given('socketPath', settings.socketPath !== undefined) ? (settings.socketPath as string) : cli.socketPath,
    logLevel: given('logLevel', settings.logLevel !== undefined) ? (settings.logLevel as CliConfig['logLevel']) : cli.logLevel,
    socketMode: given('socketMode', settings.socketMode !== undefined) ? (settings.socketMode as number) : cli.socketMode,
    graceMs: given('graceMs', settings.graceMs !== undefined) ? (settings.graceMs as number) : cli.graceMs,
    maxConnections: given('maxConnections', settings.maxConnections !== undefined) ? (settings.maxConnections as number) : cli.maxConnections,
    maxUpstreamConnections: given('maxUpstreamConnections', settings.maxUpstreamConnections !== undefined)
      ? (settings.maxUpstreamConnections as number)
      : cli.maxUpstreamConnections,
    maxHeldBytes: given('maxHeldBytes', settings.maxHeldBytes !== undefined) ? (settings.maxHeldBytes as number) : cli.maxHeldBytes,
  });
}

/**
 * What a reload may not change: a running guard keeps its listeners, socket, limits and log level,
 * so a file that changes them is refused whole rather than applied in part. Returns the first
 * setting that differs, or `undefined`.
 *
 * @example
 * ```ts
 * const changed = unreloadable(running, next); // 'listen' when a listen entry was added
 * ```
 */
export function unreloadable(running: CliConfig, next: CliConfig): string | undefined {
  const listenOf = (config: CliConfig): string => config.listen.map((address) => `${address.name ?? ''}=${describeListenAddress(address)}`).join(',');
  if (listenOf(running) !== listenOf(next)) return 'listen';
  const metricsOf = (config: CliConfig): string => (config.metricsListen === undefined ? '' : describeListenAddress(config.metricsListen));
  if (metricsOf(running) !== metricsOf(next)) return 'metricsListen';
  for (const key of ['socketPath', 'logLevel', 'socketMode', 'graceMs', 'maxConnections', 'maxUpstreamConnections', 'maxHeldBytes', 'minApiVersion'] as const) {
    if (running[key] !== next[key]) return key === 'graceMs' ? 'shutdownGrace' : key;
  }
  return undefined;
}

/**
 * The `createSocketFilter` options of a CLI configuration: its clients, or its policy.
 *
 * @example
 * ```ts
 * const filter = createSocketFilter({ ...filterOptions(config), onRequest: logger.request });
 * ```
 */
export function filterOptions(config: CliConfig): SocketFilterOptions {
  return {
    ...(config.clients !== undefined ? { clients: config.clients } : config.policy !== undefined ? { policy: config.policy } : {}),
    socketPath: config.socketPath,
    maxUpstreamConnections: config.maxUpstreamConnections,
    maxHeldBytes: config.maxHeldBytes,
    ...(config.minApiVersion !== undefined ? { minApiVersion: config.minApiVersion } : {}),
  };
}

/** The protections the environment can ask for, which a `--config` run does not read from it. */
const NOT_IN_FILES = ['PROTECT_HOST', 'REDACT_ENV', 'STRICT_READ', 'VISIBLE_LABELS'] as const;

/**
 * The read and host settings the environment asks for that a `--config` run would drop: with a
 * file the policy comes from the file alone (its `env`, `protectHost` and `read`), so the guard would
 * serve without host checks or redaction the operator believes it has. Any value but empty and `0`
 * counts (an unclear one too: fail closed). Returns the `NAME=value` of each, for the refusal.
 *
 * @example
 * ```ts
 * settingsDroppedByConfigFile({ PROTECT_HOST: '1', CONTAINERS: '1' }); // ['PROTECT_HOST=1']
 * ```
 */
export function settingsDroppedByConfigFile(env: Readonly<Record<string, string | undefined>>): string[] {
  const dropped: string[] = [];
  for (const name of NOT_IN_FILES) {
    const value = (env[name] ?? '').trim();
    if (value !== '' && value !== '0') dropped.push(`${name}=${value.slice(0, 64)}`);
  }
  return dropped;
}
