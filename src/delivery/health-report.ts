/**
 * What the engine's statements changed beyond single attempts, told to the logs and the engine's hooks:
 * a breaker opening, reopening or closing, a webhook disabled automatically, a tenant's DLQ crossing
 * max_dlq_size (decided by the recorder's statement once per change, not per delivery, so each is one
 * log line), rescued deliveries the claim dead-lettered, and those a late 2xx took out of the DLQ again.
 */
import type { Logger } from '../logger.js';
import type { DeadLettered, RecordSummary } from '../queries/deliveries.js';
import type { DeliveryEngineHooks } from './hooks.js';

export function reportHealth(
  logger: Logger,
  summary: RecordSummary,
  hooks: Pick<DeliveryEngineHooks, 'onWebhookHealth' | 'onDlqOverLimit' | 'onRevived'>,
): void {
  for (const c of summary.webhookChanges) {
    const ids = {
      webhook_id: c.webhookId,
      tenant_id: c.tenantId,
      consecutive_failures: c.consecutiveFailures,
    };
    if (c.disabled === 'gone')
      logger.warn('webhook disabled: the receiver answered 410 Gone; its deliveries wait', ids);
    else if (c.disabled === 'failing')
      logger.warn(
        'webhook disabled: failing for longer than WEBHOOK_AUTO_DISABLE_AFTER_MS; its deliveries wait',
        ids,
      );
    if (c.breaker === 'opened' || c.breaker === 'reopened')
      logger.warn(`circuit breaker ${c.breaker}: deliveries deferred until the cool-down ends`, {
        ...ids,
        open_until: c.breakerOpenUntil,
      });
    else if (c.breaker === 'closed') logger.info('circuit breaker closed: deliveries flow again', ids);
  }
  for (const d of summary.dlqOverLimit)
    logger.warn('tenant DLQ over max_dlq_size (nothing is dropped)', {
      tenant_id: d.tenantId,
      dlq_size: d.size,
      max_dlq_size: d.limit,
    });
  // A worker slow past its lease (not dead): the rescue had dead-lettered its last attempt, then its
  // 2xx arrived. Rare and worth seeing: it means leases are shorter than this worker's stalls.
  for (const d of summary.revived)
    logger.warn('late success revived a dead-lettered delivery', {
      delivery_id: d.id,
      event_id: d.eventId,
      webhook_id: d.webhookId,
      tenant_id: d.tenantId,
      attempt: d.attempts,
      outcome: 'succeeded',
    });
  if (summary.webhookChanges.length > 0) hooks.onWebhookHealth?.(summary.webhookChanges);
  if (summary.dlqOverLimit.length > 0) hooks.onDlqOverLimit?.(summary.dlqOverLimit);
  if (summary.revived.length > 0) hooks.onRevived?.(summary.revived);
}

/** Rescued deliveries the claim dead-lettered: their lost attempts used up the retry policy. */
export function reportDeadLettered(
  logger: Logger,
  dead: readonly DeadLettered[],
  hooks: Pick<DeliveryEngineHooks, 'onDeadLettered'>,
): void {
  hooks.onDeadLettered?.(dead);
  for (const d of dead)
    logger.warn('delivery dead-lettered: its lost attempts used up the retry policy', {
      delivery_id: d.id,
      event_id: d.eventId,
      webhook_id: d.webhookId,
      tenant_id: d.tenantId,
      attempt: d.attempts,
      outcome: 'dead',
    });
}
