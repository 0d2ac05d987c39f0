// Large bodies both ways (`images/<id>/get`, `images/load`) and many idle `events` streams.
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { request, type RequestOptions } from 'node:http';
import { connect, type Socket } from 'node:net';

/** Where a transfer goes: a TCP port on loopback, or a unix socket. */
export type Endpoint = { readonly kind: 'tcp'; readonly port: number } | { readonly kind: 'unix'; readonly socketPath: string };

function requestOptions(endpoint: Endpoint, method: string, path: string): RequestOptions {
  return endpoint.kind === 'tcp'
    ? { host: '127.0.0.1', port: endpoint.port, method, path, agent: false }
    : { socketPath: endpoint.socketPath, method, path, agent: false };
}

/** One transfer: bytes moved, seconds from the request to the end of the response, MB/s. */
export interface Transfer {
  readonly bytes: number;
  readonly seconds: number;
  readonly mbPerSecond: number;
}

/** Downloads `path` (discarding the body) and times it; bounded by `timeoutMs`. */
export function download(endpoint: Endpoint, path: string, timeoutMs: number): Promise<Transfer> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const req = request(requestOptions(endpoint, 'GET', path), (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      res.on('end', () => {
        clearTimeout(timer);
        if (res.statusCode !== 200) {
          reject(new Error(`GET ${path} answered ${res.statusCode}`));
          return;
        }
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        resolve({ bytes, seconds, mbPerSecond: bytes / 1e6 / seconds });
      });
      res.on('error', reject);
    });
    const timer = setTimeout(() => req.destroy(new Error(`GET ${path} took longer than ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.end();
  });
}

/**
 * Uploads `file` as the body of `POST path` (Content-Length framing) and waits for the end of the
 * response; dockerd's `images/load` answers with a JSON progress stream, checked for `errorDetail`.
 */
export async function upload(endpoint: Endpoint, path: string, file: string, timeoutMs: number): Promise<Transfer> {
  const { size } = await stat(file);
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const options = requestOptions(endpoint, 'POST', path);
    options.headers = { 'Content-Type': 'application/x-tar', 'Content-Length': size };
    const req = request(options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body = (body + chunk).slice(-4096);
      });
      res.on('end', () => {
        clearTimeout(timer);
        if (res.statusCode !== 200 || body.includes('errorDetail')) {
          reject(new Error(`POST ${path} answered ${res.statusCode}: ${body}`));
          return;
        }
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        resolve({ bytes: size, seconds, mbPerSecond: size / 1e6 / seconds });
      });
      res.on('error', reject);
    });
    const timer = setTimeout(() => req.destroy(new Error(`POST ${path} took longer than ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    createReadStream(file).pipe(req);
  });
}

/**
 * The same transfer with curl (`-o /dev/null`, or `-T file` for a POST body): a C client that takes
 * less CPU from the machine than a Node one, so a 2-CPU run measures the proxy more than the client.
 */
export function curlTransfer(
  endpoint: Endpoint,
  method: 'GET' | 'POST',
  path: string,
  file: string | null,
  timeoutMs: number,
): Promise<Transfer> {
  const url = endpoint.kind === 'tcp' ? `http://127.0.0.1:${endpoint.port}${path}` : `http://localhost${path}`;
  const args = [
    '-sS', '-o', '/dev/null', '-X', method, '--max-time', String(Math.ceil(timeoutMs / 1000)),
    '-w', '%{http_code} %{size_download} %{size_upload} %{time_total}',
    ...(endpoint.kind === 'unix' ? ['--unix-socket', endpoint.socketPath] : []),
    // A large upload would otherwise wait for `100 Continue` first.
    ...(file === null ? [] : ['-T', file, '-H', 'Expect:', '-H', 'Content-Type: application/x-tar']),
    url,
  ];
  return new Promise((resolve, reject) => {
    execFile('curl', args, { timeout: timeoutMs + 5_000 }, (error, stdout, stderr) => {
      if (error !== null) {
        reject(new Error(`curl ${method} ${path}: ${stderr || error.message}`));
        return;
      }
      const [code, down, up, seconds] = stdout.trim().split(' ').map(Number) as [number, number, number, number];
      if (code !== 200) {
        reject(new Error(`${method} ${path} answered ${code}`));
        return;
      }
      const bytes = file === null ? down : up;
      resolve({ bytes, seconds, mbPerSecond: bytes / 1e6 / seconds });
    });
  });
}

/** A set of open `GET /events` streams. */
export interface EventStreams {
  /** Streams whose response head (200) arrived. */
  readonly open: number;
  /**
   * Streams whose head arrived before any event was made: nginx (`postpone_output`) and Node's
   * http server behind http-proxy-3 send the head only with the first event.
   */
  readonly headsAtOnce: number;
  /** Streams still open now. */
  alive(): number;
  /** Remembers how much each stream has received so far (see `withEventsSinceMark`). */
  mark(): void;
  /** Streams that received body bytes (events) since the last `mark()`. */
  withEventsSinceMark(): number;
  close(): void;
}

/**
 * Opens `count` raw `GET /v1.41/events` streams to `port`, `batch` connections at a time, then
 * waits for every 200 head: first without any event (a second), then calling `nudge` (which makes
 * dockerd emit an event) until all heads arrived. Throws when a stream fails or `timeoutMs` passes.
 */
export async function openEventStreams(
  port: number,
  count: number,
  timeoutMs: number,
  nudge: () => Promise<void>,
  batch = 100,
): Promise<EventStreams> {
  const deadline = Date.now() + timeoutMs;
  const entries: { socket: Socket; head: boolean; closed: boolean; body: number; marked: number }[] = [];
  let failure: Error | undefined;
  const openOne = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      const entry = { socket, head: false, closed: false, body: 0, marked: 0 };
      entries.push(entry);
      let buffered = '';
      socket.on('error', () => undefined);
      socket.once('connect', () => {
        socket.write('GET /v1.41/events HTTP/1.1\r\nHost: docker\r\nUser-Agent: dsf-bench\r\n\r\n');
        resolve();
      });
      socket.on('close', () => {
        entry.closed = true;
        if (!entry.head) {
          failure ??= new Error(`an events stream closed before its head: ${JSON.stringify(buffered.slice(0, 200))}`);
          reject(failure);
        }
      });
      socket.on('data', (chunk: Buffer) => {
        if (entry.head) {
          entry.body += chunk.length;
          return;
        }
        buffered += chunk.toString('latin1');
        const end = buffered.indexOf('\r\n\r\n');
        if (end === -1) return;
        if (!buffered.startsWith('HTTP/1.1 200')) {
          failure ??= new Error(`an events stream answered ${JSON.stringify(buffered.slice(0, 200))}`);
          return;
        }
        entry.head = true;
        // Anything after the head is the start of the (chunked) event body.
        entry.body = buffered.length - end - 4;
        buffered = '';
      });
    });
  const heads = (): number => entries.filter((entry) => entry.head).length;
  const waitFor = async (ms: number): Promise<void> => {
    const until = Math.min(deadline, Date.now() + ms);
    while (heads() < count && failure === undefined && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
  };
  try {
    for (let opened = 0; opened < count; opened += batch) {
      await Promise.all(Array.from({ length: Math.min(batch, count - opened) }, openOne));
    }
    await waitFor(1_000);
    const headsAtOnce = heads();
    while (heads() < count && failure === undefined && Date.now() < deadline) {
      await nudge();
      await waitFor(500);
    }
    if (failure !== undefined) throw failure;
    if (heads() < count) throw new Error(`${count - heads()} of ${count} events streams got no head within ${timeoutMs} ms`);
    return {
      open: heads(),
      headsAtOnce,
      alive: () => entries.filter((entry) => !entry.closed).length,
      mark: () => {
        for (const entry of entries) entry.marked = entry.body;
      },
      withEventsSinceMark: () => entries.filter((entry) => entry.body > entry.marked).length,
      close: () => {
        for (const entry of entries) entry.socket.destroy();
      },
    };
  } catch (error) {
    for (const entry of entries) entry.socket.destroy();
    throw error;
  }
}
