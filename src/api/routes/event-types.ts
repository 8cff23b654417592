/**
 * The event-type catalog (docs/event-types.md): list, read, create and change a tenant's event types.
 * A type has a description and versions 1, 2, ... (append-only), each with an optional JSON Schema and
 * example. Ingest checks payloads against the version's schema in SQL (postbox.ingest); here a schema is
 * checked to be one that validator understands, and the example to pass it. Every change writes its
 * audit row in the same transaction.
 */
import { Router, type Request, type RequestHandler } from 'express';
import type { ApiContext } from '../context.js';
import { auditActor, listScope, tenantScope } from '../middleware/auth.js';
import { idCursor, page } from '../pagination.js';
import { parseInput } from '../validate.js';
import {
  CATALOG_JSON_MAX_BYTES,
  CreateEventType,
  EventTypeParams,
  EventTypeScopeQuery,
  ListEventTypesQuery,
  UpdateEventType,
} from './event-type-schemas.js';
import type { EventTypeJson } from '../response-schemas.js';
import { AppError, type ErrorDetail } from '../../errors.js';
import { dbAppError } from '../../db/errors.js';
import { withTransaction, type Queryable } from '../../db/pool.js';
import { newId } from '../../ids.js';
import { checkSchema } from '../../ingest/event-schema.js';
import { serializePayload } from '../../ingest/ingest.js';
import { insertAudit } from '../../queries/audit.js';
import {
  getEventType,
  insertEventType,
  invalidPatterns,
  listEventTypes,
  schemaViolation,
  updateEventType,
  type EventTypeRow,
} from '../../queries/event-types.js';

export function eventTypeJson(row: EventTypeRow): EventTypeJson {
  return {
    id: row.id,
    tenant_id: row.tenantId,
    name: row.name,
    description: row.description,
    deprecated: row.deprecated,
    latest_version: row.latestVersion,
    versions: row.versions.map((x) => ({
      version: x.version,
      schema: x.schema ?? null,
      example: x.example ?? null,
      created_at: x.createdAt,
    })),
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

/**
 * Checks a version's schema and example, naming the path of each problem under `at` (e.g.
 * `new_version.`): the schema within the supported subset, its patterns compiled by PostgreSQL, the
 * example valid against it by the validator ingest uses.
 */
async function checkVersion(db: Queryable, schema: unknown, example: unknown, at: string): Promise<void> {
  const problems: ErrorDetail[] = [];
  for (const [field, value] of [
    ['schema', schema],
    ['example', example],
  ] as const) {
    if (value === undefined || value === null) continue;
    const text = serializePayload(value, `${at}${field}`);
    if (Buffer.byteLength(text) > CATALOG_JSON_MAX_BYTES)
      problems.push({
        path: `${at}${field}`,
        message: `must be at most ${CATALOG_JSON_MAX_BYTES} bytes as JSON`,
      });
  }
  if (problems.length === 0 && schema !== undefined && schema !== null) {
    const check = checkSchema(schema, `${at}schema`);
    problems.push(...check.problems);
    if (problems.length === 0) {
      const bad = await invalidPatterns(
        db,
        check.patterns.map((p) => p.pattern),
      );
      for (const i of bad)
        problems.push({ path: check.patterns[i]!.path, message: 'is not a valid regular expression' });
    }
    if (problems.length === 0 && example !== undefined && example !== null) {
      const violation = await schemaViolation(db, schema, example, `${at}example`);
      if (violation)
        problems.push({ path: violation[0], message: `does not match the schema: ${violation[1]}` });
    }
  }
  if (problems.length > 0) throw AppError.validation('event type is not valid', problems);
}

function audit(req: Request, action: string, row: EventTypeRow, changes: object) {
  return {
    ...auditActor(req),
    action,
    objectType: 'event_type',
    objectId: row.id,
    tenantId: row.tenantId,
    changes: changes as Record<string, unknown>,
  };
}

/** The tenant a call on one type acts on: a tenant key's own; the admin key names it in ?tenant_id=. */
function typeScope(req: Request): string {
  const { tenant_id } = parseInput(EventTypeScopeQuery, { ...req.query }, 'query');
  return tenantScope(req, tenant_id);
}

export function eventTypesRouter(ctx: ApiContext, guard: RequestHandler[]): Router {
  const router = Router();

  router.post('/event-types', ...guard, async (req, res) => {
    const input = parseInput(CreateEventType, req.body, 'event type');
    const tenantId = tenantScope(req, input.tenant_id);
    await checkVersion(ctx.pool, input.schema, input.example, '');
    const row = await withTransaction(ctx.pool, async (tx) => {
      const created = await insertEventType(tx, {
        id: newId(),
        tenantId,
        name: input.name,
        description: input.description,
        schema: input.schema,
        example: input.example,
      });
      const { id: _i, tenant_id: _t, created_at: _c, updated_at: _u, ...fields } = eventTypeJson(created);
      await insertAudit(tx, audit(req, 'event_type.create', created, fields));
      return created;
    }).catch((err: unknown) => {
      const mapped = dbAppError(err, { referenced: 'tenant' });
      if (mapped?.status === 409)
        throw AppError.conflict(`event type ${input.name} exists; PATCH it to add a version`);
      throw mapped ?? err;
    });
    res.status(201).json(eventTypeJson(row));
  });

  router.get('/event-types', ...guard, async (req, res) => {
    const query = parseInput(ListEventTypesQuery, { ...req.query }, 'query');
    const rows = await listEventTypes(ctx.pool, {
      tenantId: listScope(req, query.tenant_id),
      beforeId: idCursor(query.cursor),
      limit: query.limit + 1,
    });
    const result = page(rows, query.limit, (row) => [row.id]);
    res.json({ data: result.data.map(eventTypeJson), next_cursor: result.next_cursor });
  });

  router.get('/event-types/:name', ...guard, async (req, res) => {
    const { name } = parseInput(EventTypeParams, req.params, 'path');
    const row = await getEventType(ctx.pool, typeScope(req), name);
    if (!row) throw AppError.notFound('event type');
    res.json(eventTypeJson(row));
  });

  router.patch('/event-types/:name', ...guard, async (req, res) => {
    const { name } = parseInput(EventTypeParams, req.params, 'path');
    const tenantId = typeScope(req);
    const input = parseInput(UpdateEventType, req.body, 'event type');
    const added = input.new_version;
    if (added) await checkVersion(ctx.pool, added.schema, added.example, 'new_version.');
    const row = await withTransaction(ctx.pool, async (tx) => {
      const current = await getEventType(tx, tenantId, name, true);
      if (!current) throw AppError.notFound('event type');
      const updated = await updateEventType(tx, current, {
        description: input.description ?? current.description,
        deprecated: input.deprecated ?? current.deprecated,
        ...(added ? { newVersion: { schema: added.schema, example: added.example } } : {}),
      });
      const named = (['description', 'deprecated'] as const).filter((f) => input[f] !== undefined);
      if (named.length > 0 || added) {
        const pick = (r: EventTypeRow) => Object.fromEntries(named.map((f) => [f, r[f]]));
        await insertAudit(
          tx,
          audit(req, 'event_type.update', updated, {
            before: pick(current),
            after: pick(updated),
            ...(added ? { added_version: updated.latestVersion } : {}),
          }),
        );
      }
      return updated;
    });
    res.json(eventTypeJson(row));
  });

  return router;
}
