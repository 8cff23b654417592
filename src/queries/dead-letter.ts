/**
 * The dead-letter insert, one SQL fragment shared by the recorder's statement (record.ts: retries used
 * up) and the claim (claim.ts: rescued deliveries whose lost attempts used up the policy), so a DLQ row
 * is written one way whichever statement buries the delivery.
 */

/**
 * A data-modifying CTE body: inserts a DLQ row for each row of `rows` (a CTE name or a parenthesised
 * subquery with id, tenant_id, webhook_id, event_id, last_error, attempts). A delivery retried out of
 * the DLQ and dead again replaces its old entry; `inserted` tells a new entry from a replaced one.
 */
export function deadLetterInsert(rows: string): string {
  return `INSERT INTO dead_letter_queue
          (delivery_id, tenant_id, webhook_id, event_id, event_type, last_error, attempts)
   SELECT x.id, x.tenant_id, x.webhook_id, x.event_id, e.type, x.last_error, x.attempts
     FROM ${rows} x JOIN events e ON e.id = x.event_id
   ON CONFLICT (delivery_id) DO UPDATE
      SET last_error = EXCLUDED.last_error, attempts = EXCLUDED.attempts, dead_at = EXCLUDED.dead_at
   RETURNING delivery_id, tenant_id, xmax = 0 AS inserted`;
}
