import { connect, type NetConnectOpts } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createSocketFilter, tecnativaPreset } from '../../src/index.js';
import { ALL_GRANTED, createContainer, dockerRequest, removeContainer } from '../helpers/fixtures.js';
import { serve, type ServedFilter } from '../helpers/filter-server.js';

// The hijack without Upgrade headers, as older Docker clients and Podman's own client send it:
// `POST /exec/<id>/start` with a body and nothing else. dockerd answers `200 OK` with
// `Content-Type: application/vnd.docker.raw-stream`, no length, no chunking, and owns the
// connection from then on: the client writes stdin on it and reads the raw stream until dockerd
// closes. Through the guard the client must see the same bytes as direct.

const socketPath = inject('dockerSocket');

interface Hijacked {
  readonly statusLine: string;
  readonly headers: Record<string, string>;
  /** Everything after the head, as received. */
  readonly body: string;
  readonly closed: boolean;
}

/**
 * Sends `request`, waits for the response head and the process's first line, then writes `input` (and half-closes when asked),
 * and reads until the server closes (or `timeoutMs`).
 */
function hijack(to: NetConnectOpts, request: string, input: string, halfClose: boolean, timeoutMs = 10_000): Promise<Hijacked> {
  return new Promise((resolve, reject) => {
    const socket = connect(to);
    let received = Buffer.alloc(0);
    let wroteInput = false;
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const text = received.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const head = end === -1 ? text : text.slice(0, end);
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers = Object.fromEntries(
        lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
      );
      resolve({ statusLine, headers, body: end === -1 ? '' : text.slice(end + 4), closed });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      // Input once the process has started writing: what comes first is then the same direct and
      // through the guard, not a race between the process's first line and a tty's echo.
      if (!wroteInput && received.includes('\r\n\r\n') && received.includes('first')) {
        wroteInput = true;
        if (halfClose) socket.end(input);
        else socket.write(input);
      }
    });
    socket.on('close', () => finish(true));
    socket.on('error', (error) => (received.length > 0 ? finish(true) : reject(error)));
    socket.once('connect', () => socket.write(request));
  });
}

/**
 * Removes the per-request headers, and reads a multiplexed body as what each stream carried: how
 * dockerd cuts its output into frames depends on timing (how much the process wrote before dockerd
 * read its pipe), not on the path the bytes took.
 */
function comparable(answer: Hijacked, multiplexed: boolean) {
  const { date: _date, ...headers } = answer.headers;
  if (!multiplexed) return { ...answer, headers };
  const bytes = Buffer.from(answer.body, 'latin1');
  const streams: Record<number, string> = {};
  let offset = 0;
  while (offset + 8 <= bytes.length) {
    const stream = bytes[offset] as number;
    const length = bytes.readUInt32BE(offset + 4);
    streams[stream] = (streams[stream] ?? '') + bytes.subarray(offset + 8, offset + 8 + length).toString('latin1');
    offset += 8 + length;
  }
  return { ...answer, headers, body: { streams, trailing: bytes.length - offset } };
}

describe('an exec start without Upgrade headers through the guard', () => {
  let guard: ServedFilter;
  let container: string;
  beforeAll(async () => {
    guard = await serve(createSocketFilter({ policy: tecnativaPreset(ALL_GRANTED), socketPath }));
    container = await createContainer(socketPath, ['sleep', '300'], { start: true });
  });
  afterAll(async () => {
    await removeContainer(socketPath, container);
    await guard?.close();
  });

  const startRequest = async (tty: boolean): Promise<string> => {
    const created = await dockerRequest(socketPath, 'POST', `/containers/${container}/exec`, {
      // With a tty, dockerd ends the session when stdin ends: the process reads one line instead.
      Cmd: ['sh', '-c', tty ? 'echo first; read line; echo "got $line"; echo last' : 'echo first; cat; echo last'],
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Tty: tty,
    });
    const id = (JSON.parse(created.body) as { Id: string }).Id;
    const body = JSON.stringify({ Detach: false, Tty: tty });
    return `POST /v1.41/exec/${id}/start HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  };

  it.each([
    ['multiplexed (no tty), stdin half-closed', false],
    ['raw (tty), stdin left open', true],
  ])('%s: the raw stream, stdin included, is what dockerd sends direct', async (_label, tty) => {
    const direct = await hijack({ path: socketPath }, await startRequest(tty), 'through stdin\n', !tty);
    // The control: dockerd hijacks with 200, the stream carries stdin's echo, then closes.
    expect(direct.statusLine).toBe('HTTP/1.1 200 OK');
    expect(direct.headers['content-type']).toBe('application/vnd.docker.raw-stream');
    expect(direct.body).toContain('through stdin');
    expect(direct.body).toContain('last');
    expect(direct.closed).toBe(true);
    const through = await hijack({ host: '127.0.0.1', port: guard.port }, await startRequest(tty), 'through stdin\n', !tty);
    expect(comparable(through, !tty)).toEqual(comparable(direct, !tty));
  });
});
