/**
 * SQL for the expiry of webhooks' mTLS client certificates: the counts behind the expiry gauge, the
 * expiry of certificates stored before webhooks.client_cert_not_after existed, and the notices that
 * tell a tenant (postbox.endpoint.certificate_expiring / _expired). All of them read
 * webhooks_client_cert_not_after_idx: webhooks with a certificate, by expiry.
 */
import type { Queryable } from '../db/pool.js';

export interface ClientCertificateExpiryCounts {
  /** Expiring within the warning window, not expired yet. */
  expiring: number;
  /** Past their expiry: the receiver refuses the handshake. */
  expired: number;
}

/** Webhooks (not deleted, enabled or not) whose certificate expires within `warningDays` or has expired. */
export async function countClientCertificatesByExpiry(
  db: Queryable,
  warningDays: number,
): Promise<ClientCertificateExpiryCounts> {
  const { rows } = await db.query<ClientCertificateExpiryCounts>({
    name: 'postbox_count_client_certificates_by_expiry',
    text: `SELECT count(*) FILTER (WHERE client_cert_not_after > now())::int AS expiring,
                  count(*) FILTER (WHERE client_cert_not_after <= now())::int AS expired
             FROM webhooks
            WHERE client_cert_pem IS NOT NULL AND deleted_at IS NULL
              AND client_cert_not_after <= now() + make_interval(days => $1)`,
    values: [warningDays],
  });
  return rows[0]!;
}

export interface CertificateWithoutExpiry {
  id: string;
  pem: string;
}

/** Up to `limit` certificates whose expiry is not stored yet, after `afterId` in id order. */
export async function listClientCertificatesWithoutExpiry(
  db: Queryable,
  afterId: string,
  limit: number,
): Promise<CertificateWithoutExpiry[]> {
  const { rows } = await db.query<CertificateWithoutExpiry>({
    name: 'postbox_list_client_certificates_without_expiry',
    text: `SELECT id, client_cert_pem AS pem FROM webhooks
            WHERE client_cert_pem IS NOT NULL AND deleted_at IS NULL AND client_cert_not_after IS NULL
              AND id > $1
            ORDER BY id
            LIMIT $2`,
    values: [afterId, limit],
  });
  return rows;
}

/** Stores expiries read from the PEMs; a certificate replaced meanwhile (other PEM) is left alone. */
export async function setClientCertificateExpiries(
  db: Queryable,
  certs: readonly (CertificateWithoutExpiry & { notAfter: Date })[],
): Promise<number> {
  if (certs.length === 0) return 0;
  const { rowCount } = await db.query({
    name: 'postbox_set_client_certificate_expiries',
    text: `UPDATE webhooks w SET client_cert_not_after = c.not_after
             FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS c(id, pem, not_after)
            WHERE w.id = c.id AND w.client_cert_pem = c.pem AND w.client_cert_not_after IS NULL`,
    values: [certs.map((c) => c.id), certs.map((c) => c.pem), certs.map((c) => c.notAfter)],
  });
  return rowCount ?? 0;
}

export interface CertificateNotice {
  webhookId: string;
  tenantId: string;
  notice: 'expiring' | 'expired';
  /** The postbox.* event stored, or null when no webhook of the tenant listens (nothing stored). */
  eventId: string | null;
}

/**
 * One statement: each webhook whose certificate entered the warning window (or expired) since its
 * last notice gets client_cert_expiry_notice moved on and its tenant a postbox.endpoint.certificate_*
 * event (postbox.emit_operational: to the tenant's webhooks subscribed to it by name, never to the
 * webhook it is about), in the same transaction, so a notice is sent once however many processes run
 * this. The rows are locked in id order, as the recorder and the API lock webhooks, and the notice is
 * computed from the locked row (a certificate replaced meanwhile is judged as it is now).
 */
export async function sendClientCertificateNotices(
  db: Queryable,
  warningDays: number,
): Promise<CertificateNotice[]> {
  const { rows } = await db.query<CertificateNotice>({
    name: 'postbox_send_client_certificate_notices',
    text: `WITH due AS MATERIALIZED (
             SELECT w.id, CASE WHEN w.client_cert_not_after <= now() THEN 'expired' ELSE 'expiring' END AS notice
               FROM webhooks w
              WHERE w.client_cert_pem IS NOT NULL AND w.deleted_at IS NULL
                AND w.client_cert_not_after <= now() + make_interval(days => $1)
                AND w.client_cert_expiry_notice IS DISTINCT FROM
                    CASE WHEN w.client_cert_not_after <= now() THEN 'expired' ELSE 'expiring' END
              ORDER BY w.id
                FOR NO KEY UPDATE OF w
           ), noted AS (
             UPDATE webhooks w SET client_cert_expiry_notice = d.notice
               FROM due d
              WHERE w.id = d.id
              RETURNING w.id, w.tenant_id, w.url, w.client_cert_not_after, d.notice
           )
           SELECT n.id AS "webhookId", n.tenant_id AS "tenantId", n.notice,
                  postbox.emit_operational(
                    n.tenant_id, 'postbox.endpoint.certificate_' || n.notice,
                    jsonb_build_object('webhook_id', n.id, 'url', n.url,
                                       'not_after', n.client_cert_not_after, 'expired', n.notice = 'expired'),
                    n.id) AS "eventId"
             FROM noted n`,
    values: [warningDays],
  });
  return rows;
}
