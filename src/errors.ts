/**
 * The one error type. Handlers throw AppError through its named constructors (or let valibot,
 * body-parser and database errors reach the error middleware, which maps them through
 * src/db/errors.ts); anything else becomes a logged 500 without details.
 */
export interface ErrorDetail {
  path: string;
  message: string;
}

export class AppError extends Error {
  private constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: ErrorDetail[],
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }

  static validation(message: string, details?: ErrorDetail[]): AppError {
    return new AppError(400, 'validation_failed', message, details);
  }
  /** One field (`path`) holds a value that is not acceptable. */
  static invalidValue(path: string | undefined, message: string): AppError {
    return AppError.validation(
      path ? `${path} is not valid` : 'a value is not valid',
      path ? [{ path, message }] : undefined,
    );
  }
  static badJson(message = 'request body is not valid JSON'): AppError {
    return new AppError(400, 'invalid_json', message);
  }
  /** The body parsed as JSON, but its top level is not the object every route expects. */
  static notAnObject(): AppError {
    return new AppError(400, 'invalid_body', 'request body must be a JSON object');
  }
  static badRequest(message = 'bad request', status = 400): AppError {
    return new AppError(status, 'bad_request', message);
  }
  static aborted(): AppError {
    return new AppError(400, 'request_aborted', 'request was aborted');
  }
  static unauthorized(message = 'missing or invalid API key'): AppError {
    return new AppError(401, 'unauthorized', message);
  }
  static forbidden(message = 'this key may not do that'): AppError {
    return new AppError(403, 'forbidden', message);
  }
  static notFound(what = 'resource'): AppError {
    return new AppError(404, 'not_found', `${what} not found`);
  }
  static conflict(message: string): AppError {
    return new AppError(409, 'conflict', message);
  }
  static tooLarge(limit: number): AppError {
    return new AppError(413, 'payload_too_large', `request body exceeds ${limit} bytes`);
  }
  static unsupportedMediaType(message = 'Content-Type must be application/json'): AppError {
    return new AppError(415, 'unsupported_media_type', message);
  }
  static rateLimited(retryAfterSeconds: number, message = 'rate limit exceeded'): AppError {
    return new AppError(429, 'rate_limited', message, undefined, {
      'Retry-After': String(retryAfterSeconds),
    });
  }
  /** Ours, not the caller's: logged by the middleware, never echoed. */
  static internal(): AppError {
    return new AppError(500, 'internal_error', 'internal error');
  }
  static unavailable(message = 'temporarily unavailable, retry', retryAfterSeconds = 1): AppError {
    return new AppError(503, 'unavailable', message, undefined, {
      'Retry-After': String(retryAfterSeconds),
    });
  }
}
