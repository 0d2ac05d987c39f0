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
  /** `true` only when the request may be forwarded to dockerd. */
  readonly allowed: boolean;
  /** `200` when allowed, `400` for a request-target dockerd would not route as-is, `403` when refused by policy. */
  readonly status: 200 | 400 | 403;
  /**
   * What decided: a rule id such as `"CONTAINERS"`, `"POST"`, `"ALLOW_START"`, a hardening check such
   * as `"method"`, `"container-name"`, `"start-body"`, `"min-api-version"`, or `"default-deny"` when no
   * rule matched. `null` when the request-target was refused as malformed before any rule ran.
   */
  readonly rule: string | null;
  /** One sentence a person understands, e.g. `POST /v1.41/containers/create needs POST=1 and CONTAINERS=1`. */
  readonly reason: string;
  /**
   * The canonical origin-form target (path, then the query unchanged) that is forwarded to dockerd and
   * that the decision was made on; `null` when the target was refused as malformed.
   */
  readonly path: string | null;
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
  /** Set by presets: which preset built the policy and the value of every variable it read. */
  readonly source?: {
    readonly preset: string;
    readonly settings: Readonly<Record<string, boolean>>;
  };
}
