CREATE TABLE "api_keys" (
	"id" uuid PRIMARY KEY NOT NULL,
	"tenant_id" uuid,
	"name" text,
	"key_hash" "bytea" NOT NULL,
	"prefix" text NOT NULL,
	"origin" text DEFAULT 'api' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_used_at" timestamp with time zone,
	"expires_at" timestamp with time zone,
	"revoked_at" timestamp with time zone,
	CONSTRAINT "api_keys_origin_check" CHECK ("api_keys"."origin" IN ('api', 'bootstrap'))
);
--> statement-breakpoint
DROP INDEX "tenants_api_key_hash_key";--> statement-breakpoint
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "api_keys_key_hash_key" ON "api_keys" USING btree ("key_hash");--> statement-breakpoint
CREATE INDEX "api_keys_tenant_idx" ON "api_keys" USING btree ("tenant_id","id" DESC NULLS FIRST);--> statement-breakpoint
-- Hand-added: every tenant's existing key becomes its first api_keys row (id: the tenant's, which is
-- as time-ordered as a new UUIDv7), before the columns that held it go.
INSERT INTO "api_keys" ("id", "tenant_id", "name", "key_hash", "prefix", "created_at")
SELECT "id", "id", 'default', "api_key_hash", "api_key_prefix", "created_at" FROM "tenants";--> statement-breakpoint
ALTER TABLE "tenants" DROP COLUMN "api_key_hash";--> statement-breakpoint
ALTER TABLE "tenants" DROP COLUMN "api_key_prefix";--> statement-breakpoint
COMMENT ON TABLE "api_keys" IS 'API keys: several per tenant, and the operator''s (tenant_id NULL). Only the SHA-256 hash is stored; the key is shown once, when created or rotated.';--> statement-breakpoint
COMMENT ON COLUMN "api_keys"."id" IS 'UUIDv7, time-ordered: lists are newest first by id.';--> statement-breakpoint
COMMENT ON COLUMN "api_keys"."tenant_id" IS 'The tenant the key acts for; NULL: an admin key (every tenant).';--> statement-breakpoint
COMMENT ON COLUMN "api_keys"."name" IS 'A label chosen by whoever created the key (e.g. ci-producer); never secret.';--> statement-breakpoint
COMMENT ON COLUMN "api_keys"."key_hash" IS 'SHA-256 of the whole key: keys carry 256 random bits, so a plain hash cannot be brute-forced. Authentication looks keys up by it.';--> statement-breakpoint
COMMENT ON COLUMN "api_keys"."prefix" IS 'The first characters of the key (pbk_ or pbadmin_ plus 6): shown in lists and used as the audit actor, not enough to authenticate.';--> statement-breakpoint
COMMENT ON COLUMN "api_keys"."origin" IS 'api: created through the API. bootstrap: the admin key of ADMIN_API_KEY or DATA_DIR/admin-api-key, registered at start-up; a newer bootstrap key revokes older ones.';--> statement-breakpoint
COMMENT ON COLUMN "api_keys"."created_at" IS 'When the key was created.';--> statement-breakpoint
COMMENT ON COLUMN "api_keys"."last_used_at" IS 'Last authenticated request with the key, refreshed at most once a minute per process (not on every request).';--> statement-breakpoint
COMMENT ON COLUMN "api_keys"."expires_at" IS 'Set by a rotation: the old key keeps working until then. NULL: no expiry.';--> statement-breakpoint
COMMENT ON COLUMN "api_keys"."revoked_at" IS 'When the key was revoked; a revoked key answers 401. NULL: not revoked.';--> statement-breakpoint
COMMENT ON CONSTRAINT "api_keys_origin_check" ON "api_keys" IS 'origin is api or bootstrap.';--> statement-breakpoint
COMMENT ON INDEX "api_keys_key_hash_key" IS 'Authentication: one lookup by the hash of the presented key.';--> statement-breakpoint
COMMENT ON INDEX "api_keys_tenant_idx" IS 'A tenant''s keys (or the admin keys, tenant_id NULL), newest first.';
--> statement-breakpoint
COMMENT ON TABLE "tenants" IS 'Producers of events. Their API keys are in api_keys.';
