import { SocketFilterTypeError } from '../errors.js';
import type { SocketFilter, SocketFilterHandler } from '../filter.js';

export { mountUpgrade } from './mount.js';

/**
 * The filter's handler as Express (or Connect) middleware. `filter.handler` already is one; this
 * names the intent and checks its argument. Express strips the mount path from `req.url`, so
 * `app.use('/docker', expressSocketFilter(filter))` decides on `/v1.41/…` for a client using
 * `DOCKER_HOST=tcp://host:port/docker`. A body parser mounted before it is detected and answered with
 * a 500 instead of a request that hangs. Upgrades never reach Express: attach
 * `mountUpgrade(filter.upgrade, '/docker')` to the server's `upgrade` event.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { createSocketFilter, tecnativaPreset } from 'docker-socket-filter';
 * import { expressSocketFilter, mountUpgrade } from 'docker-socket-filter/express';
 *
 * const filter = createSocketFilter({ policy: tecnativaPreset({ CONTAINERS: '1' }) });
 * const app = express();
 * app.use('/docker', expressSocketFilter(filter));
 * const server = app.listen(8080);
 * server.requestTimeout = 0;
 * server.on('upgrade', mountUpgrade(filter.upgrade, '/docker'));
 * ```
 */
export function expressSocketFilter(filter: SocketFilter): SocketFilterHandler {
  if (typeof filter !== 'object' || filter === null || typeof filter.handler !== 'function') {
    throw new SocketFilterTypeError('ERR_DSF_INVALID_OPTION', 'The `filter` argument must be the result of `createSocketFilter()`');
  }
  return filter.handler;
}
