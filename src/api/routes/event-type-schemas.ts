/** valibot schemas for /event-types bodies, queries and path (docs/event-types.md). */
import * as v from 'valibot';
import { PageQuery } from '../pagination.js';
import { NoNul, Uuid } from '../validate.js';
import { ProducerEventType } from './event-schemas.js';

/** A schema or example as JSON text, at most this long. */
export const CATALOG_JSON_MAX_BYTES = 64 * 1024;

const Description = v.pipe(
  v.string('must be a string'),
  v.maxLength(2000, 'must be at most 2000 characters'),
  NoNul,
);

/**
 * A version's content. The schema's shape (the supported subset) and the example's validity are
 * checked by the route after parsing (src/ingest/event-schema.ts, then the database's validator).
 */
const VersionFields = {
  schema: v.optional(v.unknown()),
  example: v.optional(v.unknown()),
};

export const CreateEventType = v.strictObject({
  name: ProducerEventType,
  description: Description,
  ...VersionFields,
  tenant_id: v.optional(Uuid),
});
export type CreateEventTypeInput = v.InferOutput<typeof CreateEventType>;

export const UpdateEventType = v.strictObject({
  description: v.optional(Description),
  deprecated: v.optional(v.boolean('must be true or false')),
  new_version: v.optional(v.strictObject(VersionFields, 'is not a field of a version')),
});
export type UpdateEventTypeInput = v.InferOutput<typeof UpdateEventType>;

/** The path names a type; names are URL-safe ([A-Za-z0-9_.:-]). */
export const EventTypeParams = v.object({ name: ProducerEventType });

/** GET /event-types/:name and PATCH: the admin key names the tenant (a name is unique per tenant only). */
export const EventTypeScopeQuery = v.strictObject({ tenant_id: v.optional(Uuid) });

export const ListEventTypesQuery = v.strictObject({ ...PageQuery, tenant_id: v.optional(Uuid) });
