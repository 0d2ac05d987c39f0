/**
 * What a filter decided about one request.
 *
 * A denial is data, never an exception: `evaluate` returns a `Decision` for every input, however
 * malformed.
 *
 * @example
 * ```ts
 * const decision: Decision = filter.evaluate('GET', '/v1.41/containers/json');
 * if (!decision.allowed) console.log(decision.status, decision.rule, decision.reason);
 * ```
 */
export interface Decision {
  /** `true` only when the request may be forwarded to dockerd (after its `obligations`, if any). */
  readonly allowed: boolean;
  /**
   * `200` when allowed; `400` for a request the filter cannot read one way only (a request-target
   * dockerd would not route as-is, a body or query that is ambiguous); `403` when refused by policy;
   * `404` for an object the client may not see (answered exactly as dockerd answers a missing one);
   * `413` for a body over the bound of its check.
   */
  readonly status: 200 | 400 | 403 | 404 | 413;
  /**
   * What decided: a rule id such as `"CONTAINERS"`, `"POST"`, `"ALLOW_START"`, a hardening check such
   * as `"method"`, `"container-name"`, `"start-body"`, `"min-api-version"`, a body check's variable
   * such as `"ALLOW_PRIVILEGED"`, `"clients"` when no client matched, or `"default-deny"` when no
   * rule matched. `null` when the request-target was refused as malformed before any rule ran.
   */
  readonly rule: string | null;
  /**
   * One sentence a person understands, naming the filter and what would allow the request, e.g.
   * `docker-socket-filter denied POST /v1.41/containers/create: it needs POST=1 and CONTAINERS=1`.
   */
  readonly reason: string;
  /**
   * The canonical origin-form target (path, then the query) that is forwarded to dockerd and that
   * the decision was made on; `null` when the target was refused as malformed.
   */
  readonly path: string | null;
  /** The `name` of the client the request was decided for, for policies with clients. */
  readonly client?: string;
  /**
   * For a refusal by a body or query check: the field, as dockerd's API spells it whatever case the
   * client used (`HostConfig.Binds[1]`, `Mounts[0].Source`, `query.checkpoint`).
   */
  readonly field?: string;
  /** What the proxy must still do before (or while) forwarding an allowed request. */
  readonly obligations?: Obligations;
}

/**
 * What an allowed decision asks of the proxy: I/O that a pure `evaluate` cannot do. Each is data,
 * carrying everything the proxy needs, so the proxy stays generic and the decision self-contained.
 *
 * @example
 * ```ts
 * const decision = filter.evaluate('POST', '/v1.41/containers/create', { bodyLength: 120 });
 * decision.obligations?.body; // { maxBytes: 1048576 }: read the body, then evaluate again with it
 * ```
 */
export interface Obligations {
  /**
   * The endpoint has a body check: read the whole body (at most `maxBytes`, else `413`), then decide
   * again with `request.body` (and `request.daemon`); the bytes forwarded are the bytes inspected.
   */
  readonly body?: { readonly maxBytes: number };
  /**
   * Forward only when each of these named volumes already exists on dockerd (forwarding would
   * create it, which this policy does not grant); otherwise refuse with `403`, `rule` and `reason`
   * (in which `{name}` stands for the volume's name).
   */
  readonly existingVolumes?: { readonly names: readonly string[]; readonly rule: string; readonly reason: string };
  /**
   * Forward only when none of these networks (a name, an ID or an ID prefix, as the request gives
   * them) is the host's network (driver `host`): dockerd resolves them as it resolves the word
   * `host`. Otherwise refuse with `403`, `rule` and `reason` (in which `{name}` stands for the
   * network).
   */
  readonly notHostNetworks?: { readonly names: readonly string[]; readonly rule: string; readonly reason: string };
  /**
   * Forward only when the object the request names is visible to this client (its labels satisfy
   * `labels`); otherwise answer `404` with dockerd's own message for a missing one.
   */
  readonly visible?: { readonly kind: VisibleKind; readonly id: string; readonly labels: readonly LabelRequirement[] };
  /** Rewrite dockerd's answer before it reaches the client (see `rewriteResponse`). */
  readonly response?: ResponseRewrite;
}

/**
 * The kinds of object visibility is judged on.
 *
 * @example
 * ```ts
 * const kind: VisibleKind = 'container';
 * ```
 */
export type VisibleKind = 'container' | 'exec' | 'service' | 'task';

/**
 * One requirement on an object's labels: `key=value`, or the key alone (`value: undefined`: the
 * object has the label, whatever its value).
 *
 * @example
 * ```ts
 * const requirement: LabelRequirement = { key: 'traefik.enable', value: 'true' };
 * ```
 */
export interface LabelRequirement {
  readonly key: string;
  readonly value?: string;
}

/**
 * How an answer is rewritten: `kind` names the shape of dockerd's answer (container inspect, a
 * service list, the events stream, …), the rest what is done to it.
 *
 * @example
 * ```ts
 * const rewrite: ResponseRewrite = { kind: 'container-inspect', redactEnv: true };
 * ```
 */
export interface ResponseRewrite {
  readonly kind: ResponseKind;
  /** Replace environment values by a fixed marker (names are kept). */
  readonly redactEnv: boolean;
  /** Drop objects (list items, events) whose labels do not satisfy these requirements. */
  readonly labels?: readonly LabelRequirement[];
}

/**
 * The answer shapes a rewrite knows.
 *
 * @example
 * ```ts
 * const kind: ResponseKind = 'events';
 * ```
 */
export type ResponseKind =
  | 'container-inspect'
  | 'container-list'
  | 'service-inspect'
  | 'service-list'
  | 'task-inspect'
  | 'task-list'
  | 'exec-inspect'
  | 'network-inspect'
  | 'network-list'
  | 'events';

/**
 * Who sent a request, as the server saw it: the peer address of its connection (never a header
 * such as `X-Forwarded-For`) and the name of the listener it came in on.
 *
 * @example
 * ```ts
 * const client: ClientInfo = { address: '172.25.0.2', listener: 'tcp' };
 * ```
 */
export interface ClientInfo {
  /** The peer's IP address (IPv4-mapped IPv6 addresses are read as IPv4); absent on unix sockets. */
  readonly address?: string;
  /** The `name` of the listen entry the connection was accepted on. */
  readonly listener?: string;
}

/**
 * Facts about the daemon that body checks judge against: a value equal to what dockerd itself uses
 * when a field is absent is not an escape. The proxy reads them from `GET /info` and `GET /version`.
 *
 * @example
 * ```ts
 * const daemon: DaemonFacts = { defaultRuntime: 'runc', cgroupVersion: '1', apiVersion: '1.41' };
 * ```
 */
export interface DaemonFacts {
  /** `DefaultRuntime` of `/info`. */
  readonly defaultRuntime?: string;
  /** `CgroupVersion` of `/info`: on `1` dockerd's default cgroup namespace mode is `host`. */
  readonly cgroupVersion?: string;
  /** `ApiVersion` of `/version`. */
  readonly apiVersion?: string;
  /** `Version` of `/version` (the engine's release): which default masked paths it applies. */
  readonly engineVersion?: string;
}

/**
 * What else about a request matters to the decision, besides its method and target.
 *
 * @example
 * ```ts
 * filter.evaluate('POST', '/v1.41/exec/abc/start', { upgrade: true, bodyLength: 30 });
 * ```
 */
export interface RequestInfo {
  /** The request asks to upgrade the connection (`Connection: Upgrade`): a hijack or a websocket. */
  readonly upgrade?: boolean;
  /**
   * The declared body length, as Go's `net/http` sees it: the `Content-Length`, `-1` when the length
   * is unknown (chunked), `0` or absent for no body.
   */
  readonly bodyLength?: number;
  /** The `Host` header as received: an absolute-form target must name the same authority. */
  readonly host?: string;
  /** Who sent the request, for policies with clients. */
  readonly client?: ClientInfo;
  /** The whole request body, for endpoints with a body check (see `Obligations.body`). */
  readonly body?: string | Uint8Array;
  /** Every `Content-Type` header of the request, as received. */
  readonly contentType?: string | readonly string[];
  /** Facts about the daemon body checks judge against. */
  readonly daemon?: DaemonFacts;
}

/** The HTTP methods the Docker Engine API uses. Anything else is refused before the rules run. */
export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE';

/**
 * Which requests a rule applies to by their effect: `read` is GET/HEAD that does not upgrade;
 * `write` is every other method, every upgrade, and the websocket attach endpoint whatever its method.
 *
 * @example
 * ```ts
 * const gate: Rule = { id: 'POST', effect: 'deny', access: 'write', paths: ['/**'] };
 * ```
 */
export type Access = 'read' | 'write' | 'any';

/**
 * One rule of a policy. Rules are tried in order; the first one that matches decides.
 *
 * @example
 * ```ts
 * const rule: Rule = {
 *   id: 'ALLOW_START',
 *   effect: 'allow',
 *   methods: ['POST'],
 *   paths: ['/containers/+([a-zA-Z0-9_.-])/start'],
 * };
 * ```
 */
export interface Rule {
  /** Shown as `Decision.rule` when this rule decides; the preset variable for preset rules. */
  readonly id: string;
  readonly effect: 'allow' | 'deny';
  /** Methods this rule applies to; all methods when absent. */
  readonly methods?: readonly Method[];
  /** Whether the rule applies to reads, writes or both (default `any`). */
  readonly access?: Access;
  /**
   * picomatch globs over the canonical path *without* its version prefix (`/containers/json`, not
   * `/v1.41/containers/json`). A `*` never crosses a `/`; `**` spans segments.
   */
  readonly paths: readonly string[];
  /**
   * The query parameters the rule accepts. A request the rule matches whose query has any other
   * parameter is denied by it (the reason names the parameter), as is one whose query Go releases
   * read differently, or that carries a form body (dockerd reads a form's fields as parameters).
   * Absent: any query. The presets' action rules (`ALLOW_START`, …) use it: the query is
   * configuration too (`start?checkpoint=…` restores a checkpoint from a directory).
   */
  readonly query?: readonly string[];
  /**
   * The rule applies only to requests that set one of these query parameters to a value dockerd
   * reads as true (anything but empty, `0`, `no`, `false`, `none`), or whose query or form body
   * could: linuxserver's logs gate on `attach?logs=1`.
   */
  readonly whenQueryTrue?: readonly string[];
  /** Overrides the generated reason sentence when this rule decides. */
  readonly reason?: string;
}

/**
 * A policy: ordered rules and what to say when nothing matched. Plain data; compiled once by
 * `createSocketFilter`.
 *
 * @example
 * ```ts
 * const readOnlyContainers: Policy = {
 *   name: 'read-only containers',
 *   rules: [
 *     { id: 'POST', effect: 'deny', access: 'write', paths: ['/**'] },
 *     { id: 'CONTAINERS', effect: 'allow', paths: ['/containers', '/containers/**'] },
 *   ],
 * };
 * ```
 */
export interface Policy {
  /** A name for logs and the permission table. */
  readonly name: string;
  readonly rules: readonly Rule[];
  /**
   * For reasons only: which setting grants a section (first path segment without version prefix),
   * e.g. `{ containers: 'CONTAINERS=1' }`, and which grants writes (e.g. `POST=1`).
   */
  readonly hints?: {
    readonly sections?: Readonly<Record<string, string>>;
    readonly write?: string;
  };
  /**
   * What a reading client may see: environment values redacted, objects hidden unless their labels
   * satisfy requirements. Absent: answers pass untouched. See `ReadPolicy`.
   */
  readonly read?: ReadPolicy;
  /** Set by presets: which preset built the policy and the value of every variable it read. */
  readonly source?: {
    readonly preset: string;
    readonly settings: Readonly<Record<string, boolean>>;
  };
  /**
   * Judge the configuration that writes carry (container create, exec, update, volumes, services,
   * plugins, builds, imports) and refuse what would give the client the host: see `ProtectHost`.
   * Absent: no body is read, every decision is made on method and target alone.
   */
  readonly protectHost?: ProtectHost;
}

/**
 * What `protectHost` re-opens. Every switch defaults to `false` and every list to empty: with
 * `protectHost: {}` every check refuses. The presets set it from `PROTECT_HOST=1` and the `ALLOW_*`
 * variables named on each key.
 *
 * @example
 * ```ts
 * const protectHost: ProtectHost = { allowBindMounts: ['/srv', '/opt/appdata'], allowCapabilities: ['NET_ADMIN'] };
 * ```
 */
export interface ProtectHost {
  /** `ALLOW_PRIVILEGED`: privileged containers and execs. */
  readonly allowPrivileged?: boolean;
  /** `ALLOW_HOST_NAMESPACES`: host PID, IPC, UTS, user, cgroup and network namespaces, and another container's. */
  readonly allowHostNamespaces?: boolean;
  /** `ALLOW_CAPABILITIES`: capabilities a container may add beyond Docker's defaults (`NET_ADMIN`, or `ALL`). */
  readonly allowCapabilities?: readonly string[];
  /** `ALLOW_DEVICES`: host devices, device requests (GPUs) and device cgroup rules. */
  readonly allowDevices?: boolean;
  /** `ALLOW_UNCONFINED`: seccomp, AppArmor or SELinux off, fewer masked paths, another runtime or cgroup parent, host sysctls. */
  readonly allowUnconfined?: boolean;
  /** `ALLOW_BIND_MOUNTS`: host directories that may be bound (their subdirectories too; a Docker socket, or a directory above one, only when listed exactly). */
  readonly allowBindMounts?: readonly string[];
  /** `ALLOW_VOLUMES_FROM`: mounting another container's volumes. */
  readonly allowVolumesFrom?: boolean;
  /** `ALLOW_VOLUME_OPTIONS`: volume driver options the guard cannot judge (another driver's, a file system other than tmpfs, NFS or CIFS). */
  readonly allowVolumeOptions?: boolean;
  /** `ALLOW_PLUGIN_INSTALL`: installing, upgrading and creating plugins, and setting their mounts and devices. */
  readonly allowPluginInstall?: boolean;
  /** `ALLOW_HOST_NETWORK_BUILD`: builds with `networkmode=host`. */
  readonly allowHostNetworkBuild?: boolean;
  /** `ALLOW_REMOTE_FETCH`: the daemon fetching a URL (`images/create?fromSrc=<url>`, remote build contexts). */
  readonly allowRemoteFetch?: boolean;
  /** Paths of sockets that hand over the daemon; default the usual Docker and containerd sockets (the presets add `SOCKET_PATH`). */
  readonly dockerSockets?: readonly string[];
  /** The largest body read for a check, in bytes (default 1 MiB); over it the request is refused with 413. */
  readonly maxBodyBytes?: number;
}

/**
 * The read section of a policy: what dockerd's answers may show a client. Set by the presets from
 * `REDACT_ENV` and `VISIBLE_LABELS`, or by `definePolicy({ read })`.
 *
 * @example
 * ```ts
 * const read: ReadPolicy = { redactEnv: true, visibleLabels: [{ key: 'traefik.enable', value: 'true' }] };
 * ```
 */
export interface ReadPolicy {
  /**
   * Replace the values of environment variables (container inspect `Config.Env`, services' and
   * tasks' `ContainerSpec.Env`) and exec command lines (exec inspect, exec events) by a marker.
   */
  readonly redactEnv?: boolean;
  /**
   * Containers (and their execs), services (and their tasks) whose labels do not satisfy every
   * requirement are hidden: left out of lists and events, answered `404` as missing ones.
   */
  readonly visibleLabels?: readonly LabelRequirement[];
}
