/**
 * Webhook signing secrets: generating them, checking supplied ones, and turning them into HMAC keys.
 *
 * Two forms, as the contract fixes them (and as Standard Webhooks / Svix receivers expect):
 * - `whsec_` + base64: the HMAC key is the decoded bytes. We generate 32 random bytes; we accept
 *   24–64 decoded bytes so secrets carried over from Svix-style systems keep working.
 * - anything else of 16–128 printable ASCII characters, no space at either end: the HMAC key is its
 *   UTF-8 bytes.
 * A secret that starts with `whsec_` is always read as the first form, so it must decode cleanly;
 * otherwise the receiver's library and we would derive different keys.
 *
 * Secrets are stored sealed by SecretBox. Which of a webhook's secrets sign a delivery (the current
 * one, and the previous one while its rotation overlap lasts) the claim decides (src/queries/claim.ts).
 */
import { randomBytes } from 'node:crypto';

export const WHSEC_PREFIX = 'whsec_';
const GENERATED_KEY_BYTES = 32;
const WHSEC_KEY_BYTES = { min: 24, max: 64 };
const PLAIN_LENGTH = { min: 16, max: 128 };
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

export function generateWebhookSecret(): string {
  return WHSEC_PREFIX + randomBytes(GENERATED_KEY_BYTES).toString('base64');
}

/** Why a supplied secret is not acceptable, or undefined if it is. Never includes the secret. */
export function webhookSecretProblem(secret: string): string | undefined {
  if (secret.startsWith(WHSEC_PREFIX)) {
    const encoded = secret.slice(WHSEC_PREFIX.length);
    if (!BASE64.test(encoded)) return 'a whsec_ secret must be followed by standard base64';
    const bytes = Buffer.from(encoded, 'base64').length;
    if (bytes < WHSEC_KEY_BYTES.min || bytes > WHSEC_KEY_BYTES.max)
      return `a whsec_ secret must encode ${WHSEC_KEY_BYTES.min}–${WHSEC_KEY_BYTES.max} bytes`;
    return undefined;
  }
  if (secret.length < PLAIN_LENGTH.min || secret.length > PLAIN_LENGTH.max)
    return `must be ${PLAIN_LENGTH.min}–${PLAIN_LENGTH.max} characters, or whsec_ followed by base64`;
  if (!PRINTABLE_ASCII.test(secret)) return 'must contain printable ASCII characters only';
  // Spaces at either end are lost by many config files and copy-pastes, and "16 spaces" is no secret.
  if (secret.trim() !== secret) return 'must not begin or end with a space';
  return undefined;
}

/** The HMAC-SHA256 key of a secret: base64-decoded for `whsec_`, else the UTF-8 bytes. */
export function hmacKeyOf(secret: string): Buffer {
  return secret.startsWith(WHSEC_PREFIX)
    ? Buffer.from(secret.slice(WHSEC_PREFIX.length), 'base64')
    : Buffer.from(secret, 'utf8');
}
