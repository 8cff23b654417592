/** The one error middleware: everything becomes the contract's JSON error; unknown errors are logged, never echoed. */
import type { NextFunction, Request, Response } from 'express';
import { AppError } from '../../errors.js';
import { classifyDbError, dbAppError } from '../../db/errors.js';
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
      return AppError.unsupportedMediaType('unsupported content encoding or charset');
    case 'request.aborted':
      return AppError.aborted();
    default:
      return typeof err.type === 'string' && err.status && err.status >= 400 && err.status < 500
        ? AppError.badRequest('bad request', err.status)
        : undefined;
  }
}

export function errorHandler(logger: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    let appError: AppError | undefined;
    if (err instanceof AppError) appError = err;
    else if (err && typeof err === 'object') {
      appError = fromBodyParser(err as BodyParserError) ?? dbAppError(err);
      const failure = appError ? classifyDbError(err) : undefined;
      // A data error here means validation let a value through that PostgreSQL refuses: worth a look.
      if (failure)
        logger.warn(failure.kind === 'unavailable' ? 'database unavailable' : 'database refused a value', {
          request_id: req.requestId,
          kind: failure.kind,
          code: (err as { code?: unknown }).code,
          // Never the message of a data error: PostgreSQL quotes the refused value in it.
          ...(failure.kind === 'unavailable' ? { reason: failure.reason } : {}),
        });
    }
    if (!appError) {
      const e = err as Error;
      logger.error('unhandled error', { request_id: req.requestId, error: e?.message, stack: e?.stack });
      appError = AppError.internal();
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
