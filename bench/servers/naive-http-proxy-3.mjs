// A peer, not a product: the Docker API filter a Node user writes by hand in an afternoon with
// http-proxy-3 (the maintained fork of http-proxy): an allowlist of path prefixes, with or without
// the /vX.Y version prefix, forwarded over a keep-alive agent to dockerd's socket; the rest gets 403.
// It grants what the other peers grant in the benchmark (bench/lib/processes.ts GRANTS, and the
// Tecnativa defaults EVENTS, PING, VERSION) and, like the original with POST=1, any method.
//
// What it does not do, on purpose (it is what such a filter typically looks like): percent-decoding
// or normalising the path, case folding, segment boundaries, header hygiene, upgrades.
// Usage: node bench/servers/naive-http-proxy-3.mjs SOCKET_PATH PORT
import http from 'node:http';
import { createProxyServer } from 'http-proxy-3';

const [socketPath, port = '0'] = process.argv.slice(2);
if (socketPath === undefined) {
  process.stderr.write('usage: node bench/servers/naive-http-proxy-3.mjs SOCKET_PATH PORT\n');
  process.exit(2);
}

const ALLOWED = ['/_ping', '/version', '/events', '/containers', '/images'];

const proxy = createProxyServer({ target: { socketPath }, agent: new http.Agent({ keepAlive: true }) });
proxy.on('error', (error, req, res) => {
  if (res.headersSent) res.destroy();
  else {
    res.writeHead(502, { 'Content-Type': 'text/plain' });
    res.end(`Bad gateway: ${error.message}\n`);
  }
});

const server = http.createServer((req, res) => {
  const path = req.url.replace(/^\/v[\d.]+/, '');
  if (!ALLOWED.some((prefix) => path.startsWith(prefix))) {
    res.writeHead(403, { 'Content-Type': 'text/plain' });
    res.end('Forbidden\n');
    return;
  }
  proxy.web(req, res);
});
server.listen(Number(port), '127.0.0.1');

const stop = () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1_000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
