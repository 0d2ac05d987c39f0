import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, test } from 'vitest';
import { readRequestInfo } from '../../src/proxy/request-info.js';

describe('readRequestInfo', () => {
  test.each<[string, IncomingHttpHeaders, { upgrade: boolean; bodyLength: number; problem: string | null }]>([
    ['no body', {}, { upgrade: false, bodyLength: 0, problem: null }],
    ['Content-Length', { 'content-length': '30' }, { upgrade: false, bodyLength: 30, problem: null }],
    ['Content-Length 0', { 'content-length': '0' }, { upgrade: false, bodyLength: 0, problem: null }],
    ['chunked', { 'transfer-encoding': 'chunked' }, { upgrade: false, bodyLength: -1, problem: null }],
    ['gzip, chunked', { 'transfer-encoding': 'gzip, Chunked' }, { upgrade: false, bodyLength: -1, problem: null }],
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
