import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { SocketFilterTypeError } from '../errors.js';
import type { SocketFilterUpgradeHandler } from '../filter.js';

/**
 * Frameworks strip their mount path from `req.url` for requests, but never see upgrades: those reach
 * `server.on('upgrade')` with the full path. This wraps a filter's `upgrade` so an upgrade under
 * `mountPath` is decided without the prefix, exactly like the requests the framework hands over.
 * An upgrade outside `mountPath` is not ours: it is answered 404 and closed, never forwarded.
 *
 * @example
 * ```ts
 * const app = express();
 * app.use('/docker', filter.handler);
 * const server = app.listen(8080);
 * server.on('upgrade', mountUpgrade(filter.upgrade, '/docker'));
 * ```
 */
export function mountUpgrade(upgrade: SocketFilterUpgradeHandler, mountPath: string): SocketFilterUpgradeHandler {
  if (typeof upgrade !== 'function') {
    throw new SocketFilterTypeError('ERR_DSF_INVALID_OPTION', 'The `upgrade` argument must be a filter\'s upgrade handler');
  }
  if (typeof mountPath !== 'string' || !/^(\/[A-Za-z0-9._~-]+)+$/.test(mountPath)) {
    throw new SocketFilterTypeError(
      'ERR_DSF_INVALID_OPTION',
      'The `mountPath` option must be a path such as "/docker" (segments of letters, digits, ".", "_", "~", "-"; no trailing slash)',
    );
  }
  const prefix = mountPath + '/';
  return (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = req.url ?? '';
    if (!url.startsWith(prefix)) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: 29\r\n\r\n{"message":"page not found"}\n');
      return;
    }
    req.url = url.slice(mountPath.length);
    upgrade(req, socket, head);
  };
}
