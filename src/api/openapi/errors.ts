/**
 * The error answers of the document: every one has the contract's body (`#/components/schemas/Error`);
 * this table says which `error.code` values each status carries and which headers come with it.
 */
interface ErrorStatus {
  description: string;
  codes: Record<string, string>;
  headers?: Record<string, string>;
}

const RETRY_AFTER = 'Seconds to wait before trying again.';

export const ERROR_STATUSES: Record<number, ErrorStatus> = {
  400: {
    description: 'The request is not valid; `details` names each bad field by its dotted path.',
    codes: {
      validation_failed: 'a field, query parameter, path parameter or header failed validation',
      invalid_json: 'the body is not valid JSON',
      request_aborted: 'the client stopped sending the body',
      bad_request: 'the request could not be read',
    },
  },
  401: {
    description: 'No `Authorization: Bearer <key>` header, or the key is not known.',
    codes: { unauthorized: 'missing or invalid API key' },
  },
  403: {
    description: 'The key is valid but may not do this (a tenant key on an admin route).',
    codes: { forbidden: 'this key may not do that' },
  },
  404: {
    description:
      'No such object, or it belongs to another tenant (a tenant key never learns whether it exists).',
    codes: { not_found: 'the object (or the tenant named) does not exist for this key' },
  },
  409: {
    description: 'The object is in a state that does not allow this now.',
    codes: { conflict: 'e.g. the delivery is being attempted, or its webhook is deleted' },
  },
  413: {
    description: 'The body is larger than `BODY_LIMIT_BYTES` (1 MiB by default).',
    codes: { payload_too_large: 'request body exceeds the limit' },
  },
  415: {
    description: 'The body is not JSON, or its encoding or charset is not supported.',
    codes: { unsupported_media_type: 'Content-Type must be application/json' },
  },
  429: {
    description: "Over the tenant's quota; retry after `Retry-After` seconds.",
    codes: { rate_limited: 'max_events_per_sec exceeded' },
    headers: { 'Retry-After': RETRY_AFTER },
  },
  503: {
    description: 'The database is unavailable for a moment (restart, failover); retry after `Retry-After`.',
    codes: { unavailable: 'temporarily unavailable, retry' },
    headers: { 'Retry-After': RETRY_AFTER },
  },
};

export function errorResponse(status: number): Record<string, unknown> {
  const s = ERROR_STATUSES[status];
  if (!s) throw new Error(`OpenAPI: no description for error status ${status}`);
  const codes = Object.entries(s.codes)
    .map(([code, what]) => `\`${code}\`: ${what}`)
    .join('; ');
  return {
    description: `${s.description} Codes: ${codes}.`,
    'x-error-codes': Object.keys(s.codes),
    ...(s.headers
      ? {
          headers: Object.fromEntries(
            Object.entries(s.headers).map(([h, d]) => [
              h,
              { description: d, required: true, schema: { type: 'integer' } },
            ]),
          ),
        }
      : {}),
    content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
  };
}
