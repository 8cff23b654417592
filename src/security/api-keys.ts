/** API keys: random, shown once, stored only as SHA-256 hashes, compared in constant time. */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const TENANT_KEY_PREFIX = 'pbk_';

export function generateApiKey(): string {
  return TENANT_KEY_PREFIX + randomBytes(32).toString('base64url');
}

/** SHA-256 is enough here: keys carry 256 random bits, so there is nothing to brute-force. */
export function hashApiKey(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/** The first characters of a key, safe to show in logs and audit rows. */
export function apiKeyPrefix(key: string): string {
  return key.slice(0, TENANT_KEY_PREFIX.length + 6);
}

export function hashesEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
