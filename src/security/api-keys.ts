/** API keys: random, shown once, stored only as SHA-256 hashes, compared in constant time. */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const TENANT_KEY_PREFIX = 'pbk_';
const ADMIN_KEY_PREFIX = 'pbadmin_';
/** Random characters kept in a prefix: enough to tell keys apart, far too few to guess the rest. */
const SHOWN_RANDOM_CHARS = 6;

export function generateApiKey(): string {
  return TENANT_KEY_PREFIX + randomBytes(32).toString('base64url');
}

export function generateAdminKey(): string {
  return ADMIN_KEY_PREFIX + randomBytes(32).toString('base64url');
}

/** SHA-256 is enough here: keys carry 256 random bits, so there is nothing to brute-force. */
export function hashApiKey(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/**
 * The first characters of a key, safe to show in lists, logs and audit rows. A key of our own form
 * shows its kind and 6 random characters; an operator-chosen ADMIN_API_KEY (any string) only 4
 * characters, since it may be short.
 */
export function apiKeyPrefix(key: string): string {
  for (const known of [TENANT_KEY_PREFIX, ADMIN_KEY_PREFIX])
    if (key.startsWith(known)) return key.slice(0, known.length + SHOWN_RANDOM_CHARS);
  return key.slice(0, 4) + '…';
}

export function hashesEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
