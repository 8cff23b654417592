ALTER TABLE "webhooks" ALTER COLUMN "max_concurrency" SET DEFAULT 200;--> statement-breakpoint
ALTER TABLE "webhooks" ADD COLUMN "concurrency_limit" double precision DEFAULT 10 NOT NULL;--> statement-breakpoint
ALTER TABLE "webhooks" ADD COLUMN "latency_floor_ms" double precision;--> statement-breakpoint
ALTER TABLE "webhooks" ADD COLUMN "latency_recent_ms" double precision;--> statement-breakpoint
ALTER TABLE "webhooks" ADD COLUMN "concurrency_updated_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "webhooks" ADD COLUMN "concurrency_decreased_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "webhooks" ADD CONSTRAINT "webhooks_concurrency_limit_check" CHECK ("webhooks"."concurrency_limit" >= 1);