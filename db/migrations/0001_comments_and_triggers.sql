-- Hand-written: what drizzle-kit cannot express. Operators read this schema with psql, so every
-- table and column says what it holds.

-- events is an immutable log. Only the retention job may delete (it sets postbox.retention = 'on'
-- for its own transaction); nobody may update.
CREATE FUNCTION postbox_events_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND current_setting('postbox.retention', true) = 'on' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'events is an immutable log: % is not allowed (only retention may delete)', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;
--> statement-breakpoint
CREATE TRIGGER events_immutable BEFORE UPDATE OR DELETE ON events
  FOR EACH ROW EXECUTE FUNCTION postbox_events_immutable();
--> statement-breakpoint
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
  FOR EACH STATEMENT EXECUTE FUNCTION postbox_events_immutable();
--> statement-breakpoint
COMMENT ON TYPE delivery_status IS 'pending: waiting for next_attempt_at; in_flight: claimed under a lease; succeeded: a 2xx was received; failed: retries exhausted, see dead_letter_queue; cancelled: webhook deleted before delivery';
--> statement-breakpoint
COMMENT ON TABLE tenants IS 'Producers of events. Each has one API key, stored only as a SHA-256 hash.';
COMMENT ON COLUMN tenants.id IS 'Tenant id (UUIDv7).';
COMMENT ON COLUMN tenants.name IS 'Human-readable name, set at creation.';
COMMENT ON COLUMN tenants.api_key_hash IS 'SHA-256 of the tenant API key; the key itself is shown once at creation and never stored.';
COMMENT ON COLUMN tenants.api_key_prefix IS 'First characters of the API key, to tell keys apart in logs and the audit log without revealing them.';
COMMENT ON COLUMN tenants.created_at IS 'When the tenant was created.';
--> statement-breakpoint
COMMENT ON TABLE quotas IS 'Per-tenant limits; one row per tenant, defaults from configuration.';
COMMENT ON COLUMN quotas.tenant_id IS 'The tenant these limits apply to.';
COMMENT ON COLUMN quotas.max_events_per_sec IS 'Events the tenant may ingest per second across all Postbox processes; over it POST /events answers 429.';
COMMENT ON COLUMN quotas.max_concurrent_deliveries IS 'Deliveries of this tenant that may be in flight at once across all workers.';
COMMENT ON COLUMN quotas.max_dlq_size IS 'DLQ size above which the tenant is flagged (logged, counted); nothing is dropped.';
COMMENT ON COLUMN quotas.updated_at IS 'When the limits last changed.';
--> statement-breakpoint
COMMENT ON TABLE webhooks IS 'Receiver endpoints registered by tenants. Deleted webhooks keep their row (deleted_at) so their deliveries stay explainable.';
COMMENT ON COLUMN webhooks.id IS 'Webhook id (UUIDv7).';
COMMENT ON COLUMN webhooks.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN webhooks.url IS 'Absolute http(s) URL deliveries are POSTed to.';
COMMENT ON COLUMN webhooks.secret_ciphertext IS 'Signing secret, AES-256-GCM encrypted (12-byte IV, 16-byte tag, ciphertext). Never stored in plain text.';
COMMENT ON COLUMN webhooks.previous_secret_ciphertext IS 'The secret before the last rotation, encrypted; still signs until previous_secret_expires_at.';
COMMENT ON COLUMN webhooks.previous_secret_expires_at IS 'End of the rotation overlap: after it only the current secret signs.';
COMMENT ON COLUMN webhooks.event_types IS 'Event types delivered here: exact names or trailing wildcards (order.*); {*} means all.';
COMMENT ON COLUMN webhooks.description IS 'Free text from the tenant.';
COMMENT ON COLUMN webhooks.retry_policy IS 'JSON {max_attempts, initial_delay_ms, max_delay_ms}: exponential backoff with jitter.';
COMMENT ON COLUMN webhooks.timeout_ms IS 'Per-attempt timeout in milliseconds.';
COMMENT ON COLUMN webhooks.max_concurrency IS 'Deliveries to this webhook that may be in flight at once, so one slow endpoint cannot occupy the worker pool.';
COMMENT ON COLUMN webhooks.enabled IS 'Disabled webhooks match no new events; their queued deliveries wait until re-enabled.';
COMMENT ON COLUMN webhooks.disabled_reason IS 'Why the webhook was disabled (by the tenant, or automatically after failing).';
COMMENT ON COLUMN webhooks.created_at IS 'When the webhook was registered.';
COMMENT ON COLUMN webhooks.updated_at IS 'When the webhook last changed.';
COMMENT ON COLUMN webhooks.deleted_at IS 'Set by DELETE /webhooks/:id; the webhook is then gone from the API and its undelivered deliveries are cancelled.';
--> statement-breakpoint
COMMENT ON TABLE events IS 'Immutable log of ingested events (a trigger rejects UPDATE and DELETE outside retention).';
COMMENT ON COLUMN events.id IS 'Event id (UUIDv7); the "id" of the envelope receivers get.';
COMMENT ON COLUMN events.tenant_id IS 'Tenant that produced the event.';
COMMENT ON COLUMN events.type IS 'Event type, e.g. order.created.';
COMMENT ON COLUMN events.payload IS 'The producer''s payload; the "data" of the envelope receivers get.';
COMMENT ON COLUMN events.occurred_at IS 'The event''s own timestamp (given by the producer, else the time it was received).';
COMMENT ON COLUMN events.received_at IS 'When Postbox stored the event; delivery lag is measured from here.';
COMMENT ON COLUMN events.idempotency_key IS 'Producer-chosen key, unique per tenant: a repeat returns the first answer and queues nothing.';
COMMENT ON COLUMN events.traceparent IS 'W3C traceparent sent with the event, forwarded on every delivery.';
--> statement-breakpoint
COMMENT ON TABLE deliveries IS 'One row per (event, matching webhook): the queue. Workers claim due pending rows with FOR UPDATE SKIP LOCKED.';
COMMENT ON COLUMN deliveries.id IS 'Delivery id (UUIDv7); sent as webhook-id, the same on every attempt and replay.';
COMMENT ON COLUMN deliveries.tenant_id IS 'Tenant of the event and webhook.';
COMMENT ON COLUMN deliveries.event_id IS 'The event being delivered.';
COMMENT ON COLUMN deliveries.webhook_id IS 'The webhook it is delivered to.';
COMMENT ON COLUMN deliveries.status IS 'pending, in_flight, succeeded, failed (in the DLQ) or cancelled.';
COMMENT ON COLUMN deliveries.attempts IS 'Attempts made so far in this delivery cycle (reset by replay and DLQ retry).';
COMMENT ON COLUMN deliveries.next_attempt_at IS 'When a pending delivery becomes due.';
COMMENT ON COLUMN deliveries.lease_owner IS 'Worker that holds the claim while in_flight.';
COMMENT ON COLUMN deliveries.lease_expires_at IS 'When an in_flight claim lapses; after it the delivery is claimable again (its worker is presumed dead).';
COMMENT ON COLUMN deliveries.last_attempt_at IS 'Start of the most recent attempt.';
COMMENT ON COLUMN deliveries.last_status_code IS 'HTTP status of the most recent attempt, if any answer came.';
COMMENT ON COLUMN deliveries.last_error IS 'Error of the most recent failed attempt.';
COMMENT ON COLUMN deliveries.created_at IS 'When the delivery was queued (in the ingest transaction).';
COMMENT ON COLUMN deliveries.updated_at IS 'When the row last changed state.';
COMMENT ON COLUMN deliveries.completed_at IS 'When it reached succeeded, failed or cancelled.';
--> statement-breakpoint
COMMENT ON TABLE delivery_attempts IS 'One row per HTTP attempt: what was tried and what came back.';
COMMENT ON COLUMN delivery_attempts.id IS 'Surrogate key.';
COMMENT ON COLUMN delivery_attempts.delivery_id IS 'The delivery attempted.';
COMMENT ON COLUMN delivery_attempts.attempt IS '1 for the first attempt of a cycle, then 2, 3, ... (sent as X-Webhook-Attempt).';
COMMENT ON COLUMN delivery_attempts.started_at IS 'When the request was started.';
COMMENT ON COLUMN delivery_attempts.duration_ms IS 'Milliseconds until the answer, timeout or error.';
COMMENT ON COLUMN delivery_attempts.status_code IS 'HTTP status received, NULL if none (timeout, connection error).';
COMMENT ON COLUMN delivery_attempts.error IS 'Why the attempt failed, NULL on success.';
COMMENT ON COLUMN delivery_attempts.response_excerpt IS 'First 1 KiB of the response body.';
--> statement-breakpoint
COMMENT ON TABLE dead_letter_queue IS 'Deliveries whose retries are exhausted (status failed). Leaves on DLQ retry or replay.';
COMMENT ON COLUMN dead_letter_queue.delivery_id IS 'The dead delivery.';
COMMENT ON COLUMN dead_letter_queue.tenant_id IS 'Its tenant.';
COMMENT ON COLUMN dead_letter_queue.webhook_id IS 'Its webhook.';
COMMENT ON COLUMN dead_letter_queue.event_id IS 'Its event.';
COMMENT ON COLUMN dead_letter_queue.event_type IS 'The event type, for bulk retry by type.';
COMMENT ON COLUMN dead_letter_queue.last_error IS 'Error of the final attempt.';
COMMENT ON COLUMN dead_letter_queue.attempts IS 'Attempts made before giving up.';
COMMENT ON COLUMN dead_letter_queue.dead_at IS 'When the delivery was given up.';
--> statement-breakpoint
COMMENT ON TABLE audit_log IS 'Who changed what: one row per create, update, delete, rotation, disable, DLQ retry and replay, written in the same transaction as the change. Never holds secrets.';
COMMENT ON COLUMN audit_log.id IS 'Surrogate key, increasing.';
COMMENT ON COLUMN audit_log.at IS 'When the change was made.';
COMMENT ON COLUMN audit_log.actor IS 'Who made it: admin, tenant:<id> or system.';
COMMENT ON COLUMN audit_log.action IS 'What was done, e.g. webhook.create, webhook.rotate_secret, dlq.retry.';
COMMENT ON COLUMN audit_log.object_type IS 'Kind of object changed: tenant, webhook, delivery, quota.';
COMMENT ON COLUMN audit_log.object_id IS 'Id of the object changed.';
COMMENT ON COLUMN audit_log.tenant_id IS 'Tenant the object belongs to.';
COMMENT ON COLUMN audit_log.changes IS 'Changed fields (never secret values).';
--> statement-breakpoint
COMMENT ON TABLE rate_windows IS 'Per-tenant event counters per one-second window, shared by all processes for max_events_per_sec.';
COMMENT ON COLUMN rate_windows.tenant_id IS 'The tenant counted.';
COMMENT ON COLUMN rate_windows.window_start IS 'Window start in Unix seconds.';
COMMENT ON COLUMN rate_windows.count IS 'Events accepted in the window.';
