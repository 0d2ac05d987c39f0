// A Koa app serving a guarded, read-only Docker API at its root.
// Run: SOCKET_PATH=/var/run/docker.sock PORT=2375 npx tsx examples/koa.ts
// Then: DOCKER_HOST=tcp://127.0.0.1:2375 docker ps
import Koa from 'koa';
import { createSocketFilter, tecnativaPreset } from 'docker-socket-filter';
import { koaSocketFilter } from 'docker-socket-filter/koa';

const filter = createSocketFilter({
  socketPath: process.env.SOCKET_PATH ?? '/var/run/docker.sock',
  policy: tecnativaPreset({ CONTAINERS: '1', EXEC: '1', POST: '1' }),
});

const app = new Koa();
app.use(async (ctx, next) => {
  const started = Date.now();
  await next(); // settles when the filter's response is over
  console.log(`${ctx.method} ${ctx.url} ${ctx.res.statusCode} ${Date.now() - started}ms`);
});
app.use(koaSocketFilter(filter));

const server = app.listen(Number(process.env.PORT ?? 2375), '127.0.0.1', () => {
  const address = server.address();
  console.log(`listening on ${typeof address === 'object' && address ? address.port : address}`);
});
server.requestTimeout = 0;
server.on('upgrade', filter.upgrade); // Koa never sees upgrades
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void filter.close();
});
