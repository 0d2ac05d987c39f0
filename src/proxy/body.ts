import type { IncomingMessage } from 'node:http';
import { refusalOf, type Hold } from './held.js';

/**
 * Reading a whole request body for a body check: the bytes inspected are the bytes forwarded. Only
 * endpoints with a check come here; every other body streams through `forwardRequest` untouched.
 */

/**
 * How long a client has to send a checked body once its head is in. A create body is a few
 * kilobytes; one that has not arrived in 30 s is a client holding the guard, not a slow link.
 */
export const BODY_TIMEOUT_MS = 30_000;

/**
 * A body read whole, or why not: `413` over the bound (the rest is not read: the connection must be
 * closed), `503` when it does not fit the budget of held bytes (likewise), `408` when the client
 * stopped sending, `400` when it went away or sent a broken body.
 *
 * @example
 * ```ts
 * const read = await readBody(req, 1 << 20, hold);
 * if ('status' in read) sendJsonError(res, read.status, read.message, { close: true });
 * ```
 */
export type BodyRead = { readonly body: Buffer } | { readonly status: 400 | 408 | 413 | 503; readonly message: string };

/**
 * Reads `req`'s body (Node has already undone a chunked framing) up to `maxBytes`. A declared
 * `Content-Length` over the bound is refused before a byte is read. The bytes count in `hold` as
 * they arrive, not as declared: a client that declares a megabyte and sends nothing holds nothing
 * of the budget. The caller releases `hold` once the body is forwarded or refused.
 *
 * @example
 * ```ts
 * const read = await readBody(req, decision.obligations.body.maxBytes, context.held.budget.hold());
 * ```
 */
export function readBody(req: IncomingMessage, maxBytes: number, hold: Hold, timeoutMs = BODY_TIMEOUT_MS): Promise<BodyRead> {
  const tooLarge = {
    status: 413,
    message: `The request body is larger than ${maxBytes} bytes, the most docker-socket-filter reads to check it`,
  } as const;
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > maxBytes) return Promise.resolve(tooLarge);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (result: BodyRead): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
      // What is left of a refused body is not read: the caller closes the connection.
      if ('status' in result) {
        chunks.length = 0;
        req.pause();
      }
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) finish(tooLarge);
      else if (!hold.grow(chunk.length)) finish({ status: 503, message: refusalOf(hold, chunk.length).message });
      else chunks.push(chunk);
    };
    const onEnd = (): void => finish({ body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size) });
    const onError = (): void => finish({ status: 400, message: 'The request body could not be read' });
    const onAborted = (): void => finish({ status: 400, message: 'The client went away before sending its whole body' });
    const timer = setTimeout(
      () => finish({ status: 408, message: `The request body did not arrive within ${timeoutMs / 1000} s` }),
      timeoutMs,
    );
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}
