/**
 * Whether this Node and platform have `SO_REUSEPORT` for `server.listen` (Node 22.12, 23.1 and
 * later; Linux and FreeBSD): each worker then has a TCP socket of its own and the kernel spreads
 * the connections, instead of the primary accepting each one and handing it over.
 *
 * @example
 * ```ts
 * canReusePort('v22.11.0', 'linux'); // false
 * ```
 */
export function canReusePort(version = process.version, platform: string = process.platform): boolean {
  if (platform !== 'linux' && platform !== 'freebsd') return false;
  const [major = 0, minor = 0] = version.replace(/^v/, '').split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}

/**
 * One worker's share of a limit of the whole guard: the limit divided by the workers, rounded down
 * so that together they never exceed it; 0 (no limit) stays 0. A limit too small for every worker
 * to get `least` (one connection; for bytes, what one request may need) is refused with the line to
 * print.
 *
 * @example
 * ```ts
 * shareOf(512, 2, 'MAX_UPSTREAM_CONNECTIONS', '--max-upstream-connections'); // 256
 * shareOf(1, 2, 'MAX_UPSTREAM_CONNECTIONS', '--max-upstream-connections'); // a message
 * shareOf(2 << 20, 4, 'MAX_HELD_BYTES', '--max-held-bytes', { amount: 1 << 20, words: '1MiB' }); // a message
 * ```
 */
export function shareOf(
  total: number,
  workers: number,
  variable: string,
  flag: string,
  least: { readonly amount: number; readonly words: string } = { amount: 1, words: 'one connection' },
): number | string {
  if (total === 0) return 0;
  const share = Math.floor(total / workers);
  if (share >= least.amount) return share;
  return `${flag}/${variable} is ${total}, less than ${least.words} for each of the ${workers} workers: raise it or lower --workers/WORKERS`;
}
