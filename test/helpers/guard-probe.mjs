// Test-only entry point (never shipped): runs the built CLI's `main` in this process, exactly as the
// bin does, and answers probes from the test over the IPC channel: open file descriptors, sockets
// among them, and the heap after a forced GC (start node with --expose-gc). Nothing here reads a
// request, a header or a body.
import { readdirSync, readlinkSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const cliPath = process.env.DSF_GUARD_CLI;
if (cliPath === undefined) {
  process.stderr.write('guard-probe: DSF_GUARD_CLI is not set\n');
  process.exit(2);
}
const { main } = await import(cliPath);

// The longest the event loop was blocked since the previous probe: how starved the guard is.
const delay = monitorEventLoopDelay({ resolution: 10 });
delay.enable();

function descriptors() {
  const fds = readdirSync('/proc/self/fd');
  let sockets = 0;
  for (const fd of fds) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:')) sockets += 1;
    } catch {
      // The descriptor readdir itself used is gone by now.
    }
  }
  return { fds: fds.length, sockets };
}

process.on('message', (message) => {
  if (message === null || typeof message !== 'object' || message.type !== 'probe') return;
  const answer = () => {
    const lagMs = delay.max / 1e6;
    delay.reset();
    const memory = process.memoryUsage();
    process.send?.({ type: 'probe', id: message.id, ...descriptors(), heapUsed: memory.heapUsed, rss: memory.rss, arrayBuffers: memory.arrayBuffers, lagMs });
  };
  if (message.gc === true && typeof globalThis.gc === 'function') {
    // Two full collections a turn apart: the first runs finalizers that free more for the second.
    globalThis.gc();
    setImmediate(() => {
      globalThis.gc();
      answer();
    });
  } else {
    answer();
  }
});

main(process.argv.slice(2), process.env).then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`guard-probe: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
