/**
 * Webhooks: register, read, change, delete, rotate the signing secret. The secret is stored sealed
 * (SecretBox) and shown only by POST /webhooks and rotate-secret. Every change writes its audit row in
 * the same transaction.
 */
import { Router, type Request, type RequestHandler } from 'express';
import type { ApiContext } from '../context.js';
import { auditActor, listScope, principalOf, readScope, tenantScope } from '../middleware/auth.js';
import { idCursor, page } from '../pagination.js';
import { IdParams, parseInput } from '../validate.js';
import { validateWebhookUrl } from '../webhook-url.js';
import {
  CreateWebhook,
  ListWebhooksQuery,
  RotateSecret,
  UpdateWebhook,
  mergeRetryPolicy,
  webhookClientCertificate,
  webhookFilter,
} from './webhook-schemas.js';
import { AppError } from '../../errors.js';
import type { WebhookJson } from '../response-schemas.js';
import { dbAppError } from '../../db/errors.js';
import { withTransaction } from '../../db/pool.js';
import { newId } from '../../ids.js';
import { DEFAULT_RETRY_POLICY } from '../../delivery/retry-policy.js';
import { WEBHOOK_DEFAULTS } from '../../../db/schema.js';
import { generateWebhookSecret } from '../../security/webhook-secrets.js';
import {
  clientCertificateNotAfter,
  describeClientCertificate,
  type ClientCertificateInput,
} from '../../security/client-cert.js';
import type { SecretBox } from '../../security/secret-box.js';
import { insertAudit, REDACTED, type AuditEntry } from '../../queries/audit.js';
import { notifyDeliveriesDue } from '../../queries/notify.js';
import {
  getWebhook,
  insertWebhook,
  listWebhooks,
  lockWebhook,
  parkWebhookDeliveries,
  requeueForOrdering,
  resumeWebhook,
  rotateWebhookSecret,
  softDeleteWebhook,
  updateWebhook,
  type WebhookRow,
} from '../../queries/webhooks.js';

export function webhookJson(row: WebhookRow): WebhookJson {
  return {
    id: row.id,
    tenant_id: row.tenantId,
    url: row.url,
    event_types: row.eventTypes,
    description: row.description,
    // Policies stored before max_age_seconds existed have no deadline.
    retry_policy: { ...row.retryPolicy, max_age_seconds: row.retryPolicy.max_age_seconds ?? null },
    timeout_ms: row.timeoutMs,
    max_concurrency: row.maxConcurrency,
    concurrency_limit: row.concurrencyLimit,
    enabled: row.enabled,
    disabled_reason: row.disabledReason,
    filter: row.filter ?? null,
    ordering: row.ordering,
    client_certificate: row.clientCertPem ? describeClientCertificate(row.clientCertPem) : null,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

/** A checked client certificate as stored: its key sealed like the secrets. */
function sealClientCertificate(box: SecretBox, input: ClientCertificateInput | null) {
  return input === null
    ? null
    : {
        pem: input.cert,
        keyCiphertext: box.encrypt(input.key),
        notAfter: clientCertificateNotAfter(input.cert),
      };
}

/** The admin key naming a tenant that does not exist fails on the foreign key: that is a 404. */
function unknownTenantAsNotFound(err: unknown): never {
  throw dbAppError(err, { referenced: 'tenant' }) ?? err;
}

function audit(
  req: Request,
  action: string,
  row: { id: string; tenantId: string },
  changes: object,
): AuditEntry {
  return {
    ...auditActor(req),
    action,
    objectType: 'webhook',
    objectId: row.id,
    tenantId: row.tenantId,
    changes: changes as Record<string, unknown>,
  };
}

/**
 * An update's audit record: the fields the request named, as they were and as they are now (in
 * the API's shape). Enabling or disabling also shows disabled_reason, which follows from it.
 */
function beforeAndAfter(fields: string[], before: WebhookJson, after: WebhookJson) {
  const named = fields.includes('enabled') ? [...fields, 'disabled_reason'] : fields;
  const pick = (json: WebhookJson) =>
    Object.fromEntries(named.map((field) => [field, json[field as keyof WebhookJson]]));
  return { before: pick(before), after: pick(after) };
}

export function webhooksRouter(ctx: ApiContext, guard: RequestHandler[]): Router {
  const router = Router();

  router.post('/webhooks', ...guard, async (req, res) => {
    const input = parseInput(CreateWebhook, req.body, 'webhook');
    const tenantId = tenantScope(req, input.tenant_id);
    const filter = webhookFilter(input.filter ?? null);
    await validateWebhookUrl(input.url, ctx.config);
    const clientCertificate = webhookClientCertificate(input.client_certificate ?? null, input.url);
    const secret = input.secret ?? generateWebhookSecret();
    const row = await withTransaction(ctx.pool, async (tx) => {
      const webhook = await insertWebhook(tx, {
        id: newId(),
        tenantId,
        url: input.url,
        secretCiphertext: ctx.secretBox.encrypt(secret),
        eventTypes: input.event_types ?? [...WEBHOOK_DEFAULTS.eventTypes],
        description: input.description ?? null,
        retryPolicy: mergeRetryPolicy(DEFAULT_RETRY_POLICY, input.retry_policy),
        timeoutMs: input.timeout_ms ?? WEBHOOK_DEFAULTS.timeoutMs,
        maxConcurrency: input.max_concurrency ?? WEBHOOK_DEFAULTS.maxConcurrency,
        filter,
        ordering: input.ordering ?? 'none',
        clientCertificate: sealClientCertificate(ctx.secretBox, clientCertificate),
      });
      const { id: _id, tenant_id: _t, created_at: _c, updated_at: _u, ...fields } = webhookJson(webhook);
      await insertAudit(tx, audit(req, 'webhook.create', webhook, fields));
      return webhook;
    }).catch(unknownTenantAsNotFound);
    res.status(201).json({ ...webhookJson(row), secret });
  });

  router.get('/webhooks', ...guard, async (req, res) => {
    const query = parseInput(ListWebhooksQuery, { ...req.query }, 'query');
    const rows = await listWebhooks(ctx.pool, {
      tenantId: listScope(req, query.tenant_id),
      beforeId: idCursor(query.cursor),
      limit: query.limit + 1,
    });
    const result = page(rows, query.limit, (row) => [row.id]);
    res.json({ data: result.data.map(webhookJson), next_cursor: result.next_cursor });
  });

  router.get('/webhooks/:id', ...guard, async (req, res) => {
    const { id } = parseInput(IdParams, req.params, 'path');
    const row = await getWebhook(ctx.pool, id, readScope(req));
    if (!row) throw AppError.notFound('webhook');
    res.json(webhookJson(row));
  });

  router.patch('/webhooks/:id', ...guard, async (req, res) => {
    const { id } = parseInput(IdParams, req.params, 'path');
    const input = parseInput(UpdateWebhook, req.body, 'webhook');
    const filter = input.filter === undefined ? undefined : webhookFilter(input.filter);
    if (input.url !== undefined) await validateWebhookUrl(input.url, ctx.config);
    const by = principalOf(req).kind === 'admin' ? 'admin' : 'tenant';
    const row = await withTransaction(ctx.pool, async (tx) => {
      const current = await lockWebhook(tx, id, readScope(req));
      if (!current) throw AppError.notFound('webhook');
      const url = input.url ?? current.url;
      // A new certificate is checked against the URL it will be used with; a kept one too, when the URL changes.
      const clientCertificate =
        input.client_certificate !== undefined
          ? sealClientCertificate(ctx.secretBox, webhookClientCertificate(input.client_certificate, url))
          : undefined;
      if (input.client_certificate === undefined && current.clientCertPem && !/^https:/i.test(url))
        throw AppError.validation('client_certificate needs an https url', [
          { path: 'url', message: 'must be https while the webhook has a client_certificate' },
        ]);
      const enabled = input.enabled ?? current.enabled;
      const updated = await updateWebhook(tx, id, {
        url,
        eventTypes: input.event_types ?? current.eventTypes,
        description: input.description !== undefined ? input.description : current.description,
        retryPolicy: mergeRetryPolicy(current.retryPolicy, input.retry_policy),
        timeoutMs: input.timeout_ms ?? current.timeoutMs,
        maxConcurrency: input.max_concurrency ?? current.maxConcurrency,
        filter,
        ordering: input.ordering ?? current.ordering,
        clientCertificate,
        enabled,
        // Keep an earlier reason (e.g. an automatic disable) when disabling again.
        disabledReason: enabled ? null : (current.disabledReason ?? `disabled by ${by}`),
      });
      const fields = Object.keys(input);
      if (fields.length > 0)
        await insertAudit(
          tx,
          audit(
            req,
            'webhook.update',
            updated,
            beforeAndAfter(fields, webhookJson(current), webhookJson(updated)),
          ),
        );
      // Disabled: its pending deliveries are kept, parked out of the claim's way. enabled=true (also on
      // an enabled webhook) closes the circuit breaker and makes parked deliveries due; then wake the
      // workers (sent on COMMIT).
      if (current.enabled && !enabled) await parkWebhookDeliveries(tx, id);
      if (updated.ordering !== current.ordering) await requeueForOrdering(tx, id, updated.ordering);
      if (input.enabled === true) {
        await resumeWebhook(tx, id);
        await notifyDeliveriesDue(tx);
      }
      return updated;
    });
    res.json(webhookJson(row));
  });

  router.delete('/webhooks/:id', ...guard, async (req, res) => {
    const { id } = parseInput(IdParams, req.params, 'path');
    await withTransaction(ctx.pool, async (tx) => {
      const gone = await softDeleteWebhook(tx, id, readScope(req));
      if (!gone) throw AppError.notFound('webhook');
      await insertAudit(tx, audit(req, 'webhook.delete', gone, { cancelled_deliveries: gone.cancelled }));
    });
    res.status(204).end();
  });

  router.post('/webhooks/:id/rotate-secret', ...guard, async (req, res) => {
    const { id } = parseInput(IdParams, req.params, 'path');
    // A bodyless POST is the common case: every field is optional.
    const input = parseInput(RotateSecret, req.body ?? {}, 'rotation');
    const secret = generateWebhookSecret();
    await withTransaction(ctx.pool, async (tx) => {
      const rotated = await rotateWebhookSecret(
        tx,
        id,
        readScope(req),
        ctx.secretBox.encrypt(secret),
        input.overlap_seconds,
      );
      if (!rotated) throw AppError.notFound('webhook');
      await insertAudit(
        tx,
        audit(req, 'webhook.rotate_secret', rotated, {
          overlap_seconds: input.overlap_seconds,
          previous_secret_expires_at: rotated.previousSecretExpiresAt.toISOString(),
          // That it changed, never what it is.
          before: { secret: REDACTED },
          after: { secret: REDACTED },
        }),
      );
    });
    res.json({ secret });
  });

  return router;
}
