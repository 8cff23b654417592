/**
 * What one route says about itself for the OpenAPI document. The schemas are the very valibot
 * schemas the route parses its input with (and src/api/response-schemas.ts for answers); the
 * document builder (document.ts) turns them into JSON Schema, so nothing here is a second copy.
 */
import type * as v from 'valibot';

/** An object schema (v.object / v.strictObject …): its entries become parameters. */
export type ObjectSchemaLike = v.GenericSchema & { entries: Record<string, v.GenericSchema> };

export type Auth =
  /** No Authorization header needed. */
  | 'none'
  /** Any key: a tenant key acts on its own tenant, the admin key on any (naming tenant_id). */
  | 'key'
  /** The admin key only: a tenant key gets 403. */
  | 'admin';

export interface Answer {
  description: string;
  /** The JSON body; omit for a bodiless answer (204) or when `contentType` is not JSON. */
  schema?: v.GenericSchema;
  /** Default application/json. */
  contentType?: string;
  /** Response headers, name → description. */
  headers?: Record<string, string>;
}

export interface Operation {
  /** `METHOD /path/:param`, exactly as the Express router registers it. */
  route: `${'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE'} /${string}`;
  tag: string;
  summary: string;
  /** Longer prose (CommonMark). */
  description?: string;
  auth: Auth;
  /** Path parameters: the schema the route parses `req.params` with. */
  params?: ObjectSchemaLike;
  /** Query parameters: the schema the route parses `req.query` with. */
  query?: ObjectSchemaLike;
  /** The request body: the schema the route parses `req.body` with. */
  body?: v.GenericSchema;
  /** Set when the route accepts a missing body although `body` does not (e.g. `req.body ?? {}`). */
  bodyOptional?: boolean;
  /** Request headers the route reads, name → description. */
  headers?: Record<string, string>;
  /** Successful answers by status (a Schema alone means "application/json, this body"). */
  responses: Record<number, Answer | v.GenericSchema>;
  /**
   * Error statuses beyond those the builder adds by itself: 401 unless auth is none, 403 for
   * admin, 400 when the route takes input, 404 with path parameters, 413 and 415 with a body, 503.
   */
  errors?: number[];
}
