import { spawn } from 'node:child_process';

/** How one process run ended. */
export interface ProcessResult {
  /** The exit code; `null` when it was killed (at the timeout, or by a signal). */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** `true` when it was still running at `timeoutMs` and was killed. */
  readonly timedOut: boolean;
}

/** Options of `runProcess`. */
export interface ProcessOptions {
  /** The whole environment (nothing is inherited but what the caller passes). */
  readonly env: Record<string, string>;
  /** Written to stdin (a function writes it over time), which is then closed; without it stdin is closed at once. */
  readonly input?: string | Buffer | ((stdin: NodeJS.WritableStream) => Promise<void>) | undefined;
  readonly timeoutMs?: number;
  readonly cwd?: string;
}

/**
 * Runs a client (docker-compose, python3, podman, script) to completion, killed at `timeoutMs`. A
 * hang is a result (`timedOut`), not an exception, so the test that asserts on it says which
 * client hung and what it printed until then.
 *
 * @example
 * ```ts
 * const result = await runProcess('podman', ['--version'], { env: { PATH: '/usr/bin:/bin' } });
 * ```
 */
export function runProcess(command: string, args: readonly string[], options: ProcessOptions): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: options.env, cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 60_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), timedOut });
    });
    child.stdin.on('error', () => undefined);
    const input = options.input;
    if (typeof input === 'function') void input(child.stdin).finally(() => child.stdin.end());
    else if (input !== undefined) child.stdin.end(input);
    else child.stdin.end();
  });
}

/** `PATH` for client runs: the caller's (the docker CLI v28 is /usr/local/bin/docker on these machines; Debian's 20.10 client is /usr/bin/docker). */
export const CLIENT_PATH = process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin';
