/**
 * Builds the OpenAPI 3.1 document from the route table (operations.ts). Every body, query and
 * path schema is converted from valibot by @valibot/to-json-schema, so the document cannot say
 * something the validation does not do. Built once per process and cached.
 */
import {
  toJsonSchema,
  toJsonSchemaDefs,
  type ConversionConfig,
  type JsonSchema,
} from '@valibot/to-json-schema';
import * as v from 'valibot';
import { NAMED_SCHEMAS } from '../response-schemas.js';
import type { Answer, Operation } from './operation.js';
import { OPERATIONS } from './operations.js';
import { ERROR_STATUSES, errorResponse } from './errors.js';
import { DOCUMENT_INFO } from './info.js';

type Json = Record<string, unknown>;

interface PipeItem {
  kind: string;
  type: string;
  message?: unknown;
}

function unwrapOptional(schema: v.GenericSchema): v.GenericSchema {
  const wrapped = (schema as { wrapped?: v.GenericSchema }).wrapped;
  return wrapped ? unwrapOptional(wrapped) : schema;
}

/** A pipe checked again by a later schema (e.g. `array(unknown)` → size → `array(Event)`): document both. */
function laterSchemasOf(schema: v.GenericSchema): v.GenericSchema[] {
  const pipe = (schema as { pipe?: PipeItem[] }).pipe;
  if (!pipe) return [];
  const later: v.GenericSchema[] = [];
  for (const item of pipe.slice(1)) {
    if (item.kind === 'transformation') break;
    if (item.kind === 'schema') later.push(item as unknown as v.GenericSchema);
  }
  return later;
}

const CONFIG: ConversionConfig = {
  target: 'draft-2020-12',
  // Requests are documented as sent: a pipe stops at its first transformation (e.g. limit is a string).
  typeMode: 'input',
  errorMode: 'throw',
  definitions: NAMED_SCHEMAS,
  overrideRef: ({ referenceId }) => `#/components/schemas/${referenceId}`,
  // The converter stops a pipe at its second schema and offers no hook for pipes, so an object
  // patches those of its fields here.
  overrideSchema: ({ valibotSchema, jsonSchema }) => {
    const entries = (valibotSchema as { entries?: Record<string, v.GenericSchema> }).entries;
    const props = jsonSchema.properties as Record<string, JsonSchema> | undefined;
    if (!entries || !props) return undefined;
    let changed = false;
    for (const [key, entry] of Object.entries(entries)) {
      const later = laterSchemasOf(unwrapOptional(entry));
      if (later.length === 0 || !props[key]) continue;
      props[key] = later.reduce<JsonSchema>((acc, s) => ({ ...acc, ...jsonSchemaOf(s) }), props[key]);
      changed = true;
    }
    return changed ? jsonSchema : undefined;
  },
  // A custom check cannot be JSON Schema; its message (when fixed) still tells the reader the rule.
  overrideAction: ({ valibotAction, jsonSchema }) => {
    const action = valibotAction as unknown as PipeItem;
    // Type-keeping transformations (trim) change nothing a client must send.
    if (action.kind === 'transformation') return jsonSchema;
    if (action.type !== 'check') return undefined;
    if (typeof action.message !== 'string') return jsonSchema;
    const rule = action.message;
    return {
      ...jsonSchema,
      description: jsonSchema.description ? `${jsonSchema.description}; ${rule}` : rule,
    };
  },
};

/** toJsonSchema adds `$schema` (and `$defs` when it meets a named schema): the document holds those once. */
function strip(schema: JsonSchema): Json {
  const { $schema: _s, $defs: _d, ...rest } = schema as Json;
  return rest;
}

export function jsonSchemaOf(schema: v.GenericSchema): Json {
  return strip(toJsonSchema(schema, CONFIG));
}

/** `/webhooks/:id` → `/webhooks/{id}` */
export function openApiPath(expressPath: string): string {
  return expressPath.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
}

function parameters(op: Operation): Json[] {
  const out: Json[] = [];
  for (const [where, schema] of [
    ['path', op.params],
    ['query', op.query],
  ] as const) {
    if (!schema) continue;
    const json = jsonSchemaOf(schema) as { properties?: Record<string, Json>; required?: string[] };
    for (const [name, prop] of Object.entries(json.properties ?? {})) {
      const { description, ...propSchema } = prop;
      out.push({
        name,
        in: where,
        required: where === 'path' || (json.required ?? []).includes(name),
        ...(description ? { description } : {}),
        schema: propSchema,
      });
    }
  }
  for (const [name, description] of Object.entries(op.headers ?? {}))
    out.push({ name, in: 'header', required: false, description, schema: { type: 'string' } });
  return out;
}

function answer(a: Answer | v.GenericSchema): Answer {
  return 'description' in a && typeof a.description === 'string' && !('kind' in a)
    ? (a as Answer)
    : { description: 'OK', schema: a as v.GenericSchema };
}

function successResponse(a: Answer): Json {
  const out: Json = { description: a.description };
  if (a.headers)
    out.headers = Object.fromEntries(
      Object.entries(a.headers).map(([h, d]) => [h, { description: d, schema: { type: 'string' } }]),
    );
  if (a.schema) out.content = { [a.contentType ?? 'application/json']: { schema: jsonSchemaOf(a.schema) } };
  else if (a.contentType) out.content = { [a.contentType]: { schema: { type: 'string' } } };
  return out;
}

/** The error statuses an operation can answer: the implied ones and its own. */
export function errorStatusesOf(op: Operation): number[] {
  const s = new Set<number>(op.errors ?? []);
  if (op.auth !== 'none') s.add(401);
  if (op.auth === 'admin') s.add(403);
  if (op.params || op.query || op.body || op.headers) s.add(400);
  if (op.params) s.add(404);
  if (op.body) [413, 415].forEach((x) => s.add(x));
  if (op.auth !== 'none') s.add(503);
  return [...s].filter((x) => ERROR_STATUSES[x] !== undefined).sort((a, b) => a - b);
}

function operationObject(op: Operation): Json {
  const [method, path] = op.route.split(' ') as [string, string];
  const responses: Json = {};
  for (const [status, a] of Object.entries(op.responses)) responses[status] = successResponse(answer(a));
  for (const status of errorStatusesOf(op)) responses[String(status)] = errorResponse(status);
  const out: Json = {
    operationId: `${method.toLowerCase()}${openApiPath(path).replace(/[^A-Za-z0-9]+(.)?/g, (_m, c?: string) => (c ? c.toUpperCase() : ''))}`,
    tags: [op.tag],
    summary: op.summary,
    ...(op.description ? { description: op.description } : {}),
    'x-auth': op.auth,
    security: op.auth === 'none' ? [] : [{ apiKey: [] }],
  };
  const params = parameters(op);
  if (params.length) out.parameters = params;
  if (op.body)
    out.requestBody = {
      required: !op.bodyOptional && !v.safeParse(op.body, undefined).success,
      content: { 'application/json': { schema: jsonSchemaOf(op.body) } },
    };
  out.responses = responses;
  return out;
}

export function buildDocument(operations: readonly Operation[] = OPERATIONS): Json {
  const paths: Record<string, Json> = {};
  for (const op of operations) {
    const [method, path] = op.route.split(' ') as [string, string];
    const key = openApiPath(path);
    const item = (paths[key] ??= {});
    if (item[method.toLowerCase()]) throw new Error(`OpenAPI: ${op.route} is listed twice`);
    item[method.toLowerCase()] = operationObject(op);
  }
  const components: Record<string, JsonSchema> = toJsonSchemaDefs(NAMED_SCHEMAS, CONFIG);
  return {
    openapi: '3.1.0',
    ...DOCUMENT_INFO,
    paths,
    components: {
      schemas: Object.fromEntries(Object.entries(components).map(([k, s]) => [k, strip(s)])),
      securitySchemes: {
        apiKey: {
          type: 'http',
          scheme: 'bearer',
          description:
            'An API key: the admin key (every tenant) or a tenant key (its own tenant). `x-auth: admin` marks routes that need the admin key.',
        },
      },
    },
  };
}

let cached: string | undefined;
/** The document as JSON text, built on first use. */
export function openApiJson(): string {
  return (cached ??= JSON.stringify(buildDocument()));
}
