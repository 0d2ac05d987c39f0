import type { DaemonFacts } from '../types.js';
import type { Decoded } from './go-json.js';
import { hostPathProblem } from './host-paths.js';
import { bindModeProblem, isPodmanHostSource, mountFieldProblem, networkModeProblem } from './podman.js';
import { normalizeCapability, type HostList, type HostSettings, type HostSwitch } from './settings.js';

/**
 * The host checks, on bodies decoded by `decode` (so every field is under its canonical name and of
 * its schema's type). Pure: no `node:` imports. Each returns the first violation found, or nothing.
 */

/**
 * Why a request is refused: the setting that would allow it (`null` when none does), the field as
 * dockerd's API spells it, and what is wrong with it (`what`, a clause: "is true").
 *
 * @example
 * ```ts
 * const violation: Violation = { status: 403, setting: 'allowPrivileged', field: 'HostConfig.Privileged', what: 'is true' };
 * ```
 */
export interface Violation {
  readonly status: 400 | 403;
  readonly setting: HostSwitch | HostList | null;
  readonly field: string;
  readonly what: string;
  /** For a list setting: the entry it would need (`SYS_ADMIN`, `/etc`). */
  readonly entry?: string;
}

/**
 * What the checks judge against besides the body.
 *
 * @example
 * ```ts
 * const context: CheckContext = { settings, daemon: { defaultRuntime: 'runc', cgroupVersion: '2' } };
 * ```
 */
export interface CheckContext {
  readonly settings: HostSettings;
  readonly daemon: DaemonFacts | undefined;
}

type Struct = ReadonlyMap<string, Decoded>;

const asStruct = (value: Decoded): Struct | undefined => (value instanceof Map ? (value as Struct) : undefined);
const asArray = (value: Decoded): readonly Decoded[] | undefined => (Array.isArray(value) ? value : undefined);
const asString = (value: Decoded): string => (typeof value === 'string' ? value : '');
const join = (prefix: string, name: string): string => (prefix === '' ? name : `${prefix}.${name}`);
/**
 * A value safe to show in a reason: short, and quoted.
 *
 * @example
 * ```ts
 * shown('/etc'); // '"/etc"'
 * ```
 */
export const shown = (value: string): string => JSON.stringify(value.length > 120 ? `${value.slice(0, 120)}…` : value);

const refuse = (setting: HostSwitch | null, field: string, what: string, status: 400 | 403 = 403): Violation => ({ status, setting, field, what });
const needsEntry = (setting: HostList, field: string, what: string, entry: string): Violation => ({ status: 403, setting, field, what, entry });

/** Capabilities every container has (moby's `caps.DefaultCapabilities`): adding one changes nothing. */
const DEFAULT_CAPABILITIES = new Set([
  'CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'NET_RAW', 'SETGID', 'SETUID', 'SETFCAP', 'SETPCAP',
  'NET_BIND_SERVICE', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE',
]);

/**
 * `CapAdd`-like lists: each capability must be a default one or allowed.
 *
 * @example
 * ```ts
 * checkCapabilities(['SYS_ADMIN'], 'HostConfig.CapAdd', context); // { setting: 'allowCapabilities', … }
 * ```
 */
export function checkCapabilities(values: readonly Decoded[] | undefined, field: string, context: CheckContext): Violation | undefined {
  if (values === undefined) return undefined;
  const allowed = context.settings.capabilities;
  for (let i = 0; i < values.length; i++) {
    const name = normalizeCapability(asString(values[i]));
    if (DEFAULT_CAPABILITIES.has(name) || allowed.has('ALL') || allowed.has(name)) continue;
    return needsEntry('allowCapabilities', `${field}[${i}]`, `adds the capability ${shown(name)}`, name);
  }
  return undefined;
}

/** Sysctls a container's own namespaces hold (runc's list); `net.*` only outside the host network. */
const NAMESPACED_SYSCTLS = new Set([
  'kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni',
  'kernel.shm_rmid_forced', 'kernel.domainname',
]);

/**
 * `Sysctls`: only those of the container's own namespaces.
 *
 * @example
 * ```ts
 * checkSysctls(new Map([['kernel.panic', '1']]), 'HostConfig.Sysctls', false); // { setting: 'allowUnconfined', … }
 * ```
 */
export function checkSysctls(value: Decoded, field: string, hostNetwork: boolean): Violation | undefined {
  const sysctls = asStruct(value);
  if (sysctls === undefined) return undefined;
  for (const key of sysctls.keys()) {
    // runc reads `net/ipv4/ip_forward` as `net.ipv4.ip_forward`.
    const name = key.replaceAll('/', '.');
    const namespaced = NAMESPACED_SYSCTLS.has(name) || name.startsWith('fs.mqueue.') || (name.startsWith('net.') && !hostNetwork);
    if (!namespaced) return refuse('allowUnconfined', `${field}[${JSON.stringify(key)}]`, `sets ${shown(key)}, a sysctl of the host's kernel`);
  }
  return undefined;
}

/** Mount options that turn a mount into a bind. */
const isBindOption = (options: readonly string[]): boolean => options.some((option) => option.trim() === 'bind' || option.trim() === 'rbind');

/** Local volume options that mount a network file system (no host path involved). */
const NETWORK_FILE_SYSTEMS = new Set(['nfs', 'nfs4', 'cifs', 'smb3']);

/**
 * A volume driver and its options (`volumes/create`, `Mounts[].VolumeOptions.DriverConfig`). The
 * `local` driver takes exactly `type`, `o`, `device` and `size`, and mounts `device` with `o`: with
 * `bind` (or `rbind`) among the options, `device` is a host path; `tmpfs` and network file systems
 * name none. Anything else, and any other driver's options, cannot be judged here.
 *
 * @example
 * ```ts
 * checkVolumeDriver('local', new Map([['type', 'none'], ['o', 'bind'], ['device', '/etc']]), 'DriverOpts', context);
 * ```
 */
export function checkVolumeDriver(
  driver: string,
  options: Decoded,
  field: string,
  context: CheckContext,
): Violation | undefined {
  const opts = asStruct(options);
  if (opts === undefined || opts.size === 0) return undefined;
  if (driver !== '' && driver !== 'local') {
    if (context.settings.switches.allowVolumeOptions) return undefined;
    return refuse('allowVolumeOptions', field, `passes options to the volume driver ${shown(driver)}, which this guard cannot judge`);
  }
  for (const key of opts.keys()) {
    if (key !== 'type' && key !== 'o' && key !== 'device' && key !== 'size') {
      return refuse(null, `${field}[${JSON.stringify(key)}]`, 'is not an option of the local volume driver (dockerd would refuse it)', 400);
    }
  }
  const type = asString(opts.get('type'));
  const device = asString(opts.get('device'));
  const mountOptions = asString(opts.get('o')).split(',');
  if (isBindOption(mountOptions)) {
    return checkHostPath(device, `${field}["device"]`, context);
  }
  if (type === '' && device === '') return undefined;
  if (type === 'tmpfs') return undefined;
  const pathLike = device.startsWith('/') || mountOptions.some((option) => option.includes('/'));
  if (NETWORK_FILE_SYSTEMS.has(type) && !pathLike) return undefined;
  if (context.settings.switches.allowVolumeOptions) return undefined;
  return refuse('allowVolumeOptions', `${field}["type"]`, `mounts a ${shown(type)} file system from ${shown(device)}, which this guard cannot judge`);
}

/**
 * A host path a client wants bound (see `hostPathProblem`).
 *
 * @example
 * ```ts
 * checkHostPath('/etc', 'HostConfig.Binds[0]', context); // { setting: 'allowBindMounts', entry: '/etc', … }
 * ```
 */
export function checkHostPath(path: string, field: string, context: CheckContext): Violation | undefined {
  const problem = hostPathProblem(path, context.settings);
  if (problem === null) return undefined;
  if (!problem.listable) return refuse(null, field, `is ${shown(path)}, which ${problem.why}`);
  return needsEntry('allowBindMounts', field, `is ${shown(path)}, which ${problem.why}`, problem.path);
}

/**
 * `Mounts[]` of a container or a service. Named volumes go to `volumes`.
 *
 * @example
 * ```ts
 * checkMounts(decoded.get('Mounts'), 'HostConfig.Mounts', context, volumes);
 * ```
 */
export function checkMounts(value: Decoded, field: string, context: CheckContext, volumes: string[] | undefined): Violation | undefined {
  const mounts = asArray(value);
  if (mounts === undefined) return undefined;
  for (let i = 0; i < mounts.length; i++) {
    const mount = asStruct(mounts[i]) ?? new Map<string, Decoded>();
    const at = `${field}[${i}]`;
    const type = asString(mount.get('Type'));
    const source = asString(mount.get('Source'));
    const text: Array<readonly [string, string]> = [
      ['Source', source],
      ['Target', asString(mount.get('Target'))],
      ['Consistency', asString(mount.get('Consistency'))],
      ['BindOptions.Propagation', asString(asStruct(mount.get('BindOptions'))?.get('Propagation'))],
    ];
    for (const [name, value] of text) {
      const problem = mountFieldProblem(value);
      if (problem !== null) return refuse(null, `${at}.${name}`, `is ${shown(value)}, which ${problem}`, 400);
    }
    // Podman makes the directory of an absolute source whatever the type; for dockerd a volume or
    // image source is a name, and a tmpfs has none.
    if ((type === 'volume' || type === 'tmpfs' || type === 'image') && source.startsWith('/')) {
      const problem = checkHostPath(source, `${at}.Source`, context);
      if (problem !== undefined) return problem;
    }
    if (type === 'bind') {
      const problem = checkHostPath(source, `${at}.Source`, context);
      if (problem !== undefined) return problem;
    } else if (type === 'volume') {
      if (source !== '') volumes?.push(source);
      const options = asStruct(mount.get('VolumeOptions'));
      const subpath = asString(options?.get('Subpath'));
      if (subpath.split('/').includes('..')) return refuse(null, `${at}.VolumeOptions.Subpath`, `is ${shown(subpath)}, which leaves the volume`);
      const driver = asStruct(options?.get('DriverConfig'));
      if (driver !== undefined) {
        const problem = checkVolumeDriver(asString(driver.get('Name')), driver.get('Options'), `${at}.VolumeOptions.DriverConfig.Options`, context);
        if (problem !== undefined) return problem;
      }
    } else if (type === 'tmpfs') {
      const options = asArray(asStruct(mount.get('TmpfsOptions'))?.get('Options')) ?? [];
      if (isBindOption(options.map((option) => asString(asArray(option)?.[0])))) {
        return refuse(null, `${at}.TmpfsOptions.Options`, 'has a bind option, which makes the runtime bind a path of its own instead of mounting a tmpfs');
      }
    } else if (type !== 'image') {
      return refuse(null, `${at}.Type`, `is ${shown(type)}, not a mount type this guard can judge (bind, volume, tmpfs, image)`, 400);
    }
  }
  return undefined;
}

/** The `SecurityOpt` values that do not weaken confinement. */
function securityOptProblem(option: string): string | null {
  // dockerd splits on the first `=`, or, for old clients, on the first `:`.
  let key = option;
  let value = '';
  const equals = option.indexOf('=');
  const colon = option.indexOf(':');
  if (equals !== -1) [key, value] = [option.slice(0, equals), option.slice(equals + 1)];
  else if (colon !== -1 && option !== 'no-new-privileges') [key, value] = [option.slice(0, colon), option.slice(colon + 1)];
  if (key === 'no-new-privileges') return null;
  if (key === 'apparmor' && value === 'docker-default') return null;
  if (key === 'label' && value.startsWith('level:')) return null;
  return 'weakens confinement';
}

function checkSecurityOpt(value: Decoded, field: string): Violation | undefined {
  const options = asArray(value);
  return options === undefined ? undefined : checkSecurityOptValues(options.map(asString), field);
}

/**
 * `SecurityOpt` values (also `build`'s `securityopt` query values).
 *
 * @example
 * ```ts
 * checkSecurityOptValues(['seccomp=unconfined'], 'HostConfig.SecurityOpt'); // { setting: 'allowUnconfined', … }
 * ```
 */
export function checkSecurityOptValues(options: readonly string[], field: string): Violation | undefined {
  for (let i = 0; i < options.length; i++) {
    const option = options[i] as string;
    if (securityOptProblem(option) !== null) {
      // A seccomp profile is sent inline as JSON: show only what it is.
      const what = option.startsWith('seccomp') && option.length > 40 ? 'sets a custom seccomp profile' : `is ${shown(option)}, which weakens confinement`;
      return refuse('allowUnconfined', `${field}[${i}]`, what);
    }
  }
  return undefined;
}

/** The paths dockerd masks (`MaskedPaths`) and makes read-only by default, by engine release. */
const MASKED_BASE = [
  '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware',
];
const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

function engineAtLeast(version: string | undefined, major: number, minor: number, patch: number): boolean | undefined {
  const match = version === undefined ? null : /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (match === null) return undefined;
  const [a, b, c] = [Number(match[1]), Number(match[2]), Number(match[3])];
  return a !== major ? a > major : b !== minor ? b > minor : c >= patch;
}

/**
 * dockerd's default masked paths for an engine release (moby `oci/defaults.go`): 20.10 to 24 mask
 * ten, 25.0 adds `/sys/devices/virtual/powercap`, 28.0.2 `/proc/interrupts` (and each CPU's
 * `thermal_throttle` directory that exists on the host, which cannot be known here and is not
 * required). Unknown release: all of them.
 *
 * @example
 * ```ts
 * defaultMaskedPaths('20.10.24').length; // 10
 * ```
 */
export function defaultMaskedPaths(engineVersion: string | undefined): readonly string[] {
  const paths = [...MASKED_BASE];
  if (engineAtLeast(engineVersion, 25, 0, 0) ?? true) paths.push('/sys/devices/virtual/powercap');
  if (engineAtLeast(engineVersion, 28, 0, 2) ?? true) paths.push('/proc/interrupts');
  return paths;
}

/** `MaskedPaths` or `ReadonlyPaths` given: each default must still be there (`null` is the default). */
function checkDefaultPaths(value: Decoded, field: string, defaults: readonly string[]): Violation | undefined {
  const given = asArray(value);
  if (given === undefined) return undefined;
  const present = new Set(given.map(asString));
  const missing = defaults.find((path) => !present.has(path));
  if (missing === undefined) return undefined;
  return refuse('allowUnconfined', field, `leaves out ${shown(missing)}, which dockerd masks by default`);
}

/** Namespace modes: which values keep the container's own namespace. */
function namespaceProblem(name: string, mode: string, context: CheckContext): string | null {
  if (mode === '') return null;
  const other = mode.startsWith('container:');
  switch (name) {
    case 'IpcMode':
      if (mode === 'private' || mode === 'shareable' || mode === 'none') return null;
      break;
    case 'UsernsMode':
      if (mode === 'private') return null;
      break;
    case 'CgroupnsMode':
      if (mode === 'private') return null;
      // On a cgroup v1 host, `host` is dockerd's own default.
      if (mode === 'host' && context.daemon?.cgroupVersion === '1') return null;
      break;
    case 'NetworkMode': {
      const podman = networkModeProblem(mode);
      if (podman !== null) return podman;
      if (mode !== 'host' && !other) return null;
      break;
    }
    default:
      break;
  }
  if (other) return `joins the namespaces of another container (${shown(mode)})`;
  return `is ${shown(mode)}, which shares the host's namespace`;
}

const NAMESPACE_FIELDS = ['PidMode', 'IpcMode', 'UTSMode', 'UsernsMode', 'CgroupnsMode', 'NetworkMode', 'Cgroup'] as const;

/** Whether a decoded network mode is the host's. */
const isHostNetwork = (mode: Decoded): boolean => asString(mode) === 'host';

/**
 * A `HostConfig` (or the deprecated top-level one of 20.10, `prefix` `''`), including the
 * `Resources` it embeds. Named volumes go to `volumes`.
 *
 * @example
 * ```ts
 * checkHostConfig(hostConfig, 'HostConfig', context, volumes);
 * ```
 */
export function checkHostConfig(config: Struct, prefix: string, context: CheckContext, volumes: string[]): Violation | undefined {
  const { switches } = context.settings;
  const at = (name: string): string => join(prefix, name);
  if (config.get('Privileged') === true && !switches.allowPrivileged) return refuse('allowPrivileged', at('Privileged'), 'is true');
  if (!switches.allowHostNamespaces) {
    for (const name of NAMESPACE_FIELDS) {
      const problem = namespaceProblem(name, asString(config.get(name)), context);
      if (problem !== null) return refuse('allowHostNamespaces', at(name), problem);
    }
  }
  const capabilities = checkCapabilities(asArray(config.get('CapAdd')), at('CapAdd'), context);
  if (capabilities !== undefined) return capabilities;
  const devices = checkResources(config, prefix, context);
  if (devices !== undefined) return devices;
  if (!switches.allowUnconfined) {
    const unconfined =
      checkSecurityOpt(config.get('SecurityOpt'), at('SecurityOpt')) ??
      checkDefaultPaths(config.get('MaskedPaths'), at('MaskedPaths'), defaultMaskedPaths(context.daemon?.engineVersion)) ??
      checkDefaultPaths(config.get('ReadonlyPaths'), at('ReadonlyPaths'), READONLY_PATHS) ??
      checkRuntime(asString(config.get('Runtime')), at('Runtime'), context) ??
      checkSysctls(config.get('Sysctls'), at('Sysctls'), isHostNetwork(config.get('NetworkMode')));
    if (unconfined !== undefined) return unconfined;
    const annotations = asStruct(config.get('Annotations'));
    if (annotations !== undefined && annotations.size > 0) {
      return refuse('allowUnconfined', at('Annotations'), 'passes annotations to the runtime, which some runtimes read as settings');
    }
  }
  const logPath = asStruct(asStruct(config.get('LogConfig'))?.get('Config'))?.get('path');
  if (logPath !== undefined) {
    const problem = checkHostPath(asString(logPath), `${at('LogConfig')}.Config["path"]`, context);
    if (problem !== undefined) return problem;
  }
  const binds = asArray(config.get('Binds')) ?? [];
  for (let i = 0; i < binds.length; i++) {
    const problem = checkBind(asString(binds[i]), `${at('Binds')}[${i}]`, context, volumes);
    if (problem !== undefined) return problem;
  }
  const mounts = checkMounts(config.get('Mounts'), at('Mounts'), context, volumes);
  if (mounts !== undefined) return mounts;
  const tmpfs = asStruct(config.get('Tmpfs'));
  for (const [target, options] of tmpfs ?? []) {
    if (isBindOption(asString(options).split(','))) {
      return refuse(null, `${at('Tmpfs')}[${JSON.stringify(target)}]`, 'has a bind option, which makes the runtime bind a path of its own instead of mounting a tmpfs');
    }
  }
  const volumesFrom = asArray(config.get('VolumesFrom'));
  if (volumesFrom !== undefined && volumesFrom.length > 0 && !switches.allowVolumesFrom) {
    return refuse('allowVolumesFrom', `${at('VolumesFrom')}[0]`, `mounts the volumes of the container ${shown(asString(volumesFrom[0]))}`);
  }
  return undefined;
}

/** Runtime names dockerd reserves for its own runc (a configuration cannot redefine them). */
const BUILTIN_RUNTIMES = new Set(['', 'runc', 'io.containerd.runc.v2', 'io.containerd.runtime.v1.linux']);

function checkRuntime(runtime: string, field: string, context: CheckContext): Violation | undefined {
  if (BUILTIN_RUNTIMES.has(runtime) || runtime === context.daemon?.defaultRuntime) return undefined;
  return refuse('allowUnconfined', field, `is ${shown(runtime)}, not the daemon's default runtime`);
}

/**
 * The `Resources` part of a HostConfig or an update: devices and the cgroup parent.
 *
 * @example
 * ```ts
 * checkResources(update, '', context);
 * ```
 */
export function checkResources(config: Struct, prefix: string, context: CheckContext): Violation | undefined {
  const { switches } = context.settings;
  if (!switches.allowDevices) {
    for (const name of ['Devices', 'DeviceRequests', 'DeviceCgroupRules']) {
      const list = asArray(config.get(name));
      if (list !== undefined && list.length > 0) return refuse('allowDevices', `${join(prefix, name)}[0]`, 'gives the container a host device');
    }
  }
  const parent = asString(config.get('CgroupParent'));
  if (parent !== '' && !switches.allowUnconfined) {
    return refuse('allowUnconfined', join(prefix, 'CgroupParent'), `is ${shown(parent)}, a cgroup chosen by the client`);
  }
  return undefined;
}

/**
 * One `Binds` entry (or a key of `Volumes`, which Podman reads as one), split as dockerd's Linux
 * parser does: at most two `:`; one part is an anonymous volume, otherwise the first part is a host
 * path when absolute, a volume name when not. Named volumes go to `volumes`.
 *
 * @example
 * ```ts
 * checkBind('/etc:/host', 'HostConfig.Binds[0]', context, volumes); // { setting: 'allowBindMounts', … }
 * ```
 */
export function checkBind(spec: string, field: string, context: CheckContext, volumes: string[]): Violation | undefined {
  const parts = spec.split(':');
  if (parts.length > 3 || parts[0] === '') return refuse(null, field, `is ${shown(spec)}, not a bind dockerd reads`, 400);
  if (parts.length === 1) return undefined;
  const mode = bindModeProblem(parts[2] ?? '');
  if (mode !== null) return refuse(null, field, `is ${shown(spec)}, which ${mode}`, 400);
  const source = parts[0] as string;
  // Podman reads a source starting with `.` as a host path (see podman.ts): judged as one, it is
  // refused (not absolute).
  if (source.startsWith('/') || isPodmanHostSource(source)) return checkHostPath(source, field, context);
  volumes.push(source);
  return undefined;
}
