/**
 * The JSON Schema subset of the event-type catalog (docs/event-types.md), checked when a schema is
 * registered. Pure: no I/O.
 *
 * Payloads are validated against a schema in SQL (postbox.schema_violation, called by postbox.ingest),
 * so POST /events, /events/batch and postbox.emit share one validator. This module only decides
 * whether a schema is one that validator understands: every keyword is either enforced there or a
 * pure annotation, and anything else is refused here with the path of the keyword, so a tenant never
 * registers a constraint that would silently not be checked.
 */
import type { ErrorDetail } from '../errors.js';

/** Keywords postbox.schema_violation enforces. */
export const ENFORCED_KEYWORDS = [
  'type',
  'enum',
  'const',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'minItems',
  'maxItems',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minLength',
  'maxLength',
  'pattern',
] as const;

/** Keywords that describe and never constrain (JSON Schema 2020-12 treats `format` as one by default). */
export const ANNOTATION_KEYWORDS = [
  '$schema',
  '$id',
  '$comment',
  'title',
  'description',
  'default',
  'examples',
  'deprecated',
  'readOnly',
  'writeOnly',
  'format',
] as const;

const KNOWN = new Set<string>([...ENFORCED_KEYWORDS, ...ANNOTATION_KEYWORDS]);
const TYPES = new Set(['object', 'array', 'string', 'number', 'integer', 'boolean', 'null']);
/** Deeper schemas are refused: the validator recurses once per level. */
export const MAX_SCHEMA_DEPTH = 32;

/** A pattern of the schema and where it is, for compiling it in the database (postbox.is_regex). */
export interface SchemaPattern {
  path: string;
  pattern: string;
}

export interface SchemaCheck {
  problems: ErrorDetail[];
  patterns: SchemaPattern[];
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;

/**
 * Problems of `schema` (the top level must be an object), each with the path of the offending keyword
 * under `path`, and the patterns to compile. No problems: postbox.schema_violation can enforce it.
 */
export function checkSchema(schema: unknown, path = 'schema'): SchemaCheck {
  const out: SchemaCheck = { problems: [], patterns: [] };
  if (!isObject(schema)) out.problems.push({ path, message: 'must be a JSON Schema object' });
  else walk(schema, path, 1, out);
  return out;
}

/** A subschema: an object, or true / false. */
function walkSub(schema: unknown, path: string, depth: number, out: SchemaCheck): void {
  if (typeof schema === 'boolean') return;
  if (!isObject(schema)) {
    out.problems.push({ path, message: 'must be a schema (an object, true or false)' });
    return;
  }
  if (depth > MAX_SCHEMA_DEPTH) {
    out.problems.push({ path, message: `nests deeper than ${MAX_SCHEMA_DEPTH} levels` });
    return;
  }
  walk(schema, path, depth, out);
}

function walk(schema: Record<string, unknown>, path: string, depth: number, out: SchemaCheck): void {
  const problem = (key: string, message: string) => out.problems.push({ path: `${path}.${key}`, message });
  for (const [key, value] of Object.entries(schema)) {
    if (!KNOWN.has(key)) {
      problem(key, 'is not a supported keyword (docs/event-types.md lists them)');
      continue;
    }
    switch (key) {
      case 'type': {
        const list = Array.isArray(value) ? value : [value];
        if (list.length === 0 || !list.every((t) => typeof t === 'string' && TYPES.has(t)))
          problem(key, `must be one of ${[...TYPES].join(', ')}, or a non-empty list of them`);
        else if (new Set(list).size !== list.length) problem(key, 'must not repeat a type');
        break;
      }
      case 'enum':
        if (!Array.isArray(value) || value.length === 0) problem(key, 'must be a non-empty array');
        break;
      case 'properties':
        if (!isObject(value)) problem(key, 'must be an object of schemas');
        else
          for (const [name, sub] of Object.entries(value))
            walkSub(sub, `${path}.${key}.${name}`, depth + 1, out);
        break;
      case 'required':
        if (!Array.isArray(value) || !value.every((r) => typeof r === 'string'))
          problem(key, 'must be an array of property names');
        else if (new Set(value).size !== value.length) problem(key, 'must not repeat a name');
        break;
      case 'additionalProperties':
        walkSub(value, `${path}.${key}`, depth + 1, out);
        break;
      case 'items':
        if (Array.isArray(value)) problem(key, 'must be one schema (a list of schemas is not supported)');
        else walkSub(value, `${path}.${key}`, depth + 1, out);
        break;
      case 'minimum':
      case 'maximum':
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
        if (typeof value !== 'number' || !Number.isFinite(value)) problem(key, 'must be a number');
        break;
      case 'minLength':
      case 'maxLength':
      case 'minItems':
      case 'maxItems':
        if (!isCount(value)) problem(key, 'must be a whole number, 0 or more');
        break;
      case 'pattern':
        if (typeof value !== 'string') problem(key, 'must be a string (a regular expression)');
        else out.patterns.push({ path: `${path}.${key}`, pattern: value });
        break;
      default: // annotations: any value
    }
  }
}
