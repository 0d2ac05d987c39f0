import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import createDebug from 'debug';
import { http } from '../node-http.js';
import { MISSING_REF, withVisibleRef } from '../policy/read/target.js';
import type { Decision, ResponseRewrite } from '../policy/types.js';
import type { SinkFactory } from './forward.js';
import type { HeldContext } from './held.js';
import { eventsSink, jsonRewriteSink, missingRefSink } from './read-sinks.js';
import { answerHeaders, resolveVisible, type LookupTarget, type Visibility } from './visible.js';
import { writeHeld } from './write-held.js';

const { STATUS_CODES } = http;

const log = createDebug('docker-socket-filter:read');

/**
 * The proxy's half of a policy's read section: the `visible` and `response` obligations of a
 * decision (src/policy/read/decide.ts). One entry for the request handler, one for the upgrade
 * handler; the rest of the proxy only forwards.
 */

/** A container inspect's decided target: `/v1.41/containers/<ref>/json`, with or without a query. */
const INSPECT = /^(?:\/v[0-9.]+)?\/containers\/[^/?]+\/json(?:\?|$)/;

/**
 * Where the read obligations go: dockerd for the lookups, and the proxy's budget for what they and
 * a rewrite hold whole.
 *
 * @example
 * ```ts
 * const target: ReadTarget = { socketPath, agent, held: { budget, idleTimeoutMs: 60_000 } };
 * ```
 */
export interface ReadTarget extends LookupTarget {
  readonly held: HeldContext;
}

/** The sink that carries out a `response` obligation. */
function responseSink(rewrite: ResponseRewrite | undefined, held: HeldContext): SinkFactory | undefined {
  if (rewrite === undefined) return undefined;
  return rewrite.kind === 'events' ? eventsSink(rewrite, held) : jsonRewriteSink(rewrite, held);
}

/**
 * Whether a decision has obligations this module fulfils.
 *
 * @example
 * ```ts
 * if (hasReadObligations(decision)) fulfilReadObligations(context, method, decision, res, forward, fail);
 * ```
 */
export function hasReadObligations(decision: Decision): boolean {
  const obligations = decision.obligations;
  return obligations !== undefined && (obligations.visible !== undefined || obligations.response !== undefined);
}

/**
 * Carries out the read obligations of an allowed plain request: looks up the object a `visible`
 * obligation names, then calls `forward` with the target to send (the object's full ID in place of
 * the client's reference, or the stand-in for a missing one) and the sink of the answer; or answers
 * itself (a prefix ambiguous among visible objects, a visible container's inspect). `fail` gets
 * what kept dockerd from being asked (the caller answers 502), or a lookup that did not fit the
 * budget of held bytes (code `ERR_DSF_SATURATED`: 503).
 *
 * @example
 * ```ts
 * fulfilReadObligations({ socketPath, held }, 'GET', decision, res, (path, sink) => forwardRequest(…, path, …, sink), onError);
 * ```
 */
export function fulfilReadObligations(
  dockerd: ReadTarget,
  method: string,
  decision: Decision,
  res: ServerResponse,
  forward: (path: string, sink?: SinkFactory) => void,
  fail: (error: Error) => void,
): void {
  const path = decision.path as string;
  const visible = decision.obligations?.visible;
  const sink = responseSink(decision.obligations?.response, dockerd.held);
  if (visible === undefined) {
    forward(path, sink);
    return;
  }
  // A container inspect is its own lookup: asked on the decided target, its answer is the answer.
  const inspect = method === 'GET' && visible.kind === 'container' && INSPECT.test(path) ? path : undefined;
  // The lookups' answers are held whole while they are read, and a visible inspect's until the
  // client has it: all of it counts against the budget.
  const hold = dockerd.held.budget.hold();
  res.once('close', hold.release);
  resolveVisible(dockerd, visible, inspect, hold).then(
    (outcome) => {
      if (res.destroyed) {
        hold.release();
        return;
      }
      log('%s %s %s -> %s', method, visible.kind, JSON.stringify(visible.id.slice(0, 80)), outcome.action);
      if (outcome.action === 'forward' && outcome.answer !== undefined) {
        const answer = outcome.answer;
        const headers = answerHeaders(answer);
        headers.push('Content-Length', String(answer.body.length));
        const reason = STATUS_CODES[answer.status] ?? '';
        if (sink === undefined) {
          res.writeHead(answer.status, reason, headers);
          writeHeld(res, answer.body, hold, dockerd.held.idleTimeoutMs);
          return;
        }
        // The sink counts the answer again as it takes it (synchronously, so nothing takes the
        // budget in between): what the lookup held is handed over, not counted twice.
        hold.release();
        const out = sink(res, () => undefined);
        out.writeHead(answer.status, reason, headers);
        out.end(answer.body);
        return;
      }
      // Nothing of the lookups is held from here: they were read, and their answers are garbage.
      hold.release();
      switch (outcome.action) {
        case 'forward':
          forward(withVisibleRef(path, outcome.ref), sink);
          return;
        case 'missing':
          forward(withVisibleRef(path, MISSING_REF), missingRefSink(visible.id, method, dockerd.held));
          return;
        case 'answer':
          res.writeHead(outcome.status, [...outcome.headers]);
          res.end(method === 'HEAD' ? undefined : outcome.body);
      }
    },
    (error: unknown) => {
      hold.release();
      fail(error instanceof Error ? error : new Error(String(error)));
    },
  );
}

/**
 * A raw HTTP answer dockerd gave for `MISSING_REF`, with the client's reference written back in its
 * body and its `Content-Length` (if any) corrected: for hijack requests, whose answers the upgrade
 * handler relays byte for byte.
 *
 * @example
 * ```ts
 * withRefWrittenBack(Buffer.from('HTTP/1.1 404 Not Found\r\n\r\nNo such container: _dsf-no-such-object_\r\n'), 'web');
 * ```
 */
export function withRefWrittenBack(answer: Buffer, ref: string): Buffer {
  const end = answer.indexOf('\r\n\r\n');
  if (end === -1) return answer;
  const head = answer.toString('latin1', 0, end);
  const json = /\r\ncontent-type:[ \t]*application\/json/i.test(head);
  const quoted = json ? JSON.stringify(ref).slice(1, -1) : ref;
  const body = Buffer.from(answer.toString('utf8', end + 4).split(MISSING_REF).join(quoted), 'utf8');
  const newHead = head.replace(/(\r\ncontent-length:[ \t]*)\d+/i, (_match, name: string) => `${name}${body.length}`);
  return Buffer.concat([Buffer.from(`${newHead}\r\n\r\n`, 'latin1'), body]);
}

/**
 * Writes an answer on a raw socket (an upgrade request's) and closes it.
 */
function writeRawAnswer(socket: Duplex, status: number, headers: readonly string[], body: Buffer): void {
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n`;
  for (let index = 0; index + 1 < headers.length; index += 2) head += `${headers[index]}: ${headers[index + 1]}\r\n`;
  head += `Date: ${new Date().toUTCString()}\r\nConnection: close\r\n\r\n`;
  socket.end(Buffer.concat([Buffer.from(head, 'latin1'), body]));
  setTimeout(() => socket.destroy(), 5_000).unref();
}

/**
 * The upgrade handler's `visible` obligation (attach, exec start): looks the object up, then calls
 * `relay` with the target to send and, for a missing one, how to write the client's reference back
 * into dockerd's refusal; or answers on the socket itself.
 *
 * @example
 * ```ts
 * fulfilUpgradeVisibility({ socketPath, held }, decision, socket, (path, rewrite) => relay(…, path, …, rewrite), fail, answered);
 * ```
 */
export function fulfilUpgradeVisibility(
  dockerd: ReadTarget,
  decision: Decision,
  socket: Duplex,
  relay: (path: string, rewriteRefusal?: (answer: Buffer) => Buffer) => void,
  fail: (error: Error) => void,
  answered: (status: number) => void,
): void {
  const path = decision.path as string;
  const visible = decision.obligations?.visible;
  if (visible === undefined) {
    relay(path);
    return;
  }
  const hold = dockerd.held.budget.hold();
  resolveVisible(dockerd, visible, undefined, hold).then(
    (outcome: Visibility) => {
      hold.release();
      if (socket.destroyed) return;
      log('upgrade %s %s -> %s', visible.kind, JSON.stringify(visible.id.slice(0, 80)), outcome.action);
      if (outcome.action === 'forward') relay(withVisibleRef(path, outcome.ref));
      else if (outcome.action === 'missing') relay(withVisibleRef(path, MISSING_REF), (answer) => withRefWrittenBack(answer, visible.id));
      else {
        answered(outcome.status);
        writeRawAnswer(socket, outcome.status, outcome.headers, outcome.body);
      }
    },
    (error: unknown) => {
      hold.release();
      fail(error instanceof Error ? error : new Error(String(error)));
    },
  );
}
