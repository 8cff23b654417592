/**
 * Delivery signatures, the Standard Webhooks scheme (contract section 4): HMAC-SHA256 over
 * "<webhook-id>.<webhook-timestamp>.<body>". `webhook-signature` carries one `v1,<base64>` per
 * active secret (newest first) so receivers can rotate; `X-Webhook-Signature` carries the hex digest
 * with the newest secret for receivers that only know the GitHub-style header.
 *
 * Pure: keys in, header values out. Secrets are decrypted by the caller and never leave this module
 * other than as MACs.
 */
import { createHmac } from 'node:crypto';

// The secret → key rule has one home, next to the rules for what a secret may be; re-exported here
// because the sender turns each decrypted secret into a key where it signs.
export { hmacKeyOf } from '../security/webhook-secrets.js';

export interface SignatureHeaders {
  'webhook-signature': string;
  'X-Webhook-Signature': string;
}

/**
 * Signs one attempt. `keys` are HMAC keys, newest first (at least one). `timestamp` is Unix seconds,
 * the value sent as webhook-timestamp.
 */
export function signDelivery(
  id: string,
  timestamp: number,
  body: string,
  keys: readonly Buffer[],
): SignatureHeaders {
  if (keys.length === 0) throw new Error('signDelivery needs at least one key');
  const content = `${id}.${timestamp}.${body}`;
  const digests = keys.map((key) => createHmac('sha256', key).update(content).digest());
  return {
    'webhook-signature': digests.map((d) => `v1,${d.toString('base64')}`).join(' '),
    'X-Webhook-Signature': `sha256=${digests[0]!.toString('hex')}`,
  };
}
