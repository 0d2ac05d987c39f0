import { cleanAbsolutePath, type HostSettings } from './settings.js';

/**
 * Whether a host path may be bound into a container. Pure: the path is judged as written, with the
 * kernel's reading of `//`, `.` and a trailing `/`; `..` is refused, since what it means depends on
 * the symlinks on the way. Symlinks under an allowed directory are followed by the kernel: see the
 * docs ("what is not covered").
 */

/**
 * Directories whose content is the daemon itself: its exec root (which holds containerd's socket),
 * containerd's, and its data root (every container's files and configuration).
 */
const DAEMON_DIRECTORIES = ['/run/docker', '/run/containerd', '/var/lib/docker', '/var/lib/containerd'];
const SOCKET_NAMES = new Set(['docker.sock', 'containerd.sock']);

const isUnder = (path: string, base: string): boolean => base === '/' || path === base || path.startsWith(`${base}/`);

/** `/var/run` is a symlink to `/run` on every current distribution: judge both spellings. */
function aliases(path: string): string[] {
  if (path === '/var/run' || path.startsWith('/var/run/')) return [path, path.slice(4)];
  if (path === '/run' || path.startsWith('/run/')) return [path, `/var${path}`];
  return [path];
}

/** Whether binding `path` exposes a socket that hands over the daemon. */
function exposesDaemon(path: string, settings: HostSettings): boolean {
  for (const spelling of aliases(path)) {
    const name = spelling.slice(spelling.lastIndexOf('/') + 1);
    if (SOCKET_NAMES.has(name)) return true;
    for (const socket of settings.dockerSockets) {
      // The socket itself, or a directory above it.
      if (isUnder(socket, spelling)) return true;
    }
    for (const directory of DAEMON_DIRECTORIES) if (isUnder(spelling, directory) || isUnder(directory, spelling)) return true;
  }
  return false;
}

/**
 * Why binding the host path `raw` is refused, or `null` when it is allowed: it must be absolute
 * without `..`, under a directory of `allowBindMounts` (segment-aware: `/srv` allows `/srv/data`,
 * not `/srvx`); a Docker socket, or a directory above one, only when it is listed exactly.
 *
 * @example
 * ```ts
 * hostPathProblem('/srv/data', settings); // null with allowBindMounts ['/srv']
 * hostPathProblem('/var/run', settings); // 'exposes the Docker socket …'
 * ```
 */
export function hostPathProblem(
  raw: string,
  settings: HostSettings,
): { readonly why: string; readonly path: string; readonly listable: boolean } | null {
  const cleaned = cleanAbsolutePath(raw);
  // A relative path, or one through `..`, means what the host's symlinks say: no list allows it.
  if (typeof cleaned !== 'string') return { why: cleaned.why, path: raw, listable: false };
  const allowed = settings.bindMounts;
  if (exposesDaemon(cleaned, settings)) {
    if (allowed.includes(cleaned)) return null;
    return { why: 'exposes the Docker daemon (its socket, its state, or a directory above them)', path: cleaned, listable: true };
  }
  for (const base of allowed) if (isUnder(cleaned, base)) return null;
  return { why: 'is a host path outside the allowed directories', path: cleaned, listable: true };
}
