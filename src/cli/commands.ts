import { connect } from 'node:net';
import { http } from '../node-http.js';
import { createSocketFilter } from '../filter.js';
import { formatPermissionTable } from '../policy/table.js';
import type { CliConfig, ListenAddress } from './args.js';
import { filterOptions } from './config-file.js';

const { request } = http;

/**
 * The program name in messages.
 *
 * @example
 * ```ts
 * io.stderr(`${NAME}: unhealthy\n`);
 * ```
 */
export const NAME = 'docker-socket-filter';

/**
 * Where a command writes.
 *
 * @example
 * ```ts
 * const out: Output = { stdout: (t) => void process.stdout.write(t), stderr: (t) => void process.stderr.write(t) };
 * ```
 */
export interface Output {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

/**
 * `check METHOD PATH`: prints the decision, exits 0 when allowed, 1 when denied.
 *
 * @example
 * ```ts
 * process.exitCode = check(config, out);
 * ```
 */
export function check(config: CliConfig, io: Output): number {
  const { method, target, client } = config.check as NonNullable<CliConfig['check']>;
  const decision = createSocketFilter(filterOptions(config)).evaluate(method, target, client === undefined ? {} : { client });
  if (config.json) io.stdout(`${JSON.stringify(decision)}\n`);
  else {
    const who = decision.client === undefined ? '' : ` client=${decision.client}`;
    io.stdout(`${decision.allowed ? 'allowed' : 'denied'} ${decision.status} rule=${decision.rule ?? '-'}${who}\n${decision.reason}\n${listenerHint(config, decision.rule)}`);
  }
  return decision.allowed ? 0 : 1;
}

// A served request always comes in on a listener; `check` without `--listener` matches no client
// that names one, which reads as if the address were wrong.
function listenerHint(config: CliConfig, rule: string | null | undefined): string {
  if (rule !== 'clients' || config.check?.client?.listener !== undefined) return '';
  const named = (config.clients ?? []).filter((client) => client.match.listener !== undefined).map((client) => client.name);
  return named.length === 0 ? '' : `(no --listener given: clients ${named.join(', ')} match only on a listener; add --listener NAME)\n`;
}

/**
 * `--print-policy`: the permission table of the policy, or of each client's.
 *
 * @example
 * ```ts
 * printPolicy(config, out);
 * ```
 */
export function printPolicy(config: CliConfig, io: Output): number {
  if (config.clients === undefined) {
    io.stdout(formatPermissionTable(config.policy as NonNullable<CliConfig['policy']>));
    return 0;
  }
  const tables = config.clients.map((client) => {
    const match = [
      client.match.address === undefined ? undefined : `address ${client.match.address.join(', ')}`,
      client.match.listener === undefined ? undefined : `listener ${client.match.listener}`,
    ]
      .filter((part) => part !== undefined)
      .join(' and ');
    return `client: ${client.name} (${match})\n${formatPermissionTable(client.policy)}`;
  });
  io.stdout(`${tables.join('\n')}\nAny other client is refused (403, rule clients).\n`);
  return 0;
}

/**
 * `validate FILE`: the file was read and validated before this runs; says what it holds.
 *
 * @example
 * ```ts
 * validate(config, out); // policy.yaml: valid: clients traefik, portainer; listen tcp, ro
 * ```
 */
export function validate(config: CliConfig, io: Output): number {
  const parts: string[] = [];
  if (config.clients !== undefined) parts.push(`clients ${config.clients.map((client) => client.name).join(', ')}`);
  else parts.push(`policy ${config.policy?.name ?? '-'}`);
  const named = config.listen.filter((address) => address.name !== undefined);
  if (named.length > 0) parts.push(`listen ${named.map((address) => address.name).join(', ')}`);
  io.stdout(`${config.configFile}: valid: ${parts.join('; ')}\n`);
  return 0;
}

/** Where a probe connects for a listen address: a wildcard host is reached on loopback. */
function probeTarget(address: ListenAddress): { socketPath: string } | { host: string; port: number } {
  if (address.kind === 'unix') return { socketPath: address.path };
  const wildcard = address.host === undefined || address.host === '0.0.0.0' || address.host === '::';
  return { host: wildcard ? '127.0.0.1' : (address.host as string), port: address.port };
}

const PROBE_TIMEOUT_MS = 3_000;

function probeGet(target: { socketPath: string } | { host: string; port: number }, path: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = request({ ...target, method: 'GET', path, timeout: PROBE_TIMEOUT_MS, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? undefined : `GET ${path} answered ${res.statusCode}`));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)));
    req.on('error', (error) => resolve(error.message));
    req.end();
  });
}

function probeConnect(target: { socketPath: string } | { host: string; port: number }): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = 'socketPath' in target ? connect({ path: target.socketPath }) : connect(target);
    socket.setTimeout(PROBE_TIMEOUT_MS, () => socket.destroy(new Error(`no connection within ${PROBE_TIMEOUT_MS} ms`)));
    socket.once('connect', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once('error', (error) => resolve(error.message));
  });
}

/**
 * `--healthcheck`. With a metrics listener: `GET /healthz` there (the guard serves, dockerd
 * answers), nothing on the Docker API port. Otherwise on the first listen address: `GET /_ping`
 * through the guard when one policy for everyone grants it (so dockerd is proved too), else a bare
 * connect, so nothing reaches dockerd. With clients and no metrics listener it is the connect: the
 * probe's own address is not a client's, and it must not be refused as one.
 *
 * @example
 * ```ts
 * process.exitCode = await healthcheck(config, out);
 * ```
 */
export async function healthcheck(config: CliConfig, io: Output): Promise<number> {
  let result: string | undefined;
  if (config.metricsListen !== undefined) {
    result = await probeGet(probeTarget(config.metricsListen), '/healthz');
  } else {
    const target = probeTarget(config.listen[0] as ListenAddress);
    const pingAllowed = config.clients === undefined && createSocketFilter(filterOptions(config)).evaluate('GET', '/_ping').allowed;
    result = pingAllowed ? await probeGet(target, '/_ping') : await probeConnect(target);
  }
  if (result === undefined) return 0;
  io.stderr(`${NAME}: unhealthy: ${result}\n`);
  return 1;
}
