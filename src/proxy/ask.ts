import type { Agent, IncomingHttpHeaders } from 'node:http';
import { http } from '../node-http.js';
import { refusalOf, type Hold } from './held.js';

const { request } = http;

/**
 * dockerd's answer to a request the guard makes on its own behalf (a lookup an obligation needs:
 * `GET /info`, `GET /volumes/<name>`, `GET /containers/<id>/json`).
 *
 * @example
 * ```ts
 * const answer: DockerAnswer = await askDockerd(socketPath, 'GET', '/v1.41/info');
 * if (answer.status === 200) JSON.parse(answer.body.toString('utf8'));
 * ```
 */
export interface DockerAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/**
 * Options of `askDockerd`.
 *
 * @example
 * ```ts
 * const options: AskOptions = { timeoutMs: 5_000, maxBytes: 1 << 20 };
 * ```
 */
export interface AskOptions {
  /** Milliseconds for the whole exchange; then the promise rejects. Default 10 s. */
  readonly timeoutMs?: number;
  /** Largest answer body kept; a longer one rejects (a lookup answer is small). Default 4 MiB. */
  readonly maxBytes?: number;
  /**
   * A keep-alive agent for callers that look up on every request (visibility): a connection per
   * lookup costs dockerd and the guard more than the lookup. Default: a connection of its own.
   */
  readonly agent?: Agent;
  /**
   * Where the answer's bytes are counted as they arrive (the proxy's budget of held bytes, for a
   * lookup made for a client's request); one that does not fit rejects with code
   * `ERR_DSF_SATURATED`. The caller releases it when it no longer holds the answer.
   */
  readonly hold?: Hold;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_BYTES = 4 * 1024 * 1024;

/**
 * One request from the guard itself to dockerd's socket, body-less, answered whole. Used only for
 * lookups the decision needs; never for a client's request (those go through the forwarder, which
 * streams). Rejects on a connection error, a timeout, an answer over `maxBytes` or over what
 * `hold` may take, with an error whose `code` names it (`ECONNREFUSED`, `ETIMEDOUT`,
 * `ERR_DSF_ANSWER_TOO_LARGE`, `ERR_DSF_SATURATED`).
 *
 * @example
 * ```ts
 * const { status } = await askDockerd('/var/run/docker.sock', 'GET', '/v1.41/volumes/data');
 * const exists = status === 200;
 * ```
 */
export function askDockerd(socketPath: string, method: string, path: string, options: AskOptions = {}): Promise<DockerAnswer> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, agent: options.agent ?? false, headers: { Host: 'docker' } }, (res) => {
      const chunks: Buffer[] = [];
      let length = 0;
      // Rejected at once: the error `destroy` emits comes a tick later, and an answer whose last
      // chunk was refused ends before it, which would resolve with the answer cut short.
      const refuse = (error: Error): void => {
        reject(error);
        req.destroy(error);
      };
      res.on('data', (chunk: Buffer) => {
        if (req.destroyed) return;
        length += chunk.length;
        if (length > maxBytes) {
          refuse(Object.assign(new Error(`dockerd's answer to ${method} ${path} is over ${maxBytes} bytes`), { code: 'ERR_DSF_ANSWER_TOO_LARGE' }));
          return;
        }
        if (options.hold !== undefined && !options.hold.grow(chunk.length)) {
          refuse(refusalOf(options.hold, chunk.length));
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    const timer = setTimeout(() => {
      req.destroy(Object.assign(new Error(`dockerd did not answer ${method} ${path} within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    timer.unref();
    req.on('close', () => clearTimeout(timer));
    req.on('error', reject);
    req.end();
  });
}
