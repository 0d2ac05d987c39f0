import { request } from 'node:http';
import { BUSYBOX_IMAGE, dockerRequest } from './dockerd.js';

/** One answer, with its head as sent (names as spelled, in order). */
export interface Answer {
  readonly status: number;
  readonly rawHeaders: readonly string[];
  readonly body: string;
}

/**
 * One request to the filter (`port`) or straight to dockerd (`socketPath`), its whole answer.
 *
 * @example
 * ```ts
 * const answer = await ask({ port }, 'GET', '/v1.41/containers/web/json');
 * ```
 */
export function ask(
  to: { readonly port: number } | { readonly socketPath: string },
  method: string,
  path: string,
  options: { body?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.body !== undefined) {
      headers['Content-Type'] ??= 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(options.body));
    }
    const target = 'port' in to ? { host: '127.0.0.1', port: to.port } : { socketPath: to.socketPath };
    const req = request({ ...target, method, path, headers, agent: false, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

/**
 * An answer's head and body as a comparable text: dockerd's own headers (what a Docker client can
 * see of dockerd), `Date` left out.
 */
export function shape(answer: Answer, headers: 'dockerd' | 'all' = 'dockerd'): string {
  const keep = new Set(['api-version', 'content-type', 'docker-experimental', 'ostype', 'server', 'content-length']);
  const lines: string[] = [`${answer.status}`];
  for (let index = 0; index + 1 < answer.rawHeaders.length; index += 2) {
    const name = answer.rawHeaders[index] as string;
    if (name.toLowerCase() === 'date') continue;
    if (headers === 'dockerd' && !keep.has(name.toLowerCase())) continue;
    lines.push(`${name}: ${answer.rawHeaders[index + 1] as string}`);
  }
  return `${lines.join('\n')}\n\n${answer.body}`;
}

/**
 * Creates a container straight on dockerd with labels, environment and binds, started or not.
 */
export async function createLabelled(
  socketPath: string,
  options: {
    name: string;
    labels?: Record<string, string>;
    env?: string[];
    binds?: string[];
    cmd?: string[];
    start?: boolean;
  },
): Promise<string> {
  const created = await dockerRequest(socketPath, 'POST', `/containers/create?name=${encodeURIComponent(options.name)}`, {
    Image: BUSYBOX_IMAGE,
    Cmd: options.cmd ?? ['sleep', '600'],
    Env: options.env ?? [],
    Labels: options.labels ?? {},
    HostConfig: { NetworkMode: 'none', Binds: options.binds ?? [] },
  });
  if (created.status !== 201) throw new Error(`create failed: ${created.status} ${created.body}`);
  const id = (JSON.parse(created.body) as { Id: string }).Id;
  if (options.start !== false) {
    const started = await dockerRequest(socketPath, 'POST', `/containers/${id}/start`);
    if (started.status !== 204) throw new Error(`start failed: ${started.status} ${started.body}`);
  }
  return id;
}
