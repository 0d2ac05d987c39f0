/**
 * The longest request-target (path and query) the filter reads: 8 KiB, as nginx's default
 * `large_client_header_buffers`. Docker clients send short paths; the longest legitimate targets
 * (build arguments, label filters in the query) stay far below it. Longer targets are answered
 * `414` before `evaluate` runs.
 *
 * @example
 * ```ts
 * if (req.url.length > MAX_TARGET_LENGTH) sendJsonError(res, 414, TARGET_TOO_LONG_MESSAGE);
 * ```
 */
export const MAX_TARGET_LENGTH = 8 * 1024;

/**
 * What a request whose target is over `MAX_TARGET_LENGTH` gets, with `414`.
 *
 * @example
 * ```ts
 * sendJsonError(res, 414, TARGET_TOO_LONG_MESSAGE, { close: true });
 * ```
 */
export const TARGET_TOO_LONG_MESSAGE = `The request-target is longer than ${MAX_TARGET_LENGTH} bytes`;
