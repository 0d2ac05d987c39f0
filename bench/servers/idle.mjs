// Reference point for idle RSS, not a product: Node with an empty event loop apart from one
// listening `node:net` socket (the harness waits for the port). What every Node process here costs
// before it loads anything of its own.
// Usage: node bench/servers/idle.mjs idle SOCKET_PATH PORT   (SOCKET_PATH is ignored)
import net from 'node:net';

const port = Number(process.argv[4] ?? 0);
const server = net.createServer((socket) => socket.destroy());
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
