import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

/**
 * A TCP relay on 127.0.0.1 whose connections reach `target` from another loopback source address
 * (`127.0.0.2`, `127.0.0.3`: on Linux all of 127.0.0.0/8 is the loopback interface's). The docker
 * CLI cannot choose its source address, and connecting to 127.0.0.2 still uses source 127.0.0.1,
 * so this is how a test gets two clients a guard tells apart by address.
 *
 * @example
 * ```ts
 * const relay = await loopbackRelay('127.0.0.2', { host: '127.0.0.1', port: guardPort });
 * dockerCli(`tcp://127.0.0.1:${relay.port}`); // the guard sees 127.0.0.2
 * await relay.close();
 * ```
 */
export async function loopbackRelay(
  localAddress: string,
  target: { host: string; port: number },
): Promise<{ readonly port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const keep = (socket: Socket): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };
  // allowHalfOpen on both sockets: otherwise Node ends a socket's writable side as soon as its
  // peer's FIN arrives, and what dockerd sends after the docker CLI closed its stdin is lost.
  const server = createServer({ allowHalfOpen: true }, (client) => {
    keep(client);
    const upstream = connect({ ...target, localAddress, allowHalfOpen: true });
    keep(upstream);
    // Half-closes pass through (docker's hijacked stdin ends that way); an error or a close on
    // either side ends both.
    client.pipe(upstream);
    upstream.pipe(client);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.once('error', end);
    upstream.once('error', end);
    client.once('close', end);
    upstream.once('close', end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  server.unref();
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

/**
 * Reads Prometheus' text exposition format into samples: `name{labels} value` lines, comments
 * skipped. Enough for the guard's own metrics (no escaped quotes in its label values).
 *
 * @example
 * ```ts
 * const samples = parsePrometheus(text);
 * samples.find((s) => s.name === 'up')?.value;
 * ```
 */
export function parsePrometheus(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1] as string] = (pair[2] as string).replace(/\\(.)/g, (_all, c: string) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return samples;
}
