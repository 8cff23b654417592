CREATE TABLE "notice_digests" (
	"tenant_id" uuid NOT NULL,
	"type" text NOT NULL,
	"subject" text NOT NULL,
	"pending_count" integer DEFAULT 0 NOT NULL,
	"first_at" timestamp with time zone,
	"last_at" timestamp with time zone,
	"sample" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"details" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"not_before" timestamp with time zone DEFAULT now() NOT NULL,
	"flushed_at" timestamp with time zone,
	CONSTRAINT "notice_digests_tenant_id_type_subject_pk" PRIMARY KEY("tenant_id","type","subject")
);
--> statement-breakpoint
ALTER TABLE "notice_digests" ADD CONSTRAINT "notice_digests_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "notice_digests_due_idx" ON "notice_digests" USING btree ("not_before") WHERE pending_count > 0;