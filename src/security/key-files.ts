/**
 * Keys of the embedded default: the admin API key and the secrets key, taken from the environment
 * or generated once into DATA_DIR with mode 0600 and reused on every later start.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from '../config.js';
import { ConfigError } from '../config.js';
import { parseSecretsKey } from './secret-box.js';

function readOrCreate(path: string, make: () => string): { value: string; created: boolean } {
  if (existsSync(path)) return { value: readFileSync(path, 'utf8').trim(), created: false };
  // DATA_DIR itself stays traversable: the embedded server runs as its own user under DATA_DIR/pg.
  mkdirSync(resolve(path, '..'), { recursive: true, mode: 0o755 });
  const value = make();
  writeFileSync(path, value + '\n', { mode: 0o600, flag: 'wx' });
  return { value, created: true };
}

export interface AdminKey {
  key: string;
  /** Where it was generated, when it was (to print once at start-up). */
  generatedAt?: string;
  /** The file it came from (absent: ADMIN_API_KEY). */
  file?: string;
}

export function loadAdminKey(config: Config): AdminKey {
  if (config.ADMIN_API_KEY) return { key: config.ADMIN_API_KEY };
  const path = resolve(join(config.DATA_DIR, 'admin-api-key'));
  const { value, created } = readOrCreate(path, () => 'pbadmin_' + randomBytes(32).toString('base64url'));
  return created ? { key: value, generatedAt: path, file: path } : { key: value, file: path };
}

/** A rotated admin key replaces the file's content atomically (write beside it, then rename). */
export function replaceAdminKeyFile(path: string, key: string): void {
  const next = `${path}.next`;
  writeFileSync(next, key + '\n', { mode: 0o600 });
  renameSync(next, path);
}

/** The keyring: SECRETS_KEY (or the file) seals; the SECRETS_KEY_PREVIOUS keys only open. */
export interface SecretsKeys {
  current: Buffer;
  previous: Buffer[];
}

export function loadSecretsKeys(config: Config): SecretsKeys {
  const entries = (config.SECRETS_KEY_PREVIOUS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const previous = entries.map((text, i) => {
    const key = parseSecretsKey(text);
    if (!key)
      throw new ConfigError(
        'SECRETS_KEY_PREVIOUS',
        `entry ${i + 1} must be 32 bytes, as 64 hex characters or base64 (entries are separated by commas)`,
      );
    return key;
  });
  return { current: loadSecretsKey(config), previous };
}

export function loadSecretsKey(config: Config): Buffer {
  if (config.SECRETS_KEY) {
    const key = parseSecretsKey(config.SECRETS_KEY);
    if (!key) throw new ConfigError('SECRETS_KEY', 'must be 32 bytes, as 64 hex characters or base64');
    return key;
  }
  const path = resolve(join(config.DATA_DIR, 'secrets-key'));
  const { value } = readOrCreate(path, () => randomBytes(32).toString('base64'));
  const key = parseSecretsKey(value);
  if (!key) throw new ConfigError('SECRETS_KEY', `file ${path} does not hold a 32-byte key`);
  return key;
}
