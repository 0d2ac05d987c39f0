// Reference points for the small-request numbers, not products: what Node's http module costs on
// this machine without any filter.
//   hello   answers every request itself with 200 "OK" (Node's http server alone: a ceiling)
//   hold    answers `GET …/events` with a chunked head and holds the response open, everything else
//           like hello: what Node's http server alone costs in memory per open response (the floor
//           under any Node filter's RSS with idle event streams)
// Usage: node bench/servers/reference.mjs hello|hold SOCKET_PATH PORT
import http from 'node:http';

const [mode, , port = '0'] = process.argv.slice(2);
let server;
if (mode === 'hold') {
  server = http.createServer((req, res) => {
    if (req.url.includes('/events')) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 2 });
    res.end('OK');
  });
} else if (mode === 'hello') {
  server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 2 });
    res.end('OK');
  });
} else {
  process.stderr.write('usage: node bench/servers/reference.mjs hello|hold SOCKET_PATH PORT\n');
  process.exit(2);
}
server.listen(Number(port), '127.0.0.1');
const stop = () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1_000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
