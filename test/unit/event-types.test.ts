import { describe, expect, it } from '@jest/globals';
import {
  isEventType,
  isEventTypePattern,
  matchesAnyEventType,
  matchesEventType,
  patternsForType,
} from '../../src/ingest/event-types.js';

describe('isEventType', () => {
  it.each(['order.created', 'a', 'A_b-c:d.e', 'x'.repeat(200), 'v1:invoice.paid', '.a', 'a.', 'a..b'])(
    'accepts %s',
    (t) => expect(isEventType(t)).toBe(true),
  );
  it.each(['', '*', 'order.*', 'x'.repeat(201), 'a b', 'a/b', 'ä', 'a\u0000', 'order.created\n'])(
    'refuses %j',
    (t) => expect(isEventType(t)).toBe(false),
  );
});

describe('isEventTypePattern', () => {
  it.each(['*', 'order.created', 'order.*', 'a.b.*', 'a..*', `${'x'.repeat(200)}.*`])('accepts %s', (p) =>
    expect(isEventTypePattern(p)).toBe(true),
  );
  it.each([
    '',
    '**',
    '.*',
    'order*',
    '*.created',
    'order.*.created',
    'order.**',
    'a.*.*',
    `${'x'.repeat(201)}.*`,
    'a b.*',
  ])('refuses %j', (p) => expect(isEventTypePattern(p)).toBe(false));
});

describe('patternsForType', () => {
  it('expands a type into every pattern that matches it', () => {
    expect(patternsForType('a.b.c')).toEqual(['*', 'a.b.c', 'a.*', 'a.b.*']);
    expect(patternsForType('order')).toEqual(['*', 'order']);
    expect(patternsForType('order.created')).toEqual(['*', 'order.created', 'order.*']);
  });

  it('skips a leading dot (no empty prefix) but keeps later ones', () => {
    expect(patternsForType('.a.b')).toEqual(['*', '.a.b', '.a.*']);
    expect(patternsForType('a..b')).toEqual(['*', 'a..b', 'a.*', 'a..*']);
    expect(patternsForType('a.')).toEqual(['*', 'a.', 'a.*']);
  });

  it('only produces valid patterns', () => {
    for (const t of ['a.b.c', '.a.b', 'a..b', 'x.'.repeat(100), 'q'])
      for (const p of patternsForType(t)) expect(isEventTypePattern(p)).toBe(true);
  });
});

describe('matching', () => {
  it('follows the documented rule', () => {
    expect(matchesEventType('*', 'anything.at.all')).toBe(true);
    expect(matchesEventType('order.created', 'order.created')).toBe(true);
    expect(matchesEventType('order.created', 'order.updated')).toBe(false);
    expect(matchesEventType('order.*', 'order.created')).toBe(true);
    expect(matchesEventType('order.*', 'order.line.added')).toBe(true);
    expect(matchesEventType('order.*', 'order')).toBe(false);
    expect(matchesEventType('order.*', 'orders.created')).toBe(false);
    expect(matchesEventType('order.*', 'sub.order.created')).toBe(false);
    expect(matchesAnyEventType(['invoice.*', 'order.created'], 'order.created')).toBe(true);
    expect(matchesAnyEventType(['invoice.*', 'order.created'], 'order.deleted')).toBe(false);
  });

  // The ingest query relies on: pattern matches type  <=>  pattern is in patternsForType(type).
  it('agrees with the expansion for every pattern/type pair over a small alphabet', () => {
    const alphabet = ['a', 'b', '.'];
    const strings: string[] = [''];
    for (let len = 1; len <= 5; len++)
      for (const s of strings.filter((x) => x.length === len - 1))
        for (const c of alphabet) strings.push(s + c);
    const types = strings.filter(isEventType);
    const patterns = [...types, ...types.map((t) => `${t}.*`), '*'].filter(isEventTypePattern);
    const disagreements: string[] = [];
    let checked = 0;
    for (const type of types) {
      const expanded = new Set(patternsForType(type));
      for (const pattern of patterns) {
        if (expanded.has(pattern) !== matchesEventType(pattern, type))
          disagreements.push(`${pattern} ~ ${type}`);
        checked++;
      }
    }
    expect(disagreements).toEqual([]);
    expect(checked).toBeGreaterThan(100_000);
  });
});
