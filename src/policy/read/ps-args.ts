/**
 * What `ps_args` of `GET /containers/<id>/top` can make `ps` show. Pure: no `node:` imports.
 *
 * dockerd runs the host's `ps` with `ps_args` split on spaces (procps-ng on most distributions), and
 * procps shows each process's environment after its command for the BSD option `e`. It also reads
 * dash options as BSD ones when another option makes it fall back: `aux e`, `-axe`, `-e -x` and
 * `-ef -x` all show the environment, a lone `-ef` does not. The letters of a format list
 * (`-o pid,start_time`) are never options. Measured on procps-ng 4.0.2.
 */

/** An option argument with an `e` that procps reads as "every process" when it is the only one. */
const SAFE_ALONE = new Set(['-e', '-ef', '-eF', '-efL', '-eLf', '-eo', '-eO']);

/**
 * Whether `ps` run with `psArgs` (as dockerd passes it) may print environment values: an `e` among
 * the option letters, unless the only option argument is one of `-e`, `-ef`, `-eF`, `-efL`,
 * `-eLf`, `-eo FORMAT`. Errs on the side of `true` for what it does not recognise.
 *
 * @example
 * ```ts
 * psArgsShowEnvironment('aux e'); // true
 * psArgsShowEnvironment('-e -x'); // true
 * psArgsShowEnvironment('-ef'); // false
 * psArgsShowEnvironment('-o pid,start_time'); // false
 * ```
 */
export function psArgsShowEnvironment(psArgs: string): boolean {
  const options: string[] = [];
  const tokens = psArgs.split(' ');
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index] as string;
    if (token === '') continue;
    const next = tokens[index + 1];
    // A format list in the next argument (one that looks like an option is judged as one).
    const formatFollows = next !== undefined && next !== '' && !next.startsWith('-');
    if (token.startsWith('--')) {
      options.push(token === '--format' || token.startsWith('--format=') ? '--format' : token);
      if (token === '--format' && formatFollows) index++;
      continue;
    }
    // Short options, UNIX (`-ef`) or BSD (`aux`): the letters up to an `o` or `O`, whose format list
    // is the rest of the argument or, when it ends there, the next one.
    const start = token.startsWith('-') ? 1 : 0;
    const format = token.slice(start).search(/[oO]/);
    if (format === -1) {
      options.push(token);
      continue;
    }
    options.push(token.slice(0, start + format + 1));
    if (start + format + 1 === token.length && formatFollows) index++;
  }
  if (!options.some((option) => option.includes('e'))) return false;
  return !(options.length === 1 && SAFE_ALONE.has(options[0] as string));
}
