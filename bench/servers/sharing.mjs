// Two filter processes sharing a TCP port and a unix socket, in one of the ways node:cluster and
// the kernel offer, to choose the CLI's (bench/workers.ts). `single` is one process, for scale.
// Usage: node bench/servers/sharing.mjs MODE SOCKET_PATH PORT UNIX_PATH
//   MODE: single | reuseport (TCP: SO_REUSEPORT per worker; unix: the primary's round robin)
//         | cluster-rr (both through the primary, round robin) | cluster-none (both: one shared
//         socket every worker accepts from)
// Prints {"ready":true} once every worker listens.
import cluster from 'node:cluster';
import { createFilterServer, createSocketFilter, tecnativaPreset } from '../../dist/index.js';

const [mode, socketPath, port, unixPath] = process.argv.slice(2);
if (mode === 'cluster-none') cluster.schedulingPolicy = cluster.SCHED_NONE;
else cluster.schedulingPolicy = cluster.SCHED_RR;
const WORKERS = 2;

if (cluster.isPrimary && mode !== 'single') {
  let ready = 0;
  for (let i = 0; i < WORKERS; i++) {
    cluster.fork().on('message', (message) => {
      if (message === 'ready' && ++ready === WORKERS) process.stdout.write('{"ready":true}\n');
    });
  }
  const stop = () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill('SIGTERM');
    setTimeout(() => process.exit(0), 500);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  const filter = createSocketFilter({ policy: tecnativaPreset({}), socketPath });
  const tcp = createFilterServer(filter);
  const unix = createFilterServer(filter);
  let listening = 0;
  const ready = () => {
    if (++listening < 2) return;
    if (process.send) process.send('ready');
    else process.stdout.write('{"ready":true}\n');
  };
  tcp.listen({ host: '127.0.0.1', port: Number(port), reusePort: mode === 'reuseport', backlog: 4096 }, ready);
  unix.listen({ path: unixPath, backlog: 4096 }, ready);
  process.on('SIGTERM', () => process.exit(0));
}
