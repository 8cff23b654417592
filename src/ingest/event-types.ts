/**
 * Event types and the patterns webhooks subscribe with. Pure: no I/O.
 *
 * A type is 1–200 characters of [A-Za-z0-9_.:-]. A webhook pattern is `*` (everything), an exact type,
 * or a trailing wildcard `prefix.*`, which matches every type that starts with `prefix.` (any depth:
 * `order.*` matches `order.created` and `order.line.added`, not `order` itself).
 *
 * Ingest does not test each webhook against the type. It expands the type into the (few) patterns
 * that would match it and asks the database for `event_types && patterns`, which a GIN index answers
 * without looking at non-matching webhooks. `matchesEventType` is the same rule stated directly; the
 * unit tests hold the two equal.
 */

export const EVENT_TYPE_MAX_LENGTH = 200;
const EVENT_TYPE = /^[A-Za-z0-9_.:-]{1,200}$/;
const WILDCARD_SUFFIX = '.*';

export function isEventType(value: string): boolean {
  return EVENT_TYPE.test(value);
}

/** Postbox's own event types (operational notices), reserved: producers cannot send them. */
export function isOperationalEventType(type: string): boolean {
  return type.startsWith('postbox.');
}

/** `*`, an exact type, or `prefix.*` whose prefix is itself a valid type (so at most 202 characters). */
export function isEventTypePattern(value: string): boolean {
  if (value === '*') return true;
  if (value.endsWith(WILDCARD_SUFFIX)) return isEventType(value.slice(0, -WILDCARD_SUFFIX.length));
  return isEventType(value);
}

/** Every pattern that matches `type`: `a.b.c` → `*`, `a.b.c`, `a.*`, `a.b.*`. */
export function patternsForType(type: string): string[] {
  const patterns = ['*', type];
  for (let i = type.indexOf('.', 1); i !== -1; i = type.indexOf('.', i + 1)) {
    patterns.push(type.slice(0, i) + WILDCARD_SUFFIX);
  }
  return patterns;
}

/** The matching rule stated directly (for callers holding one webhook, and for the tests). */
export function matchesEventType(pattern: string, type: string): boolean {
  if (pattern === '*' || pattern === type) return true;
  return pattern.endsWith(WILDCARD_SUFFIX) && pattern.length > 2 && type.startsWith(pattern.slice(0, -1));
}

export function matchesAnyEventType(patterns: readonly string[], type: string): boolean {
  return patterns.some((p) => matchesEventType(p, type));
}
