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
  it.each([
    'a',
    'a.b',
    'a.b.c',
    'order.line.added',
    '.a',
    '..a',
    '...a',
    '.a.b.',
    'a.',
    'a..b',
    '.',
    '',
    'x:y-z_1.q',
    'a.b.c.d.e.f',
  ])('expands %s as patternsForType does', async (type) => {
    const { rows } = await db.pool.query<{ p: string[] }>('SELECT postbox.event_type_patterns($1) AS p', [
      type,
    ]);
    expect(rows[0]!.p).toEqual(patternsForType(type));
  });

  it('is NULL for a NULL type (STRICT)', async () => {
    const { rows } = await db.pool.query<{ p: string[] | null }>(
      'SELECT postbox.event_type_patterns(NULL) AS p',
    );
    expect(rows[0]!.p).toBeNull();
  });
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

describe('postbox.check_envelope', () => {
  const valid = { type: 'order.created', payload: {} };
  it.each([
    ['no version, metadata or source', valid],
    ['version 1', { ...valid, version: 1 }],
    ['version 0', { ...valid, version: 0 }],
    ['metadata of strings', { ...valid, metadata: { a: 'b', 'x:y': '' } }],
    ['metadata that is an array', { ...valid, metadata: ['a'] }],
    ['metadata that is a string', { ...valid, metadata: 'a' }],
    ['a metadata number', { ...valid, metadata: { n: 1 } }],
    ['a metadata value of 500', { ...valid, metadata: { k: 'v'.repeat(500) } }],
    ['a metadata value of 501', { ...valid, metadata: { k: 'v'.repeat(501) } }],
    ['an empty metadata key', { ...valid, metadata: { '': 'v' } }],
    ['a metadata key of 41', { ...valid, metadata: { ['k'.repeat(41)]: 'v' } }],
    ['a metadata key with a tab', { ...valid, metadata: { 'a\tb': 'v' } }],
    [
      '50 metadata keys',
      { ...valid, metadata: Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, ''])) },
    ],
    [
      '51 metadata keys',
      { ...valid, metadata: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, ''])) },
    ],
    ['a source', { ...valid, source: 'billing' }],
    ['an empty source', { ...valid, source: '' }],
    ['a source of 101', { ...valid, source: 's'.repeat(101) }],
    ['a source with a newline', { ...valid, source: 'a\nb' }],
  ])('agrees with the API schema on %s', async (_what, body: Record<string, unknown>) => {
    const api = v.safeParse(EventBody, body, { abortPipeEarly: true });
    const apiVerdict = api.success ? 'ok' : `${v.getDotPath(api.issues[0])}: ${api.issues[0].message}`;
    const sqlVerdict = await db.pool
      .query('SELECT postbox.check_envelope($1, $2, $3)', [
        body.version ?? null,
        body.metadata === undefined ? null : JSON.stringify(body.metadata),
        body.source ?? null,
      ])
      .then(
        () => 'ok',
        (err: { code?: string; message: string }) =>
          err.code === 'PB400' ? err.message : `error ${err.code}`,
      );
    expect(sqlVerdict).toBe(apiVerdict);
  });
});
