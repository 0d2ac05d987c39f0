import { describe, expect, test } from 'vitest';
import { ANY, BOOL, decode, isUnreadable, mapOf, parseJsonBody, STRING, struct } from '../../src/policy/host/go-json.js';
import { foldKey, goUtf8Decode } from '../../src/policy/host/go-text.js';

describe("goUtf8Decode: Go's utf8.DecodeRune replacement, one U+FFFD per byte that starts no valid sequence", () => {
  test.each([
    ['ASCII', [0x2f, 0x65, 0x74, 0x63], '/etc'],
    ['a valid two-byte sequence', [0xc3, 0xa9], 'é'],
    ['a valid four-byte sequence', [0xf0, 0x9f, 0x90, 0xb3], '🐳'],
    ['a stray continuation byte', [0x2f, 0x80, 0x61], '/\uFFFDa'],
    ['a truncated three-byte sequence (two U+FFFD in Go, one in TextDecoder)', [0x2f, 0xe2, 0x82, 0x41], '/\uFFFD\uFFFDA'],
    ['an overlong encoding of /', [0xc0, 0xaf], '\uFFFD\uFFFD'],
    ['an encoded surrogate', [0xed, 0xa0, 0x80], '\uFFFD\uFFFD\uFFFD'],
    ['above U+10FFFF', [0xf4, 0x90, 0x80, 0x80], '\uFFFD\uFFFD\uFFFD\uFFFD'],
    ['a BOM is kept (it is a syntax error for Go)', [0xef, 0xbb, 0xbf, 0x7b], '\uFEFF{'],
  ])('%s', (_name, bytes, expected) => {
    expect(goUtf8Decode(new Uint8Array(bytes))).toBe(expected);
  });
});

describe('foldKey: a key any Go release reads as an ASCII field name folds like it', () => {
  // Observed with Go 1.19 (Debian 12's, the one dockerd 20.10 is built with): KELVIN SIGN matches k
  // and LONG S matches s; Go 1.21's ToUpper(ToLower(r)) also maps U+0130 and U+0131 to I.
  test.each([
    ['privileged', 'Privileged'],
    ['PRIVILEGED', 'Privileged'],
    ['\u212Aernel', 'Kernel'],
    ['bind\u017F', 'Binds'],
    ['pr\u0131vileged', 'Privileged'],
    ['Pr\u0130vileged', 'Privileged'],
  ])('%s folds like %s', (key, field) => {
    expect(foldKey(key)).toBe(foldKey(field));
  });
  test.each([['Privileged', 'Privileges'], ['Binds', 'Bind'], ['\uFF30rivileged', 'Privileged'], ['Priv\u00ECleged', 'Privileged']])(
    '%s does not fold like %s',
    (key, field) => {
      expect(foldKey(key)).not.toBe(foldKey(field));
    },
  );
});

describe('parseJsonBody: exactly one JSON value, as strict as Go', () => {
  test.each([
    ['trailing data (Go would ignore it)', '{"a":1} {"b":2}'],
    ['trailing garbage', '{"a":1}x'],
    ['a BOM', '\uFEFF{"a":1}'],
    ['a comment', '{"a":1}/* c */'],
    ['a trailing comma', '{"a":1,}'],
    ['a control character in a string', '{"a":"x\u0001"}'],
    ['an invalid escape', '{"a":"\\x"}'],
    ['a leading zero', '{"a":01}'],
    ['single quotes', "{'a':1}"],
    ['NaN', '{"a":NaN}'],
    ['a vertical tab as white space', '{"a":1}\u000b'],
    ['a no-break space as white space', '{"a":\u00a01}'],
    ['nothing', ''],
    ['white space only', '  \n'],
  ])('refuses %s', (_name, body) => {
    expect(isUnreadable(parseJsonBody(body))).toBe(true);
  });

  test('refuses nesting deeper than the parser can go, without throwing', () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    expect(isUnreadable(parseJsonBody(deep))).toBe(true);
  });

  test('reads bytes and strings alike; a lone surrogate escape is U+FFFD, as Go unquotes it', () => {
    const schema = struct({ A: STRING, B: STRING }, false);
    const tree = parseJsonBody(new TextEncoder().encode('{"A":"\\ud800x","B":"\\ud83d\\udc33"}'));
    const decoded = decode(tree as never, schema, '') as Map<string, string>;
    expect(decoded.get('A')).toBe('\uFFFDx');
    expect(decoded.get('B')).toBe('🐳');
  });
});

describe("decode: Go's struct rules", () => {
  const schema = struct({ Privileged: BOOL, Binds: ANY, Labels: mapOf(STRING) }, true);
  const read = (body: string) => {
    const tree = parseJsonBody(body);
    return isUnreadable(tree) ? tree : decode(tree, schema, 'HostConfig');
  };

  test('a key is read into its field whatever its case', () => {
    expect((read('{"pRiViLeGeD":true}') as Map<string, unknown>).get('Privileged')).toBe(true);
  });
  test.each([
    ['the same key twice', '{"Privileged":false,"Privileged":true}'],
    ['two spellings of one field', '{"Privileged":false,"privileged":true}'],
    ['a Go 1.21 spelling next to the field', '{"Privileged":false,"pr\u0131vileged":true}'],
    ['a map key twice', '{"Labels":{"a":"1","a":"2"}}'],
  ])('refuses %s', (_name, body) => {
    const result = read(body);
    expect(isUnreadable(result)).toBe(true);
  });
  test('map keys are exact: "a" and "A" are two labels', () => {
    const labels = (read('{"Labels":{"a":"1","A":"2"}}') as Map<string, Map<string, string>>).get('Labels');
    expect([...(labels as Map<string, string>).keys()]).toEqual(['a', 'A']);
  });
  test('null is absent; a type other than the field’s is refused; an unknown key of a strict struct is refused', () => {
    expect((read('{"Privileged":null}') as Map<string, unknown>).has('Privileged')).toBe(false);
    expect(read('{"Privileged":"true"}')).toMatchObject({ field: 'HostConfig.Privileged' });
    expect(read('{"Privileged":1}')).toMatchObject({ field: 'HostConfig.Privileged' });
    expect(read('{"Unknown":1}')).toMatchObject({ field: 'HostConfig.Unknown' });
  });
  test('a schema whose field names fold alike is a defect caught at load', () => {
    expect(() => struct({ Binds: ANY, BINDS: ANY }, true)).toThrow(/fold alike/);
  });
});
