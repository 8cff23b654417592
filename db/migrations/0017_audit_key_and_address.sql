ALTER TABLE "audit_log" ADD COLUMN "key_prefix" text;--> statement-breakpoint
ALTER TABLE "audit_log" ADD COLUMN "client_ip" "inet";--> statement-breakpoint
COMMENT ON COLUMN audit_log.key_prefix IS 'Prefix of the API key that made the change (the configured admin key''s too, where actor is just admin); null for changes by the system.';
--> statement-breakpoint
COMMENT ON COLUMN audit_log.client_ip IS 'The caller''s address as the API saw it (behind the proxy the app trusts: the address that proxy reports in X-Forwarded-For); null for changes by the system.';

