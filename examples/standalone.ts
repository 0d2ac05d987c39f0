// The smallest deployment: a Tecnativa-compatible socket proxy on 127.0.0.1:2375.
// Run: CONTAINERS=1 SOCKET_PATH=/var/run/docker.sock npx tsx examples/standalone.ts
// Then: DOCKER_HOST=tcp://127.0.0.1:2375 docker ps
import { createServer } from 'node:http';
import { createSocketFilter, tecnativaPreset } from 'docker-socket-filter';

const filter = createSocketFilter({
  socketPath: process.env.SOCKET_PATH ?? '/var/run/docker.sock',
  // EVENTS, PING and VERSION by default; grant more with the usual variables (CONTAINERS=1, ...).
  policy: tecnativaPreset(process.env),
});

// requestTimeout: 0 — Node's default (300 s) would cut long uploads such as `docker load`.
// Streams (`events`, `logs -f`, `wait`, attach) carry no timeout of their own.
const server = createServer({ requestTimeout: 0 }, filter.handler);
// docker run/attach/exec hijack the connection: without this they are refused with 400.
server.on('upgrade', filter.upgrade);

server.listen(Number(process.env.PORT ?? 2375), process.env.HOST ?? '127.0.0.1', () => {
  const address = server.address();
  console.log(`listening on ${typeof address === 'object' && address ? address.port : address}`);
});

const shutdown = (): void => {
  server.close();
  server.closeAllConnections();
  // Ends hijacked streams and open responses (events, logs -f) that server.close() does not.
  void filter.close().then(() => process.exit(0));
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
