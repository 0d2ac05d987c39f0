import ipaddr from 'ipaddr.js';
import { SocketFilterTypeError } from '../errors.js';
import { parseTarget } from './canonical.js';
import { compilePolicy } from './compile.js';
import { createEvaluator, type Evaluate, type EvaluatorSettings } from './evaluate.js';
import type { ClientInfo, Decision, Policy } from './types.js';

/**
 * One client of a guard that serves several: who it is (`match`) and what it may do (`policy`).
 *
 * @example
 * ```ts
 * const dozzle: ClientSpec = {
 *   name: 'dozzle',
 *   match: { address: ['172.25.0.4', '10.0.0.0/24'], listener: 'ro' },
 *   policy: linuxserverPreset({ CONTAINERS: '1', ALLOW_LOGS: '1' }),
 * };
 * ```
 */
export interface ClientSpec {
  /** Shown in logs, `Decision.client` and metrics: letters, digits, `_`, `.` and `-`, at most 64. */
  readonly name: string;
  /** When both keys are given, both must hold. At least one is required. */
  readonly match: ClientMatch;
  readonly policy: Policy;
}

/**
 * How a client is recognised: by the peer address of its connection and/or by the listener it came
 * in on. Never by a header (`X-Forwarded-For` and the like are written by the client itself).
 *
 * @example
 * ```ts
 * const match: ClientMatch = { address: ['172.25.0.2', 'fd00::/64'] };
 * ```
 */
export interface ClientMatch {
  /** IPv4 or IPv6 addresses and CIDR ranges (`172.25.0.0/24`); IPv4-mapped IPv6 is read as IPv4. */
  readonly address?: readonly string[];
  /** The name of the listener (`createFilterServer(filter, { listener })`) the connection came in on. */
  readonly listener?: string;
}

/** A client's name: it goes into log lines and metric labels as it is. */
const CLIENT_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const CLIENT_KEYS = new Set(['name', 'match', 'policy']);
const MATCH_KEYS = new Set(['address', 'listener']);

type Address = ipaddr.IPv4 | ipaddr.IPv6;
type Range = readonly [Address, number];

interface CompiledClient {
  readonly name: string;
  /** Empty: any address. */
  readonly ranges: readonly Range[];
  readonly listener: string | undefined;
  readonly evaluate: Evaluate;
}

function invalid(where: string, message: string): never {
  throw new SocketFilterTypeError('ERR_DSF_INVALID_OPTION', `The \`${where}\` option ${message}`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** An IPv4-mapped IPv6 address (`::ffff:10.0.0.5`) is the IPv4 address it carries. */
function unmapped(address: Address): Address {
  return address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress()
    ? (address as ipaddr.IPv6).toIPv4Address()
    : address;
}

/**
 * Reads one `match.address` entry strictly: dotted four-part IPv4 (`10.0.0.5`, not `10.5` or
 * `0x0a.0.0.5`, which some readers take for other addresses), IPv6 without a zone, or either with a
 * prefix whose host bits are zero (`172.25.0.3/24` is refused: /32 or 172.25.0.0/24 was meant).
 */
function readRange(text: unknown, where: string): Range {
  if (typeof text !== 'string') invalid(where, 'must be an IP address or a CIDR range (e.g. "172.25.0.2" or "172.25.0.0/24")');
  const slash = text.indexOf('/');
  const host = slash === -1 ? text : text.slice(0, slash);
  const isV4 = ipaddr.IPv4.isValidFourPartDecimal(host);
  if (!isV4 && (!ipaddr.IPv6.isValid(host) || host.includes('%') || !host.includes(':'))) {
    invalid(where, `has ${JSON.stringify(text)}, which is not an IPv4 address in dotted form, an IPv6 address, or a CIDR range of one`);
  }
  if (slash === -1) {
    const address = unmapped(ipaddr.parse(host));
    return [address, address.kind() === 'ipv4' ? 32 : 128];
  }
  const bitsText = text.slice(slash + 1);
  const max = isV4 ? 32 : 128;
  if (!/^[0-9]{1,3}$/.test(bitsText) || Number(bitsText) > max) {
    invalid(where, `has ${JSON.stringify(text)}, whose prefix length must be a number from 0 to ${max}`);
  }
  let address: Address = ipaddr.parse(host);
  let bits = Number(bitsText);
  if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) {
    address = (address as ipaddr.IPv6).toIPv4Address();
    bits -= 96;
  }
  const network = (address.kind() === 'ipv4' ? ipaddr.IPv4 : ipaddr.IPv6).networkAddressFromCIDR(`${address.toString()}/${bits}`);
  if (network.toString() !== address.toString()) {
    invalid(
      where,
      `has ${JSON.stringify(text)}, which has bits set past its prefix: write ${network.toString()}/${bits} for the range, or the address alone`,
    );
  }
  return [address, bits];
}

function compileClient(candidate: unknown, index: number, settings: EvaluatorSettings, seen: Set<string>): CompiledClient {
  const where = `clients[${index}]`;
  if (!isPlainObject(candidate)) invalid(where, 'must be an object with `name`, `match` and `policy`');
  for (const key of Object.keys(candidate)) if (!CLIENT_KEYS.has(key)) invalid(`${where}.${key}`, 'is not a known option');
  const { name, match, policy } = candidate;
  if (typeof name !== 'string' || !CLIENT_NAME.test(name)) {
    invalid(`${where}.name`, 'must be 1 to 64 letters, digits, `_`, `.` or `-` (it is written in logs and metrics as it is)');
  }
  if (seen.has(name)) invalid(`${where}.name`, `repeats the name ${JSON.stringify(name)}: each client needs its own`);
  seen.add(name);
  if (!isPlainObject(match)) invalid(`${where}.match`, 'must be an object with `address` and/or `listener`');
  for (const key of Object.keys(match)) if (!MATCH_KEYS.has(key)) invalid(`${where}.match.${key}`, 'is not a known option');
  if (match.address === undefined && match.listener === undefined) {
    invalid(`${where}.match`, 'must give `address`, `listener` or both (a client that matches everything would take every request)');
  }
  let ranges: Range[] = [];
  if (match.address !== undefined) {
    if (!Array.isArray(match.address) || match.address.length === 0) {
      invalid(`${where}.match.address`, 'must be a non-empty list of addresses and CIDR ranges');
    }
    ranges = match.address.map((text: unknown, i: number) => readRange(text, `${where}.match.address[${i}]`));
  }
  const listener = match.listener;
  if (listener !== undefined && (typeof listener !== 'string' || listener.length === 0)) {
    invalid(`${where}.match.listener`, 'must be the non-empty name of a listener');
  }
  const evaluate = createEvaluator(compilePolicy(policy as Policy, `${where}.policy`), settings);
  return Object.freeze({ name, ranges: Object.freeze(ranges), listener: listener as string | undefined, evaluate });
}

/**
 * Validates a list of clients, naming the path of what is wrong (`clients[1].match.address[0]`),
 * and compiles each client's policy once.
 *
 * @example
 * ```ts
 * const clients = compileClients([{ name: 'traefik', match: { address: ['172.25.0.2'] }, policy }], { minApiVersion: 10024 });
 * ```
 */
export function compileClients(clients: unknown, settings: EvaluatorSettings): readonly CompiledClient[] {
  if (!Array.isArray(clients) || clients.length === 0) {
    invalid('clients', 'must be a non-empty list of clients ({ name, match, policy })');
  }
  const seen = new Set<string>();
  return Object.freeze(clients.map((client, index) => compileClient(client, index, settings, seen)));
}

/** Parsed client addresses, by the text the connection reported: connections repeat addresses. */
const MAX_CACHED_ADDRESSES = 4096;

/**
 * How a denial names the request: `GET /v1.41/info`, the method alone when the target cannot be
 * read, `This request` when neither can be shown.
 */
function shownRequest(method: string, target: string): { readonly text: string; readonly path: string | null } {
  const parsed = parseTarget(target);
  const shownMethod = typeof method === 'string' && /^[A-Za-z]{1,16}$/.test(method) ? method : undefined;
  if ('malformed' in parsed) return { text: shownMethod ?? 'this request', path: null };
  return { text: `${shownMethod ?? 'this request'} ${parsed.path}`, path: parsed.target };
}

/**
 * The decision function of a filter with clients: the first client whose `match` holds decides with
 * its own policy, and its name is set as `Decision.client`. A request no client matches, or one that
 * comes without client information, is refused (`403`, rule `clients`): fail closed.
 *
 * @example
 * ```ts
 * const evaluate = createClientsEvaluator(compileClients(clients, { minApiVersion: 10024 }));
 * evaluate('GET', '/v1.41/containers/json', { client: { address: '172.25.0.2' } }).client; // 'traefik'
 * ```
 */
export function createClientsEvaluator(clients: readonly CompiledClient[]): Evaluate {
  const parsed = new Map<string, Address | null>();
  const anyAddressRule = clients.some((client) => client.ranges.length > 0);

  function addressOf(text: string): Address | null {
    let address = parsed.get(text);
    if (address !== undefined) return address;
    const host = text.includes('%') ? text.slice(0, text.indexOf('%')) : text;
    address =
      ipaddr.IPv4.isValidFourPartDecimal(host) || (host.includes(':') && ipaddr.IPv6.isValid(host)) ? unmapped(ipaddr.parse(host)) : null;
    if (parsed.size >= MAX_CACHED_ADDRESSES) parsed.clear();
    parsed.set(text, address);
    return address;
  }

  function matches(client: CompiledClient, address: Address | null, listener: string | undefined): boolean {
    if (client.listener !== undefined && client.listener !== listener) return false;
    if (client.ranges.length === 0) return true;
    if (address === null) return false;
    const kind = address.kind();
    for (const [range, bits] of client.ranges) {
      if (range.kind() === kind && address.match(range, bits)) return true;
    }
    return false;
  }

  return function evaluate(method, target, request) {
    const info: ClientInfo | undefined = request?.client;
    const listener = typeof info?.listener === 'string' ? info.listener : undefined;
    const addressText = typeof info?.address === 'string' ? info.address : undefined;
    const address = anyAddressRule && addressText !== undefined ? addressOf(addressText) : null;
    for (const client of clients) {
      if (!matches(client, address, listener)) continue;
      return { ...client.evaluate(method, target, request), client: client.name };
    }
    const shown = shownRequest(method, target);
    const who =
      addressText !== undefined
        ? `${address === null ? `the unreadable address ${JSON.stringify(addressText.slice(0, 64))}` : address.toString()}${listener === undefined ? '' : ` (listener ${listener})`}`
        : listener !== undefined
          ? `listener ${listener}`
          : 'a request without client information (no peer address, no listener)';
    const decision: Decision = {
      allowed: false,
      status: 403,
      rule: 'clients',
      reason: `docker-socket-filter denied ${shown.text}: no client matches ${who}`,
      path: shown.path,
    };
    return decision;
  };
}
