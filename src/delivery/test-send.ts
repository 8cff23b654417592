/**
 * A test send (POST /webhooks/:id/test): one attempt of a sample event to a webhook, through the same
 * Sender as real deliveries — same envelope, signing (every active secret), SSRF-filtering agent,
 * timeout, redirect refusal and excerpt cap — but nothing is stored as a delivery or an attempt, so
 * the webhook's health, circuit breaker, quotas and metrics are untouched.
 */
import { newId } from '../ids.js';
import type { ClaimedDelivery } from '../queries/claim.js';
import type { TestSendTarget } from '../queries/webhook-test-send.js';
import type { SecretBox } from '../security/secret-box.js';
import { DEFAULT_RETRY_POLICY } from './retry-policy.js';
import { createHttpAgents, destroyHttpAgents } from './http-agents.js';
import { Sender } from './sender.js';

/** What a test send sends when the caller names no type or payload (documented in the OpenAPI entry). */
export const TEST_EVENT_TYPE = 'postbox.test';
export const TEST_EVENT_PAYLOAD = { message: 'A test event from Postbox.' };

export interface TestSendResult {
  status_code: number | null;
  duration_ms: number;
  response_excerpt: string | null;
  error: string | null;
}

export async function sendTestEvent(
  target: TestSendTarget,
  event: { type: string; payloadJson: string },
  deps: { secretBox: SecretBox; allowCidrs: readonly string[] },
): Promise<TestSendResult> {
  const now = new Date();
  const delivery: ClaimedDelivery = {
    // A fresh webhook-id: a receiver that deduplicates must not drop a later real delivery for it.
    id: newId(),
    tenantId: target.tenantId,
    eventId: newId(),
    webhookId: target.id,
    attempt: 1,
    eventType: event.type,
    occurredAt: now,
    receivedAt: now,
    payloadJson: event.payloadJson,
    traceparent: null,
    eventVersion: null,
    metadataJson: null,
    source: null,
    url: target.url,
    secretCiphertext: target.secretCiphertext,
    previousSecretCiphertext: target.previousSecretCiphertext,
    timeoutMs: target.timeoutMs,
    retryPolicy: DEFAULT_RETRY_POLICY,
    cycleStartedAt: now,
    clientCertPem: target.clientCertPem,
    clientKeyCiphertext: target.clientKeyCiphertext,
    fifoNext: false,
  };
  // Agents of its own, closed right after: a rare call keeps no sockets and shares no pool limits
  // with the workers' deliveries.
  const agents = createHttpAgents({
    allowCidrs: deps.allowCidrs,
    maxSocketsPerHost: 1,
    maxFreeSocketsPerHost: 0,
  });
  try {
    const result = await new Sender({ agents, secretBox: deps.secretBox }).send(delivery);
    return {
      status_code: result.statusCode,
      duration_ms: result.durationMs,
      response_excerpt: result.responseExcerpt,
      error: result.error,
    };
  } finally {
    destroyHttpAgents(agents);
  }
}
