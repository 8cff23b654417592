/**
 * Payload filters: a webhook may ask for only the events whose payload matches a condition, beyond
 * its event types. Pure: no I/O. The language (docs/filters.md):
 *
 *   condition := {"and": [condition, ...]} | {"or": [condition, ...]} | {"not": condition}
 *              | {"path": "a.b.c", <op>: value}
 *   op        := eq | ne | in | nin | gt | gte | lt | lte | exists
 *
 * A filter is checked once, at registration (`checkFilter`: every problem named by its path, e.g.
 * `filter.and.1.gte`), and compiled into a SQL/JSON path predicate (`compileFilter`) stored beside it.
 * Ingest evaluates `payload @@ compiled` in its one statement, so POST /events and postbox.emit
 * filter alike and matching stays one statement.
 *
 * Every leaf compiles to `exists(<path> ? (@ <op> <value>))`: a filter expression treats a comparison
 * of unlike types (a string against a number) as no match instead of SQL/JSON's "unknown", so `ne`,
 * `nin` and `not` stay two-valued: a missing path or a value of another type is "not equal".
 */

export type FilterValue = string | number | boolean | null;

export const FILTER_LIMITS = {
  /** Leaves (path conditions) in one filter. */
  maxConditions: 50,
  /** Nesting of and/or/not. */
  maxDepth: 8,
  /** Segments of a dotted path, and characters per segment. */
  maxPathSegments: 16,
  maxSegmentLength: 200,
  /** Values of one in/nin list. */
  maxListValues: 100,
  maxStringLength: 1000,
} as const;

const COMPARISONS = { eq: '==', gt: '>', gte: '>=', lt: '<', lte: '<=' } as const;
const OPERATORS = ['eq', 'ne', 'in', 'nin', 'gt', 'gte', 'lt', 'lte', 'exists'] as const;
type Operator = (typeof OPERATORS)[number];

export interface FilterProblem {
  path: string;
  message: string;
}

const isObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);

function scalarProblem(value: unknown, ordered: boolean): string | undefined {
  if (typeof value === 'string')
    return value.length > FILTER_LIMITS.maxStringLength
      ? `must be at most ${FILTER_LIMITS.maxStringLength} characters`
      : undefined;
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : 'must be a finite number';
  if (ordered) return 'must be a number or a string';
  if (typeof value === 'boolean' || value === null) return undefined;
  return 'must be a string, number, boolean or null';
}

/**
 * Every problem of a filter, each named by its path under `at` (the field's name in the request).
 * An empty list means the filter is valid.
 */
export function checkFilter(filter: unknown, at = 'filter'): FilterProblem[] {
  const problems: FilterProblem[] = [];
  let leaves = 0;
  const walk = (node: unknown, path: string, depth: number): void => {
    if (!isObject(node)) {
      problems.push({
        path,
        message: 'must be an object: {"and"|"or": [...]}, {"not": ...} or {"path", <op>}',
      });
      return;
    }
    if (depth > FILTER_LIMITS.maxDepth) {
      problems.push({ path, message: `nests deeper than ${FILTER_LIMITS.maxDepth} levels` });
      return;
    }
    const keys = Object.keys(node);
    if ('and' in node || 'or' in node) {
      const op = 'and' in node ? 'and' : 'or';
      if (keys.length !== 1) problems.push({ path, message: `"${op}" must be the only key` });
      const list = node[op];
      if (!Array.isArray(list) || list.length === 0) {
        problems.push({ path: `${path}.${op}`, message: 'must be a non-empty array of conditions' });
        return;
      }
      list.forEach((child, i) => walk(child, `${path}.${op}.${i}`, depth + 1));
      return;
    }
    if ('not' in node) {
      if (keys.length !== 1) problems.push({ path, message: '"not" must be the only key' });
      walk(node.not, `${path}.not`, depth + 1);
      return;
    }
    leaves++;
    const p = node.path;
    if (typeof p !== 'string') {
      problems.push({
        path: `${path}.path`,
        message: 'must be a dotted payload path, e.g. "customer.country"',
      });
    } else {
      const segments = p.split('.');
      if (segments.some((s) => s === ''))
        problems.push({
          path: `${path}.path`,
          message: 'must not have empty segments (a.b, not a..b or .a)',
        });
      else if (segments.length > FILTER_LIMITS.maxPathSegments)
        problems.push({
          path: `${path}.path`,
          message: `must have at most ${FILTER_LIMITS.maxPathSegments} segments`,
        });
      else if (segments.some((s) => s.length > FILTER_LIMITS.maxSegmentLength || s.includes('\u0000')))
        problems.push({
          path: `${path}.path`,
          message: `segments must be 1–${FILTER_LIMITS.maxSegmentLength} characters without NUL`,
        });
    }
    const ops = keys.filter((k) => k !== 'path');
    const unknown = ops.filter((k) => !(OPERATORS as readonly string[]).includes(k));
    if (unknown.length > 0) {
      problems.push({
        path: `${path}.${unknown[0]}`,
        message: `is not an operator (${OPERATORS.join(', ')})`,
      });
      return;
    }
    if (ops.length !== 1) {
      problems.push({ path, message: `must have exactly one operator (${OPERATORS.join(', ')})` });
      return;
    }
    const op = ops[0] as Operator;
    const value = node[op];
    const at = `${path}.${op}`;
    if (op === 'exists') {
      if (typeof value !== 'boolean') problems.push({ path: at, message: 'must be true or false' });
    } else if (op === 'in' || op === 'nin') {
      if (!Array.isArray(value) || value.length === 0 || value.length > FILTER_LIMITS.maxListValues) {
        problems.push({ path: at, message: `must be an array of 1–${FILTER_LIMITS.maxListValues} values` });
        return;
      }
      value.forEach((item, i) => {
        const problem = scalarProblem(item, false);
        if (problem) problems.push({ path: `${at}.${i}`, message: problem });
      });
    } else {
      const problem = scalarProblem(value, op !== 'eq' && op !== 'ne');
      if (problem) problems.push({ path: at, message: problem });
    }
  };
  walk(filter, at, 1);
  if (leaves > FILTER_LIMITS.maxConditions)
    problems.push({ path: at, message: `must have at most ${FILTER_LIMITS.maxConditions} conditions` });
  return problems;
}

/** A JSON value as an SQL/JSON path literal (its string escapes are JSON's). */
function literal(value: FilterValue): string {
  return JSON.stringify(value);
}

/** `a.b` → `$."a"."b"`: every key quoted, so any character but the dot is a plain key. */
function jsonPath(path: string): string {
  return (
    '$' +
    path
      .split('.')
      .map((s) => '.' + JSON.stringify(s))
      .join('')
  );
}

/** The SQL/JSON path predicate of a filter that `checkFilter` found valid. */
export function compileFilter(filter: unknown): string {
  const node = filter as Record<string, unknown>;
  if (Array.isArray(node.and)) return '(' + node.and.map(compileFilter).join(' && ') + ')';
  if (Array.isArray(node.or)) return '(' + node.or.map(compileFilter).join(' || ') + ')';
  if ('not' in node) return `!(${compileFilter(node.not)})`;
  const path = jsonPath(node.path as string);
  const test = (condition: string) => `exists(${path} ? (${condition}))`;
  if ('exists' in node) return node.exists ? `exists(${path})` : `!(exists(${path}))`;
  if ('in' in node || 'nin' in node) {
    const values = (node.in ?? node.nin) as FilterValue[];
    const any = test(values.map((v) => `@ == ${literal(v)}`).join(' || '));
    return 'in' in node ? any : `!(${any})`;
  }
  if ('ne' in node) return `!(${test(`@ == ${literal(node.ne as FilterValue)}`)})`;
  for (const [op, sql] of Object.entries(COMPARISONS))
    if (op in node) return test(`@ ${sql} ${literal(node[op] as FilterValue)}`);
  throw new Error('compileFilter: not a checked filter');
}

/** The compiled predicate, or the problems that make the filter invalid. */
export function parseFilter(
  filter: unknown,
  at = 'filter',
): { compiled: string } | { problems: FilterProblem[] } {
  const problems = checkFilter(filter, at);
  return problems.length > 0 ? { problems } : { compiled: compileFilter(filter) };
}
