/**
 * The delivery engine's observer hooks, in a module of their own so the engine, its reporters and
 * whoever wires metrics to them (src/runtime/delivery-metrics.ts) depend on this type, not on each other.
 */
import type {
  AttemptResult,
  ClaimedDelivery,
  DeadLettered,
  DlqOverLimit,
  RecordSummary,
  RevivedDelivery,
  WebhookHealthChange,
} from '../queries/deliveries.js';

/** Observers for metrics; all optional, all synchronous and cheap. */
export interface DeliveryEngineHooks {
  /** A claim statement ran and took `claimed` rows. */
  onClaim?: (claimed: number, durationMs: number) => void;
  /** One attempt finished (before its result is written). */
  onAttempt?: (delivery: ClaimedDelivery, result: AttemptResult) => void;
  /** A batch of results was written. */
  onRecorded?: (results: readonly AttemptResult[], summary: RecordSummary) => void;
  /** Rescued deliveries dead-lettered by the claim: their lost attempts used up the policy. */
  onDeadLettered?: (deliveries: readonly DeadLettered[]) => void;
  /** Breakers that opened, reopened or closed, and webhooks disabled automatically (also logged). */
  onWebhookHealth?: (changes: readonly WebhookHealthChange[]) => void;
  /** Tenants whose DLQ just grew past max_dlq_size, once per crossing (also logged). */
  onDlqOverLimit?: (crossings: readonly DlqOverLimit[]) => void;
  /** Dead-lettered by a rescue, then succeeded by their slow worker's late 2xx (also logged). */
  onRevived?: (deliveries: readonly RevivedDelivery[]) => void;
}
