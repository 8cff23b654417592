/**
 * What the console's own routes accept and how its pages are served (the public folder, the CSP):
 * kept below both the console router and the OpenAPI document, which describes these routes too.
 */
import { join } from 'node:path';
import * as v from 'valibot';
import { projectRoot } from '../../paths.js';
import { PageQuery } from '../pagination.js';
import { QueryString, Uuid } from '../validate.js';

/** Resolved from the project root, so it is the same folder under src/ (tests) and dist/ (npm start). */
export const consolePublicDir = join(projectRoot, 'src', 'console', 'public');

/**
 * Defence in depth for the pages: scripts and styles only from our own files (no inline script, so an
 * injected `<script>` or `onerror=` could not run even if escaping failed), fetch only to our own
 * origin, never framed (clickjacking), no forms posting elsewhere.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export const HealthQuery = v.strictObject(
  {
    ...PageQuery,
    tenant_id: v.optional(v.pipe(QueryString, Uuid)),
  },
  'is not a known query parameter',
);

export const StatsParams = v.object({ id: Uuid });
export const StatsQuery = v.strictObject(
  {
    hours: v.optional(
      v.pipe(
        QueryString,
        v.regex(/^\d+$/, 'must be a whole number'),
        v.transform(Number),
        v.minValue(1, 'must be at least 1'),
        v.maxValue(168, 'must be at most 168 (a week)'),
      ),
      '24',
    ),
  },
  'is not a known query parameter',
);

/** The top tenants by quota use: a ranking of at most `limit` (1–100, default 20), no cursor. */
export const TenantUsageQuery = v.strictObject(
  {
    limit: v.optional(
      v.pipe(
        QueryString,
        v.regex(/^\d+$/, 'must be a whole number'),
        v.transform(Number),
        v.minValue(1, 'must be at least 1'),
        v.maxValue(100, 'must be at most 100'),
      ),
      '20',
    ),
    tenant_id: v.optional(v.pipe(QueryString, Uuid)),
  },
  'is not a known query parameter',
);
