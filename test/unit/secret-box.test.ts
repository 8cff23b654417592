/** SecretBox as a keyring: key ids in sealed values, previous keys that open, values from before key ids. */
import { createCipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from '../../src/config.js';
import { loadSecretsKeys } from '../../src/security/key-files.js';
import {
  SEALED_HEADER_BYTES,
  SEALED_MAGIC,
  SecretBox,
  SecretsKeyMissingError,
  sealedKeyId,
  secretsKeyId,
} from '../../src/security/secret-box.js';

const A = randomBytes(32);
const B = randomBytes(32);
const C = randomBytes(32);

/** A value as Postbox sealed it before key ids: iv | tag | ciphertext. */
function legacySeal(key: Buffer, text: string, iv = randomBytes(12)): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]);
}

describe('key ids', () => {
  it('are 8 hex characters derived from the key: stable, distinct, not the key', () => {
    expect(secretsKeyId(A)).toMatch(/^[0-9a-f]{8}$/);
    expect(secretsKeyId(Buffer.from(A))).toBe(secretsKeyId(A));
    expect(secretsKeyId(B)).not.toBe(secretsKeyId(A));
    expect(A.toString('hex')).not.toContain(secretsKeyId(A));
  });

  it('are written into every sealed value', () => {
    const box = new SecretBox(A);
    const sealed = box.encrypt('hello secret');
    expect(sealed.subarray(0, SEALED_MAGIC.length)).toEqual(SEALED_MAGIC);
    expect(sealedKeyId(sealed)).toBe(secretsKeyId(A));
    expect(box.currentKeyId).toBe(secretsKeyId(A));
    expect(sealed.toString('utf8')).not.toContain('hello secret');
    expect(box.decrypt(sealed)).toBe('hello secret');
  });
});

describe('a keyring of the current key and previous ones', () => {
  it('seals with the current key and opens values of every configured key', () => {
    const old = new SecretBox(A).encrypt('sealed under A');
    const box = new SecretBox(B, [A]);
    expect(box.keyIds).toEqual([secretsKeyId(B), secretsKeyId(A)]);
    expect(box.previousKeyIds).toEqual([secretsKeyId(A)]);
    expect(box.decrypt(old)).toBe('sealed under A');
    expect(sealedKeyId(box.encrypt('x'))).toBe(secretsKeyId(B));
  });

  it('tells which values still need re-sealing, and re-seals them with the current key', () => {
    const box = new SecretBox(B, [A]);
    const old = new SecretBox(A).encrypt('move me');
    expect(box.isCurrent(old)).toBe(false);
    const moved = box.reseal(old);
    expect(box.isCurrent(moved)).toBe(true);
    expect(new SecretBox(B).decrypt(moved)).toBe('move me');
  });

  it('refuses a value of a key it does not hold, naming only the key id', () => {
    const sealed = new SecretBox(C).encrypt('not yours');
    let error: unknown;
    try {
      new SecretBox(B, [A]).decrypt(sealed);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(SecretsKeyMissingError);
    expect((error as SecretsKeyMissingError).keyId).toBe(secretsKeyId(C));
    expect((error as Error).message).not.toContain('not yours');
  });

  it('drops a previous key equal to the current one', () => {
    expect(new SecretBox(A, [A, B, B]).keyIds).toEqual([secretsKeyId(A), secretsKeyId(B)]);
  });
});

describe('values sealed before key ids', () => {
  it('open with whichever configured key sealed them', () => {
    const box = new SecretBox(B, [A]);
    expect(sealedKeyId(legacySeal(A, 'old one'))).toBeNull();
    expect(box.decrypt(legacySeal(A, 'old one'))).toBe('old one');
    expect(box.decrypt(legacySeal(B, 'newer one'))).toBe('newer one');
    expect(() => new SecretBox(C).decrypt(legacySeal(A, 'x'))).toThrow(SecretsKeyMissingError);
  });

  it('open even when the random IV happens to start like a header', () => {
    const iv = Buffer.concat([SEALED_MAGIC, randomBytes(12 - SEALED_MAGIC.length)]);
    const sealed = legacySeal(A, 'unlucky', iv);
    expect(sealed.length).toBeGreaterThan(SEALED_HEADER_BYTES);
    expect(new SecretBox(A).decrypt(sealed)).toBe('unlucky');
    expect(new SecretBox(A).isCurrent(new SecretBox(A).reseal(sealed))).toBe(true);
  });
});

describe('SECRETS_KEY_PREVIOUS', () => {
  const hex = (k: Buffer) => k.toString('hex');
  it('is a comma list of keys in hex or base64', () => {
    const keys = loadSecretsKeys(
      loadConfig({ SECRETS_KEY: hex(C), SECRETS_KEY_PREVIOUS: ` ${hex(A)}, ${B.toString('base64')} ` }),
    );
    expect(keys.current).toEqual(C);
    expect(keys.previous).toEqual([A, B]);
    expect(loadSecretsKeys(loadConfig({ SECRETS_KEY: hex(C) })).previous).toEqual([]);
  });

  it('names itself and the bad entry, never the value', () => {
    let error: unknown;
    try {
      loadSecretsKeys(
        loadConfig({ SECRETS_KEY: hex(C), SECRETS_KEY_PREVIOUS: `${hex(A)},not-a-key-at-all` }),
      );
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe('SECRETS_KEY_PREVIOUS');
    expect((error as Error).message).toMatch(/entry 2 must be 32 bytes/);
    expect((error as Error).message).not.toContain('not-a-key-at-all');
  });
});
