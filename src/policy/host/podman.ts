/**
 * What Podman's Docker-compatible API reads differently from dockerd in a create body. Pure: no
 * `node:` imports.
 *
 * The guard cannot tell which daemon it serves, and the linuxserver preset fronts Podman too.
 * Podman 4.x (`pkg/api/handlers/compat/containers_create.go`) does not decode a create into
 * dockerd's structs and act on them: it turns the body into its own command-line options and parses
 * those with Podman's grammar. So, for Podman:
 *
 * - `Binds` entries and the keys of `Volumes` are `-v` specs: a source starting with `.` is a host
 *   path (relative to the service's working directory, `/` under systemd), and the options may name
 *   host directories (`O,upperdir=/etc,workdir=/tmp`: the container's writes land in `/etc`);
 * - each `Mounts[]` is written into one comma-separated `--mount` string from the raw field values
 *   (`Target: "/x,source=/"` adds a second `source`, and the last one wins), and the directory of
 *   any absolute `Source` is made on the host, whatever the mount's type;
 * - `NetworkMode: "ns:<path>"` joins the network namespace at that path (`/proc/self/ns/net` is the
 *   host's);
 * - the `path` log option is a host file the container's output is appended to.
 *
 * Measured on Podman 4.3.1 (test/security/redteam-podman-host.test.ts). dockerd refuses each of
 * these or reads it harmlessly (an invalid mode, a volume name or network name it rejects, an
 * unknown log option), so refusing them costs a Docker client nothing.
 */

/** Characters of Go's `encoding/csv` that Podman's `--mount` parser splits or quotes on. */
const CSV_SPECIAL = /[,"\r\n]/;

/**
 * Why a `Mounts[]` string field cannot be read one way only, or `null`: Podman joins the fields
 * into one CSV option list, so a `,` or a quote in one of them is read as more options.
 *
 * @example
 * ```ts
 * mountFieldProblem('/x,source=/'); // 'contains a "," or a quote, which Podman reads as more mount options'
 * ```
 */
export function mountFieldProblem(value: string): string | null {
  return CSV_SPECIAL.test(value) ? 'contains a "," or a quote, which Podman reads as more mount options' : null;
}

/**
 * Whether a `-v` source is a host path for Podman although dockerd reads it as a volume name: it
 * starts with `.` (dockerd's volume names start with a letter or digit).
 *
 * @example
 * ```ts
 * isPodmanHostSource('../../'); // true
 * isPodmanHostSource('data'); // false
 * ```
 */
export function isPodmanHostSource(source: string): boolean {
  return source.startsWith('.');
}

/**
 * Why the options of a `Binds` entry are refused, or `null`: an option with `=` (Podman's
 * `upperdir=`, `workdir=`, `idmap=…` name host paths or mappings; none of dockerd's modes has one).
 *
 * @example
 * ```ts
 * bindModeProblem('O,upperdir=/etc,workdir=/tmp'); // 'has an option with "=", …'
 * bindModeProblem('ro,rslave'); // null
 * ```
 */
export function bindModeProblem(mode: string): string | null {
  return mode.includes('=')
    ? 'has an option with "=", which dockerd refuses and Podman reads as a host directory (upperdir=, workdir=)'
    : null;
}

/**
 * Why a `NetworkMode` is refused, or `null`: a `:` outside `container:<id>` is Podman's
 * `ns:<path>` (a namespace by path) or `slirp4netns:`/`pasta:` options (`allow_host_loopback`);
 * dockerd's network names cannot hold a `:`.
 *
 * @example
 * ```ts
 * networkModeProblem('ns:/proc/self/ns/net'); // 'joins the network namespace at a path, …'
 * ```
 */
export function networkModeProblem(mode: string): string | null {
  if (!mode.includes(':') || mode.startsWith('container:')) return null;
  return mode.startsWith('ns:')
    ? `joins the network namespace at a path (${JSON.stringify(mode.slice(0, 120))}), which Podman does (the host's, for /proc/self/ns/net)`
    : `passes network options (${JSON.stringify(mode.slice(0, 120))}), which Podman reads (allow_host_loopback reaches the host's services)`;
}
