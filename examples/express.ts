// An existing Express service that also serves a guarded Docker API under /docker.
// Run: SOCKET_PATH=/var/run/docker.sock PORT=8080 npx tsx examples/express.ts
// Then: DOCKER_HOST=tcp://127.0.0.1:8080/docker docker ps
import express from 'express';
import { createSocketFilter, definePolicy, tecnativaPreset } from 'docker-socket-filter';
import { expressSocketFilter, mountUpgrade } from 'docker-socket-filter/express';

const filter = createSocketFilter({
  socketPath: process.env.SOCKET_PATH ?? '/var/run/docker.sock',
  // Read containers and events, run `docker exec`, never touch files inside containers.
  policy: definePolicy({
    extends: tecnativaPreset({ CONTAINERS: '1', EXEC: '1', POST: '1' }),
    deny: ['* /containers/*/archive', '* /containers/*/export'],
  }),
});

const app = express();
app.get('/healthz', (_req, res) => {
  res.json({ ok: true });
});
// Mount before any body parser: the filter streams request bodies to dockerd untouched.
app.use('/docker', expressSocketFilter(filter));

const server = app.listen(Number(process.env.PORT ?? 8080), '127.0.0.1', () => {
  const address = server.address();
  console.log(`listening on ${typeof address === 'object' && address ? address.port : address}`);
});
server.requestTimeout = 0; // long `docker load` uploads must not be cut after 300 s
server.on('upgrade', mountUpgrade(filter.upgrade, '/docker')); // docker exec/attach hijacks
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void filter.close();
});
