/**
 * Secrets at rest (webhook signing secrets, mTLS private keys): AES-256-GCM with a random 12-byte IV,
 * under a keyring: the current key seals, every configured key opens.
 *
 * Stored layout: MAGIC (4 bytes) | key id (4 bytes) | iv | tag | ciphertext. The key id names the key
 * that sealed it, so opening needs no trial and the database can be asked which keys are still in use
 * (src/queries/secrets-key-check.ts), which is what makes SECRETS_KEY rotation checkable. Values
 * sealed before key ids existed (iv | tag | ciphertext) are still opened, by trying each key.
 *
 * The key id is derived from the key (HMAC-SHA256 of a fixed label, first 4 bytes): no configuration
 * for it, stable across processes, and it tells nothing about the key.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';

const IV_BYTES = 12;
const TAG_BYTES = 16;
/** "PBS" + format version 1. */
export const SEALED_MAGIC = Buffer.from([0x50, 0x42, 0x53, 0x01]);
const KEY_ID_BYTES = 4;
/** MAGIC | key id: the first bytes of every value sealed by one key. */
export const SEALED_HEADER_BYTES = SEALED_MAGIC.length + KEY_ID_BYTES;

/** The id of a 32-byte key, as 8 hex characters (what logs, errors and the CLI show). */
export function secretsKeyId(key: Buffer): string {
  return createHmac('sha256', key)
    .update('postbox secrets key id')
    .digest()
    .subarray(0, KEY_ID_BYTES)
    .toString('hex');
}

/** The header values sealed with the key of this id start with. */
export function sealedHeader(keyId: string): Buffer {
  return Buffer.concat([SEALED_MAGIC, Buffer.from(keyId, 'hex')]);
}

/** The key id a sealed value names, or null for a value sealed before key ids. */
export function sealedKeyId(sealed: Buffer): string | null {
  if (sealed.length < SEALED_HEADER_BYTES + IV_BYTES + TAG_BYTES) return null;
  if (!sealed.subarray(0, SEALED_MAGIC.length).equals(SEALED_MAGIC)) return null;
  return sealed.subarray(SEALED_MAGIC.length, SEALED_HEADER_BYTES).toString('hex');
}

function open(key: Buffer, body: Buffer): string {
  const iv = body.subarray(0, IV_BYTES);
  const tag = body.subarray(IV_BYTES, IV_BYTES + TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(body.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString(
    'utf8',
  );
}

/** A sealed value that none of the configured keys opens. Never carries the value or a key. */
export class SecretsKeyMissingError extends Error {
  constructor(readonly keyId: string | null) {
    super(
      keyId
        ? `sealed with secrets key ${keyId}, which is not configured`
        : 'sealed (before key ids) with a key that is not configured',
    );
  }
}

export class SecretBox {
  private readonly current: Buffer;
  private readonly header: Buffer;
  private readonly byId: Map<string, Buffer>;
  /** The id of the key that seals. */
  readonly currentKeyId: string;
  /** The ids of the other keys, which only open (SECRETS_KEY_PREVIOUS). */
  readonly previousKeyIds: readonly string[];

  constructor(current: Buffer, previous: readonly Buffer[] = []) {
    for (const key of [current, ...previous])
      if (key.length !== 32) throw new Error('a secrets key must be 32 bytes');
    this.current = current;
    this.currentKeyId = secretsKeyId(current);
    this.header = sealedHeader(this.currentKeyId);
    this.byId = new Map([[this.currentKeyId, current]]);
    for (const key of previous) {
      const id = secretsKeyId(key);
      if (!this.byId.has(id)) this.byId.set(id, key);
    }
    this.previousKeyIds = [...this.byId.keys()].filter((id) => id !== this.currentKeyId);
  }

  /** Every configured key id, the current one first. */
  get keyIds(): string[] {
    return [...this.byId.keys()];
  }

  encrypt(plaintext: string): Buffer {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.current, iv);
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return Buffer.concat([this.header, iv, cipher.getAuthTag(), body]);
  }

  /** Opens a value sealed with any configured key; throws SecretsKeyMissingError otherwise. */
  decrypt(sealed: Buffer): string {
    const keyId = sealedKeyId(sealed);
    if (keyId !== null) {
      const key = this.byId.get(keyId);
      if (key) {
        try {
          return open(key, sealed.subarray(SEALED_HEADER_BYTES));
        } catch {
          // fall through: a value from before key ids whose random IV happens to start with MAGIC
        }
      }
    }
    for (const key of this.byId.values()) {
      try {
        return open(key, sealed);
      } catch {
        // not this key
      }
    }
    throw new SecretsKeyMissingError(keyId);
  }

  /** Sealed with the current key (and so needs no re-sealing). */
  isCurrent(sealed: Buffer): boolean {
    return sealed.subarray(0, SEALED_HEADER_BYTES).equals(this.header);
  }

  /** The same plaintext sealed with the current key; throws like decrypt. */
  reseal(sealed: Buffer): Buffer {
    return this.encrypt(this.decrypt(sealed));
  }
}

/** Parses a 32-byte key given as 64 hex characters or base64. */
export function parseSecretsKey(text: string): Buffer | undefined {
  const trimmed = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed)
    ? Buffer.from(trimmed, 'hex')
    : Buffer.from(trimmed, 'base64');
  return key.length === 32 ? key : undefined;
}
