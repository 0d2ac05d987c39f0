import { SocketFilterTypeError } from '../../errors.js';
import type { ProtectHost } from '../types.js';

/**
 * The `protectHost` section of a policy, validated and normalised once. Pure: no `node:` imports.
 */

/**
 * The switches of `protectHost`, each with the preset variable that sets it.
 *
 * @example
 * ```ts
 * HOST_SWITCHES.allowPrivileged; // 'ALLOW_PRIVILEGED'
 * ```
 */
export const HOST_SWITCHES = Object.freeze({
  allowPrivileged: 'ALLOW_PRIVILEGED',
  allowHostNamespaces: 'ALLOW_HOST_NAMESPACES',
  allowDevices: 'ALLOW_DEVICES',
  allowUnconfined: 'ALLOW_UNCONFINED',
  allowVolumesFrom: 'ALLOW_VOLUMES_FROM',
  allowVolumeOptions: 'ALLOW_VOLUME_OPTIONS',
  allowPluginInstall: 'ALLOW_PLUGIN_INSTALL',
  allowHostNetworkBuild: 'ALLOW_HOST_NETWORK_BUILD',
  allowRemoteFetch: 'ALLOW_REMOTE_FETCH',
} as const);

/**
 * The lists of `protectHost`, each with the preset variable that sets it.
 *
 * @example
 * ```ts
 * HOST_LISTS.allowBindMounts; // 'ALLOW_BIND_MOUNTS'
 * ```
 */
export const HOST_LISTS = Object.freeze({
  allowCapabilities: 'ALLOW_CAPABILITIES',
  allowBindMounts: 'ALLOW_BIND_MOUNTS',
} as const);

export type HostSwitch = keyof typeof HOST_SWITCHES;
export type HostList = keyof typeof HOST_LISTS;

/** 1 MiB: a `docker run` create body is a few kilobytes; the largest real ones stay far below. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/**
 * Where the Docker (and containerd) sockets live on a host: binding one, or a directory above one,
 * hands the client the daemon. `SOCKET_PATH` is added by the presets.
 */
export const DEFAULT_DOCKER_SOCKETS: readonly string[] = Object.freeze([
  '/var/run/docker.sock',
  '/run/docker.sock',
  '/run/containerd/containerd.sock',
  '/run/docker/containerd/containerd.sock',
]);

/**
 * The resolved settings the checks run with.
 *
 * @example
 * ```ts
 * const settings = resolveProtectHost({ allowBindMounts: ['/srv'] }, 'policy.protectHost', 'options');
 * ```
 */
export interface HostSettings {
  readonly switches: Readonly<Record<HostSwitch, boolean>>;
  /** Capabilities without `CAP_`, upper case; `ALL` allows every one. */
  readonly capabilities: ReadonlySet<string>;
  /** Clean absolute paths. */
  readonly bindMounts: readonly string[];
  /** Clean absolute paths of sockets that give away the host. */
  readonly dockerSockets: readonly string[];
  readonly maxBodyBytes: number;
  /** How reasons name a setting: by its preset variable, or by its option path. */
  readonly naming: 'env' | 'options';
}

/**
 * Every key of a `protectHost` section: the switches, the lists, `dockerSockets`, `maxBodyBytes`.
 *
 * @example
 * ```ts
 * PROTECT_HOST_KEYS.includes('allowBindMounts'); // true
 * ```
 */
export const PROTECT_HOST_KEYS: readonly string[] = Object.freeze([...Object.keys(HOST_SWITCHES), ...Object.keys(HOST_LISTS), 'dockerSockets', 'maxBodyBytes']);

const KEYS = new Set<string>(PROTECT_HOST_KEYS);

function invalid(where: string, message: string): never {
  throw new SocketFilterTypeError('ERR_DSF_INVALID_OPTION', `The \`${where}\` option ${message}`);
}

/**
 * A clean absolute path (`//`, `.` segments and a trailing `/` removed), or why it is not one: a
 * relative path, a `..` segment (what it means depends on symlinks on the host), a NUL byte.
 *
 * @example
 * ```ts
 * cleanAbsolutePath('/srv//data/./x/'); // '/srv/data/x'
 * cleanAbsolutePath('/srv/../etc'); // { why: 'contains a .. segment' }
 * ```
 */
export function cleanAbsolutePath(path: string): string | { readonly why: string } {
  if (path.length === 0 || path.charCodeAt(0) !== 0x2f) return { why: 'is not an absolute path' };
  if (path.includes('\0')) return { why: 'contains a NUL byte' };
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') return { why: 'contains a .. segment' };
    segments.push(segment);
  }
  return `/${segments.join('/')}`;
}

/**
 * A capability as dockerd compares it: upper case, without the `CAP_` prefix.
 *
 * @example
 * ```ts
 * normalizeCapability('cap_net_admin'); // 'NET_ADMIN'
 * ```
 */
export function normalizeCapability(name: string): string {
  const upper = name.toUpperCase();
  return upper.startsWith('CAP_') ? upper.slice(4) : upper;
}

const CAPABILITY = /^[A-Z0-9_]+$/;

/**
 * Validates a `protectHost` section (`where` names it in errors, e.g. `policy.protectHost`) and
 * resolves it. Throws a `TypeError` (`ERR_DSF_INVALID_OPTION`) naming the bad key or entry.
 *
 * @example
 * ```ts
 * resolveProtectHost({ allowCapabilities: ['NET_ADMIN'] }, 'protectHost', 'options').capabilities; // Set { 'NET_ADMIN' }
 * ```
 */
export function resolveProtectHost(section: unknown, where: string, naming: 'env' | 'options'): HostSettings {
  if (typeof section !== 'object' || section === null || Array.isArray(section)) invalid(where, 'must be an object');
  const given = section as Record<string, unknown>;
  for (const key of Object.keys(given)) if (!KEYS.has(key)) invalid(`${where}.${key}`, 'is not a known option');
  const switches = {} as Record<HostSwitch, boolean>;
  for (const name of Object.keys(HOST_SWITCHES) as HostSwitch[]) {
    const value = given[name] ?? false;
    if (typeof value !== 'boolean') invalid(`${where}.${name}`, 'must be true or false');
    switches[name] = value;
  }
  const list = (name: string): readonly unknown[] => {
    const value = given[name] ?? [];
    if (!Array.isArray(value)) invalid(`${where}.${name}`, 'must be an array of strings');
    return value;
  };
  const capabilities = new Set<string>();
  list('allowCapabilities').forEach((entry, index) => {
    if (typeof entry !== 'string' || !CAPABILITY.test(normalizeCapability(entry)) || normalizeCapability(entry) === '') {
      invalid(`${where}.allowCapabilities[${index}]`, 'must be a capability name such as NET_ADMIN (or ALL)');
    }
    capabilities.add(normalizeCapability(entry));
  });
  const paths = (name: string): string[] =>
    list(name).map((entry, index) => {
      if (typeof entry !== 'string') invalid(`${where}.${name}[${index}]`, 'must be an absolute path');
      const cleaned = cleanAbsolutePath(entry);
      if (typeof cleaned !== 'string') invalid(`${where}.${name}[${index}]`, `(${JSON.stringify(entry)}) ${cleaned.why}; give an absolute path`);
      return cleaned;
    });
  const bindMounts = paths('allowBindMounts');
  const dockerSockets = given.dockerSockets === undefined ? [...DEFAULT_DOCKER_SOCKETS] : paths('dockerSockets');
  const maxBodyBytes = given.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (typeof maxBodyBytes !== 'number' || !Number.isInteger(maxBodyBytes) || maxBodyBytes < 1024 || maxBodyBytes > 64 * 1024 * 1024) {
    invalid(`${where}.maxBodyBytes`, 'must be an integer from 1024 to 67108864');
  }
  return Object.freeze({
    switches: Object.freeze(switches),
    capabilities,
    bindMounts: Object.freeze(bindMounts),
    dockerSockets: Object.freeze(dockerSockets),
    maxBodyBytes,
    naming,
  });
}

/**
 * The frozen, plain-data form of a validated section, as a policy carries it.
 *
 * @example
 * ```ts
 * const section = normalizeProtectHost({ allowPrivileged: true }, 'protectHost');
 * ```
 */
export function normalizeProtectHost(section: unknown, where: string): ProtectHost {
  resolveProtectHost(section, where, 'options');
  const given = section as ProtectHost;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(given)) out[key] = Array.isArray(value) ? Object.freeze([...value]) : value;
  return Object.freeze(out) as ProtectHost;
}
