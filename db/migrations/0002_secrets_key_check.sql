CREATE TABLE "secrets_key_check" (
	"id" boolean PRIMARY KEY DEFAULT true NOT NULL,
	"sealed" "bytea" NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "secrets_key_check_one_row" CHECK ("secrets_key_check"."id")
);
--> statement-breakpoint
COMMENT ON TABLE secrets_key_check IS 'One row: a known text sealed with the secrets key, opened at start-up to refuse a wrong or lost SECRETS_KEY.';
--> statement-breakpoint
COMMENT ON COLUMN secrets_key_check.id IS 'Always true: the primary key and its CHECK allow exactly one row.';
--> statement-breakpoint
COMMENT ON COLUMN secrets_key_check.sealed IS 'The known text sealed with AES-256-GCM under the secrets key (iv | tag | ciphertext).';
--> statement-breakpoint
COMMENT ON COLUMN secrets_key_check.created_at IS 'When the first start sealed it.';
