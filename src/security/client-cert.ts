/**
 * mTLS client certificates of webhooks: checking one at registration, and describing a stored one
 * for the API (the certificate is public; its private key is sealed and never shown or logged).
 *
 * Checked before anything is stored, so a delivery never fails on a certificate we could have refused:
 * PEM text, an unencrypted private key Node's TLS can load, a certificate that key belongs to, and not
 * expired. Problems name the field and never include what was sent.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';

/** Upper bound of each PEM field: a certificate with a long chain, or an RSA-8192 key, fits. */
export const CLIENT_PEM_MAX_LENGTH = 32 * 1024;

export interface ClientCertificateInput {
  cert: string;
  key: string;
}

export interface CertificateProblem {
  path: 'client_certificate.cert' | 'client_certificate.key';
  message: string;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----/;
const PEM_KEY = /-----BEGIN (?:RSA |EC |)PRIVATE KEY-----/;

function loadKey(pem: string): KeyObject | CertificateProblem {
  const path = 'client_certificate.key';
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(pem))
    return { path, message: 'must be an unencrypted private key (Postbox has no passphrase to open it)' };
  if (!PEM_KEY.test(pem)) return { path, message: 'must be a PEM private key (-----BEGIN PRIVATE KEY-----)' };
  try {
    return createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    return { path, message: 'is not a private key that can be read' };
  }
}

/** Why a client certificate cannot be used, or [] when it can. `now` is injectable for tests. */
export function clientCertificateProblems(
  input: ClientCertificateInput,
  now = new Date(),
): CertificateProblem[] {
  const problems: CertificateProblem[] = [];
  let cert: X509Certificate | undefined;
  if (!PEM_CERTIFICATE.test(input.cert))
    problems.push({
      path: 'client_certificate.cert',
      message: 'must be a PEM certificate (-----BEGIN CERTIFICATE-----)',
    });
  else
    try {
      cert = new X509Certificate(input.cert);
    } catch {
      problems.push({ path: 'client_certificate.cert', message: 'is not a certificate that can be read' });
    }
  const key = loadKey(input.key);
  if ('path' in key) problems.push(key);
  else if (cert) {
    if (!cert.checkPrivateKey(key))
      problems.push({ path: 'client_certificate.key', message: 'does not belong to the certificate' });
    if (Date.parse(cert.validTo) <= now.getTime())
      problems.push({
        path: 'client_certificate.cert',
        message: `expired on ${new Date(cert.validTo).toISOString()}`,
      });
  }
  return problems;
}

/**
 * How long before a client certificate expires it counts as expiring: the gauge
 * postbox_webhook_client_certificates_expiring, the alert, and the tenant's notice. Two weeks leave
 * room for a renewal that needs someone else's CA.
 */
export const CLIENT_CERT_EXPIRY_WARNING_DAYS = 14;

/** The expiry (notAfter) of the client's own certificate, the first one of the PEM. */
export function clientCertificateNotAfter(pem: string): Date {
  return new Date(describeClientCertificate(pem).not_after);
}

/** What the API shows of a stored certificate (the first one of the PEM: the client's own). */
export interface CertificateSummary {
  subject: string;
  issuer: string;
  fingerprint_sha256: string;
  not_after: string;
}

const summaries = new Map<string, CertificateSummary>();

/** Parsed once per distinct PEM (lists show many webhooks): the cache is small and dropped when full. */
export function describeClientCertificate(pem: string): CertificateSummary {
  let summary = summaries.get(pem);
  if (!summary) {
    const cert = new X509Certificate(pem);
    summary = {
      subject: cert.subject.replace(/\n/g, ', '),
      issuer: cert.issuer.replace(/\n/g, ', '),
      fingerprint_sha256: cert.fingerprint256,
      not_after: new Date(cert.validTo).toISOString(),
    };
    if (summaries.size >= 1000) summaries.clear();
    summaries.set(pem, summary);
  }
  return summary;
}
