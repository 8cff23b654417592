/**
 * Cursor pagination as the contract fixes it: `limit` (1–500, default 50), an opaque `cursor`, and
 * `{data, next_cursor}`. A cursor is base64url JSON of the last row's sort key; callers decide
 * what the key is (usually just the UUIDv7 id, which sorts by creation time).
 */
import * as v from 'valibot';
import { AppError } from '../errors.js';
import { Uuid } from './validate.js';

export const PageQuery = {
  limit: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^\d+$/, 'must be a whole number'),
      v.transform(Number),
      v.minValue(1, 'must be at least 1'),
      v.maxValue(500, 'must be at most 500'),
    ),
    '50',
  ),
  cursor: v.optional(v.pipe(v.string(), v.maxLength(512, 'is not a valid cursor'))),
};

export function encodeCursor(key: unknown[]): string {
  return Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');
}

/** Decodes a cursor and checks it holds exactly `arity` strings. */
function decodeCursor(cursor: string | undefined, arity = 1): string[] | undefined {
  if (cursor === undefined) return undefined;
  try {
    const key: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(key) && key.length === arity && key.every((k) => typeof k === 'string'))
      return key as string[];
  } catch {
    // fall through to the error below
  }
  throw AppError.validation('cursor is not valid', [
    { path: 'cursor', message: 'is not a cursor from this API' },
  ]);
}

/** Fetch limit+1 rows; this trims the extra one and builds next_cursor from the last kept row. */
export function page<T>(rows: T[], limit: number, keyOf: (row: T) => unknown[]) {
  const hasMore = rows.length > limit;
  const data = hasMore ? rows.slice(0, limit) : rows;
  const last = data[data.length - 1];
  return { data, next_cursor: hasMore && last !== undefined ? encodeCursor(keyOf(last)) : null };
}

/**
 * The one cursor helper of every list: decodes a cursor and checks each part against `key` (e.g. a
 * UUID), so a forged cursor is a 400 on `cursor` before it reaches SQL.
 */
export function decodeCursorAs<S extends v.TupleSchema<v.TupleItems, undefined>>(
  cursor: string | undefined,
  key: S,
): v.InferOutput<S> | undefined {
  const parts = decodeCursor(cursor, key.items.length);
  if (parts === undefined) return undefined;
  const result = v.safeParse(key, parts);
  if (result.success) return result.output;
  throw AppError.validation('cursor is not valid', [
    { path: 'cursor', message: 'is not a cursor from this API' },
  ]);
}

const IdKey = v.tuple([Uuid]);

/** A cursor that is one id (the last row of the previous page): decodeCursorAs with a UUID key. */
export function idCursor(cursor: string | undefined): string | undefined {
  return decodeCursorAs(cursor, IdKey)?.[0];
}
