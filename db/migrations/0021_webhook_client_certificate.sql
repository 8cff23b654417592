ALTER TABLE "webhooks" ADD COLUMN "client_cert_pem" text;--> statement-breakpoint
ALTER TABLE "webhooks" ADD COLUMN "client_key_ciphertext" "bytea";--> statement-breakpoint
ALTER TABLE "webhooks" ADD CONSTRAINT "webhooks_client_certificate_whole" CHECK (("webhooks"."client_cert_pem" IS NULL) = ("webhooks"."client_key_ciphertext" IS NULL));
--> statement-breakpoint
COMMENT ON COLUMN webhooks.client_cert_pem IS 'Optional mTLS client certificate (PEM, may hold its chain) the sender presents to the receiver; public, shown in the API as subject, issuer, fingerprint and expiry.';
--> statement-breakpoint
COMMENT ON COLUMN webhooks.client_key_ciphertext IS 'The private key of client_cert_pem, sealed with AES-256-GCM under the secrets key (key id | iv | tag | ciphertext); never returned or logged.';
