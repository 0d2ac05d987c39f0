/**
 * The codes of every failure this package raises. Denials are not errors: they are `Decision`s.
 *
 * @example
 * ```ts
 * import { isSocketFilterError } from 'docker-socket-filter';
 * try { createSocketFilter({ policy }); } catch (error) {
 *   if (isSocketFilterError(error) && error.code === 'ERR_DSF_INVALID_RULE') console.error(error.message);
 * }
 * ```
 */
export type SocketFilterErrorCode =
  | 'ERR_DSF_INVALID_OPTION'
  | 'ERR_DSF_INVALID_RULE'
  | 'ERR_DSF_INVALID_ENV'
  | 'ERR_DSF_INVALID_CONFIG'
  | 'ERR_DSF_UPSTREAM'
  | 'ERR_DSF_LISTEN';

/**
 * The one error class of this package. Configuration errors are thrown at creation, never at the
 * first request; the message names the option path or variable.
 *
 * @example
 * ```ts
 * throw new SocketFilterError('ERR_DSF_UPSTREAM', 'dockerd is unreachable', { cause: error });
 * ```
 */
export class SocketFilterError extends Error {
  override name = 'SocketFilterError';
  readonly code: SocketFilterErrorCode;

  constructor(code: SocketFilterErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/**
 * A configuration error: a `TypeError` (as callers of a factory expect) carrying a literal `code`.
 *
 * @example
 * ```ts
 * throw new SocketFilterTypeError('ERR_DSF_INVALID_OPTION', 'The `socketPath` option must be a string');
 * ```
 */
export class SocketFilterTypeError extends TypeError {
  override name = 'TypeError';
  readonly code: SocketFilterErrorCode;

  constructor(code: SocketFilterErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/**
 * Whether `value` is an error raised by this package, across realms and bundled copies.
 *
 * @example
 * ```ts
 * if (isSocketFilterError(error)) console.error(error.code);
 * ```
 */
export function isSocketFilterError(
  value: unknown,
): value is (SocketFilterError | SocketFilterTypeError) & { code: SocketFilterErrorCode } {
  if (!(value instanceof Error)) return false;
  const code: unknown = (value as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('ERR_DSF_');
}
