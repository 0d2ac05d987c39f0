import { readdir, readFile, readlink } from 'node:fs/promises';

/** One TCP socket of a process, from `/proc/<pid>/net/tcp{,6}`. */
export interface TcpSocket {
  readonly local: string;
  readonly remote: string;
  /** The kernel's state name: `ESTABLISHED`, `CLOSE_WAIT`, `FIN_WAIT2`, `LISTEN`, … */
  readonly state: string;
}

/** What a process holds open, read from `/proc` (outside the process: nothing it runs is asked). */
export interface Descriptors {
  readonly fds: number;
  readonly tcp: readonly TcpSocket[];
  /** Unix sockets: its connections to dockerd (pooled or hijacked), listeners, the IPC channel. */
  readonly unix: number;
}

const TCP_STATES: Record<string, string> = {
  '01': 'ESTABLISHED',
  '02': 'SYN_SENT',
  '03': 'SYN_RECV',
  '04': 'FIN_WAIT1',
  '05': 'FIN_WAIT2',
  '06': 'TIME_WAIT',
  '07': 'CLOSE',
  '08': 'CLOSE_WAIT',
  '09': 'LAST_ACK',
  '0A': 'LISTEN',
  '0B': 'CLOSING',
};

function address(hex: string): string {
  const [ip = '', port = '0'] = hex.split(':');
  const host =
    ip.length === 8
      ? [...Buffer.from(ip, 'hex')].reverse().join('.')
      : ip === '00000000000000000000000000000000'
        ? '::'
        : `[${ip}]`;
  return `${host}:${Number.parseInt(port, 16)}`;
}

async function tcpTable(pid: number): Promise<Map<string, TcpSocket>> {
  const table = new Map<string, TcpSocket>();
  for (const file of ['tcp', 'tcp6']) {
    const text = await readFile(`/proc/${pid}/net/${file}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const inode = fields[9];
      if (inode === undefined || fields[1] === undefined || fields[2] === undefined || fields[3] === undefined) continue;
      table.set(inode, { local: address(fields[1]), remote: address(fields[2]), state: TCP_STATES[fields[3]] ?? fields[3] });
    }
  }
  return table;
}

/**
 * The descriptors of process `pid`, its sockets classified: TCP ones with their addresses and
 * state (a client connection the guard never closed shows as `CLOSE_WAIT` or `ESTABLISHED`), unix
 * ones counted.
 *
 * @example
 * ```ts
 * const { fds, tcp } = await descriptorsOf(guard.pid);
 * ```
 */
export async function descriptorsOf(pid: number): Promise<Descriptors> {
  const entries = await readdir(`/proc/${pid}/fd`);
  const tcpByInode = await tcpTable(pid);
  const tcp: TcpSocket[] = [];
  let unix = 0;
  for (const entry of entries) {
    const link = await readlink(`/proc/${pid}/fd/${entry}`).catch(() => '');
    const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
    if (inode === undefined) continue;
    const socket = tcpByInode.get(inode);
    if (socket === undefined) unix += 1;
    else tcp.push(socket);
  }
  return { fds: entries.length, tcp, unix };
}

/** Sockets of a reading: TCP (the listener included) and unix. */
const sockets = (reading: Descriptors): number => reading.tcp.length + reading.unix;

/**
 * Reads `descriptorsOf(pid)` until it holds no more sockets than `baseline`, at most `timeoutMs`
 * (the guard's idle pooled connections to dockerd close after about 5 s); resolves with the last
 * reading either way, so the assertion shows what is left.
 *
 * @example
 * ```ts
 * const after = await settleDescriptors(guard.pid, baseline);
 * expect(after.unix, JSON.stringify(after)).toBeLessThanOrEqual(baseline.unix);
 * ```
 */
export async function settleDescriptors(pid: number, baseline: Descriptors, timeoutMs = 15_000): Promise<Descriptors> {
  const deadline = Date.now() + timeoutMs;
  let last = await descriptorsOf(pid);
  while (sockets(last) > sockets(baseline) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    last = await descriptorsOf(pid);
  }
  return last;
}
