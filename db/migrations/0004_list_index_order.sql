DROP INDEX "audit_log_tenant_idx";--> statement-breakpoint
DROP INDEX "audit_log_action_idx";--> statement-breakpoint
DROP INDEX "dead_letter_queue_tenant_idx";--> statement-breakpoint
DROP INDEX "dead_letter_queue_webhook_idx";--> statement-breakpoint
DROP INDEX "deliveries_webhook_id_idx";--> statement-breakpoint
DROP INDEX "deliveries_tenant_id_idx";--> statement-breakpoint
DROP INDEX "events_tenant_id_idx";--> statement-breakpoint
DROP INDEX "events_tenant_type_idx";--> statement-breakpoint
DROP INDEX "webhooks_tenant_id_idx";--> statement-breakpoint
CREATE INDEX "dead_letter_queue_dead_at_idx" ON "dead_letter_queue" USING btree ("dead_at" DESC NULLS FIRST,"delivery_id" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "audit_log_tenant_idx" ON "audit_log" USING btree ("tenant_id","id" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "audit_log_action_idx" ON "audit_log" USING btree ("action","id" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "dead_letter_queue_tenant_idx" ON "dead_letter_queue" USING btree ("tenant_id","dead_at" DESC NULLS FIRST,"delivery_id" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "dead_letter_queue_webhook_idx" ON "dead_letter_queue" USING btree ("webhook_id","dead_at" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "deliveries_webhook_id_idx" ON "deliveries" USING btree ("webhook_id","id" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "deliveries_tenant_id_idx" ON "deliveries" USING btree ("tenant_id","id" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "events_tenant_id_idx" ON "events" USING btree ("tenant_id","id" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "events_tenant_type_idx" ON "events" USING btree ("tenant_id","type","id" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "webhooks_tenant_id_idx" ON "webhooks" USING btree ("tenant_id","id" DESC NULLS FIRST);