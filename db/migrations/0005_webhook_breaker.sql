ALTER TABLE "quotas" ADD COLUMN "claim_seq" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "webhooks" ADD COLUMN "consecutive_failures" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "webhooks" ADD COLUMN "breaker_state" text DEFAULT 'closed' NOT NULL;--> statement-breakpoint
ALTER TABLE "webhooks" ADD COLUMN "breaker_open_until" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "webhooks" ADD COLUMN "breaker_opens" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "webhooks" ADD COLUMN "failing_since" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "webhooks" ADD COLUMN "last_success_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "deliveries_pending_webhook_idx" ON "deliveries" USING btree ("webhook_id","next_attempt_at") WHERE status = 'pending';--> statement-breakpoint
CREATE INDEX "deliveries_in_flight_idx" ON "deliveries" USING btree ("tenant_id","webhook_id") WHERE status = 'in_flight';--> statement-breakpoint
ALTER TABLE "webhooks" ADD CONSTRAINT "webhooks_breaker_state_check" CHECK ("webhooks"."breaker_state" IN ('closed', 'open'));