import type * as Http from 'node:http';

/**
 * `node:http` as `require` returns it, without an ES-module import.
 *
 * Why: importing `node:http` as an ES module builds its namespace, which reads every export,
 * the lazy `WebSocket`, `CloseEvent` and `MessageEvent` getters included; they load undici and with
 * it `crypto`, `tls`, `http2` and `zlib`, which the guard never uses: 8 MB of resident memory in
 * the idle CLI on Node 22 and 24 (docs/bench.md, "Idle RSS"). Types still come from `node:http`.
 *
 * @example
 * ```ts
 * import { http } from '../node-http.js';
 * const server = http.createServer();
 * ```
 */
export const http: typeof Http = process.getBuiltinModule('node:http');
