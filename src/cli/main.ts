import packageJson from '../../package.json' with { type: 'json' };
import { parseConfigFile, readConfigText } from '../config/index.js';
import { CLI_DEFAULTS, ipv6Disabled, parseCli, type CliConfig } from './args.js';
import { check, healthcheck, NAME, printPolicy, validate, type Output } from './commands.js';
import { applyConfigFile, settingsDroppedByConfigFile } from './config-file.js';
import { serve } from './serve.js';
import { workerCount } from './workers/count.js';

/**
 * Where the CLI writes and which signals it listens to; `process` by default, replaced in tests.
 *
 * @example
 * ```ts
 * const io: CliIo = { stdout: (t) => out.push(t), stderr: (t) => err.push(t) };
 * ```
 */
export interface CliIo {
  readonly stdout?: (text: string) => void;
  readonly stderr?: (text: string) => void;
  /** SIGTERM/SIGINT: the serve command stops gracefully; SIGHUP: it reloads its config file. */
  readonly signals?: NodeJS.EventEmitter;
}

/**
 * The usage text of `--help`.
 *
 * @example
 * ```ts
 * process.stdout.write(HELP);
 * ```
 */
export const HELP = `Usage: ${NAME} [options]
       ${NAME} check [--config FILE [--client ADDR] [--listener NAME]] [--json] METHOD PATH
       ${NAME} validate FILE
       ${NAME} --print-policy | --healthcheck | --help | --version

Guards the Docker Engine API socket: forwards to dockerd only what the policy grants (the preset's
variables, or a policy file with a policy per client).

Commands:
  (none)                 serve: listen and forward allowed requests to SOCKET_PATH;
                         SIGHUP reloads the --config file
  check METHOD PATH      print the decision for one request; exit 0 allowed, 1 denied
                         (--client ADDR, --listener NAME: as that client of the file)
  validate FILE          check a policy file (YAML or JSON); exit 0 valid, 2 not
  --print-policy         print the effective permission table (one per client) and exit
  --healthcheck          probe the guard: GET /healthz on --metrics-listen if set, else the first
                         listen address (GET /_ping when PING is granted to everyone, else a
                         TCP/unix connect); exit 0 healthy, 1 not
  --help, -h             this text
  --version              the version

Options:
  --config FILE          a policy file, YAML or JSON (env CONFIG); see docs/config.md. The preset
                         and its variables then come from the file only
  --listen ADDR          host:port, [ipv6]:port, :port or unix:/path/to.sock; repeatable
                         (env LISTEN, comma-separated; default 127.0.0.1:2375; not with a
                         file's listen)
  --metrics-listen ADDR  serve Prometheus /metrics and /healthz there, never on a listen
                         address (env METRICS_LISTEN; default off)
  --socket-mode MODE     mode of unix listening sockets (env LISTEN_SOCKET_MODE; default 0660)
  --grace SECONDS        on SIGTERM/SIGINT, how long in-flight requests may finish before
                         streams are cut (env SHUTDOWN_GRACE; default ${CLI_DEFAULTS.graceMs / 1000})
  --max-connections N    connections served at once, more get 503 (env MAX_CONNECTIONS;
                         default ${CLI_DEFAULTS.maxConnections}; 0: no limit)
  --max-upstream-connections N
                         connections to dockerd at once, streams included; when all are busy
                         a request waits up to 10 s, then gets 503 (env MAX_UPSTREAM_CONNECTIONS;
                         default ${CLI_DEFAULTS.maxUpstreamConnections})
  --max-held-bytes SIZE  bytes held whole at once, all connections together: bodies PROTECT_HOST
                         checks, answers REDACT_ENV/VISIBLE_LABELS rewrite; beyond, 503
                         (env MAX_HELD_BYTES; 1MiB to 64GiB; default ${CLI_DEFAULTS.maxHeldBytes / 1024 / 1024}MiB)
  --workers N|auto       serve in N processes sharing the listen addresses, each with its
                         share of the limits above; auto: one per core the process may use
                         (env WORKERS; default 1: this process alone); see docs/cli.md
  --json                 with check: print the decision as JSON

Environment (as Tecnativa's docker-socket-proxy; without --config):
  PRESET                 tecnativa (default) or linuxserver
  CONTAINERS, POST, ...  the preset's variables (1 grants, 0 denies); default EVENTS, PING, VERSION
  SOCKET_PATH            dockerd's socket (default /var/run/docker.sock)
  LOG_LEVEL              debug, info (default), notice, warning, err, crit, alert, emerg;
                         denied requests are logged at info, allowed ones at debug
  DISABLE_IPV6           1, true or yes: listen on 0.0.0.0 instead of dual-stack [::]
  DEBUG                  docker-socket-filter:* for internals (the debug package)

A config file's settings replace the variables; a flag and the file setting the same thing is an
error, as are LISTEN and the file's listen.

Exit codes: 0 ok (check: allowed), 1 check denied or unhealthy or runtime failure, 2 bad configuration.
`;

function fatal(io: Output, message: string): number {
  io.stderr(`${NAME}: ${message}\n`);
  return 2;
}

/**
 * Runs the CLI: parses `argv` and `env` (and the config file, if any), then serves, checks, prints,
 * validates or probes. Resolves with the exit code; the serve command resolves only after a
 * SIGTERM/SIGINT and a graceful stop.
 *
 * @example
 * ```ts
 * process.exitCode = await main(process.argv.slice(2), process.env);
 * ```
 */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv, io: CliIo = {}): Promise<number> {
  const out: Output = {
    stdout: io.stdout ?? ((text: string) => void process.stdout.write(text)),
    stderr: io.stderr ?? ((text: string) => void process.stderr.write(text)),
  };
  const parsed = parseCli(argv, env);
  if (!parsed.ok) return fatal(out, parsed.message);
  const base = parsed.config;
  if (base.command === 'serve') {
    // A worker of `--workers` takes its part (and the config file's text) from the primary: it
    // must not read a file that may have changed since.
    const { default: cluster } = await import('node:cluster');
    if (cluster.isWorker) {
      const { runWorker } = await import('./workers/worker.js');
      return runWorker(argv, env, out);
    }
  }
  let config: CliConfig = base;
  let configText: string | undefined;
  if (base.configFile !== undefined && base.command !== 'help' && base.command !== 'version') {
    const dropped = base.command === 'validate' || base.command === 'healthcheck' ? [] : settingsDroppedByConfigFile(env);
    if (dropped.length > 0) {
      return fatal(
        out,
        `${dropped.join(', ')} ${dropped.length === 1 ? 'is' : 'are'} set in the environment, but with --config the policy comes from the file alone: the guard would run without ${dropped.length === 1 ? 'it' : 'them'}. Put ${dropped.length === 1 ? 'it' : 'them'} in the file (a preset's env, or its protectHost/read section: docs/config.md) and unset ${dropped.length === 1 ? 'it' : 'them'} here`,
      );
    }
    try {
      // `validate` judges the file alone: where this shell's LISTEN points is not the file's fault.
      const against =
        base.command === 'validate'
          ? { ...base, origins: Object.fromEntries(Object.keys(base.origins).map((key) => [key, 'default'])) as CliConfig['origins'] }
          : base;
      configText = await readConfigText(base.configFile);
      config = applyConfigFile(against, parseConfigFile(base.configFile, configText, { socketPath: base.socketPath }), ipv6Disabled(env));
    } catch (error) {
      if (!(error instanceof Error)) throw error;
      return fatal(out, error.message);
    }
  }
  switch (config.command) {
    case 'help':
      out.stdout(HELP);
      return 0;
    case 'version':
      out.stdout(`${packageJson.version}\n`);
      return 0;
    case 'print-policy':
      return printPolicy(config, out);
    case 'check':
      return check(config, out);
    case 'validate':
      return validate(config, out);
    case 'healthcheck':
      return healthcheck(config, out);
    case 'serve': {
      const context = { io: out, signals: io.signals ?? process, base, env, ipv6Disabled: ipv6Disabled(env) };
      const workers = await workerCount(config.workers);
      if (workers === 1) return serve(config, context);
      const { runPrimary } = await import('./workers/primary.js');
      return runPrimary(config, context, { workers, argv, ...(configText !== undefined ? { configText } : {}) });
    }
  }
}
