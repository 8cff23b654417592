CREATE TABLE "webhook_recoveries" (
	"id" uuid PRIMARY KEY NOT NULL,
	"tenant_id" uuid NOT NULL,
	"webhook_id" uuid NOT NULL,
	"since" timestamp with time zone NOT NULL,
	"until" timestamp with time zone,
	"delivery_ids" uuid[] NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "webhook_recoveries" ADD CONSTRAINT "webhook_recoveries_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhook_recoveries" ADD CONSTRAINT "webhook_recoveries_webhook_id_webhooks_id_fk" FOREIGN KEY ("webhook_id") REFERENCES "public"."webhooks"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "webhook_recoveries_webhook_idx" ON "webhook_recoveries" USING btree ("webhook_id","since");
--> statement-breakpoint
COMMENT ON TABLE "webhook_recoveries" IS 'POST /webhooks/:id/recover: each recovery and the deliveries it queued again. Asking for the same window while any of them is still pending or in flight answers this recovery instead of queueing again. A recovery of the webhook deletes its finished ones; the audit log keeps the history.';--> statement-breakpoint
COMMENT ON COLUMN "webhook_recoveries"."id" IS 'UUIDv7 of the recovery.';--> statement-breakpoint
COMMENT ON COLUMN "webhook_recoveries"."tenant_id" IS 'The webhook''s tenant.';--> statement-breakpoint
COMMENT ON COLUMN "webhook_recoveries"."webhook_id" IS 'The webhook whose failed deliveries were queued again.';--> statement-breakpoint
COMMENT ON COLUMN "webhook_recoveries"."since" IS 'Start of the window (inclusive): deliveries of events received from then.';--> statement-breakpoint
COMMENT ON COLUMN "webhook_recoveries"."until" IS 'End of the window (exclusive); NULL: up to the time of the call.';--> statement-breakpoint
COMMENT ON COLUMN "webhook_recoveries"."delivery_ids" IS 'The deliveries this recovery queued again (status failed before it).';--> statement-breakpoint
COMMENT ON COLUMN "webhook_recoveries"."created_at" IS 'When the recovery was asked for.';--> statement-breakpoint
COMMENT ON CONSTRAINT "webhook_recoveries_tenant_id_tenants_id_fk" ON "webhook_recoveries" IS 'A tenant''s recoveries go with it.';--> statement-breakpoint
COMMENT ON CONSTRAINT "webhook_recoveries_webhook_id_webhooks_id_fk" ON "webhook_recoveries" IS 'A webhook''s recoveries go with it (webhooks are soft-deleted, so only a hard delete removes them).';--> statement-breakpoint
COMMENT ON INDEX "webhook_recoveries_webhook_idx" IS 'Finding a running recovery of the same webhook and window.';
