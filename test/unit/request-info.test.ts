import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, test } from 'vitest';
import { headProblem, readRequestInfo } from '../../src/proxy/request-info.js';
import { upstreamFailureMessage } from '../../src/proxy/upstream-error.js';

describe('readRequestInfo', () => {
  test.each<[string, IncomingHttpHeaders, { upgrade: boolean; bodyLength: number; problem: string | null }]>([
    ['no body', {}, { upgrade: false, bodyLength: 0, problem: null }],
    ['Content-Length', { 'content-length': '30' }, { upgrade: false, bodyLength: 30, problem: null }],
    ['Content-Length 0', { 'content-length': '0' }, { upgrade: false, bodyLength: 0, problem: null }],
    ['chunked', { 'transfer-encoding': 'chunked' }, { upgrade: false, bodyLength: -1, problem: null }],
    ['Chunked, any case', { 'transfer-encoding': 'Chunked' }, { upgrade: false, bodyLength: -1, problem: null }],
    ['Docker hijack', { connection: 'Upgrade', upgrade: 'tcp', 'content-length': '2' }, { upgrade: true, bodyLength: 2, problem: null }],
    ['websocket', { connection: 'keep-alive, Upgrade', upgrade: 'websocket' }, { upgrade: true, bodyLength: 0, problem: null }],
    ['Upgrade without Connection: upgrade', { upgrade: 'tcp' }, { upgrade: false, bodyLength: 0, problem: null }],
    ['Connection: upgrade without Upgrade', { connection: 'upgrade' }, { upgrade: false, bodyLength: 0, problem: null }],
    ['Connection: upgraded (not the token)', { connection: 'upgraded', upgrade: 'tcp' }, { upgrade: false, bodyLength: 0, problem: null }],
  ])('%s', (_name, headers, expected) => {
    expect(readRequestInfo(headers)).toEqual(expected);
  });

  test.each<[string, IncomingHttpHeaders, string]>([
    ['both framings', { 'content-length': '5', 'transfer-encoding': 'chunked' }, 'must not both be set'],
    ['a coding after chunked', { 'transfer-encoding': 'chunked, gzip' }, 'must end with chunked'],
    ['a coding before chunked', { 'transfer-encoding': 'gzip, chunked' }, 'must be chunked alone'],
    ['chunked twice', { 'transfer-encoding': 'chunked, chunked' }, 'must be chunked alone'],
    ['identity only', { 'transfer-encoding': 'identity' }, 'must end with chunked'],
    ['a signed length', { 'content-length': '+5' }, 'decimal number'],
    ['a negative length', { 'content-length': '-1' }, 'decimal number'],
    ['a list of lengths', { 'content-length': '5, 6' }, 'decimal number'],
    ['a hex length', { 'content-length': '0x10' }, 'decimal number'],
    ['a huge length', { 'content-length': '1234567890123456' }, 'decimal number'],
  ])('%s is a problem: nothing is forwarded', (_name, headers, problem) => {
    expect(readRequestInfo(headers).problem).toContain(problem);
  });
});

describe('headProblem', () => {
  test.each<[string, string, string[], number, string | null]>([
    ['one Host', 'GET', ['Host', 'docker'], 0, null],
    ['no Host', 'GET', [], 0, null],
    ['two Host headers', 'GET', ['Host', 'a', 'host', 'b'], 0, 'A request must not carry more than one Host header'],
    ['a chunked DELETE', 'DELETE', ['Host', 'a', 'Transfer-Encoding', 'chunked'], -1, 'A DELETE request must not carry a chunked body'],
    ['a chunked OPTIONS', 'OPTIONS', ['Host', 'a'], -1, 'A OPTIONS request must not carry a chunked body'],
    ['a DELETE with a length', 'DELETE', ['Host', 'a', 'Content-Length', '0'], 0, null],
    ['a chunked POST', 'POST', ['Host', 'a', 'Transfer-Encoding', 'chunked'], -1, null],
    ['a header that merely ends in host', 'GET', ['Host', 'a', 'X-Forwarded-Host', 'b'], 0, null],
  ])('%s', (_name, method, rawHeaders, bodyLength, problem) => {
    expect(headProblem(method, rawHeaders, bodyLength)).toBe(problem);
  });
});

describe('upstreamFailureMessage', () => {
  const failure = (code: string, message = `connect ${code} /var/run/docker.sock`) => Object.assign(new Error(message), { code });

  test.each<[string, string]>([
    ['ENOENT', 'The Docker daemon is unreachable: its socket does not exist (ENOENT)'],
    ['EACCES', 'The Docker daemon is unreachable: permission denied on its socket (EACCES)'],
    ['EPERM', 'The Docker daemon is unreachable: permission denied on its socket (EPERM)'],
    ['EAGAIN', 'The Docker daemon is unreachable: it accepts no more connections right now (EAGAIN)'],
    ['ECONNRESET', 'The Docker daemon is unreachable: it closed the connection before answering (ECONNRESET)'],
    ['EPIPE', 'The Docker daemon is unreachable: it closed the connection before answering (EPIPE)'],
    ['ETIMEDOUT', 'The Docker daemon is unreachable (ETIMEDOUT)'],
  ])('%s', async (code, message) => {
    const text = await upstreamFailureMessage(failure(code), '/var/run/docker.sock');
    expect(text).toBe(message);
    // Never the socket path: a client has no business knowing the host's layout.
    expect(text).not.toContain('/var/run');
  });

  test('ECONNREFUSED on a path that is not a socket says so', async () => {
    // The test file itself: a regular file where the socket should be.
    const path = new URL(import.meta.url).pathname;
    expect(await upstreamFailureMessage(failure('ECONNREFUSED'), path)).toBe(
      'The Docker daemon is unreachable: the configured socket path is not a unix socket (ECONNREFUSED)',
    );
  });

  test('ECONNREFUSED on a socket nobody listens on: dockerd stopped or restarting', async () => {
    // A path that cannot be looked at counts as a socket: the common case costs nothing more.
    expect(await upstreamFailureMessage(failure('ECONNREFUSED'), '/nonexistent/docker.sock')).toBe(
      'The Docker daemon is unreachable: nothing accepts connections on its socket, dockerd is stopped or restarting (ECONNREFUSED)',
    );
  });

  test('a response the forwarder refused is worded by the forwarder', async () => {
    const error = Object.assign(new Error('The Docker daemon sent two lengths'), { code: 'ERR_DSF_BAD_RESPONSE' });
    expect(await upstreamFailureMessage(error, '/var/run/docker.sock')).toBe('The Docker daemon sent two lengths');
  });
});
