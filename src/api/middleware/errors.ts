/** The one error middleware: everything becomes the contract's JSON error; unknown errors are logged, never echoed. */
import type { NextFunction, Request, Response } from 'express';
import { AppError } from '../../errors.js';
import type { Logger } from '../../logger.js';

interface BodyParserError {
  type?: string;
  status?: number;
  limit?: number;
}

/** Maps body-parser's errors (bad JSON, too large, bad charset) onto AppError. */
function fromBodyParser(err: BodyParserError): AppError | undefined {
  switch (err.type) {
    case 'entity.parse.failed':
      return AppError.badJson();
    case 'entity.too.large':
      return AppError.tooLarge(err.limit ?? 0);
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new AppError(415, 'unsupported_media_type', 'unsupported content encoding or charset');
    case 'request.aborted':
      return new AppError(400, 'request_aborted', 'request was aborted');
    default:
      return err.status && err.status >= 400 && err.status < 500
        ? new AppError(err.status, 'bad_request', 'bad request')
        : undefined;
  }
}

/** PostgreSQL errors the caller can fix or retry, rather than a server fault. */
function fromPostgres(err: { code?: string }): AppError | undefined {
  switch (err.code) {
    case '40001': // serialization_failure
    case '40P01': // deadlock_detected
    case '57P01': // admin_shutdown
    case '53300': // too_many_connections
    case '08006': // connection_failure
    case '08001':
    case '08003':
      return AppError.unavailable();
    case '22P02': // invalid_text_representation (e.g. an id that is not a uuid)
    case '22007':
    case '22008':
      return AppError.validation('a value is not valid');
    default:
      return undefined;
  }
}

export function errorHandler(logger: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    let appError: AppError | undefined;
    if (err instanceof AppError) appError = err;
    else if (err && typeof err === 'object') {
      appError = fromBodyParser(err as BodyParserError) ?? fromPostgres(err as { code?: string });
      if (appError?.status === 503)
        logger.warn('database unavailable', {
          request_id: req.requestId,
          error: String((err as Error).message),
        });
    }
    if (!appError) {
      const e = err as Error;
      // Connection refused while the database is gone is the producer's cue to retry, not a bug.
      if (
        (e as { code?: string })?.code === 'ECONNREFUSED' ||
        /Connection terminated|timeout exceeded/.test(e?.message ?? '')
      ) {
        appError = AppError.unavailable();
      } else {
        logger.error('unhandled error', { request_id: req.requestId, error: e?.message, stack: e?.stack });
        appError = new AppError(500, 'internal_error', 'internal error');
      }
    }
    if (res.headersSent) return;
    for (const [name, value] of Object.entries(appError.headers ?? {})) res.setHeader(name, value);
    const body: { code: string; message: string; details?: unknown } = {
      code: appError.code,
      message: appError.message,
    };
    if (appError.details) body.details = appError.details;
    res.status(appError.status).json({ error: body });
  };
}
