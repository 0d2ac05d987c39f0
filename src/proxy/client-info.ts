import type { ClientInfo } from '../policy/types.js';

/**
 * The listener name of each connection a filter server accepted, set by `createFilterServer`'s
 * `listener` option. Kept beside the socket, not on it: nothing a client sends can set it.
 */
const listenerNames = new WeakMap<object, string>();
/** The `ClientInfo` of each connection, built once: a connection carries many requests. */
const infos = new WeakMap<object, ClientInfo>();

/**
 * Records the listener a connection came in on.
 *
 * @example
 * ```ts
 * server.on('connection', (socket) => nameConnection(socket, 'ro'));
 * ```
 */
export function nameConnection(socket: object, listener: string): void {
  listenerNames.set(socket, listener);
  infos.delete(socket);
}

/**
 * Who is on the other end of `socket`, as the connection says: its peer address (never a header
 * such as `X-Forwarded-For`) and the listener it was accepted on. IPv4-mapped IPv6 addresses
 * (`::ffff:172.25.0.2`, what a dual-stack listener reports) are given as IPv4.
 *
 * @example
 * ```ts
 * filter.evaluate(req.method, req.url, { client: clientOf(req.socket) });
 * ```
 */
export function clientOf(socket: object): ClientInfo {
  let info = infos.get(socket);
  if (info !== undefined) return info;
  const remote = (socket as { remoteAddress?: unknown }).remoteAddress;
  const address =
    typeof remote === 'string' && remote !== '' ? (remote.startsWith('::ffff:') && remote.includes('.') ? remote.slice(7) : remote) : undefined;
  const listener = listenerNames.get(socket);
  info = Object.freeze({ ...(address !== undefined ? { address } : {}), ...(listener !== undefined ? { listener } : {}) });
  // Only a connected socket's address is final: one read before that would be kept empty.
  if (address !== undefined || listener !== undefined) infos.set(socket, info);
  return info;
}
