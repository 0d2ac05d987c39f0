import { SocketFilterTypeError } from '../errors.js';
import { cleanAbsolutePath, DEFAULT_DOCKER_SOCKETS, HOST_LISTS, HOST_SWITCHES, normalizeCapability } from '../policy/host/settings.js';
import type { ProtectHost } from '../policy/types.js';
import type { EnvLike } from './env.js';

/**
 * `PROTECT_HOST` and the `ALLOW_*` variables that re-open its checks, shared by both presets.
 */

/**
 * The switches both presets read for `protectHost`, all default `0`. Kept apart from each preset's
 * own defaults (`TECNATIVA_DEFAULTS` lists exactly the original's variables).
 *
 * @example
 * ```ts
 * HOST_DEFAULTS.PROTECT_HOST; // false
 * ```
 */
export const HOST_DEFAULTS: Readonly<Record<string, boolean>> = Object.freeze(
  Object.fromEntries(['PROTECT_HOST', ...Object.values(HOST_SWITCHES)].map((name) => [name, false])),
);

const CAPABILITY = /^[A-Z0-9_]+$/;

function invalidList(name: string, value: string, message: string): never {
  throw new SocketFilterTypeError('ERR_DSF_INVALID_ENV', `\`${name}=${value}\` is not understood: ${message}`);
}

/**
 * A comma-separated list variable: unset or empty is the empty list; blanks around entries are
 * ignored, an empty entry (`a,,b`) is refused.
 *
 * @example
 * ```ts
 * readList({ ALLOW_CAPABILITIES: 'NET_ADMIN, SYS_TIME' }, 'ALLOW_CAPABILITIES'); // ['NET_ADMIN', 'SYS_TIME']
 * ```
 */
export function readList(env: EnvLike, name: string): string[] {
  const value: unknown = env[name];
  if (value === undefined || value === '') return [];
  if (typeof value !== 'string') throw new SocketFilterTypeError('ERR_DSF_INVALID_ENV', `\`${name}\` must be a comma-separated string`);
  const entries = value.split(',').map((entry) => entry.trim());
  entries.forEach((entry, index) => {
    if (entry === '') invalidList(name, value, `entry ${index + 1} is empty`);
  });
  return entries;
}

/**
 * The `protectHost` section the variables describe, or undefined without `PROTECT_HOST=1`. The
 * list variables are validated either way, so a typo fails at start-up; the `ALLOW_*` switches
 * have no effect without `PROTECT_HOST=1`. `SOCKET_PATH` joins the sockets a bind must not expose.
 *
 * @example
 * ```ts
 * protectHostFromEnv({ PROTECT_HOST: '1', ALLOW_BIND_MOUNTS: '/srv' }, settings).allowBindMounts; // ['/srv']
 * ```
 */
export function protectHostFromEnv(env: EnvLike, settings: Readonly<Record<string, boolean>>): ProtectHost | undefined {
  const capabilities = readList(env, HOST_LISTS.allowCapabilities);
  capabilities.forEach((entry, index) => {
    if (!CAPABILITY.test(normalizeCapability(entry))) {
      invalidList(HOST_LISTS.allowCapabilities, env[HOST_LISTS.allowCapabilities] ?? '', `entry ${index + 1} (${JSON.stringify(entry)}) is not a capability name such as NET_ADMIN or ALL`);
    }
  });
  const bindMounts = readList(env, HOST_LISTS.allowBindMounts).map((entry, index) => {
    const cleaned = cleanAbsolutePath(entry);
    if (typeof cleaned !== 'string') {
      invalidList(HOST_LISTS.allowBindMounts, env[HOST_LISTS.allowBindMounts] ?? '', `entry ${index + 1} (${JSON.stringify(entry)}) ${cleaned.why}; list absolute host directories such as /srv,/opt/appdata`);
    }
    return cleaned;
  });
  if (!settings.PROTECT_HOST) return undefined;
  const socketPath = env.SOCKET_PATH;
  const sockets = new Set(DEFAULT_DOCKER_SOCKETS);
  if (typeof socketPath === 'string' && socketPath !== '') {
    const cleaned = cleanAbsolutePath(socketPath);
    if (typeof cleaned === 'string') sockets.add(cleaned);
  }
  const section: Record<string, unknown> = {};
  for (const [key, variable] of Object.entries(HOST_SWITCHES)) section[key] = settings[variable] === true;
  section.allowCapabilities = Object.freeze(capabilities);
  section.allowBindMounts = Object.freeze(bindMounts);
  section.dockerSockets = Object.freeze([...sockets]);
  return Object.freeze(section) as ProtectHost;
}

