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

/** PostgreSQL text and jsonb cannot hold NUL; refusing it here keeps it a 400 naming the field. */
export const NoNul = v.check(
  (s: string) => !s.includes('\u0000'),
  'must not contain NUL (\\u0000) characters',
);

/** A UUID in canonical text form. */
export const Uuid = v.pipe(v.string(), v.uuid('must be a UUID'));

export const IdParams = v.object({ id: Uuid });

/** A real calendar date: JavaScript would read 2026-02-30 as March 2nd. */
function isRealDate(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(s);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  return date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
}

/** ISO 8601 date-time with a time zone, a real calendar date between 1970 and 9999, as a Date. */
export const IsoDate = v.pipe(
  v.string('must be a string'),
  v.isoTimestamp('must be an ISO 8601 timestamp with a time zone, e.g. 2026-01-01T00:00:00Z'),
  v.check(isRealDate, 'is not a real calendar date'),
  v.transform((s) => new Date(s)),
  v.check((d: Date) => {
    const year = d.getUTCFullYear();
    return year >= 1970 && year <= 9999;
  }, 'must be between 1970 and 9999'),
);

/** Query strings: express may give arrays for repeated keys; we accept one value per key. */
export const QueryString = v.string('must be given once');

/** One query parameter, given once, then checked by `schema`. */
export const queryParam = <S extends v.GenericSchema<string, unknown>>(schema: S) =>
  v.pipe(QueryString, schema);

/** For requests that take no body: anything sent must be an empty object (a typo is an error, not ignored). */
export const NoBody = v.nullish(v.strictObject({}, 'is not a field of this request'));
