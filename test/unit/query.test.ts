import { describe, expect, test } from 'vitest';
import { isFormContentType, isGoTrue, parseQuery, queryOf } from '../../src/policy/query.js';

describe('parseQuery reads a query as Go’s url.ParseQuery', () => {
  test.each<[string, Record<string, string[]>, string | null]>([
    ['', {}, null],
    ['t=10', { t: ['10'] }, null],
    ['t=10&signal=SIGKILL', { t: ['10'], signal: ['SIGKILL'] }, null],
    ['logs', { logs: [''] }, null],
    ['a=1&&b=2&', { a: ['1'], b: ['2'] }, null],
    ['l%6Fgs=1', { logs: ['1'] }, null],
    ['name=a+b%20c', { name: ['a b c'] }, null],
    ['a=1&a=2', { a: ['1', '2'] }, null],
    ['x=%C3%A9', { x: ['é'] }, null],
    ['x=%FF', { x: ['\uFFFD'] }, null],
    ['logs=0;logs=1', {}, 'the query contains a ";", which Go releases read differently'],
    ['a=1&logs=0;logs=1&b=2', { a: ['1'], b: ['2'] }, 'the query contains a ";", which Go releases read differently'],
    ['a=%zz&b=2', { b: ['2'] }, 'the query contains a malformed percent-escape'],
    ['a=%4', {}, 'the query contains a malformed percent-escape'],
    ['%=1', {}, 'the query contains a malformed percent-escape'],
  ])('%j', (raw, params, problem) => {
    const parsed = parseQuery(raw);
    expect(Object.fromEntries(parsed.params)).toEqual(params);
    expect(parsed.problem).toBe(problem);
  });
});

test.each<[string, string]>([
  ['/v1.41/containers/x/stop?t=5', 't=5'],
  ['/v1.41/containers/x/stop', ''],
  ['/a?b?c', 'b?c'],
])('queryOf(%j) = %j', (target, query) => {
  expect(queryOf(target)).toBe(query);
});

test.each<[string, boolean]>([
  ['1', true],
  ['yes', true],
  ['x', true],
  ['', false],
  ['0', false],
  [' False ', false],
  ['NO', false],
  ['none', false],
])('isGoTrue(%j) = %s', (value, expected) => {
  expect(isGoTrue(value)).toBe(expected);
});

test.each<[string | string[] | undefined, boolean]>([
  [undefined, false],
  ['application/json', false],
  ['application/json; charset=utf-8', false],
  ['application/x-tar', false],
  ['', false],
  ['application/x-www-form-urlencoded', true],
  ['Application/X-WWW-Form-Urlencoded; charset=utf-8', true],
  ['multipart/form-data; boundary=x', true],
  [['application/json', 'multipart/form-data'], true],
  ['not a media type', true],
])('isFormContentType(%j) = %s', (contentType, expected) => {
  expect(isFormContentType(contentType)).toBe(expected);
});
