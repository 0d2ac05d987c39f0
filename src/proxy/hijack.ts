import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * The listeners Node's HTTP server puts on a connection (lib/_http_server.js,
 * `connectionListenerInternal`; the same names in Node 22 and 24), by event. Bound functions are
 * named `bound <name>`.
 */
const NODE_LISTENERS: ReadonlyArray<readonly [string, ReadonlySet<string>]> = [
  ['data', new Set(['bound socketOnData'])],
  ['end', new Set(['bound socketOnEnd'])],
  ['close', new Set(['bound socketOnClose'])],
  ['drain', new Set(['bound socketOnDrain'])],
  ['error', new Set(['socketOnError'])],
  ['timeout', new Set(['socketOnTimeout'])],
  ['pause', new Set(['onSocketPause'])],
  ['resume', new Set(['onSocketResume'])],
];

interface NodeParser {
  _consumed?: boolean;
  unconsume(): void;
  finish(): unknown;
}

type ServedSocket = Socket & { parser?: NodeParser | null; _httpMessage?: unknown };

let freeParser: ((parser: NodeParser, req: IncomingMessage, socket: Socket) => void) | undefined | null;

function nodeFreeParser(): typeof freeParser {
  if (freeParser === undefined) {
    const common = process.getBuiltinModule?.('_http_common') as { freeParser?: typeof freeParser } | undefined;
    freeParser = typeof common?.freeParser === 'function' ? common.freeParser : null;
  }
  return freeParser;
}

/**
 * Takes a client's connection away from Node's HTTP server in the middle of a plain request, the
 * way Node itself does before it emits `'upgrade'` (lib/_http_server.js, `onParserExecuteCommon`):
 * Node's listeners off, the parser unhooked and freed, the response detached. Afterwards nothing
 * the client sends is parsed as HTTP by anyone; the caller owns the socket and relays it raw.
 *
 * Why: dockerd (and Podman) take over the connection of an attach or exec start sent *without*
 * `Upgrade` headers, answering `200` with a raw stream and no framing; the client then writes its
 * stdin on the same connection. Node offers no hijack for a request handler, so the guard does
 * what its upgrade path does. Returns `null`, touching nothing, when this Node's internals are not
 * as expected, or when another response is pending on the connection: the caller then cuts the
 * exchange (fail closed) rather than guess.
 *
 * @example
 * ```ts
 * const socket = takeOverConnection(req, res);
 * if (socket === null) res.destroy();
 * else socket.write(rawHead);
 * ```
 */
export function takeOverConnection(req: IncomingMessage, res: ServerResponse): Socket | null {
  const socket = req.socket as ServedSocket;
  const parser = socket.parser;
  const free = nodeFreeParser();
  if (
    parser == null ||
    typeof parser.unconsume !== 'function' ||
    typeof parser.finish !== 'function' ||
    free === null ||
    free === undefined ||
    socket._httpMessage !== res ||
    typeof (res as { detachSocket?: unknown }).detachSocket !== 'function' ||
    res.headersSent
  ) {
    return null;
  }
  for (const [event, names] of NODE_LISTENERS) {
    for (const listener of socket.listeners(event)) {
      if (names.has((listener as { name?: string }).name ?? '')) socket.removeListener(event, listener as (...args: unknown[]) => void);
    }
  }
  if (parser._consumed === true) parser.unconsume();
  parser._consumed = false;
  parser.finish();
  free(parser, req, socket);
  (res as ServerResponse & { detachSocket(socket: Socket): void }).detachSocket(socket);
  socket.setTimeout(0);
  // As Node leaves an upgraded socket: not flowing until its new owner reads it.
  (socket as { readableFlowing: boolean | null }).readableFlowing = null;
  return socket;
}
