import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSocketFilter, tecnativaPreset } from '../../src/index.js';
import { serve, type ServedFilter } from '../helpers/filter-server.js';
import {
  ALL_GRANTED,
  containerState,
  createContainer,
  dockerRequest,
  removeContainer,
} from '../helpers/fixtures.js';
import { httpRequest, rawExchange } from '../helpers/raw-http.js';
import { inject } from 'vitest';

const socketPath = inject('dockerSocket');

async function served(env: Record<string, string>): Promise<ServedFilter> {
  return serve(createSocketFilter({ policy: tecnativaPreset(env), socketPath }));
}

const UPGRADE_TCP = { Connection: 'Upgrade', Upgrade: 'tcp' };

// dockerd may still be carrying out a request that reached it when our exchange ends.
const settle = () => new Promise((resolve) => setTimeout(resolve, 500));

describe('raw sockets against the filter', () => {
  let victim: string;
  let all: ServedFilter;
  let readOnly: ServedFilter;
  beforeAll(async () => {
    victim = await createContainer(socketPath, ['sleep', '300'], { start: true });
    all = await served(ALL_GRANTED);
    readOnly = await served({ CONTAINERS: '1' });
  });
  afterAll(async () => {
    await removeContainer(socketPath, victim);
    await all.close();
    await readOnly.close();
  });

  describe('an upgrade dockerd refuses is never joined', () => {
    it.each([
      ['in the same write', 'same'],
      ['in a later write', 'later'],
    ])('a request smuggled after a refused attach, %s, never reaches dockerd', async (_label, mode) => {
      const upgrade = httpRequest('POST', '/v1.41/containers/dsf-no-such-container/attach?stream=1&stdout=1', {
        ...UPGRADE_TCP,
        'Content-Length': '0',
      });
      const smuggled =
        httpRequest('POST', `/v1.41/containers/${victim}/kill`, { 'Content-Length': '0' }) +
        httpRequest('DELETE', `/v1.41/containers/${victim}?force=1`, {});
      const exchange = await rawExchange(all.port, mode === 'same' ? upgrade + smuggled : [upgrade, smuggled], {
        gapMs: 50,
      });
      expect(exchange.statuses).toEqual([404]);
      expect(exchange.text).toMatch(/No such container/);
      expect(exchange.closed).toBe(true);
      await settle();
      expect(await containerState(socketPath, victim)).toEqual({ exists: true, running: true });
    });

    it('a request smuggled after an upgrade of an endpoint that does not hijack (200) never reaches dockerd', async () => {
      const upgrade = httpRequest('GET', '/v1.41/containers/json', UPGRADE_TCP);
      const smuggled = httpRequest('DELETE', `/v1.41/containers/${victim}?force=1`, {});
      const exchange = await rawExchange(all.port, upgrade + smuggled);
      expect(exchange.statuses).toEqual([200]);
      expect(exchange.closed).toBe(true);
      await settle();
      expect(await containerState(socketPath, victim)).toEqual({ exists: true, running: true });
    });

    it('a request smuggled after the body of a refused exec start never reaches dockerd', async () => {
      const body = JSON.stringify({ Detach: false, Tty: false });
      const upgrade = httpRequest(
        'POST',
        '/v1.41/exec/dsf-no-such-exec/start',
        { ...UPGRADE_TCP, 'Content-Type': 'application/json', 'Content-Length': String(body.length) },
        body,
      );
      const smuggled = httpRequest('DELETE', `/v1.41/containers/${victim}?force=1`, {});
      const exchange = await rawExchange(all.port, upgrade + smuggled);
      expect(exchange.statuses).toEqual([404]);
      expect(exchange.closed).toBe(true);
      await settle();
      expect(await containerState(socketPath, victim)).toEqual({ exists: true, running: true });
    });
  });

  it('an upgrade that dockerd accepts is joined: exec start answers 101 and streams', async () => {
    const created = await dockerRequest(socketPath, 'POST', `/containers/${victim}/exec`, {
      Cmd: ['echo', 'raw-exec'],
      AttachStdout: true,
      AttachStderr: true,
    });
    const execId = (JSON.parse(created.body) as { Id: string }).Id;
    const body = JSON.stringify({ Detach: false, Tty: true });
    const exchange = await rawExchange(
      all.port,
      httpRequest('POST', `/v1.41/exec/${execId}/start`, { ...UPGRADE_TCP, 'Content-Type': 'application/json', 'Content-Length': String(body.length) }, body),
      { timeoutMs: 10_000 },
    );
    expect(exchange.statuses[0]).toBe(101);
    expect(exchange.text).toContain('raw-exec');
    expect(exchange.closed).toBe(true);
  });

  describe('hijacks without `101`: an exec start or attach sent without Upgrade headers', () => {
    async function execOf(cmd: string[], stdin: boolean): Promise<string> {
      const created = await dockerRequest(socketPath, 'POST', `/containers/${victim}/exec`, {
        Cmd: cmd,
        AttachStdin: stdin,
        AttachStdout: true,
        AttachStderr: true,
      });
      return (JSON.parse(created.body) as { Id: string }).Id;
    }

    it('dockerd answers 200 raw-stream and owns the connection: relayed raw both ways, never re-framed', async () => {
      const execId = await execOf(['cat'], true);
      const body = JSON.stringify({ Detach: false, Tty: false });
      const exchange = await rawExchange(
        all.port,
        [
          httpRequest('POST', `/v1.41/exec/${execId}/start`, { 'Content-Type': 'application/json', 'Content-Length': String(body.length) }, body),
          // stdin, written once the stream is open: echoed by cat, then the input ends.
          'stdin-through-the-guard\n',
        ],
        { gapMs: 300, timeoutMs: 10_000, until: (text) => text.includes('stdin-through-the-guard') },
      );
      expect(exchange.text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(exchange.text).toMatch(/\r\nContent-Type: application\/vnd\.docker\.raw-stream\r\n/i);
      // No framing was added: no Transfer-Encoding, and the multiplexed frame (stream 1, length
      // 24) follows the head byte for byte.
      expect(exchange.text).not.toMatch(/transfer-encoding/i);
      const head = exchange.bytes.indexOf('\r\n\r\n') + 4;
      expect([...exchange.bytes.subarray(head, head + 8)]).toEqual([1, 0, 0, 0, 0, 0, 0, 24]);
      expect(exchange.bytes.subarray(head + 8, head + 32).toString()).toBe('stdin-through-the-guard\n');
    });

    it('whatever the client sends after such an answer is never read as a request', async () => {
      const execId = await execOf(['cat'], true);
      const body = JSON.stringify({ Detach: false, Tty: false });
      const smuggled = httpRequest('DELETE', `/v1.41/containers/${victim}?force=1`, {});
      const exchange = await rawExchange(
        all.port,
        [httpRequest('POST', `/v1.41/exec/${execId}/start`, { 'Content-Type': 'application/json', 'Content-Length': String(body.length) }, body), smuggled],
        { gapMs: 300, timeoutMs: 3_000 },
      );
      expect(exchange.statuses[0]).toBe(200);
      // The "request" went to cat's stdin and came back as output, not as an answer.
      expect(exchange.text).toContain('DELETE /v1.41/containers/');
      expect(exchange.statuses).toEqual([200]);
      await settle();
      expect(await containerState(socketPath, victim)).toEqual({ exists: true, running: true });
    });
  });

  it('an HTTP/1.0 request without Host is forwarded with one (dockerd answers it)', async () => {
    const exchange = await rawExchange(all.port, 'GET /_ping HTTP/1.0\r\n\r\n');
    expect(exchange.statuses).toEqual([200]);
    expect(exchange.text.endsWith('\r\n\r\nOK')).toBe(true);
    // Absolute-form with no Host to compare it with is refused, as any authority but the Host's.
    const absolute = await rawExchange(all.port, 'GET http://docker/_ping HTTP/1.0\r\n\r\n');
    expect(absolute.statuses).toEqual([400]);
  });

  it('a request with both Content-Length and Transfer-Encoding is refused with 400 and not forwarded', async () => {
    const body = JSON.stringify({ Image: 'dsf-busybox:latest', Cmd: ['true'] });
    const chunked = `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    for (const [target, extra] of [
      ['/v1.41/containers/create?name=dsf-cl-te', {}],
      ['/v1.41/containers/create?name=dsf-cl-te', UPGRADE_TCP],
    ] as const) {
      const exchange = await rawExchange(
        all.port,
        httpRequest('POST', target, { ...extra, 'Content-Type': 'application/json', 'Content-Length': String(body.length), 'Transfer-Encoding': 'chunked' }, chunked),
      );
      expect(exchange.statuses).toEqual([400]);
      expect(exchange.closed).toBe(true);
    }
    expect((await containerState(socketPath, 'dsf-cl-te')).exists).toBe(false);
  });

  it('a chunked upgrade request is refused with 400', async () => {
    const exchange = await rawExchange(
      all.port,
      httpRequest('POST', '/v1.41/exec/dsf-x/start', { ...UPGRADE_TCP, 'Transfer-Encoding': 'chunked' }, '2\r\n{}\r\n0\r\n\r\n'),
    );
    expect(exchange.statuses).toEqual([400]);
    expect(exchange.text).toContain('Content-Length');
  });

  it('a container start carrying a body (old-API HostConfig) is refused; a bare start works', async () => {
    const stopped = await createContainer(socketPath, ['sleep', '300']);
    try {
      const config = JSON.stringify({ Privileged: true, Binds: ['/:/host'] });
      const withBody = await rawExchange(
        all.port,
        httpRequest(
          'POST',
          `/v1.41/containers/${stopped}/start`,
          { 'Content-Type': 'application/json', 'Content-Length': String(config.length), Connection: 'close' },
          config,
        ),
      );
      expect(withBody.statuses).toEqual([403]);
      const chunked = await rawExchange(
        all.port,
        httpRequest(
          'POST',
          `/v1.41/containers/${stopped}/start`,
          { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', Connection: 'close' },
          `${config.length.toString(16)}\r\n${config}\r\n0\r\n\r\n`,
        ),
      );
      expect(chunked.statuses).toEqual([403]);
      await settle();
      expect(await containerState(socketPath, stopped)).toEqual({ exists: true, running: false });
      const bare = await rawExchange(
        all.port,
        httpRequest('POST', `/v1.41/containers/${stopped}/start`, { 'Content-Length': '0', Connection: 'close' }),
      );
      expect(bare.statuses).toEqual([204]);
      expect(await containerState(socketPath, stopped)).toEqual({ exists: true, running: true });
    } finally {
      await removeContainer(socketPath, stopped);
    }
  });

  it('pipelined requests are each decided on their own', async () => {
    const exchange = await rawExchange(
      readOnly.port,
      httpRequest('GET', '/v1.41/containers/json', {}) +
        httpRequest('POST', `/v1.41/containers/${victim}/kill`, { 'Content-Length': '0' }) +
        httpRequest('DELETE', `/v1.41/containers/${victim}?force=1`, {}) +
        httpRequest('GET', `/v1.41/containers/${victim}/json`, {}) +
        httpRequest('GET', '/_ping', { Connection: 'close' }),
    );
    expect(exchange.statuses).toEqual([200, 403, 403, 200, 200]);
    expect(exchange.text).toContain('"message":"docker-socket-filter denied POST /v1.41/containers/');
    await settle();
    expect(await containerState(socketPath, victim)).toEqual({ exists: true, running: true });
  });

  it('keep-alive: an allowed request after a denied one on the same connection still works', async () => {
    const exchange = await rawExchange(
      readOnly.port,
      [
        httpRequest('POST', '/v1.41/containers/create', { 'Content-Type': 'application/json', 'Content-Length': '2' }, '{}'),
        httpRequest('GET', '/v1.41/version', { Connection: 'close' }),
      ],
      { gapMs: 100 },
    );
    expect(exchange.statuses).toEqual([403, 200]);
    expect(exchange.text).toContain('application/json');
    expect(exchange.text).toContain('"ApiVersion"');
  });

  it('a denied upgrade gets a Docker-style JSON 403 and the connection is closed', async () => {
    const exchange = await rawExchange(
      readOnly.port,
      httpRequest('POST', `/v1.41/containers/${victim}/attach?stream=1&stdin=1`, { ...UPGRADE_TCP, 'Content-Length': '0' }) +
        httpRequest('DELETE', `/v1.41/containers/${victim}?force=1`, {}),
    );
    expect(exchange.statuses).toEqual([403]);
    expect(exchange.text).toMatch(/Content-Type: application\/json/i);
    expect(exchange.text).toMatch(/\{"message":".*needs POST=1/);
    expect(exchange.closed).toBe(true);
    await settle();
    expect(await containerState(socketPath, victim)).toEqual({ exists: true, running: true });
  });

  it('websocket attach is a write: 403 read-only, 101 with everything granted', async () => {
    const ws = {
      Connection: 'Upgrade',
      Upgrade: 'websocket',
      'Sec-WebSocket-Version': '13',
      'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
      Origin: 'http://docker',
    };
    const chatty = await createContainer(socketPath, ['sh', '-c', 'while true; do echo ws-out; sleep 0.2; done'], { start: true });
    try {
      const target = `/v1.41/containers/${chatty}/attach/ws?stream=1&stdout=1`;
      const denied = await rawExchange(readOnly.port, httpRequest('GET', target, ws));
      expect(denied.statuses).toEqual([403]);
      const allowed = await rawExchange(all.port, httpRequest('GET', target, ws), {
        until: (text) => text.includes('ws-out'),
        timeoutMs: 10_000,
      });
      expect(allowed.statuses).toEqual([101]);
      expect(allowed.text).toContain('ws-out');
    } finally {
      await removeContainer(socketPath, chatty);
    }
  });

  it('BuildKit session (h2c) upgrades: 101, then dockerd speaks HTTP/2 on the joined connection', async () => {
    const session = {
      Connection: 'Upgrade',
      Upgrade: 'h2c',
      'Content-Length': '0',
      'X-Docker-Expose-Session-Uuid': 'dsfsession0000000000000000',
      'X-Docker-Expose-Session-Name': 'dsf',
      'X-Docker-Expose-Session-Sharedkey': 'dsf',
    };
    const denied = await rawExchange(readOnly.port, httpRequest('POST', '/session', session));
    expect(denied.statuses).toEqual([403]);
    const allowed = await rawExchange(all.port, httpRequest('POST', '/session', session), {
      until: (text) => text.includes('PRI * HTTP/2.0'),
      timeoutMs: 10_000,
    });
    expect(allowed.statuses).toEqual([101]);
    expect(allowed.text).toContain('PRI * HTTP/2.0');
  });

  it('an upgrade that reaches the request handler is refused with a hint to attach `upgrade`', async () => {
    const filter = createSocketFilter({ policy: tecnativaPreset(ALL_GRANTED), socketPath });
    const server = createServer({ requestTimeout: 0 }, filter.handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const exchange = await rawExchange(
        port,
        httpRequest('POST', `/v1.41/containers/${victim}/attach?stream=1&stdout=1`, { ...UPGRADE_TCP, 'Content-Length': '0' }),
      );
      expect(exchange.statuses).toEqual([400]);
      expect(exchange.text).toContain("'upgrade' event");
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await filter.close();
    }
  });
});
