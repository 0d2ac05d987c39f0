import { encodeFilters } from '../policy/read/filters.js';
import { formatRequirement, labelsSatisfy } from '../policy/read/labels.js';
import type { LabelRequirement, VisibleKind } from '../policy/types.js';
import type { Agent } from 'node:http';
import { askDockerd, type DockerAnswer } from './ask.js';
import type { Hold } from './held.js';

/**
 * Whether the object a request names is one the client may see, asked of dockerd. dockerd resolves
 * a reference (full ID, name, ID prefix) among *all* its objects; the client must get what dockerd
 * would answer if the hidden ones did not exist. So an object found and visible is forwarded by its
 * full ID (a rename in between cannot swap it for another); a hidden one, or an ambiguous prefix,
 * is resolved again among the visible objects only, the way dockerd resolves (exact ID, then exact
 * name, then a unique ID prefix); what resolves to nothing is forwarded as missing.
 */

/**
 * How to go on with a request whose object was looked up: forward it with `ref` (the object's full
 * ID) in place of the client's reference; forward it as for a missing object (`MISSING_REF`); or
 * answer it as given (an ID prefix ambiguous among visible objects, or an error that does not
 * depend on the reference, such as "not a swarm manager").
 *
 * @example
 * ```ts
 * const outcome: Visibility = { action: 'forward', ref: '4f1c…' };
 * ```
 */
export type Visibility =
  | { readonly action: 'forward'; readonly ref: string; readonly answer?: DockerAnswer }
  | { readonly action: 'missing' }
  | { readonly action: 'answer'; readonly status: number; readonly headers: readonly string[]; readonly body: Buffer };

/** The headers dockerd sends with every answer, in its order, taken from one of its answers. */
const DAEMON_HEADERS = ['api-version', 'content-type', 'docker-experimental', 'ostype', 'server'];

function answerLike(like: DockerAnswer, status: number, message: string): Visibility {
  const body = Buffer.from(`${JSON.stringify({ message })}\n`, 'utf8');
  const headers: string[] = [];
  for (const name of DAEMON_HEADERS) {
    const value = name === 'content-type' ? 'application/json' : like.headers[name];
    if (typeof value === 'string') headers.push(rawName(name), value);
  }
  headers.push('Content-Length', String(body.length));
  return { action: 'answer', status, headers, body };
}

/** dockerd's spelling of a header name (Node lower-cases them): `Api-Version`, `Ostype`. */
function rawName(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_match, dash: string, letter: string) => dash + letter.toUpperCase());
}

/**
 * The headers of a lookup's answer as dockerd spelled them, without the framing ones (the answer is
 * sent again with its own) and `Date` (Node writes a fresh one).
 *
 * @example
 * ```ts
 * answerHeaders(await askDockerd(socketPath, 'GET', '/_ping')); // ['Api-Version', '1.41', …]
 * ```
 */
export function answerHeaders(answer: DockerAnswer): string[] {
  const headers: string[] = [];
  for (const [name, value] of Object.entries(answer.headers)) {
    if (name === 'date' || name === 'connection' || name === 'keep-alive' || name === 'transfer-encoding' || name === 'content-length' || value === undefined) continue;
    headers.push(rawName(name), Array.isArray(value) ? value.join(', ') : value);
  }
  return headers;
}

function relay(answer: DockerAnswer): Visibility {
  const headers = answerHeaders(answer);
  headers.push('Content-Length', String(answer.body.length));
  return { action: 'answer', status: answer.status, headers, body: answer.body };
}

function json(answer: DockerAnswer): unknown {
  try {
    return JSON.parse(answer.body.toString('utf8'));
  } catch {
    throw Object.assign(new Error('dockerd answered a lookup with something that is not JSON'), { code: 'ERR_DSF_BAD_RESPONSE' });
  }
}

function field(value: unknown, ...path: string[]): unknown {
  let current = value;
  for (const key of path) {
    if (typeof current !== 'object' || current === null || !Object.hasOwn(current, key)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

const labelFilter = (labels: readonly LabelRequirement[]): string =>
  encodeURIComponent(encodeFilters(new Map([['label', new Map(labels.map((label) => [formatRequirement(label), true]))]])));

interface Candidate {
  readonly id: string;
  readonly names: readonly string[];
}

/**
 * dockerd's resolution of `ref` among `candidates`: an exact ID, then an exact name, then an ID
 * prefix; `ambiguous` with the number of prefix matches when there are several.
 */
function resolveAmong(ref: string, candidates: readonly Candidate[]): { id: string } | { ambiguous: number } | null {
  const byId = candidates.find((candidate) => candidate.id === ref);
  if (byId !== undefined) return { id: byId.id };
  const byName = candidates.find((candidate) => candidate.names.includes(ref));
  if (byName !== undefined) return { id: byName.id };
  const byPrefix = candidates.filter((candidate) => candidate.id.startsWith(ref));
  if (byPrefix.length === 1) return { id: (byPrefix[0] as Candidate).id };
  return byPrefix.length === 0 ? null : { ambiguous: byPrefix.length };
}

type Ask = (path: string) => Promise<DockerAnswer>;

/**
 * Where lookups go: dockerd's socket, and the proxy's keep-alive agent for them (a connection per
 * lookup costs more than the lookup: 1.1 k against 1.75 k inspects/s in bench/read.ts).
 *
 * @example
 * ```ts
 * const target: LookupTarget = { socketPath: '/var/run/docker.sock', agent: new Agent({ keepAlive: true }) };
 * ```
 */
export interface LookupTarget {
  readonly socketPath: string;
  readonly agent?: Agent;
}

async function container(ask: Ask, ref: string, labels: readonly LabelRequirement[], inspectPath: string | undefined): Promise<Visibility> {
  const found = await ask(inspectPath ?? `/containers/${encodeURIComponent(ref)}/json`);
  if (found.status === 404) return { action: 'missing' };
  if (found.status === 200) {
    const inspected = json(found);
    const id = field(inspected, 'Id');
    if (typeof id === 'string' && labelsSatisfy(field(inspected, 'Config', 'Labels'), labels)) {
      // The lookup was the client's own inspect: its answer is the answer.
      return inspectPath === undefined ? { action: 'forward', ref: id } : { action: 'forward', ref: id, answer: found };
    }
  }
  // Hidden, or ambiguous among all: resolve among the visible ones only.
  const listed = await ask(`/containers/json?all=1&filters=${labelFilter(labels)}`);
  if (listed.status !== 200) return relay(found.status === 200 ? listed : found);
  const items = json(listed);
  const candidates: Candidate[] = [];
  for (const item of Array.isArray(items) ? items : []) {
    const id = field(item, 'Id');
    const names = field(item, 'Names');
    if (typeof id !== 'string' || !labelsSatisfy(field(item, 'Labels'), labels)) continue;
    // Names are `/name`; only a single-segment reference reaches here, so link names never match.
    candidates.push({ id, names: Array.isArray(names) ? names.filter((name): name is string => typeof name === 'string').map((name) => name.replace(/^\//, '')) : [] });
  }
  const resolved = resolveAmong(ref, candidates);
  if (resolved === null) return { action: 'missing' };
  if ('id' in resolved) return { action: 'forward', ref: resolved.id };
  return answerLike(found, 500, `Multiple IDs found with provided prefix: ${ref}`);
}

async function exec(ask: Ask, ref: string, labels: readonly LabelRequirement[]): Promise<Visibility> {
  // Exec instances are found by their full ID only.
  const found = await ask(`/exec/${encodeURIComponent(ref)}/json`);
  if (found.status === 404) return { action: 'missing' };
  if (found.status !== 200) return relay(found);
  const containerId = field(json(found), 'ContainerID');
  if (typeof containerId !== 'string') return { action: 'missing' };
  const owner = await ask(`/containers/${encodeURIComponent(containerId)}/json`);
  if (owner.status === 404) return { action: 'missing' };
  if (owner.status !== 200) return relay(owner);
  return labelsSatisfy(field(json(owner), 'Config', 'Labels'), labels) ? { action: 'forward', ref } : { action: 'missing' };
}

async function service(ask: Ask, ref: string, labels: readonly LabelRequirement[]): Promise<Visibility> {
  const found = await ask(`/services/${encodeURIComponent(ref)}`);
  if (found.status === 404) return { action: 'missing' };
  if (found.status === 200) {
    const inspected = json(found);
    const id = field(inspected, 'ID');
    if (typeof id === 'string' && labelsSatisfy(field(inspected, 'Spec', 'Labels'), labels)) return { action: 'forward', ref: id };
  }
  const listed = await ask(`/services?filters=${labelFilter(labels)}`);
  if (listed.status !== 200) return relay(found.status === 200 ? listed : found);
  const items = json(listed);
  const candidates: Candidate[] = [];
  for (const item of Array.isArray(items) ? items : []) {
    const id = field(item, 'ID');
    const name = field(item, 'Spec', 'Name');
    if (typeof id === 'string' && labelsSatisfy(field(item, 'Spec', 'Labels'), labels)) candidates.push({ id, names: typeof name === 'string' ? [name] : [] });
  }
  const resolved = resolveAmong(ref, candidates);
  if (resolved === null) return { action: 'missing' };
  if ('id' in resolved) return { action: 'forward', ref: resolved.id };
  return answerLike(found, 400, `service ${ref} is ambiguous (${resolved.ambiguous} matches found)`);
}

async function task(ask: Ask, ref: string, labels: readonly LabelRequirement[]): Promise<Visibility> {
  const found = await ask(`/tasks/${encodeURIComponent(ref)}`);
  if (found.status === 404) return { action: 'missing' };
  if (found.status === 200) {
    const inspected = json(found);
    const id = field(inspected, 'ID');
    const serviceId = field(inspected, 'ServiceID');
    if (typeof id === 'string' && typeof serviceId === 'string') {
      const owner = await ask(`/services/${encodeURIComponent(serviceId)}`);
      if (owner.status === 200 && labelsSatisfy(field(json(owner), 'Spec', 'Labels'), labels)) return { action: 'forward', ref: id };
    }
  }
  // A task is visible when its service is: the tasks filter `label` reads the service's labels.
  const [listed, services] = await Promise.all([ask(`/tasks?filters=${labelFilter(labels)}`), ask(`/services?filters=${labelFilter(labels)}`)]);
  if (listed.status !== 200 || services.status !== 200) return relay(found.status === 200 ? (listed.status !== 200 ? listed : services) : found);
  const serviceNames = new Map<string, string>();
  for (const item of [json(services)].flat()) {
    const id = field(item, 'ID');
    const name = field(item, 'Spec', 'Name');
    if (typeof id === 'string' && typeof name === 'string' && labelsSatisfy(field(item, 'Spec', 'Labels'), labels)) serviceNames.set(id, name);
  }
  const candidates: Candidate[] = [];
  for (const item of [json(listed)].flat()) {
    const id = field(item, 'ID');
    const serviceName = serviceNames.get(String(field(item, 'ServiceID')));
    if (typeof id !== 'string' || serviceName === undefined) continue;
    // swarmkit's task name: its own, else <service>.<slot, or node for a global service>.<id>.
    const own = field(item, 'Name');
    const slot = field(item, 'Slot');
    const name = typeof own === 'string' && own !== '' ? own : `${serviceName}.${typeof slot === 'number' && slot !== 0 ? slot : String(field(item, 'NodeID'))}.${id}`;
    candidates.push({ id, names: [name] });
  }
  const resolved = resolveAmong(ref, candidates);
  if (resolved === null) return { action: 'missing' };
  if ('id' in resolved) return { action: 'forward', ref: resolved.id };
  return answerLike(found, 400, `task ${ref} is ambiguous (${resolved.ambiguous} matches found)`);
}

/**
 * Looks up the object a `visible` obligation names and says how to go on (see `Visibility`).
 * `inspectPath`, for a container inspect, is the client's decided target: the lookup is then made
 * on it, and a visible container's answer comes back with the outcome (no second request). Rejects
 * when dockerd cannot be asked (the caller answers 502). The lookups' answers are counted in
 * `hold`, when given (rejecting with code `ERR_DSF_SATURATED` when they do not fit); the caller
 * releases it once it no longer holds them (for a visible inspect, once its answer is written).
 *
 * @example
 * ```ts
 * const outcome = await resolveVisible({ socketPath, agent }, { kind: 'container', id: 'web', labels });
 * if (outcome.action === 'forward') forward(withVisibleRef(decision.path, outcome.ref));
 * ```
 */
export function resolveVisible(
  dockerd: LookupTarget,
  visible: { readonly kind: VisibleKind; readonly id: string; readonly labels: readonly LabelRequirement[] },
  inspectPath?: string,
  hold?: Hold,
): Promise<Visibility> {
  const options = {
    timeoutMs: 10_000,
    maxBytes: 32 * 1024 * 1024,
    ...(dockerd.agent === undefined ? {} : { agent: dockerd.agent }),
    ...(hold === undefined ? {} : { hold }),
  };
  const ask: Ask = (path) => askDockerd(dockerd.socketPath, 'GET', path, options);
  switch (visible.kind) {
    case 'container':
      return container(ask, visible.id, visible.labels, inspectPath);
    case 'exec':
      return exec(ask, visible.id, visible.labels);
    case 'service':
      return service(ask, visible.id, visible.labels);
    case 'task':
      return task(ask, visible.id, visible.labels);
  }
}
