import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The outcome of one docker CLI run.
 */
export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Options of one docker CLI run.
 */
export interface CliOptions {
  /** Written to the CLI's stdin, which is then closed. Without it stdin is closed at once. */
  readonly input?: string | Buffer;
  readonly env?: Record<string, string>;
  readonly timeoutMs?: number;
  readonly cwd?: string;
  /** Collect stdout as raw bytes (for `docker save`). */
  readonly binary?: boolean;
}

/**
 * A docker CLI bound to one filter: `DOCKER_HOST=tcp://127.0.0.1:<port>` and a private
 * `DOCKER_CONFIG`, so no user or machine configuration leaks into the test.
 *
 * @example
 * ```ts
 * const docker = dockerCli(served.dockerHost);
 * const { code, stdout } = await docker.run(['version', '--format', '{{.Server.Version}}']);
 * docker.dispose();
 * ```
 */
export function dockerCli(dockerHost: string) {
  const configDir = mkdtempSync(join(tmpdir(), 'dsf-cli-'));
  const baseEnv: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: configDir,
    DOCKER_HOST: dockerHost,
    DOCKER_CONFIG: configDir,
    DOCKER_CLI_HINTS: 'false',
  };

  function runRaw(args: readonly string[], options: CliOptions = {}): Promise<CliResult & { stdoutBytes: Buffer }> {
    return new Promise((resolve, reject) => {
      const child = spawn('docker', args, {
        env: { ...baseEnv, ...options.env },
        cwd: options.cwd,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
      child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
      const timeoutMs = options.timeoutMs ?? 45_000;
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(
          new Error(
            `docker ${args.join(' ')} timed out after ${timeoutMs} ms; stderr: ${Buffer.concat(err).toString()}`,
          ),
        );
      }, timeoutMs);
      child.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        const stdoutBytes = Buffer.concat(out);
        resolve({ code, stdout: options.binary === true ? '' : stdoutBytes.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBytes });
      });
      child.stdin.on('error', () => undefined);
      if (options.input !== undefined) child.stdin.end(options.input);
      else child.stdin.end();
    });
  }

  return {
    configDir,
    run: (args: readonly string[], options?: CliOptions): Promise<CliResult> => runRaw(args, options),
    runBinary: (args: readonly string[], options?: CliOptions) => runRaw(args, { ...options, binary: true }),
    dispose(): void {
      rmSync(configDir, { recursive: true, force: true });
    },
  };
}

/**
 * A docker CLI bound to one filter.
 */
export type DockerCli = ReturnType<typeof dockerCli>;
