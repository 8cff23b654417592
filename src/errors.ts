/**
 * The one error type. Handlers throw AppError (or let valibot/body-parser errors reach the error
 * middleware, which maps them); anything else becomes a logged 500 without details.
 */
export interface ErrorDetail {
  path: string;
  message: string;
}

export class AppError extends Error {
  constructor(
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
  static badJson(message = 'request body is not valid JSON'): AppError {
    return new AppError(400, 'invalid_json', message);
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
  static unsupportedMediaType(): AppError {
    return new AppError(415, 'unsupported_media_type', 'Content-Type must be application/json');
  }
  static rateLimited(retryAfterSeconds: number, message = 'rate limit exceeded'): AppError {
    return new AppError(429, 'rate_limited', message, undefined, {
      'Retry-After': String(retryAfterSeconds),
    });
  }
  static unavailable(message = 'temporarily unavailable, retry'): AppError {
    return new AppError(503, 'unavailable', message, undefined, { 'Retry-After': '1' });
  }
}
