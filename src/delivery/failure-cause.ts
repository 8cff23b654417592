/**
 * Whose failure a failed attempt was, so a success-rate alert can page Postbox's operators for
 * Postbox's failures and leave receivers' own (a 500, a timeout, a refused connection) to their
 * owners. Pure.
 */
import type { FailureCause } from '../observability/metrics.js';
import type { AttemptResult } from '../queries/deliveries.js';
import { TIMEOUT_ERROR_PREFIX, UNDECRYPTABLE_SECRET } from './sender.js';

/** The cause of a failed attempt; null for a success. */
export function failureCause(
  r: Pick<AttemptResult, 'outcome' | 'statusCode' | 'error' | 'interrupted'>,
): FailureCause | null {
  if (r.outcome === 'succeeded') return null;
  if (r.interrupted) return 'shutdown';
  if (r.statusCode !== null) return 'receiver_status';
  if (r.error === UNDECRYPTABLE_SECRET) return 'postbox';
  if (r.error?.startsWith(TIMEOUT_ERROR_PREFIX)) return 'receiver_timeout';
  return 'receiver_unreachable';
}
