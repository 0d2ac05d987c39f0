import { connect } from 'node:net';

/**
 * What came back on one raw connection.
 */
export interface RawExchange {
  readonly text: string;
  readonly bytes: Buffer;
  /** The status code of every response head seen, in order. */
  readonly statuses: number[];
  /** `true` when the server closed the connection; `false` when `timeoutMs` ran out first. */
  readonly closed: boolean;
}

/**
 * Writes `payload` (one write, or one per element, `gapMs` apart) to 127.0.0.1:`port` and collects
 * everything the server sends until it closes the connection or `timeoutMs` passes.
 *
 * @example
 * ```ts
 * const { statuses } = await rawExchange(port, 'GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
 * ```
 */
export function rawExchange(
  port: number,
  payload: string | Buffer | readonly (string | Buffer)[],
  options: { timeoutMs?: number; gapMs?: number; until?: (text: string) => boolean } = {},
): Promise<RawExchange> {
  const parts = Array.isArray(payload) ? payload : [payload];
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const bytes = Buffer.concat(chunks);
      const text = bytes.toString('latin1');
      const statuses = [...text.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((match) => Number(match[1]));
      resolve({ text, bytes, statuses, closed });
    };
    const timer = setTimeout(() => finish(false), options.timeoutMs ?? 5_000);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (options.until?.(Buffer.concat(chunks).toString('latin1')) === true) finish(false);
    });
    socket.on('close', () => finish(true));
    socket.on('error', (error) => {
      if (chunks.length > 0) finish(true);
      else if (!done) {
        done = true;
        clearTimeout(timer);
        reject(error);
      }
    });
    socket.once('connect', async () => {
      for (const [index, part] of parts.entries()) {
        if (index > 0 && options.gapMs !== undefined) await new Promise((r) => setTimeout(r, options.gapMs));
        if (!socket.destroyed) socket.write(part);
      }
    });
  });
}

/**
 * A request head (and body) as raw text; `Host` is added.
 *
 * @example
 * ```ts
 * httpRequest('POST', '/v1.41/containers/x/kill', { 'Content-Length': '0' });
 * ```
 */
export function httpRequest(method: string, target: string, headers: Record<string, string> = {}, body = ''): string {
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: docker', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}
