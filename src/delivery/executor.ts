/**
 * The executor: runs one claimed delivery (send → outcome), hands the result to the recorder, and
 * tells the hooks and the log. The claimer calls it once per claimed delivery, within its slots.
 */
import type { Logger } from '../logger.js';
import type { ClaimedDelivery } from '../queries/deliveries.js';
import { deliveryLogFields } from '../observability/log-context.js';
import type { DeliverySpans } from '../observability/spans.js';
import type { AttemptAbort } from './attempt-abort.js';
import type { DeliveryEngineHooks } from './hooks.js';
import { outcomeOf } from './outcome.js';
import type { Recorder } from './recorder.js';
import type { Sender } from './sender.js';

export interface ExecutorDeps {
  sender: Pick<Sender, 'send'>;
  recorder: Pick<Recorder, 'add'>;
  logger: Logger;
  hooks: Pick<DeliveryEngineHooks, 'onAttempt'>;
  /** Present only while tracing is enabled: then each attempt is a span. */
  spans?: DeliverySpans | undefined;
}

export type Execute = (delivery: ClaimedDelivery, abort: AttemptAbort) => Promise<void>;

export function createExecutor({ sender, recorder, logger, hooks, spans }: ExecutorDeps): Execute {
  return async (delivery, abort) => {
    const span = spans?.attempt(delivery);
    // An event that carried a trace context gets it forwarded (contract section 4); while Postbox
    // traces, as the attempt span's, so the receiver's own spans hang under this attempt.
    const sent = await sender.send(
      span && delivery.traceparent ? { ...delivery, traceparent: span.traceparent } : delivery,
      abort,
    );
    // Aborted by shutdown before the request was out: released with its attempt number given back.
    if (sent.aborted && !sent.requestSent) return span?.released();
    const result = outcomeOf(delivery, sent);
    // Aborted after the receiver may have got it: a failed attempt like a timeout (recorded, its
    // number kept), but due again at once for another worker.
    // It says nothing about the receiver: the breaker leaves it out.
    if (sent.aborted) {
      result.interrupted = true;
      if (result.outcome === 'retry') result.retryDelayMs = 0;
    }
    span?.end(result);
    recorder.add(result, delivery.fifoNext);
    hooks.onAttempt?.(delivery, result);
    // One line per attempt; never the payload, the URL's secrets or the signing secret. Its fields are
    // built only when the line is written (LOG_LEVEL=warn skips parsing the traceparent every attempt).
    if (!logger.isInfoEnabled()) return;
    // delivery, event, webhook and tenant ids, plus trace_id/span_id when the event carried a traceparent
    const fields: Record<string, string | number | null> = deliveryLogFields(delivery);
    fields.attempt = delivery.attempt;
    fields.outcome = result.outcome;
    fields.status_code = result.statusCode;
    fields.duration_ms = result.durationMs;
    if (result.error) fields.error = result.error;
    if (result.retryDelayMs !== null) fields.retry_in_ms = result.retryDelayMs;
    logger.info('delivery attempt', fields);
  };
}
