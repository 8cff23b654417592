/**
 * The catalog's JSON Schema subset: postbox.schema_violation (the validator postbox.ingest runs, so
 * POST /events and postbox.emit share it) on a table of schemas and values, and checkSchema (what
 * registration accepts) on a table of schemas.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { checkSchema } from '../../src/ingest/event-schema.js';
import { invalidPatterns, schemaViolation } from '../../src/queries/event-types.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
});

const order = {
  type: 'object',
  required: ['id', 'total'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', pattern: '^ord_[0-9a-z]+$', minLength: 5, maxLength: 20 },
    total: { type: 'number', minimum: 0, exclusiveMaximum: 1000000 },
    currency: { enum: ['EUR', 'USD'] },
    note: { type: ['string', 'null'], title: 'free text', format: 'anything' },
    lines: {
      type: 'array',
      minItems: 1,
      maxItems: 3,
      items: {
        type: 'object',
        required: ['sku', 'qty'],
        properties: { sku: { type: 'string' }, qty: { type: 'integer', minimum: 1 } },
      },
    },
    meta: { type: 'object', additionalProperties: { type: 'string' } },
    kind: { const: 'sale' },
  },
};
const good = { id: 'ord_42x', total: 12.5, lines: [{ sku: 'a', qty: 1 }] };

describe('postbox.schema_violation', () => {
  it.each<[string, unknown, unknown, [string, string] | null]>([
    ['a valid payload', order, good, null],
    [
      'every optional field, valid',
      order,
      { ...good, currency: 'EUR', note: null, meta: { a: 'b' }, kind: 'sale' },
      null,
    ],
    ['a missing required property', order, { id: 'ord_42x' }, ['payload.total', 'is required']],
    ['a wrong type', order, { ...good, total: '12' }, ['payload.total', 'must be a number']],
    ['a type list', order, { ...good, note: 3 }, ['payload.note', 'must be a string or null']],
    ['an enum', order, { ...good, currency: 'GBP' }, ['payload.currency', 'must be one of "EUR", "USD"']],
    ['a const', order, { ...good, kind: 'refund' }, ['payload.kind', 'must be "sale"']],
    ['minimum', order, { ...good, total: -1 }, ['payload.total', 'must be at least 0']],
    ['exclusiveMaximum', order, { ...good, total: 1000000 }, ['payload.total', 'must be less than 1000000']],
    [
      'a pattern',
      order,
      { ...good, id: 'ORD_42x' },
      ['payload.id', 'must match the pattern ^ord_[0-9a-z]+$'],
    ],
    [
      'minLength (characters, not bytes)',
      order,
      { ...good, id: 'ord_' },
      ['payload.id', 'must be at least 5 characters'],
    ],
    [
      'maxLength',
      order,
      { ...good, id: 'ord_' + 'a'.repeat(17) },
      ['payload.id', 'must be at most 20 characters'],
    ],
    ['additionalProperties false', order, { ...good, extra: 1 }, ['payload.extra', 'is not allowed']],
    [
      'additionalProperties as a schema',
      order,
      { ...good, meta: { a: 1 } },
      ['payload.meta.a', 'must be a string'],
    ],
    ['minItems', order, { ...good, lines: [] }, ['payload.lines', 'must have at least 1 item']],
    [
      'maxItems',
      order,
      { ...good, lines: Array(4).fill({ sku: 'a', qty: 1 }) },
      ['payload.lines', 'must have at most 3 items'],
    ],
    [
      'an item, by index',
      order,
      {
        ...good,
        lines: [
          { sku: 'a', qty: 1 },
          { sku: 'b', qty: 0 },
        ],
      },
      ['payload.lines.1.qty', 'must be at least 1'],
    ],
    [
      'a required property of an item',
      order,
      { ...good, lines: [{ qty: 1 }] },
      ['payload.lines.0.sku', 'is required'],
    ],
    [
      'integer: 2.5 is not one',
      order,
      { ...good, lines: [{ sku: 'a', qty: 2.5 }] },
      ['payload.lines.0.qty', 'must be an integer'],
    ],
    ['integer: 2.0 is one', order, { ...good, lines: [{ sku: 'a', qty: 2.0 }] }, null],
    ['a payload that is not an object', order, [1], ['payload', 'must be an object']],
    ['a JSON null payload', { type: 'null' }, null, null],
    ['true accepts anything', true, { any: 'thing' }, null],
    ['false refuses everything', false, 1, ['payload', 'is not allowed']],
    [
      'an enum of objects compares whole values',
      { enum: [{ a: 1 }] },
      { a: 1, b: 2 },
      ['payload', 'must be one of {"a": 1}'],
    ],
    ['keywords of another kind are ignored', { minLength: 3, minimum: 5 }, true, null],
    ['unicode length', { maxLength: 2 }, 'é😀', null],
  ])('%s', async (_what, schema, value, expected) => {
    expect(await schemaViolation(db.pool, schema, value, 'payload')).toEqual(expected);
  });

  it('compiles patterns as PostgreSQL does', async () => {
    expect(await invalidPatterns(db.pool, ['^a+$', '(', '\\d{3}', '[z-a]'])).toEqual([1, 3]);
  });
});

describe('checkSchema (what registration accepts)', () => {
  it('accepts the subset and the annotations, and lists the patterns to compile', () => {
    expect(checkSchema(order)).toEqual({
      problems: [],
      patterns: [{ path: 'schema.properties.id.pattern', pattern: '^ord_[0-9a-z]+$' }],
    });
  });

  it.each<[string, unknown, string, string]>([
    ['a schema that is not an object', [1], 'schema', 'must be a JSON Schema object'],
    [
      'an unsupported keyword',
      { oneOf: [] },
      'schema.oneOf',
      'is not a supported keyword (docs/event-types.md lists them)',
    ],
    [
      '$ref',
      { properties: { a: { $ref: '#/x' } } },
      'schema.properties.a.$ref',
      'is not a supported keyword (docs/event-types.md lists them)',
    ],
    [
      'an unknown type',
      { type: 'date' },
      'schema.type',
      'must be one of object, array, string, number, integer, boolean, null, or a non-empty list of them',
    ],
    ['a repeated type', { type: ['string', 'string'] }, 'schema.type', 'must not repeat a type'],
    [
      'tuple items',
      { items: [{}, {}] },
      'schema.items',
      'must be one schema (a list of schemas is not supported)',
    ],
    ['a negative length', { minLength: -1 }, 'schema.minLength', 'must be a whole number, 0 or more'],
    ['a string as a number', { maximum: '5' }, 'schema.maximum', 'must be a number'],
    ['required not names', { required: [1] }, 'schema.required', 'must be an array of property names'],
    ['an empty enum', { enum: [] }, 'schema.enum', 'must be a non-empty array'],
    [
      'a subschema that is not one',
      { properties: { a: 3 } },
      'schema.properties.a',
      'must be a schema (an object, true or false)',
    ],
    [
      'a pattern that is not a string',
      { pattern: 3 },
      'schema.pattern',
      'must be a string (a regular expression)',
    ],
  ])('refuses %s, naming the keyword', (_what, schema, path, message) => {
    expect(checkSchema(schema).problems).toEqual([{ path, message }]);
  });

  it('refuses a schema nested deeper than 32 levels', () => {
    let deep: Record<string, unknown> = { type: 'string' };
    for (let i = 0; i < 40; i++) deep = { properties: { a: deep } };
    expect(checkSchema(deep).problems[0]?.message).toBe('nests deeper than 32 levels');
  });
});
