/**
 * valibot at the edge: every body, query and path parameter is parsed through a schema, and a
 * failure becomes a 400 naming each bad field. Objects are strict: an unknown field (a typo such
 * as `event_type` for `event_types`) is an error, not silently ignored.
 */
import * as v from 'valibot';
import { AppError, type ErrorDetail } from '../errors.js';

export function parseInput<S extends v.GenericSchema>(
  schema: S,
  input: unknown,
  what = 'request',
): v.InferOutput<S> {
  const result = v.safeParse(schema, input, { abortPipeEarly: true });
  if (result.success) return result.output;
  const details: ErrorDetail[] = result.issues.map((issue) => ({
    path: v.getDotPath(issue) ?? '',
    message: issue.message,
  }));
  throw AppError.validation(`${what} is not valid`, details);
}

/** A UUID in canonical text form. */
export const Uuid = v.pipe(v.string(), v.uuid('must be a UUID'));

export const IdParams = v.object({ id: Uuid });

/** ISO 8601 date-time, parsed to a Date. */
export const IsoDate = v.pipe(
  v.string(),
  v.isoTimestamp('must be an ISO 8601 timestamp with a time zone, e.g. 2026-01-01T00:00:00Z'),
  v.transform((s) => new Date(s)),
);

/** Query strings: express may give arrays for repeated keys; we accept one value per key. */
export const QueryString = v.string('must be given once');
