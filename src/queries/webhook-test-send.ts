/** What a test send (POST /webhooks/:id/test) reads: the webhook's address, timeout and sealed secrets. */
import type { Queryable } from '../db/pool.js';

export interface TestSendTarget {
  id: string;
  tenantId: string;
  url: string;
  timeoutMs: number;
  secretCiphertext: Buffer;
  /** The pre-rotation secret while its overlap lasts (database clock), as the claim reads it. */
  previousSecretCiphertext: Buffer | null;
  /** The mTLS client certificate and its sealed key, or both null. */
  clientCertPem: string | null;
  clientKeyCiphertext: Buffer | null;
}

/** A webhook that is not deleted, of `tenantId` unless undefined (the admin key). */
export async function getTestSendTarget(
  db: Queryable,
  id: string,
  tenantId: string | undefined,
): Promise<TestSendTarget | undefined> {
  const { rows } = await db.query<TestSendTarget>(
    `SELECT id, tenant_id AS "tenantId", url, timeout_ms AS "timeoutMs",
            secret_ciphertext AS "secretCiphertext",
            CASE WHEN previous_secret_expires_at > now() THEN previous_secret_ciphertext END
              AS "previousSecretCiphertext",
            client_cert_pem AS "clientCertPem", client_key_ciphertext AS "clientKeyCiphertext"
       FROM webhooks
      WHERE id = $1 AND deleted_at IS NULL AND ($2::uuid IS NULL OR tenant_id = $2)`,
    [id, tenantId ?? null],
  );
  return rows[0];
}
