import type { Duplex } from 'node:stream';
import createDebug from 'debug';
import type { UpstreamConnection, UpstreamPool, UpstreamUser } from './pool.js';

const log = createDebug('docker-socket-filter:relay');

/**
 * How long a client may keep its side of a joined stream open after dockerd ended the stream
 * (the client has everything; it only has to notice the end and close). Then both are cut.
 */
const CLIENT_LINGER_MS = 5_000;

/**
 * Joins a client connection and a connection to dockerd that has left HTTP (a `101` upgrade, or a
 * hijack answered `200` raw-stream): bytes are copied both ways as they come, with backpressure in
 * each direction (a side that does not read stops the guard reading the other on its behalf).
 *
 * How it ends, so that no descriptor outlives the stream:
 * - the client half-closes (stdin EOF): dockerd is told (half-close), the output keeps flowing;
 * - dockerd ends or resets (the process exited, detach keys, an error): what it sent is flushed to
 *   the client, the client's side is ended, and cut `CLIENT_LINGER_MS` later if the client does not
 *   close it; whatever the client still writes is dropped;
 * - the client goes away (close, reset): dockerd's connection is destroyed at once.
 *
 * @example
 * ```ts
 * joinStreams(clientSocket, connection, pool, () => report());
 * ```
 */
export function joinStreams(client: Duplex, connection: UpstreamConnection, pool: UpstreamPool, onClosed: () => void): void {
  pool.detach(connection);
  const upstream = connection.socket;
  upstream.setNoDelay(true);
  if ('setNoDelay' in client && typeof client.setNoDelay === 'function') (client as { setNoDelay(flag: boolean): void }).setNoDelay(true);
  let upstreamOver = false;
  let closed = false;
  let linger: NodeJS.Timeout | undefined;

  const finish = (): void => {
    if (closed) return;
    closed = true;
    if (linger !== undefined) clearTimeout(linger);
    upstream.destroy();
    client.destroy();
    onClosed();
  };

  // dockerd is done: the client gets what was sent, then its side is ended.
  const upstreamDone = (why: string): void => {
    if (upstreamOver) return;
    upstreamOver = true;
    log('joined stream: dockerd %s; ending the client side', why);
    upstream.destroy();
    client.off('data', fromClient);
    // Late writes from the client go nowhere, and are not buffered.
    client.on('data', discard);
    client.resume();
    if (client.writableEnded || client.destroyed) finish();
    else {
      client.end();
      linger = setTimeout(finish, CLIENT_LINGER_MS);
      linger.unref();
    }
  };

  const user: UpstreamUser = {
    onConnection() {
      // Never lent again: the connection is detached.
    },
    onData(chunk) {
      // `chunk` is a view of the pool's shared read buffer: copy what is handed to the client.
      if (!client.write(Buffer.from(chunk)) && !upstream.isPaused()) {
        upstream.pause();
        client.once('drain', () => upstream.resume());
      }
    },
    onEnd: () => upstreamDone('ended the stream'),
    onError: (error) => upstreamDone(`failed (${error.message})`),
    onClose: () => upstreamDone('closed the connection'),
  };
  connection.user = user;

  const fromClient = (chunk: Buffer): void => {
    if (upstreamOver) return;
    if (!upstream.write(chunk) && !client.isPaused()) {
      client.pause();
      upstream.once('drain', () => {
        if (!upstreamOver) client.resume();
      });
    }
  };
  client.on('data', fromClient);
  client.on('end', () => {
    // stdin is over; the output may go on (`docker exec -i … < file`).
    if (!upstreamOver) upstream.end();
    else finish();
  });
  client.on('error', (error) => {
    log('joined stream: client error %s', error.message);
    finish();
  });
  client.on('close', finish);
  client.on('finish', () => {
    // Our side is ended (dockerd was done) and flushed: once the client has closed its side too,
    // nothing is left to wait for.
    if (upstreamOver && client.readableEnded) finish();
  });
  client.resume();
}

function discard(): void {
  // Bytes after the end of a stream: read so that the connection can close, never kept.
}
