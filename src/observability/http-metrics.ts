/** Times every API request into postbox_http_request_duration_seconds, labelled by route pattern. */
import type { NextFunction, Request, Response } from 'express';
import { routeOf } from '../api/middleware/request-log.js';
import type { Metrics } from './metrics.js';

export function httpMetrics(metrics: Metrics) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      metrics.httpRequest(routeOf(req), req.method, res.statusCode, durationMs);
    });
    next();
  };
}
