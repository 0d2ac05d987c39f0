import type { ChildProcess } from 'node:child_process';

/**
 * Waits until a line of `stderr()` (the child's standard error so far) matches `pattern`. Rejects,
 * with the whole stderr, when the child closes first or `timeoutMs` passes.
 *
 * @example
 * ```ts
 * await waitForLine(child, () => err, /msg=listening/);
 * ```
 */
export function waitForLine(child: ChildProcess, stderr: () => string, pattern: RegExp, timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const look = (): boolean => {
      const found = stderr().split('\n').find((line) => pattern.test(line));
      if (found === undefined) return false;
      cleanup();
      resolve(found);
      return true;
    };
    const onClose = (): void => {
      if (look()) return;
      cleanup();
      reject(new Error(`exited before printing ${pattern}; stderr:\n${stderr()}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no line ${pattern} within ${timeoutMs} ms; stderr:\n${stderr()}`));
    }, timeoutMs);
    const onData = (): void => void look();
    const cleanup = (): void => {
      clearTimeout(timer);
      child.stderr?.off('data', onData);
      child.off('close', onClose);
    };
    child.stderr?.on('data', onData);
    child.once('close', onClose);
    look();
  });
}
