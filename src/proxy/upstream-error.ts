import { stat } from 'node:fs/promises';
import { errorCode } from './context.js';

/**
 * The message a client gets (with `502`) when dockerd could not be reached or failed before
 * answering. It says what is wrong in words an operator can act on, and ends with the error code;
 * it never contains the socket path (a client of the guard has no business knowing the host's
 * layout).
 *
 * `ECONNREFUSED` means two different things on a unix socket: a socket file nobody listens on
 * (dockerd stopped or restarting) and a path that is not a socket at all (a file or a directory
 * mounted where the socket should be). Only in that case is the path looked at, so the common
 * path costs nothing.
 *
 * @example
 * ```ts
 * await upstreamFailureMessage(Object.assign(new Error('connect ENOENT'), { code: 'ENOENT' }), '/var/run/docker.sock');
 * // 'The Docker daemon is unreachable: its socket does not exist (ENOENT)'
 * ```
 */
export async function upstreamFailureMessage(error: Error, socketPath: string): Promise<string> {
  const code = errorCode(error);
  switch (code) {
    case 'ENOENT':
      return `The Docker daemon is unreachable: its socket does not exist (${code})`;
    case 'EACCES':
    case 'EPERM':
      return `The Docker daemon is unreachable: permission denied on its socket (${code})`;
    case 'EAGAIN':
      // A unix socket whose accept backlog is full refuses at once instead of queueing.
      return `The Docker daemon is unreachable: it accepts no more connections right now (${code})`;
    case 'ECONNREFUSED': {
      const isSocket = await stat(socketPath).then(
        (stats) => stats.isSocket(),
        () => true,
      );
      return isSocket
        ? `The Docker daemon is unreachable: nothing accepts connections on its socket, dockerd is stopped or restarting (${code})`
        : `The Docker daemon is unreachable: the configured socket path is not a unix socket (${code})`;
    }
    case 'ECONNRESET':
    case 'EPIPE':
      return `The Docker daemon is unreachable: it closed the connection before answering (${code})`;
    case 'ERR_DSF_BAD_RESPONSE':
    // dockerd answered, but with something the forwarder refuses to relay (see parseResponseHead).
    case 'ERR_DSF_SATURATED':
    // Every connection to dockerd is busy (see pool.ts); dockerd itself is fine.
    case 'ERR_DSF_IDLE_UPLOAD':
      // The client's body stopped arriving.
      return error.message;
    default:
      return `The Docker daemon is unreachable (${code})`;
  }
}
