/**
 * Per request, timed once when the response finishes: one JSON log line (request id, W3C trace id if
 * one came, route, status, duration) and the postbox_http_request_duration_seconds observation.
 */
import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from '../../logger.js';
import { traceFields } from '../../observability/log-context.js';
import type { Metrics } from '../../observability/metrics.js';

const REQUEST_ID = /^[\w.:-]{1,128}$/;

export function requestLog(logger: Logger, metrics: Metrics) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const started = process.hrtime.bigint();
    const given = req.headers['x-request-id'];
    req.requestId = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    res.setHeader('X-Request-Id', req.requestId);
    res.on('finish', () => {
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      const route = routeOf(req);
      metrics.httpRequest(route, req.method, res.statusCode, durationMs);
      logger.info('request', {
        request_id: req.requestId,
        // Behind a trusted proxy (TRUST_PROXY) the client's address from X-Forwarded-For, not the proxy's.
        client_ip: req.ip,
        // undefined (left out of the JSON) unless a valid traceparent came
        trace_id: traceFields(req.headers.traceparent).trace_id,
        method: req.method,
        route,
        status: res.statusCode,
        duration_ms: Math.round(durationMs * 100) / 100,
      });
    });
    next();
  };
}

/** The matched route pattern (low cardinality), not the raw path with ids in it. */
export function routeOf(req: Request): string {
  const route = (req as { route?: { path?: string } }).route?.path;
  return route ? req.baseUrl + route : 'unmatched';
}
