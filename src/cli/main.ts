import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import createDebug from 'debug';
import packageJson from '../../package.json' with { type: 'json' };
import { createSocketFilter } from '../filter.js';
import { createBatchedWriter, createLogger, type Logger } from '../log.js';
import { formatPermissionTable } from '../policy/table.js';
import { CLI_DEFAULTS, parseCli, type CliConfig, type ListenAddress } from './args.js';
import { startListener, StartupError, type Listener } from './listen.js';

const debug = createDebug('docker-socket-filter:cli');

/** The program name in messages. */
const NAME = 'docker-socket-filter';

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
  /** Resolves with the first of SIGTERM/SIGINT; the serve command stops gracefully then. */
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
       ${NAME} check [--json] METHOD PATH
       ${NAME} --print-policy | --healthcheck | --help | --version

Guards the Docker Engine API socket: forwards to dockerd only what the preset's variables grant.

Commands:
  (none)                 serve: listen and forward allowed requests to SOCKET_PATH
  check METHOD PATH      print the decision for one request; exit 0 allowed, 1 denied
  --print-policy         print the effective permission table and exit
  --healthcheck          probe the first listen address (GET /_ping when PING is granted,
                         else a TCP/unix connect); exit 0 healthy, 1 not
  --help, -h             this text
  --version              the version

Options:
  --listen ADDR          host:port, [ipv6]:port, :port or unix:/path/to.sock; repeatable
                         (env LISTEN, comma-separated; default :2375)
  --socket-mode MODE     mode of unix listening sockets (env LISTEN_SOCKET_MODE; default 0660)
  --grace SECONDS        on SIGTERM/SIGINT, how long in-flight requests may finish before
                         streams are cut (env SHUTDOWN_GRACE; default ${CLI_DEFAULTS.graceMs / 1000})
  --max-connections N    connections served at once, more get 503 (env MAX_CONNECTIONS;
                         default ${CLI_DEFAULTS.maxConnections}; 0: no limit)
  --json                 with check: print the decision as JSON

Environment (as Tecnativa's docker-socket-proxy):
  PRESET                 tecnativa (default) or linuxserver
  CONTAINERS, POST, ...  the preset's variables (1 grants, 0 denies); default EVENTS, PING, VERSION
  SOCKET_PATH            dockerd's socket (default /var/run/docker.sock)
  LOG_LEVEL              debug, info (default), notice, warning, err, crit, alert, emerg;
                         denied requests are logged at info, allowed ones at debug
  DISABLE_IPV6           1, true or yes: listen on 0.0.0.0 instead of dual-stack [::]
  DEBUG                  docker-socket-filter:* for internals (the debug package)

Exit codes: 0 ok (check: allowed), 1 check denied or unhealthy or runtime failure, 2 bad configuration.
`;

function fatal(io: Required<Omit<CliIo, 'signals'>>, message: string): number {
  io.stderr(`${NAME}: ${message}\n`);
  return 2;
}

/**
 * Runs the CLI: parses `argv` and `env`, then serves, checks, prints or probes. Resolves with the
 * exit code; the serve command resolves only after a SIGTERM/SIGINT and a graceful stop.
 *
 * @example
 * ```ts
 * process.exitCode = await main(process.argv.slice(2), process.env);
 * ```
 */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv, io: CliIo = {}): Promise<number> {
  const out = {
    stdout: io.stdout ?? ((text: string) => void process.stdout.write(text)),
    stderr: io.stderr ?? ((text: string) => void process.stderr.write(text)),
  };
  const parsed = parseCli(argv, env);
  if (!parsed.ok) return fatal(out, parsed.message);
  const config = parsed.config;
  switch (config.command) {
    case 'help':
      out.stdout(HELP);
      return 0;
    case 'version':
      out.stdout(`${packageJson.version}\n`);
      return 0;
    case 'print-policy':
      out.stdout(formatPermissionTable(config.policy));
      return 0;
    case 'check':
      return check(config, out);
    case 'healthcheck':
      return healthcheck(config, out);
    case 'serve':
      return serve(config, out, io.signals ?? process);
  }
}

function check(config: CliConfig, io: Required<Omit<CliIo, 'signals'>>): number {
  const { method, target } = config.check as NonNullable<CliConfig['check']>;
  const decision = createSocketFilter({ policy: config.policy }).evaluate(method, target);
  if (config.json) io.stdout(`${JSON.stringify(decision)}\n`);
  else {
    io.stdout(
      `${decision.allowed ? 'allowed' : 'denied'} ${decision.status} rule=${decision.rule ?? '-'}\n${decision.reason}\n`,
    );
  }
  return decision.allowed ? 0 : 1;
}

/** Where a probe connects for a listen address: a wildcard host is reached on loopback. */
function probeTarget(address: ListenAddress): { socketPath: string } | { host: string; port: number } {
  if (address.kind === 'unix') return { socketPath: address.path };
  const wildcard = address.host === undefined || address.host === '0.0.0.0' || address.host === '::';
  return { host: wildcard ? '127.0.0.1' : address.host as string, port: address.port };
}

async function healthcheck(config: CliConfig, io: Required<Omit<CliIo, 'signals'>>): Promise<number> {
  const address = config.listen[0] as ListenAddress;
  const target = probeTarget(address);
  const timeoutMs = 3_000;
  // /_ping goes through to dockerd, so it is only asked when the policy grants it; otherwise a
  // connect proves the guard is up without sending anything dockerd would see.
  const pingAllowed = createSocketFilter({ policy: config.policy }).evaluate('GET', '/_ping').allowed;
  if (pingAllowed) {
    const result = await new Promise<string | undefined>((resolve) => {
      const req = request({ ...target, method: 'GET', path: '/_ping', timeout: timeoutMs, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200 ? undefined : `GET /_ping answered ${res.statusCode}`));
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', (error) => resolve(error.message));
      req.end();
    });
    if (result === undefined) return 0;
    io.stderr(`${NAME}: unhealthy: ${result}\n`);
    return 1;
  }
  const result = await new Promise<string | undefined>((resolve) => {
    const socket = 'socketPath' in target ? connect({ path: target.socketPath }) : connect(target);
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no connection within ${timeoutMs} ms`)));
    socket.once('connect', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once('error', (error) => resolve(error.message));
  });
  if (result === undefined) return 0;
  io.stderr(`${NAME}: unhealthy: ${result}\n`);
  return 1;
}

/**
 * Checks dockerd's socket at start-up: missing is a warning (dockerd may start later), anything else
 * wrong is a configuration error.
 */
async function checkDockerSocket(socketPath: string, logger: Logger): Promise<void> {
  let stats;
  try {
    stats = await stat(socketPath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      logger.log('warning', 'dockerd socket does not exist yet; requests get 502 until it does', { socket: socketPath });
      return;
    }
    throw new StartupError(`SOCKET_PATH=${socketPath} cannot be read: ${(error as Error).message}`);
  }
  if (!stats.isSocket()) throw new StartupError(`SOCKET_PATH=${socketPath} is not a unix socket`);
  try {
    await access(socketPath, constants.R_OK | constants.W_OK);
  } catch {
    throw new StartupError(
      `SOCKET_PATH=${socketPath} is not accessible to uid ${process.getuid?.()}: add the socket's group (docker run --group-add <gid>)`,
    );
  }
}

async function serve(config: CliConfig, io: Required<Omit<CliIo, 'signals'>>, signals: NodeJS.EventEmitter): Promise<number> {
  // One write per turn of the event loop, not one per line: see createBatchedWriter. Identical
  // denials are counted rather than written each (LoggerOptions.repeats).
  const lines = createBatchedWriter(io.stderr);
  const logger = createLogger({ level: config.logLevel, write: lines.write });
  // The counts held back go out before the last lines, on every way out.
  const flushAll = (): void => {
    logger.flush();
    lines.flush();
  };
  process.on('exit', flushAll);
  // A message written directly (a fatal start-up error) comes after the log lines before it.
  const stderr = (text: string): void => {
    flushAll();
    io.stderr(text);
  };
  try {
    return await serveWith(config, { ...io, stderr }, signals, logger);
  } finally {
    flushAll();
    process.off('exit', flushAll);
  }
}

async function serveWith(
  config: CliConfig,
  io: Required<Omit<CliIo, 'signals'>>,
  signals: NodeJS.EventEmitter,
  logger: Logger,
): Promise<number> {
  try {
    await checkDockerSocket(config.socketPath, logger);
  } catch (error) {
    if (error instanceof StartupError) return fatal(io, error.message);
    throw error;
  }
  const filter = createSocketFilter({ policy: config.policy, socketPath: config.socketPath, onRequest: logger.request });
  // Watched from before the first listener until exit: a signal that arrives while no handler is
  // installed would kill the process with the default action instead of a graceful stop.
  const watcher = watchSignals(signals);
  try {
    const listeners: Listener[] = [];
    try {
      // Refusals made before the filter saw a request (unparseable heads, limits, slow clients)
      // are logged like denials: at info, never with a header or a body.
      const serverOptions = {
        maxConnections: config.maxConnections,
        onReject: logger.rejected,
      };
      for (const address of config.listen) listeners.push(await startListener(address, filter, config.socketMode, serverOptions));
    } catch (error) {
      await Promise.all(listeners.map((listener) => closeNow(listener)));
      await filter.close();
      if (error instanceof StartupError) return fatal(io, error.message);
      throw error;
    }

    const settings = config.policy.source?.settings ?? {};
    logger.log('info', 'listening', {
      listen: listeners.map((listener) => listener.description).join(','),
      preset: config.preset,
      granted: Object.keys(settings).filter((name) => settings[name]).join(',') || '-',
      socket: config.socketPath,
    });

    const signal = await watcher.first;
    return await shutdown(signal, config, listeners, filter, logger, watcher.second);
  } finally {
    // On the real process the handlers stay until exit: removing them would restore the default
    // action, and a late signal would end the process by signal instead of with this exit code.
    if (signals !== process) watcher.dispose();
  }
}

/** The first SIGTERM/SIGINT (stop gracefully) and the second one (stop now). */
function watchSignals(signals: NodeJS.EventEmitter): { first: Promise<string>; second: Promise<void>; dispose(): void } {
  let onFirst: (name: string) => void = () => undefined;
  let onSecond: () => void = () => undefined;
  const first = new Promise<string>((resolve) => (onFirst = resolve));
  const second = new Promise<void>((resolve) => (onSecond = resolve));
  let count = 0;
  const received = (name: string): void => {
    count += 1;
    debug('%s received (%d)', name, count);
    if (count === 1) onFirst(name);
    else onSecond();
  };
  const onTerm = (): void => received('SIGTERM');
  const onInt = (): void => received('SIGINT');
  signals.on('SIGTERM', onTerm);
  signals.on('SIGINT', onInt);
  return {
    first,
    second,
    dispose() {
      signals.off('SIGTERM', onTerm);
      signals.off('SIGINT', onInt);
    },
  };
}

/** Closes a listener and cuts its connections at once. */
async function closeNow(listener: Listener): Promise<void> {
  const closed = listener.close();
  listener.server.closeAllConnections();
  for (const socket of listener.connections) socket.destroy();
  await closed;
}

async function shutdown(
  signal: string,
  config: CliConfig,
  listeners: readonly Listener[],
  filter: ReturnType<typeof createSocketFilter>,
  logger: Logger,
  hurry: Promise<void>,
): Promise<number> {
  const closing = Promise.all(listeners.map((listener) => listener.close()));
  logger.log('info', 'stopping', { signal, grace_s: config.graceMs / 1000 });
  // A socket destroyed in this tick (closeIdleConnections, a client leaving) only leaves
  // `connections` on its 'close' event, a tick later: it is not open any more and must not count,
  // or the count logged below (and the end of the wait) depends on the timing of that tick.
  const open = (): number =>
    listeners.reduce((total, listener) => {
      let live = 0;
      for (const socket of listener.connections) if (!socket.destroyed) live += 1;
      return total + live;
    }, 0);

  // In-flight requests may finish; a keep-alive connection that becomes idle is closed as soon as
  // it does, so the wait ends when the last request ends rather than at the keep-alive timeout.
  const finished = await new Promise<boolean>((resolve) => {
    const poll = setInterval(() => {
      for (const listener of listeners) listener.server.closeIdleConnections();
      if (open() === 0) done(true);
    }, 50);
    const timer = setTimeout(() => done(false), config.graceMs);
    // A second signal means "now": skip what is left of the grace period.
    void hurry.then(() => done(false));
    function done(value: boolean): void {
      clearInterval(poll);
      clearTimeout(timer);
      resolve(value);
    }
    if (open() === 0) done(true);
  });

  if (!finished) debug('grace period over with %d connections open; cutting them', open());
  // Long-lived streams (events, logs -f, attach) end here: upstream first, then the clients.
  const cut = open();
  await filter.close();
  await Promise.all(listeners.map((listener) => closeNow(listener)));
  await closing;
  // No request can come any more: the counts of denials held back go before the last line.
  logger.flush();
  logger.log('info', 'stopped', { cut_connections: cut });
  return 0;
}
