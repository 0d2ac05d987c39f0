import type { IncomingMessage } from 'node:http';
import createDebug from 'debug';
import type { Evaluate } from '../policy/evaluate.js';
import type { DaemonFacts, Decision, RequestInfo } from '../policy/types.js';
import { askDockerd, type DockerAnswer } from './ask.js';
import { readBody } from './body.js';
import { decide, loggablePath, type ProxyContext } from './context.js';
import type { Hold } from './held.js';

// A lookup's answer is small (`/info` is a few kilobytes) and should come at once. Lookups go on the
// proxy's lookup agent: on connections of their own they escaped every bound (one per lookup, as
// many at once as requests waited on one).
const LOOKUP = { timeoutMs: 5_000, maxBytes: 1024 * 1024 } as const;
const lookupOptions = (context: ProxyContext) => ({ ...LOOKUP, agent: context.lookups });

const log = createDebug('docker-socket-filter:obligations');

/**
 * What an allowed decision's `obligations` ask of the proxy before it forwards: read the body and
 * decide again on it (`body`), check that named volumes exist (`existingVolumes`).
 */

/** How long daemon facts are trusted before they are asked again. */
const FACTS_TTL_MS = 60_000;
/** After a failed ask, how long the checks run without facts (conservatively) before asking again. */
const FACTS_RETRY_MS = 5_000;

interface FactsCache {
  value: DaemonFacts | undefined;
  expires: number;
  pending: Promise<DaemonFacts | undefined> | undefined;
}

const factsCaches = new WeakMap<ProxyContext, FactsCache>();

async function askFacts(context: ProxyContext): Promise<DaemonFacts> {
  const options = lookupOptions(context);
  const [info, version] = await Promise.all([
    askDockerd(context.socketPath, 'GET', '/info', options),
    askDockerd(context.socketPath, 'GET', '/version', options),
  ]);
  if (info.status !== 200 || version.status !== 200) throw new Error(`dockerd answered ${info.status} and ${version.status}`);
  const i = JSON.parse(info.body.toString('utf8')) as Record<string, unknown>;
  const v = JSON.parse(version.body.toString('utf8')) as Record<string, unknown>;
  const text = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);
  const facts: Record<string, string> = {};
  for (const [key, value] of [
    ['defaultRuntime', text(i.DefaultRuntime)],
    ['cgroupVersion', text(i.CgroupVersion)],
    ['apiVersion', text(v.ApiVersion)],
    ['engineVersion', text(v.Version)],
  ] as const) {
    if (value !== undefined) facts[key] = value;
  }
  return Object.freeze(facts);
}

/**
 * The daemon's facts (`GET /info`, `GET /version`), cached for a minute and asked again in the
 * background when stale; `undefined` while dockerd cannot tell (the checks are then conservative).
 */
function daemonFacts(context: ProxyContext): Promise<DaemonFacts | undefined> {
  let cache = factsCaches.get(context);
  if (cache === undefined) {
    cache = { value: undefined, expires: 0, pending: undefined };
    factsCaches.set(context, cache);
  }
  const now = performance.now();
  if (now < cache.expires) return Promise.resolve(cache.value);
  const entry = cache;
  entry.pending ??= askFacts(context).then(
    (facts) => {
      entry.value = facts;
      entry.expires = performance.now() + FACTS_TTL_MS;
      entry.pending = undefined;
      return facts;
    },
    (error: unknown) => {
      log('daemon facts unavailable: %s', (error as Error).message);
      entry.value = undefined;
      entry.expires = performance.now() + FACTS_RETRY_MS;
      entry.pending = undefined;
      return undefined;
    },
  );
  // Stale facts serve while fresh ones are asked for; only the very first request waits.
  return entry.value !== undefined ? Promise.resolve(entry.value) : entry.pending;
}

/** Every value of a header, in order (Node keeps only the first `Content-Type`). */
function headerValues(req: IncomingMessage, name: string): string[] {
  const values: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if ((raw[i] as string).length === name.length && (raw[i] as string).toLowerCase() === name) values.push(raw[i + 1] as string);
  }
  return values;
}

/**
 * The outcome: forward (with the body read, when one was), or answer `status` with `message`
 * (`close`: the connection still holds an unread body).
 *
 * @example
 * ```ts
 * const outcome: Outcome = { forward: true, decision, body: Buffer.from('{}') };
 * ```
 */
export type Outcome =
  | { readonly forward: true; readonly decision: Decision; readonly body: Buffer | undefined }
  | { readonly forward: false; readonly decision: Decision; readonly status: number; readonly message: string; readonly close: boolean };

// `decision` is what is reported (`onRequest`, logs): its rule and reason; `status` what is answered.
const refused = (decision: Decision, status: number, message: string, close = false): Outcome => ({
  forward: false,
  decision: { ...decision, allowed: false, reason: message },
  status,
  message,
  close,
});

/**
 * A lookup of a volume or network for a request: its answer counts against the budget of held
 * bytes while it is read, and no longer once it is (the caller reads two fields of it).
 */
async function lookup(context: ProxyContext, path: string): Promise<DockerAnswer> {
  const hold = context.held.budget.hold();
  try {
    return await askDockerd(context.socketPath, 'GET', path, { ...lookupOptions(context), hold });
  } finally {
    hold.release();
  }
}

const isSaturated = (error: unknown): boolean => (error as { code?: unknown }).code === 'ERR_DSF_SATURATED';

/**
 * Does what `decision.obligations` asks: reads the body (within its bound, counted in `hold`) and
 * decides again with it and the daemon's facts, then checks that named volumes exist. Never
 * rejects. The caller releases `hold` once the body is forwarded or refused.
 *
 * @example
 * ```ts
 * const outcome = await satisfyObligations(context, evaluate, req, method, target, request, decision, hold);
 * if (outcome.forward) forward(outcome.body);
 * ```
 */
export async function satisfyObligations(
  context: ProxyContext,
  evaluate: Evaluate,
  req: IncomingMessage,
  method: string,
  target: string,
  request: RequestInfo,
  first: Decision,
  hold: Hold,
): Promise<Outcome> {
  let decision = first;
  let body: Buffer | undefined;
  const wanted = first.obligations?.body;
  if (wanted !== undefined) {
    const read = await readBody(req, wanted.maxBytes, hold);
    if ('status' in read) return refused(first, read.status, read.message, true);
    body = read.body;
    const contentType = headerValues(req, 'content-type');
    // The same request, decided by the same policy, now with its body (and every Content-Type it
    // carried: Node keeps only the first).
    decision = decide(evaluate, method, target, {
      ...request,
      bodyLength: body.length,
      body,
      ...(contentType.length === 0 ? {} : { contentType }),
      ...(await daemonFacts(context).then((daemon) => (daemon === undefined ? {} : { daemon }))),
    });
    if (!decision.allowed) return { forward: false, decision, status: decision.status, message: decision.reason, close: false };
    // A decision that still wants the body cannot be satisfied: fail closed.
    if (decision.obligations?.body !== undefined) return refused(decision, 403, 'The filter failed to decide on this request');
  }
  const volumes = decision.obligations?.existingVolumes;
  if (volumes !== undefined) {
    for (const name of volumes.names) {
      try {
        const answer = await lookup(context, `/volumes/${encodeURIComponent(name)}`);
        if (answer.status === 404) return refused({ ...decision, rule: volumes.rule }, 403, volumes.reason.replaceAll('{name}', JSON.stringify(name)));
        if (answer.status !== 200) throw new Error(`dockerd answered ${answer.status}`);
      } catch (error) {
        log('%s %s: cannot check volume: %s', method, loggablePath(target), (error as Error).message);
        if (isSaturated(error)) return refused(decision, 503, (error as Error).message);
        return refused(decision, 502, 'The Docker daemon could not tell whether a volume the request names exists');
      }
    }
  }
  const networks = decision.obligations?.notHostNetworks;
  if (networks !== undefined) {
    for (const name of networks.names) {
      try {
        const answer = await lookup(context, `/networks/${encodeURIComponent(name)}`);
        // A network dockerd does not know cannot be joined: the request fails there.
        if (answer.status === 404) continue;
        if (answer.status !== 200) throw new Error(`dockerd answered ${answer.status}`);
        const { Driver } = JSON.parse(answer.body.toString('utf8')) as { Driver?: unknown };
        if (Driver === 'host') return refused({ ...decision, rule: networks.rule }, 403, networks.reason.replaceAll('{name}', JSON.stringify(name)));
      } catch (error) {
        log('%s %s: cannot check network: %s', method, loggablePath(target), (error as Error).message);
        if (isSaturated(error)) return refused(decision, 503, (error as Error).message);
        return refused(decision, 502, 'The Docker daemon could not tell whether a network the request names is the host network');
      }
    }
  }
  return { forward: true, decision, body };
}
