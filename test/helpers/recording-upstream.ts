import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';

/** One request as it reached the fake dockerd. */
export interface RecordedRequest {
  readonly method: string;
  readonly target: string;
  /** Header names in lower case, values as received (repeated headers joined with `, `). */
  readonly headers: Readonly<Record<string, string>>;
  readonly bodyLength: number;
}

/**
 * A fake dockerd on a unix socket that records every request it receives, framing included, and
 * answers each with `200 {}` on a kept-alive connection (an upgrade request gets the same answer,
 * never `101`, so everything on a connection stays HTTP and is accounted for).
 *
 * It parses strictly: a request line other than `METHOD origin-form HTTP/1.1`, a header line that
 * is not `name: value`, two Host headers, both framing headers or an invalid one, a bad chunk, or bytes after a
 * head it cannot frame are recorded in `violations` (with the raw bytes, escaped) and the
 * connection is closed. A filter that forwards something it did not decide on shows up there or
 * in `requests`.
 *
 * @example
 * ```ts
 * const upstream = await recordingUpstream(directory);
 * // point the filter's socketPath at upstream.socketPath, send traffic, then:
 * expect(upstream.violations).toEqual([]);
 * await upstream.close();
 * ```
 */
export interface RecordingUpstream {
  readonly socketPath: string;
  readonly requests: RecordedRequest[];
  readonly violations: string[];
  /** Connections currently open to the fake dockerd. */
  readonly openConnections: () => number;
  close(): Promise<void>;
}

const HEAD_END = '\r\n\r\n';
const MAX_HEAD = 64 * 1024;

function escape(bytes: string): string {
  return JSON.stringify(bytes.length > 300 ? `${bytes.slice(0, 300)}…` : bytes);
}

/**
 * Parses as many complete requests as `buffer` holds. Returns the requests, what is left, and a
 * violation message when the bytes cannot be read as HTTP/1.1 requests.
 */
function parseRequests(buffer: string): { requests: RecordedRequest[]; rest: string; violation?: string } {
  const requests: RecordedRequest[] = [];
  let rest = buffer;
  for (;;) {
    const end = rest.indexOf(HEAD_END);
    if (end === -1) {
      if (rest.length > MAX_HEAD) return { requests, rest, violation: `head over ${MAX_HEAD} bytes: ${escape(rest)}` };
      return { requests, rest };
    }
    const head = rest.slice(0, end);
    const lines = head.split('\r\n');
    const requestLine = /^([A-Z]+) (\/[\x21-\x7e]*) HTTP\/1\.1$/.exec(lines[0] ?? '');
    if (requestLine === null) return { requests, rest, violation: `bad request line: ${escape(head)}` };
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      // Field values: visible ASCII, blanks, and obs-text (bytes 0x80-0xff), as RFC 9110 allows.
      const header = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\x20-\x7e\t\x80-\xff]*?)[ \t]*$/.exec(line);
      if (header === null) return { requests, rest, violation: `bad header line ${escape(line)} in ${escape(head)}` };
      const name = (header[1] as string).toLowerCase();
      headers[name] = headers[name] === undefined ? (header[2] as string) : `${headers[name]}, ${header[2]}`;
    }
    // More than one Host is a request two readers can route differently; none is merely invalid
    // (dockerd answers 400), so it is accepted here.
    if (headers.host?.includes(',') === true) {
      return { requests, rest, violation: `more than one Host header: ${escape(head)}` };
    }
    let body = rest.slice(end + HEAD_END.length);
    let bodyLength = 0;
    const contentLength = headers['content-length'];
    const transferEncoding = headers['transfer-encoding'];
    if (contentLength !== undefined && transferEncoding !== undefined) {
      return { requests, rest, violation: `Content-Length and Transfer-Encoding: ${escape(head)}` };
    }
    if (contentLength !== undefined) {
      if (!/^\d+$/.test(contentLength)) return { requests, rest, violation: `bad Content-Length: ${escape(head)}` };
      bodyLength = Number(contentLength);
      if (body.length < bodyLength) return { requests, rest };
      body = body.slice(bodyLength);
    } else if (transferEncoding !== undefined) {
      // Only a final `chunked` frames the body (dockerd answers 501 to any other coding before it).
      if (transferEncoding.split(',').at(-1)?.trim().toLowerCase() !== 'chunked') {
        return { requests, rest, violation: `Transfer-Encoding not ending with chunked: ${escape(head)}` };
      }
      // Chunks: hex size CRLF, data CRLF; the last is 0 CRLF (no trailers from Node's client) CRLF.
      let offset = 0;
      for (;;) {
        const lineEnd = body.indexOf('\r\n', offset);
        if (lineEnd === -1) return { requests, rest };
        const sizeText = body.slice(offset, lineEnd);
        if (!/^[0-9a-fA-F]{1,8}$/.test(sizeText)) return { requests, rest, violation: `bad chunk size ${escape(sizeText)}` };
        const size = Number.parseInt(sizeText, 16);
        const dataStart = lineEnd + 2;
        if (size === 0) {
          if (body.length < dataStart + 2) return { requests, rest };
          if (body.slice(dataStart, dataStart + 2) !== '\r\n') return { requests, rest, violation: 'trailers after the last chunk' };
          offset = dataStart + 2;
          break;
        }
        if (body.length < dataStart + size + 2) return { requests, rest };
        if (body.slice(dataStart + size, dataStart + size + 2) !== '\r\n') return { requests, rest, violation: 'chunk not followed by CRLF' };
        bodyLength += size;
        offset = dataStart + size + 2;
      }
      body = body.slice(offset);
    }
    requests.push({ method: requestLine[1] as string, target: requestLine[2] as string, headers, bodyLength });
    rest = body;
  }
}

const ANSWER = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}';
const ANSWER_HEAD = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n';
const ANSWER_AND_CLOSE = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}';

/**
 * Starts a recording fake dockerd listening on `<directory>/<name>`.
 *
 * @example
 * ```ts
 * const upstream = await recordingUpstream('/tmp/dsf-x', 'recorder.sock');
 * ```
 */
export async function recordingUpstream(directory: string, name = 'recorder.sock'): Promise<RecordingUpstream> {
  const socketPath = join(directory, name);
  const sockets = new Set<Socket>();
  const requests: RecordedRequest[] = [];
  const violations: string[] = [];
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffer = '';
    let upgraded = false;
    socket.on('data', (chunk: Buffer) => {
      if (upgraded) {
        // dockerd closes after answering an upgrade it does not hijack; had it hijacked, these
        // bytes would be stream data. Either way a filter must not send them before the answer.
        violations.push(`bytes after an upgrade request: ${escape(chunk.toString('latin1'))}`);
        socket.destroy();
        return;
      }
      buffer += chunk.toString('latin1');
      const parsed = parseRequests(buffer);
      buffer = parsed.rest;
      for (const [index, request] of parsed.requests.entries()) {
        requests.push(request);
        if (request.headers.upgrade !== undefined) {
          upgraded = true;
          const after = parsed.requests.length - index - 1;
          if (after > 0 || buffer.length > 0) {
            violations.push(`bytes after an upgrade request: ${after} requests, ${escape(buffer)}`);
            socket.destroy();
            return;
          }
          socket.end(ANSWER_AND_CLOSE);
          return;
        }
        // A HEAD answer has no body: the `{}` would be read as the start of the next response.
        socket.write(request.method === 'HEAD' ? ANSWER_HEAD : ANSWER);
      }
      if (parsed.violation !== undefined) {
        violations.push(parsed.violation);
        socket.destroy();
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  return {
    socketPath,
    requests,
    violations,
    openConnections: () => sockets.size,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
