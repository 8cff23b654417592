/** Wires the delivery engine's observer hooks (delivery/hooks.ts) to this process's metrics. */
import type { DeliveryEngineHooks } from '../delivery/hooks.js';
import type { Outcome } from '../queries/deliveries.js';
import { failureCause } from '../delivery/failure-cause.js';
import type { DeliveryOutcome, Metrics } from '../observability/metrics.js';

const OUTCOME: Record<Outcome, DeliveryOutcome> = {
  succeeded: 'succeeded',
  retry: 'failed_attempt',
  dead: 'dead',
};

export function deliveryMetricsHooks(metrics: Metrics): DeliveryEngineHooks {
  return {
    onClaim: (claimed, durationMs) => metrics.claimed(claimed, durationMs),
    onWebhookHealth: (changes) => {
      for (const c of changes) {
        if (c.breaker) metrics.webhookHealth(`breaker_${c.breaker}`);
        if (c.disabled) metrics.webhookHealth(`disabled_${c.disabled}`);
      }
    },
    onDlqOverLimit: (crossings) => metrics.dlqOverLimit(crossings.length),
    onRevived: (revived) => metrics.deliveriesRevived(revived.length),
    onAttempt: (delivery, result) => {
      // Lag ends when the receiver answered: the attempt's start plus its duration.
      const answeredAt = result.startedAt.getTime() + result.durationMs;
      metrics.deliveryOutcome(
        OUTCOME[result.outcome],
        result.durationMs,
        answeredAt - delivery.receivedAt.getTime(),
      );
      const cause = failureCause(result);
      if (cause) metrics.deliveryFailure(cause);
    },
  };
}
