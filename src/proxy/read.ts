import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import createDebug from 'debug';
import { http } from '../node-http.js';
import { MISSING_REF, withVisibleRef } from '../policy/read/target.js';
import type { Decision, ResponseRewrite } from '../policy/types.js';
import type { SinkFactory } from './forward.js';
import { eventsSink, jsonRewriteSink, missingRefSink } from './read-sinks.js';
import { answerHeaders, resolveVisible, type LookupTarget, type Visibility } from './visible.js';

const { STATUS_CODES } = http;

const log = createDebug('docker-socket-filter:read');

/**
 * The proxy's half of a policy's read section: the `visible` and `response` obligations of a
 * decision (src/policy/read/decide.ts). One entry for the request handler, one for the upgrade
 * handler; the rest of the proxy only forwards.
 */

/** A container inspect's decided target: `/v1.41/containers/<ref>/json`, with or without a query. */
const INSPECT = /^(?:\/v[0-9.]+)?\/containers\/[^/?]+\/json(?:\?|$)/;

/** The sink that carries out a `response` obligation. */
function responseSink(rewrite: ResponseRewrite | undefined): SinkFactory | undefined {
  if (rewrite === undefined) return undefined;
  return rewrite.kind === 'events' ? eventsSink(rewrite) : jsonRewriteSink(rewrite);
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
 * itself (a prefix ambiguous among visible objects). `fail` gets what kept dockerd from being
 * asked (the caller answers 502).
 *
 * @example
 * ```ts
 * fulfilReadObligations({ socketPath }, 'GET', decision, res, (path, sink) => forwardRequest(…, path, …, sink), onError);
 * ```
 */
export function fulfilReadObligations(
  dockerd: LookupTarget,
  method: string,
  decision: Decision,
  res: ServerResponse,
  forward: (path: string, sink?: SinkFactory) => void,
  fail: (error: Error) => void,
): void {
  const path = decision.path as string;
  const visible = decision.obligations?.visible;
  const sink = responseSink(decision.obligations?.response);
  if (visible === undefined) {
    forward(path, sink);
    return;
  }
  // A container inspect is its own lookup: asked on the decided target, its answer is the answer.
  const inspect = method === 'GET' && visible.kind === 'container' && INSPECT.test(path) ? path : undefined;
  resolveVisible(dockerd, visible, inspect).then(
    (outcome) => {
      if (res.destroyed) return;
      log('%s %s %s -> %s', method, visible.kind, JSON.stringify(visible.id.slice(0, 80)), outcome.action);
      switch (outcome.action) {
        case 'forward':
          if (outcome.answer !== undefined) {
            const out = sink === undefined ? res : sink(res, () => undefined);
            const headers = answerHeaders(outcome.answer);
            headers.push('Content-Length', String(outcome.answer.body.length));
            out.writeHead(outcome.answer.status, STATUS_CODES[outcome.answer.status] ?? '', headers);
            out.end(outcome.answer.body);
            return;
          }
          forward(withVisibleRef(path, outcome.ref), sink);
          return;
        case 'missing':
          forward(withVisibleRef(path, MISSING_REF), missingRefSink(visible.id, method));
          return;
        case 'answer':
          res.writeHead(outcome.status, [...outcome.headers]);
          res.end(method === 'HEAD' ? undefined : outcome.body);
      }
    },
    (error: unknown) => fail(error instanceof Error ? error : new Error(String(error))),
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
 * fulfilUpgradeVisibility({ socketPath }, decision, socket, (path, rewrite) => relay(…, path, …, rewrite), fail, answered);
 * ```
 */
export function fulfilUpgradeVisibility(
  dockerd: LookupTarget,
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
  resolveVisible(dockerd, visible).then(
    (outcome: Visibility) => {
      if (socket.destroyed) return;
      log('upgrade %s %s -> %s', visible.kind, JSON.stringify(visible.id.slice(0, 80)), outcome.action);
      if (outcome.action === 'forward') relay(withVisibleRef(path, outcome.ref));
      else if (outcome.action === 'missing') relay(withVisibleRef(path, MISSING_REF), (answer) => withRefWrittenBack(answer, visible.id));
      else {
        answered(outcome.status);
        writeRawAnswer(socket, outcome.status, outcome.headers, outcome.body);
      }
    },
    (error: unknown) => fail(error instanceof Error ? error : new Error(String(error))),
  );
}
