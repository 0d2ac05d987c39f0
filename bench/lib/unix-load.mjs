// Keep-alive load over a unix socket (wrk speaks TCP only): C connections, one request at a time
// each, for S seconds. Run in a process of its own. Prints {"rps":…,"p99Ms":…,"errors":…}.
// Usage: node bench/lib/unix-load.mjs SOCKET PATH CONNECTIONS SECONDS
import { connect } from 'node:net';

const [socketPath, path, connections = '32', seconds = '3'] = process.argv.slice(2);
const request = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: docker\r\n\r\n`);
const latencies = [];
let errors = 0;
const started = performance.now();
const end = started + Number(seconds) * 1000;
for (let i = 0; i < Number(connections); i++) {
  const socket = connect(socketPath);
  let buffered = '';
  let sent = 0;
  const send = () => {
    if (performance.now() > end) return void socket.destroy();
    sent = performance.now();
    socket.write(request);
  };
  socket.setEncoding('latin1');
  socket.on('connect', send);
  socket.on('error', () => void (errors += 1));
  socket.on('data', (chunk) => {
    buffered += chunk;
    for (;;) {
      const head = buffered.indexOf('\r\n\r\n');
      if (head === -1) return;
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(buffered.slice(0, head))?.[1] ?? 0);
      if (buffered.length < head + 4 + length) return;
      buffered = buffered.slice(head + 4 + length);
      latencies.push(performance.now() - sent);
      send();
    }
  });
}
setTimeout(() => {
  latencies.sort((a, b) => a - b);
  const elapsed = (performance.now() - started) / 1000;
  process.stdout.write(`${JSON.stringify({ rps: latencies.length / elapsed, p99Ms: latencies[Math.floor(latencies.length * 0.99)] ?? null, errors })}\n`);
  process.exit(0);
}, Number(seconds) * 1000 + 100);
