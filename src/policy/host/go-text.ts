/**
 * Text the way Go's `encoding/json` sees it: bytes decoded as UTF-8 with Go's replacement rule, and
 * object keys folded the way every Go release matches them to struct fields. Pure: no `node:`
 * imports.
 */

/**
 * Decodes bytes as Go's `utf8.DecodeRune` walks them: a valid sequence is its code point; every byte
 * that does not start a valid sequence (a stray continuation byte, a truncated or overlong sequence,
 * an encoded surrogate, anything above U+10FFFF) is one U+FFFD, and decoding resumes at the next
 * byte. `encoding/json` unquotes strings with that rule, so a string value reads here as dockerd reads
 * it; outside strings such bytes are a syntax error for Go, and U+FFFD is one for the JSON parser.
 * (`TextDecoder` replaces a maximal invalid subpart by one U+FFFD instead: `E2 82 41` is one U+FFFD
 * there, two in Go.)
 *
 * @example
 * ```ts
 * goUtf8Decode(new Uint8Array([0x2f, 0xe2, 0x82, 0x41])); // '/\uFFFD\uFFFDA'
 * ```
 */
export function goUtf8Decode(bytes: Uint8Array): string {
  // Valid UTF-8, the usual case, decodes the same either way: only invalid bytes need the walk.
  try {
    return STRICT_UTF8.decode(bytes);
  } catch {
    // Fall through to Go's rule.
  }
  const out: string[] = [];
  let i = 0;
  while (i < bytes.length) {
    const b0 = bytes[i] as number;
    if (b0 < 0x80) {
      out.push(String.fromCharCode(b0));
      i += 1;
      continue;
    }
    const [point, size] = decodeRune(bytes, i, b0);
    out.push(String.fromCodePoint(point));
    i += size;
  }
  return out.join('');
}

const REPLACEMENT = 0xfffd;
// `ignoreBOM`: a leading BOM stays in the text, where it is the syntax error it is for Go.
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Go's `utf8.DecodeRune` for a non-ASCII first byte: the code point and bytes used, or U+FFFD and 1. */
function decodeRune(bytes: Uint8Array, i: number, b0: number): [number, number] {
  const cont = (offset: number, low = 0x80, high = 0xbf): number => {
    const byte = bytes[i + offset];
    return byte !== undefined && byte >= low && byte <= high ? byte & 0x3f : -1;
  };
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    const c1 = cont(1);
    return c1 < 0 ? [REPLACEMENT, 1] : [((b0 & 0x1f) << 6) | c1, 2];
  }
  if (b0 >= 0xe0 && b0 <= 0xef) {
    // The second byte's range excludes overlong forms (E0) and surrogates (ED), as Go's table does.
    const c1 = cont(1, b0 === 0xe0 ? 0xa0 : 0x80, b0 === 0xed ? 0x9f : 0xbf);
    const c2 = c1 < 0 ? -1 : cont(2);
    return c2 < 0 ? [REPLACEMENT, 1] : [((b0 & 0x0f) << 12) | (c1 << 6) | c2, 3];
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    const c1 = cont(1, b0 === 0xf0 ? 0x90 : 0x80, b0 === 0xf4 ? 0x8f : 0xbf);
    const c2 = c1 < 0 ? -1 : cont(2);
    const c3 = c2 < 0 ? -1 : cont(3);
    return c3 < 0 ? [REPLACEMENT, 1] : [((b0 & 0x07) << 18) | (c1 << 12) | (c2 << 6) | c3, 4];
  }
  return [REPLACEMENT, 1];
}

/**
 * The non-ASCII runes some Go release matches to an ASCII letter of a field name, and that letter.
 *
 * How `encoding/json` matches an object key to a struct field (`decode.go`, `object()`): an exact
 * match of the field's name first, else a case-insensitive one, which Go releases define differently:
 *
 * - up to Go 1.20 (`fold.go`, `foldFunc`; dockerd 20.10 is built with Go 1.19 on Debian 12, read
 *   from /usr/lib/go-1.19/src/encoding/json): for an ASCII field name, `equalFoldRight` when the
 *   name holds a `k` or an `s` (ASCII letters case-insensitively, plus U+212A KELVIN SIGN for `k` and
 *   U+017F LATIN SMALL LETTER LONG S for `s`), else ASCII case-insensitively; the first field of the
 *   struct's field list that matches wins;
 * - Go 1.21 to 1.2x (`foldName`): each rune mapped by `unicode.ToUpper(unicode.ToLower(r))`, which
 *   also maps U+0130 LATIN CAPITAL LETTER I WITH DOT ABOVE (lower: `i`) and U+0131 LATIN SMALL
 *   LETTER DOTLESS I (upper: `I`) to `I`;
 * - current Go (golang/go master, `fold.go`, `foldRune`): the smallest rune of the rune's
 *   `unicode.SimpleFold` orbit, which maps U+212A to `K` and U+017F to `S` only.
 *
 * The guard is the union: a key that any release reads as a field is that field. Every field name
 * of the Docker structs is ASCII, so no other rune can match (checked over all of Unicode with Go
 * 1.19's `unicode` tables: these four are the only non-ASCII runes whose fold, by either rule, is
 * ASCII).
 */
const FOLDS_TO_ASCII: ReadonlyMap<number, number> = new Map([
  [0x212a, 0x4b], // KELVIN SIGN -> K
  [0x017f, 0x53], // LATIN SMALL LETTER LONG S -> S
  [0x0130, 0x49], // LATIN CAPITAL LETTER I WITH DOT ABOVE -> I
  [0x0131, 0x49], // LATIN SMALL LETTER DOTLESS I -> I
]);

/**
 * A key folded so that two keys some Go release would read as the same ASCII field name fold to the
 * same string (see `FOLDS_TO_ASCII`): ASCII letters upper-cased, the four special runes mapped to
 * their ASCII letter, everything else kept.
 *
 * @example
 * ```ts
 * foldKey('privileged') === foldKey('PRIVILEGED'); // true
 * foldKey('\u212Aernel') === foldKey('Kernel'); // true (KELVIN SIGN)
 * ```
 */
export function foldKey(key: string): string {
  let plain = true;
  for (let i = 0; i < key.length; i++) {
    const code = key.charCodeAt(i);
    if (code >= 0x80 || (code >= 0x61 && code <= 0x7a)) {
      plain = false;
      break;
    }
  }
  if (plain) return key;
  let out = '';
  for (const char of key) {
    const code = char.codePointAt(0) as number;
    if (code >= 0x61 && code <= 0x7a) out += String.fromCharCode(code - 0x20);
    else {
      const ascii = FOLDS_TO_ASCII.get(code);
      out += ascii === undefined ? char : String.fromCharCode(ascii);
    }
  }
  return out;
}
