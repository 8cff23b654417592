-- Separate retention periods (RETENTION_PAYLOAD_DAYS, RETENTION_DLQ_DAYS, RETENTION_AUDIT_DAYS; attempts:
-- migration 0019). A payload past its period is emptied (SQL NULL; a producer's JSON null is the JSON
-- value 'null'), the event row itself staying as long as its deliveries do.
ALTER TABLE "events" ALTER COLUMN "payload" DROP NOT NULL;--> statement-breakpoint
CREATE INDEX "audit_log_at_idx" ON "audit_log" USING btree ("at");--> statement-breakpoint
CREATE INDEX "events_payload_kept_idx" ON "events" USING btree ("id") WHERE payload IS NOT NULL;--> statement-breakpoint
-- events stays an immutable log: with postbox.retention = 'on' (set transaction-locally by the retention
-- job) a row may be deleted, or lose its payload and nothing else; any other change is refused.
CREATE OR REPLACE FUNCTION postbox_events_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('postbox.retention', true) = 'on' THEN
    IF TG_OP = 'DELETE' THEN
      RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.payload IS NULL AND to_jsonb(NEW) - 'payload' = to_jsonb(OLD) - 'payload' THEN
      RETURN NEW;
    END IF;
  END IF;
  RAISE EXCEPTION 'events is an immutable log: % is not allowed (only retention may delete a row or remove its payload)', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;
--> statement-breakpoint
COMMENT ON TABLE events IS 'Immutable log of ingested events (a trigger rejects UPDATE and DELETE outside retention; retention deletes rows and removes payloads).';
COMMENT ON COLUMN events.payload IS 'The producer''s payload; the "data" of the envelope receivers get. NULL once retention removed it (RETENTION_PAYLOAD_DAYS), never while a pending, in-flight or dead-lettered delivery may still send it.';
COMMENT ON INDEX events_payload_kept_idx IS 'Events still holding a payload: payload retention walks these, not the emptied ones, on every run.';
COMMENT ON INDEX audit_log_at_idx IS 'Audit retention deletes the oldest rows first (RETENTION_AUDIT_DAYS).';
