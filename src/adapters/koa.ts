import type { IncomingMessage, ServerResponse } from 'node:http';
import { SocketFilterTypeError } from '../errors.js';
import type { SocketFilter } from '../filter.js';

export { mountUpgrade } from './mount.js';

/**
 * The part of Koa's context this middleware uses, so Koa stays an optional peer dependency.
 *
 * @example
 * ```ts
 * const ctx: KoaContextLike = { req, res, respond: true };
 * ```
 */
export interface KoaContextLike {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  respond?: boolean;
}

/**
 * Koa middleware that hands every request to the filter: Koa does not write a response for it
 * (`ctx.respond = false`); the filter answers, streams or denies. The returned promise settles when
 * the response is over, so middleware mounted before it (timers, loggers) sees the whole request.
 * Mount it with `koa-mount` for a path prefix; attach `mountUpgrade(filter.upgrade, prefix)` (or
 * `filter.upgrade` when unmounted) to the server's `upgrade` event, which Koa never sees.
 *
 * @example
 * ```ts
 * import Koa from 'koa';
 * import { createSocketFilter, tecnativaPreset } from 'docker-socket-filter';
 * import { koaSocketFilter } from 'docker-socket-filter/koa';
 *
 * const filter = createSocketFilter({ policy: tecnativaPreset({ CONTAINERS: '1' }) });
 * const app = new Koa();
 * app.use(koaSocketFilter(filter));
 * const server = app.listen(2375);
 * server.requestTimeout = 0;
 * server.on('upgrade', filter.upgrade);
 * ```
 */
export function koaSocketFilter(filter: SocketFilter): (ctx: KoaContextLike, next?: () => Promise<unknown>) => Promise<void> {
  if (typeof filter !== 'object' || filter === null || typeof filter.handler !== 'function') {
    throw new SocketFilterTypeError('ERR_DSF_INVALID_OPTION', 'The `filter` argument must be the result of `createSocketFilter()`');
  }
  return (ctx) => {
    ctx.respond = false;
    return new Promise<void>((resolve) => {
      const { res } = ctx;
      const done = (): void => {
        res.off('finish', done);
        res.off('close', done);
        resolve();
      };
      res.on('finish', done);
      res.on('close', done);
      filter.handler(ctx.req, res, (error?: unknown) => {
        // The handler only calls `next` for what it cannot answer itself; fail closed with a 500.
        if (!res.headersSent) {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ message: error instanceof Error ? error.message : 'docker-socket-filter failed' }) + '\n');
        } else res.destroy();
      });
    });
  };
}
