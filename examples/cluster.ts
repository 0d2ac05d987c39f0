// Every core: one filter per process, node:cluster sharing the port (the CLI's `--workers` does
// the same, with more care: see docs/cli.md#workers---workers).
// Run: CONTAINERS=1 WORKERS=2 SOCKET_PATH=/var/run/docker.sock npx tsx examples/cluster.ts
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { createFilterServer, createSocketFilter, tecnativaPreset } from 'docker-socket-filter';

const workers = Number(process.env.WORKERS ?? availableParallelism());

if (cluster.isPrimary) {
  let listening = 0;
  cluster.on('listening', (_worker, address) => {
    if (++listening === workers) console.log(`listening on ${address.port}`);
  });
  for (let i = 0; i < workers; i++) cluster.fork();
  // One stop for all: each worker is told once (a Ctrl-C reaches the whole process group, and
  // the workers ignore their own copy), and the primary leaves when the last one has.
  const stop = (): void => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.send('stop');
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  cluster.on('exit', () => {
    if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
  });
} else {
  const filter = createSocketFilter({
    socketPath: process.env.SOCKET_PATH ?? '/var/run/docker.sock',
    // The environment is every worker's, so every worker compiles the same policy. (From a file:
    // read it once in the primary with readConfigText, send the text, parseConfigFile it here.)
    policy: tecnativaPreset(process.env),
    // The pool bound is per filter: share the guard's between the workers.
    maxUpstreamConnections: Math.floor(512 / workers),
  });
  // createFilterServer: no request timeout (uploads), a header timeout, upgrades (exec, attach).
  const server = createFilterServer(filter);
  server.listen(Number(process.env.PORT ?? 2375), process.env.HOST ?? '127.0.0.1');
  process.on('SIGTERM', () => undefined);
  process.on('SIGINT', () => undefined);
  process.on('message', (message) => {
    if (message !== 'stop') return;
    server.close();
    server.closeAllConnections();
    // Ends hijacked streams and open responses (events, logs -f) that server.close() does not.
    void filter.close().then(() => process.exit(0));
  });
}
