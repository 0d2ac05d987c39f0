/**
 * What `ChunkedDecoder.feed` returns when it needs more bytes (everything given was consumed).
 *
 * @example
 * ```ts
 * decoder.feed(Buffer.from('5\r\nhel'), sink) === CHUNKED_NEED_MORE; // true
 * ```
 */
export const CHUNKED_NEED_MORE = -1;
/**
 * What `ChunkedDecoder.feed` returns for bytes that are not a chunked body.
 *
 * @example
 * ```ts
 * decoder.feed(Buffer.from('zz\r\n'), sink) === CHUNKED_INVALID; // true
 * ```
 */
export const CHUNKED_INVALID = -2;

// A chunk-size line (size, extensions) or a trailer line longer than this is not dockerd's.
const MAX_LINE_BYTES = 4096;
// 2^53: a chunk larger than a safe integer is refused rather than miscounted.
const MAX_HEX_DIGITS = 13;

const enum State {
  Size,
  Extension,
  SizeLineFeed,
  Data,
  DataCarriageReturn,
  DataLineFeed,
  TrailerLineStart,
  TrailerLine,
  TrailerLineFeed,
  FinalLineFeed,
  Done,
}

const CR = 0x0d;
const LF = 0x0a;

function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const lower = byte | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/**
 * An incremental decoder of an HTTP/1.1 chunked body (RFC 9112 §7.1), for dockerd's streaming
 * responses. It hands the chunk data to a sink as it arrives and reports where the body ends, so the
 * connection can be reused for the next request only when the body ended exactly where dockerd's
 * framing says. Chunk extensions and trailers are read and dropped (Node's own client drops trailers
 * when piping, too). Anything malformed is `CHUNKED_INVALID`: the caller cuts the response and the
 * connection, never guessing at a boundary.
 *
 * @example
 * ```ts
 * const decoder = createChunkedDecoder();
 * decoder.feed(Buffer.from('2\r\nOK\r\n0\r\n\r\n'), (data) => res.write(data)); // 12: the body ended there
 * ```
 */
export interface ChunkedDecoder {
  /**
   * Decodes `buffer`, calling `sink` with each piece of chunk data. Returns `CHUNKED_NEED_MORE`
   * when everything was consumed and the body goes on, `CHUNKED_INVALID`, or the number of bytes of
   * `buffer` the body took when it ended in it.
   */
  feed(buffer: Buffer, sink: (data: Buffer) => void): number;
}

/**
 * Creates a `ChunkedDecoder` for one body.
 *
 * @example
 * ```ts
 * const decoder = createChunkedDecoder();
 * ```
 */
export function createChunkedDecoder(): ChunkedDecoder {
  let state = State.Size;
  let size = 0;
  let digits = 0;
  let lineBytes = 0;

  return {
    feed(buffer, sink) {
      let index = 0;
      const length = buffer.length;
      while (index < length) {
        switch (state) {
          case State.Size: {
            const byte = buffer[index] as number;
            const value = hexValue(byte);
            if (value !== -1) {
              if (++digits > MAX_HEX_DIGITS) return CHUNKED_INVALID;
              size = size * 16 + value;
              index++;
            } else if (digits === 0) {
              return CHUNKED_INVALID;
            } else if (byte === CR) {
              state = State.SizeLineFeed;
              index++;
            } else if (byte === 0x3b /* ; */ || byte === 0x20 || byte === 0x09) {
              state = State.Extension;
              lineBytes = digits;
            } else {
              return CHUNKED_INVALID;
            }
            break;
          }
          case State.Extension: {
            const byte = buffer[index] as number;
            if (byte === CR) state = State.SizeLineFeed;
            else if (byte === LF || ++lineBytes > MAX_LINE_BYTES) return CHUNKED_INVALID;
            index++;
            break;
          }
          case State.SizeLineFeed:
            if (buffer[index] !== LF) return CHUNKED_INVALID;
            index++;
            digits = 0;
            state = size === 0 ? State.TrailerLineStart : State.Data;
            break;
          case State.Data: {
            const end = Math.min(length, index + size);
            sink(index === 0 && end === length ? buffer : buffer.subarray(index, end));
            size -= end - index;
            index = end;
            if (size === 0) state = State.DataCarriageReturn;
            break;
          }
          case State.DataCarriageReturn:
            if (buffer[index] !== CR) return CHUNKED_INVALID;
            index++;
            state = State.DataLineFeed;
            break;
          case State.DataLineFeed:
            if (buffer[index] !== LF) return CHUNKED_INVALID;
            index++;
            state = State.Size;
            break;
          case State.TrailerLineStart:
            if (buffer[index] === CR) {
              state = State.FinalLineFeed;
            } else {
              state = State.TrailerLine;
              lineBytes = 0;
            }
            index++;
            break;
          case State.TrailerLine: {
            const byte = buffer[index] as number;
            if (byte === CR) state = State.TrailerLineFeed;
            else if (byte === LF || ++lineBytes > MAX_LINE_BYTES) return CHUNKED_INVALID;
            index++;
            break;
          }
          case State.TrailerLineFeed:
            if (buffer[index] !== LF) return CHUNKED_INVALID;
            index++;
            state = State.TrailerLineStart;
            break;
          case State.FinalLineFeed:
            if (buffer[index] !== LF) return CHUNKED_INVALID;
            state = State.Done;
            return index + 1;
          case State.Done:
            // Bytes after the end belong to no request this connection made.
            return CHUNKED_INVALID;
        }
      }
      return state === State.Done ? CHUNKED_INVALID : CHUNKED_NEED_MORE;
    },
  };
}
