// The filter embedded as a library, as a README user would: one http server, `handler` and `upgrade`.
// Started by bench/run.ts in its own process, so the load generator does not share its event loop.
// Usage: node bench/servers/library.mjs SOCKET_PATH [PORT [MAX_UPSTREAM_CONNECTIONS]]  -> prints {"port":N} once listening.
import http from 'node:http';
import { createSocketFilter, tecnativaPreset } from '../../dist/index.js';

const [socketPath, port = '0', maxUpstream = '512'] = process.argv.slice(2);
if (socketPath === undefined) {
  process.stderr.write('usage: node bench/servers/library.mjs SOCKET_PATH [PORT]\n');
  process.exit(2);
}

const filter = createSocketFilter({
  policy: tecnativaPreset({ CONTAINERS: '1', IMAGES: '1', POST: '1' }),
  socketPath,
  // bench/run.ts passes UPSTREAM_FOR_STREAMS (bench/lib/processes.ts): above the events streams it holds.
  maxUpstreamConnections: Number(maxUpstream),
});
const server = http.createServer({ requestTimeout: 0 }, filter.handler);
server.on('upgrade', filter.upgrade);
server.listen(Number(port), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});

// `kill -USR2 <pid>`: one line with process.memoryUsage() (MB) on stdout, to tell heap from the rest of RSS.
process.on('SIGUSR2', () => {
  const usage = Object.fromEntries(Object.entries(process.memoryUsage()).map(([key, bytes]) => [key, Math.round(bytes / 1e5) / 10]));
  process.stdout.write(`${JSON.stringify({ memoryMb: usage })}\n`);
});

// A normal exit (not a signal death) so `node --cpu-prof` writes its profile.
const stop = () => {
  server.closeAllConnections();
  server.close();
  void filter.close().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 2_000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
