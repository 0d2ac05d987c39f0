import { request } from 'node:http';

/**
 * A request the guard itself sends to dockerd (`GET /info`, `GET /volumes/<name>`): never a client's.
 */

/** How long the guard waits for dockerd's answer to its own question. */
export const ASK_TIMEOUT_MS = 5_000;
/** The largest answer read (`/info` is a few kilobytes). */
const MAX_ANSWER_BYTES = 1024 * 1024;

/**
 * dockerd's answer: its status and body.
 *
 * @example
 * ```ts
 * const answer: DockerAnswer = { status: 200, body: Buffer.from('{}') };
 * ```
 */
export interface DockerAnswer {
  readonly status: number;
  readonly body: Buffer;
}

/**
 * Sends `GET path` to dockerd's socket and resolves with its answer; rejects on a socket error, a
 * timeout or an answer over 1 MiB.
 *
 * @example
 * ```ts
 * const { status } = await askDockerd('/var/run/docker.sock', '/volumes/data');
 * ```
 */
export function askDockerd(socketPath: string, path: string, timeoutMs = ASK_TIMEOUT_MS): Promise<DockerAnswer> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method: 'GET', path, headers: { Host: 'docker' }, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_ANSWER_BYTES) req.destroy(new Error('dockerd answered with more than 1 MiB'));
        else chunks.push(chunk);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`dockerd did not answer GET ${path} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}
