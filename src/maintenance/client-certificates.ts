/**
 * The postbox-client-certificates job (hourly, and once at start-up): webhooks' mTLS client
 * certificates nearing or past their expiry. First, certificates stored before their expiry had a
 * column get it from their PEM (PostgreSQL cannot read X.509); then each certificate that entered the
 * warning window, or expired, since its last notice tells its tenant once
 * (postbox.endpoint.certificate_expiring / certificate_expired, docs/operational-webhooks.md).
 * The gauge postbox_webhook_client_certificates_expiring reads the same column on scrape.
 */
import type pg from 'pg';
import { CLIENT_CERT_EXPIRY_WARNING_DAYS, clientCertificateNotAfter } from '../security/client-cert.js';
import {
  listClientCertificatesWithoutExpiry,
  sendClientCertificateNotices,
  setClientCertificateExpiries,
  type CertificateNotice,
} from '../queries/client-certificates.js';

/** Below every UUID: where the keyset cursor starts. */
const FIRST_ID = '00000000-0000-0000-0000-000000000000';

export interface ClientCertificateCheck {
  /** Certificates whose expiry was read from the PEM and stored. */
  filled: number;
  /** Certificates stored earlier whose PEM could not be read (left without an expiry). */
  unreadable: number;
  /** Notices sent now (eventId null: no webhook of the tenant listens). */
  notices: CertificateNotice[];
}

export async function checkClientCertificates(
  pool: pg.Pool,
  { batchSize = 500 }: { batchSize?: number } = {},
): Promise<ClientCertificateCheck> {
  let filled = 0;
  let unreadable = 0;
  for (let after = FIRST_ID; ;) {
    const batch = await listClientCertificatesWithoutExpiry(pool, after, batchSize);
    const read = [];
    for (const c of batch) {
      try {
        read.push({ ...c, notAfter: clientCertificateNotAfter(c.pem) });
      } catch {
        unreadable++; // checked at registration, so not expected; the keyset cursor moves past it
      }
    }
    filled += await setClientCertificateExpiries(pool, read);
    if (batch.length < batchSize) break;
    after = batch[batch.length - 1]!.id;
  }
  const notices = await sendClientCertificateNotices(pool, CLIENT_CERT_EXPIRY_WARNING_DAYS);
  return { filled, unreadable, notices };
}
