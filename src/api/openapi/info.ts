/** The document's prose: what a producer reads first. Kept apart from the route table. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../paths.js';

const version = (JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { version: string })
  .version;

export const DOCUMENT_INFO = {
  info: {
    title: 'Postbox',
    version,
    summary: 'Webhook delivery on PostgreSQL alone: signed, retried, dead-lettered, replayable.',
    description: [
      'Producers POST events; Postbox delivers each to every webhook of the tenant whose `event_types` match,',
      'at least once, signed with the Standard Webhooks scheme (see docs/receiving.md for receivers).',
      '',
      '**Authentication**: `Authorization: Bearer <key>` on every route but `/health`, `/ready`, `/metrics`',
      "and `/openapi.json`. A tenant key acts on its own tenant; another tenant's object answers 404. The",
      'admin key acts on every tenant and names `tenant_id` where it creates a tenant-owned object.',
      '',
      '**Errors** are JSON: `{"error": {"code", "message", "details": [{"path", "message"}]}}`. Bad input',
      'is a 4xx, never a 5xx. 429 and 503 carry `Retry-After` (seconds).',
      '',
      '**Lists** take `limit` (1–500, default 50) and an opaque `cursor`, and answer',
      '`{"data": [...], "next_cursor": "..." | null}`, newest first: pass `next_cursor` as `cursor` for',
      'the next page until it is null.',
      '',
      'Request objects are strict: an unknown field is a 400 (a typo is never silently ignored).',
    ].join('\n'),
  },
  tags: [
    { name: 'Health', description: 'Liveness, readiness, metrics and this document (no key).' },
    { name: 'Tenants', description: 'Tenants and their quotas (admin key).' },
    { name: 'API keys', description: 'Several keys per tenant, and admin keys; each shown once.' },
    { name: 'Webhooks', description: 'Endpoints that receive events, and their signing secrets.' },
    { name: 'Events', description: 'Accepting events (the producer side) and reading them back.' },
    { name: 'Deliveries', description: 'One delivery per event and webhook, with its attempts.' },
    { name: 'Dead letters', description: 'Deliveries whose retries ran out, and retrying them.' },
    { name: 'Audit', description: 'Who changed what (admin key).' },
    { name: 'Console', description: 'Small JSON routes the operator console at /console uses.' },
  ],
};
