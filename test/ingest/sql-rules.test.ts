/**
 * The rules postbox.ingest applies in SQL (for postbox.emit and, behind the API's own schemas, for
 * POST /events) are the rules the API states in TypeScript: these tables hold the two equal.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as v from 'valibot';
import { EventBody } from '../../src/api/routes/event-schemas.js';
import { patternsForType } from '../../src/ingest/event-types.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
});

describe('postbox.event_type_patterns', () => {
  it.each(['a', 'a.b', 'a.b.c', 'order.line.added', '.a', '..a', 'a.', 'a..b', 'x:y-z_1.q', 'a.b.c.d.e.f'])(
    'expands %s as patternsForType does',
    async (type) => {
      const { rows } = await db.pool.query<{ p: string[] }>('SELECT postbox.event_type_patterns($1) AS p', [
        type,
      ]);
      expect(rows[0]!.p).toEqual(patternsForType(type));
    },
  );
});

describe('postbox.check_event', () => {
  const valid = { type: 'order.created', payload: {} };
  it.each([
    ['a plain event', valid],
    ['a null payload', { ...valid, payload: null }],
    ['a key of 255', { ...valid, idempotency_key: 'k'.repeat(255) }],
    ['a type of 200', { ...valid, type: 't'.repeat(200) }],
    ['an empty type', { ...valid, type: '' }],
    ['a wildcard type', { ...valid, type: 'order.*' }],
    ['a type with a space', { ...valid, type: 'order created' }],
    ['a type of 201', { ...valid, type: 't'.repeat(201) }],
    ['a reserved type', { ...valid, type: 'postbox.endpoint.disabled' }],
    ['the bare word postbox', { ...valid, type: 'postbox' }],
    ['a type that only starts like postbox', { ...valid, type: 'postboxes.sent' }],
    ['an empty key', { ...valid, idempotency_key: '' }],
    ['a key of 256', { ...valid, idempotency_key: 'k'.repeat(256) }],
    ['a key with a tab', { ...valid, idempotency_key: 'a\tb' }],
    ['a key with DEL', { ...valid, idempotency_key: 'a\x7fb' }],
    ['a timestamp in 1970', { ...valid, timestamp: '1970-01-01T00:00:00Z' }],
    ['a timestamp in 9999', { ...valid, timestamp: '9999-12-31T23:59:59Z' }],
    ['a timestamp in 1969', { ...valid, timestamp: '1969-12-31T23:59:59Z' }],
  ])('agrees with the API schema on %s', async (_what, body: Record<string, unknown>) => {
    const api = v.safeParse(EventBody, body);
    const apiVerdict = api.success
      ? 'ok'
      : `${String(api.issues[0].path?.[0]?.key)}: ${api.issues[0].message}`;
    const sqlVerdict = await db.pool
      .query('SELECT postbox.check_event($1, $2, $3, $4)', [
        body.type,
        JSON.stringify(body.payload),
        body.idempotency_key ?? null,
        body.timestamp ?? null,
      ])
      .then(
        () => 'ok',
        (err: { code?: string; message: string }) =>
          err.code === 'PB400' ? err.message : `error ${err.code}`,
      );
    expect(sqlVerdict).toBe(apiVerdict);
  });
});
