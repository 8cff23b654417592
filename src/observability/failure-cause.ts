/**
 * Whose failure a failed attempt was, so a success-rate alert can page Postbox's operators for
 * Postbox's failures and leave receivers' own (a 500, a timeout, a refused connection) to their
 * owners. Pure.
 */
import { TIMEOUT_ERROR_PREFIX, UNDECRYPTABLE_SECRET } from '../delivery/sender.js';
import type { AttemptResult } from '../queries/deliveries.js';

/**
 * receiver_status: the receiver answered, not 2xx. receiver_timeout: no answer within timeout_ms.
 * receiver_unreachable: no connection (refused, reset, DNS, TLS, or an address the SSRF guard refuses).
 * postbox: Postbox could not make the attempt (a webhook secret it cannot decrypt). shutdown: cut short
 * by this worker's shutdown (due again at once; says nothing about either side).
 */
export type FailureCause =
  'receiver_status' | 'receiver_timeout' | 'receiver_unreachable' | 'postbox' | 'shutdown';

export const FAILURE_CAUSES: readonly FailureCause[] = [
  'receiver_status',
  'receiver_timeout',
  'receiver_unreachable',
  'postbox',
  'shutdown',
];

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
