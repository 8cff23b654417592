-- Hand-written: operational webhooks. Postbox's own events (postbox.*) are written by triggers on the
-- rows whose change causes them, so a notice commits with its cause or not at all, whichever code path
-- (recorder, API, runbook SQL) makes the change. See docs/operational-webhooks.md.
COMMENT ON TABLE notice_digests IS 'Batched operational notices: postbox.delivery.dead_lettered per webhook, postbox.tenant.quota_exceeded per quota. The cause adds to pending_count in its own transaction; postbox.flush_notices() turns a due row into one event and resets it, so 10,000 dead deliveries make a few notices whose counts add up to 10,000.';
--> statement-breakpoint
COMMENT ON COLUMN notice_digests.tenant_id IS 'The tenant notified.';
--> statement-breakpoint
COMMENT ON COLUMN notice_digests.type IS 'The event type of the notice (postbox.delivery.dead_lettered or postbox.tenant.quota_exceeded).';
--> statement-breakpoint
COMMENT ON COLUMN notice_digests.subject IS 'What the notice is about: the webhook id (dead_lettered) or the quota name (quota_exceeded).';
--> statement-breakpoint
COMMENT ON COLUMN notice_digests.pending_count IS 'Occurrences not yet sent in a notice (dead deliveries, or times the quota was exceeded). 0: nothing to send.';
--> statement-breakpoint
COMMENT ON COLUMN notice_digests.first_at IS 'First pending occurrence; NULL when nothing is pending.';
--> statement-breakpoint
COMMENT ON COLUMN notice_digests.last_at IS 'Latest pending occurrence; NULL when nothing is pending.';
--> statement-breakpoint
COMMENT ON COLUMN notice_digests.sample IS 'Up to 10 pending occurrences in full (dead_lettered: delivery, event, type, last error), sent as the notice''s sample.';
--> statement-breakpoint
COMMENT ON COLUMN notice_digests.details IS 'Fields copied into the notice''s payload (webhook_id and url; or quota, limit, current).';
--> statement-breakpoint
COMMENT ON COLUMN notice_digests.not_before IS 'The next notice is not sent before this: a flush moves it one window ahead, so a subject is notified at most once per window (the first occurrence after a quiet window goes out at the next flush).';
--> statement-breakpoint
COMMENT ON COLUMN notice_digests.flushed_at IS 'When the last notice of this row was sent; NULL: never.';
--> statement-breakpoint
COMMENT ON INDEX notice_digests_due_idx IS 'The flush: rows with something pending, by when they may be sent.';
--> statement-breakpoint
COMMENT ON CONSTRAINT notice_digests_tenant_id_type_subject_pk ON notice_digests IS 'One digest per tenant, notice type and subject.';
--> statement-breakpoint
-- Operational events go only to webhooks that name them (postbox.*, postbox.endpoint.*, or the exact
-- type), never to '*' subscribers: a receiver of every business event would otherwise start getting
-- Postbox's own. The webhook a notice is about is never a recipient (a failing endpoint would notify
-- itself, fail again and notify again).
CREATE FUNCTION postbox.emit_operational(p_tenant uuid, p_type text, p_payload jsonb, p_subject uuid)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
  patterns text[] := array_remove(postbox.event_type_patterns(p_type), '*');
  event_id uuid;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM webhooks w
                  WHERE w.tenant_id = p_tenant AND w.event_types && patterns
                    AND w.deleted_at IS NULL AND w.enabled AND w.id IS DISTINCT FROM p_subject
                    AND (w.filter_path IS NULL OR p_payload @@ w.filter_path)) THEN
    RETURN NULL; -- nobody listens: no event is stored
  END IF;
  event_id := postbox.uuidv7();
  INSERT INTO events (id, tenant_id, type, payload, occurred_at) VALUES (event_id, p_tenant, p_type, p_payload, now());
  -- As postbox.ingest does: a webhook's payload filter applies, and a fifo webhook's order is kept.
  INSERT INTO deliveries (id, tenant_id, event_id, webhook_id, next_attempt_at, fifo_seq)
  SELECT postbox.uuidv7(), p_tenant, event_id, w.id, now(),
         CASE WHEN w.ordering = 'fifo' THEN nextval('deliveries_fifo_seq') END
    FROM webhooks w
   WHERE w.tenant_id = p_tenant AND w.event_types && patterns
     AND w.deleted_at IS NULL AND w.enabled AND w.id IS DISTINCT FROM p_subject
     AND (w.filter_path IS NULL OR p_payload @@ w.filter_path)
   ORDER BY w.id;
  RETURN event_id;
END $$;
--> statement-breakpoint
COMMENT ON FUNCTION postbox.emit_operational(uuid, text, jsonb, uuid) IS 'Stores a postbox.* event and one pending delivery per enabled webhook of the tenant subscribed to it by name (not by *) whose payload filter matches, except the webhook it is about. Returns the event id, or NULL when no webhook listens (nothing stored). Runs in the caller''s transaction.';
--> statement-breakpoint
CREATE FUNCTION postbox.webhook_notices() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.enabled AND NOT NEW.enabled THEN
    PERFORM postbox.emit_operational(NEW.tenant_id, 'postbox.endpoint.disabled', jsonb_build_object(
      'webhook_id', NEW.id, 'url', NEW.url, 'reason', NEW.disabled_reason, 'disabled_at', now(),
      'failing_since', NEW.failing_since, 'consecutive_failures', NEW.consecutive_failures), NEW.id);
  END IF;
  IF OLD.breaker_state = 'closed' AND NEW.breaker_state = 'open' THEN
    PERFORM postbox.emit_operational(NEW.tenant_id, 'postbox.endpoint.breaker_opened', jsonb_build_object(
      'webhook_id', NEW.id, 'url', NEW.url, 'consecutive_failures', NEW.consecutive_failures,
      'failing_since', NEW.failing_since, 'open_until', NEW.breaker_open_until), NEW.id);
  ELSIF OLD.breaker_state = 'open' AND NEW.breaker_state = 'closed' THEN
    PERFORM postbox.emit_operational(NEW.tenant_id, 'postbox.endpoint.recovered', jsonb_build_object(
      'webhook_id', NEW.id, 'url', NEW.url, 'failing_since', OLD.failing_since, 'recovered_at', now()), NEW.id);
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
COMMENT ON FUNCTION postbox.webhook_notices() IS 'Trigger: a webhook disabled (by the recorder or the API), its breaker opened, or its breaker closed again writes postbox.endpoint.disabled / breaker_opened / recovered in the same transaction.';
--> statement-breakpoint
-- WHEN keeps the trigger off the recorder's ordinary writes (failure counts, last success).
CREATE TRIGGER webhooks_operational_notices AFTER UPDATE OF enabled, breaker_state ON webhooks
  FOR EACH ROW
  WHEN (NEW.deleted_at IS NULL
        AND ((OLD.enabled AND NOT NEW.enabled) OR OLD.breaker_state IS DISTINCT FROM NEW.breaker_state))
  EXECUTE FUNCTION postbox.webhook_notices();
--> statement-breakpoint
COMMENT ON TRIGGER webhooks_operational_notices ON webhooks IS 'Operational notices for disable, breaker open and recovery (postbox.webhook_notices).';
--> statement-breakpoint
-- Statement level with a transition table: one recorder batch killing 100 deliveries of a webhook is
-- one upsert, not 100. Deaths of postbox.* deliveries are not counted (a notice must not beget notices).
-- Digest rows are upserted in key order so concurrent batches cannot deadlock on them.
CREATE FUNCTION postbox.dead_letter_notices() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO notice_digests AS n (tenant_id, type, subject, pending_count, first_at, last_at, sample, details)
  SELECT a.tenant_id, 'postbox.delivery.dead_lettered', a.webhook_id::text, count(*), min(a.dead_at), max(a.dead_at),
         to_jsonb((array_agg(jsonb_build_object('delivery_id', a.delivery_id, 'event_id', a.event_id,
                                                'event_type', a.event_type, 'last_error', a.last_error)
                             ORDER BY a.dead_at, a.delivery_id))[1:10]),
         jsonb_build_object('webhook_id', a.webhook_id, 'url', (SELECT url FROM webhooks WHERE id = a.webhook_id))
    FROM added a
   WHERE a.event_type NOT LIKE 'postbox.%'
   GROUP BY a.tenant_id, a.webhook_id
   ORDER BY a.tenant_id, a.webhook_id::text
  ON CONFLICT (tenant_id, type, subject) DO UPDATE
     SET pending_count = n.pending_count + EXCLUDED.pending_count,
         first_at = coalesce(n.first_at, EXCLUDED.first_at),
         last_at = greatest(n.last_at, EXCLUDED.last_at),
         sample = to_jsonb((ARRAY(SELECT jsonb_array_elements(n.sample || EXCLUDED.sample)))[1:10]),
         details = EXCLUDED.details;

  -- max_dlq_size: the DLQ went from within the limit to over it in this statement (counted no further
  -- than needed, by dead_letter_queue_tenant_idx).
  INSERT INTO notice_digests AS n (tenant_id, type, subject, pending_count, first_at, last_at, details)
  SELECT t.tenant_id, 'postbox.tenant.quota_exceeded', 'max_dlq_size', 1, now(), now(),
         jsonb_build_object('quota', 'max_dlq_size', 'limit', q.max_dlq_size, 'current', c.size)
    FROM (SELECT tenant_id, count(*) AS added FROM added GROUP BY tenant_id) t
    JOIN quotas q ON q.tenant_id = t.tenant_id
   CROSS JOIN LATERAL (
     SELECT count(*) AS size FROM (SELECT 1 FROM dead_letter_queue l WHERE l.tenant_id = t.tenant_id
                                    LIMIT q.max_dlq_size + t.added + 1) s) c
   WHERE c.size > q.max_dlq_size AND c.size - t.added <= q.max_dlq_size
   ORDER BY t.tenant_id
  ON CONFLICT (tenant_id, type, subject) DO UPDATE
     SET pending_count = n.pending_count + 1, first_at = coalesce(n.first_at, EXCLUDED.first_at),
         last_at = EXCLUDED.last_at, details = EXCLUDED.details;
  RETURN NULL;
END $$;
--> statement-breakpoint
COMMENT ON FUNCTION postbox.dead_letter_notices() IS 'Trigger: deliveries entering the DLQ add to their webhook''s postbox.delivery.dead_lettered digest, and a DLQ crossing max_dlq_size to the tenant''s postbox.tenant.quota_exceeded digest, in the same transaction.';
--> statement-breakpoint
CREATE TRIGGER dead_letter_queue_notices AFTER INSERT ON dead_letter_queue
  REFERENCING NEW TABLE AS added FOR EACH STATEMENT
  EXECUTE FUNCTION postbox.dead_letter_notices();
--> statement-breakpoint
COMMENT ON TRIGGER dead_letter_queue_notices ON dead_letter_queue IS 'Batched operational notices for dead deliveries and the DLQ quota (postbox.dead_letter_notices).';
--> statement-breakpoint
-- The flush: each due digest becomes one event (its count, first/last occurrence, sample, details)
-- and is reset in the same transaction, so a count is sent once. SKIP LOCKED: several workers may
-- flush at once, and a flush never waits behind a recorder that is adding to a digest.
CREATE FUNCTION postbox.flush_notices(p_max int, p_window_ms bigint) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  d record;
  sent int := 0;
BEGIN
  FOR d IN SELECT * FROM notice_digests
            WHERE pending_count > 0 AND not_before <= now()
            ORDER BY not_before LIMIT p_max FOR UPDATE SKIP LOCKED LOOP
    PERFORM postbox.emit_operational(d.tenant_id, d.type,
      d.details || jsonb_build_object('count', d.pending_count, 'first_at', d.first_at, 'last_at', d.last_at)
        || CASE WHEN d.type = 'postbox.delivery.dead_lettered' THEN jsonb_build_object('sample', d.sample)
                ELSE '{}'::jsonb END,
      CASE WHEN d.type = 'postbox.delivery.dead_lettered' THEN d.subject::uuid END);
    UPDATE notice_digests
       SET pending_count = 0, first_at = NULL, last_at = NULL, sample = '[]',
           not_before = now() + p_window_ms * interval '1 millisecond', flushed_at = now()
     WHERE tenant_id = d.tenant_id AND type = d.type AND subject = d.subject;
    sent := sent + 1;
  END LOOP;
  RETURN sent;
END $$;
--> statement-breakpoint
COMMENT ON FUNCTION postbox.flush_notices(int, bigint) IS 'Sends up to p_max due digests as events (postbox.emit_operational) and resets them; the next notice of a subject waits p_window_ms. Returns how many digests were flushed.';
