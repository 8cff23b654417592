ALTER TABLE "webhooks" ADD COLUMN "client_cert_not_after" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "webhooks" ADD COLUMN "client_cert_expiry_notice" text;--> statement-breakpoint
CREATE INDEX "webhooks_client_cert_not_after_idx" ON "webhooks" USING btree ("client_cert_not_after") WHERE client_cert_pem IS NOT NULL AND deleted_at IS NULL;--> statement-breakpoint
ALTER TABLE "webhooks" ADD CONSTRAINT "webhooks_client_cert_expiry_notice_check" CHECK ("webhooks"."client_cert_expiry_notice" IN ('expiring', 'expired'));--> statement-breakpoint
COMMENT ON COLUMN webhooks.client_cert_not_after IS 'Expiry (notAfter) of client_cert_pem, read from the certificate when it is stored; NULL without a certificate. A certificate stored before this column existed gets it from the postbox-client-certificates job (which reads the PEM). Feeds postbox_webhook_client_certificates_expiring and the expiry notices.';
--> statement-breakpoint
COMMENT ON COLUMN webhooks.client_cert_expiry_notice IS 'The expiry notice the current client certificate has had: expiring (postbox.endpoint.certificate_expiring, within 14 days of client_cert_not_after) or expired (postbox.endpoint.certificate_expired); NULL: none yet. Reset when the certificate changes.';
--> statement-breakpoint
COMMENT ON INDEX webhooks_client_cert_not_after_idx IS 'Webhooks with a client certificate by its expiry: the expiry gauge and the notice job read the range expiring soon.';
--> statement-breakpoint
COMMENT ON CONSTRAINT webhooks_client_cert_expiry_notice_check ON webhooks IS 'The two expiry notices a certificate can have had.';
