/** The plain pg-boss design's queue and job (bench/pgboss.ts produces them, bench/pgboss-worker.ts sends). */

export const QUEUE = 'deliveries';

/** One delivery: what the producer puts in a job. */
export interface DeliveryJob {
  event_id: string;
  type: string;
  /** ISO time the event was produced: the envelope's timestamp. */
  timestamp: string;
  /** Index of the webhook in the worker's list. */
  webhook: number;
  payload: unknown;
}
