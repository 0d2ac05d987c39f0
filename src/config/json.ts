/**
 * Where a JSON text repeats a key in one object, as a config path (`clients[1].policy`), or
 * `undefined`. `JSON.parse` keeps the last value of a repeated key, other readers the first: a
 * security file that two tools read two ways is refused instead.
 *
 * Runs on text `JSON.parse` has already accepted, so it only needs to follow strings, objects and
 * arrays; everything else (numbers, literals, blanks) is skipped.
 *
 * @example
 * ```ts
 * repeatedJsonKey('{"clients":[{"name":"a","name":"b"}]}'); // { path: 'clients[0]', key: 'name' }
 * ```
 */
export function repeatedJsonKey(text: string): { readonly path: string; readonly key: string } | undefined {
  interface Frame {
    readonly keys: Set<string> | null;
    /** In an object: the next string is a key. */
    expectKey: boolean;
    /** The key or index of the value being read, for the path. */
    at: string | number;
  }
  const stack: Frame[] = [];
  const pathOf = (): string => {
    let path = '';
    // The last frame's `at` is the value being read; its own path stops at the frame itself.
    for (let i = 0; i < stack.length - 1; i++) {
      const at = (stack[i] as Frame).at;
      path += typeof at === 'number' ? `[${at}]` : path === '' ? at : `.${at}`;
    }
    return path;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let end = i + 1;
      while (text.charCodeAt(end) !== 0x22) end += text.charCodeAt(end) === 0x5c /* \ */ ? 2 : 1;
      const top = stack.at(-1);
      if (top !== undefined && top.keys !== null && top.expectKey) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        if (top.keys.has(key)) return { path: pathOf(), key };
        top.keys.add(key);
        top.expectKey = false;
        top.at = key;
      }
      i = end;
    } else if (c === 0x7b /* { */) {
      stack.push({ keys: new Set(), expectKey: true, at: '' });
    } else if (c === 0x5b /* [ */) {
      stack.push({ keys: null, expectKey: false, at: 0 });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      const top = stack.at(-1);
      if (top === undefined) continue;
      if (top.keys !== null) top.expectKey = true;
      else top.at = (top.at as number) + 1;
    }
  }
  return undefined;
}
