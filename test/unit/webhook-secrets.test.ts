import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { Webhook } from 'standardwebhooks';
import {
  generateWebhookSecret,
  hmacKeyOf,
  webhookSecretProblem,
} from '../../src/security/webhook-secrets.js';

describe('generateWebhookSecret', () => {
  it('is whsec_ + base64 of 32 random bytes, and acceptable as a supplied secret', () => {
    const a = generateWebhookSecret();
    const b = generateWebhookSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(a).not.toBe(b);
    expect(hmacKeyOf(a)).toHaveLength(32);
    expect(webhookSecretProblem(a)).toBeUndefined();
  });
});

describe('webhookSecretProblem', () => {
  it.each([
    ['16 printable characters', 'x'.repeat(16)],
    ['128 printable characters', 'y'.repeat(128)],
    ['spaces and symbols', 'correct horse ~!@#$%^&*()'],
    ['whsec_ of 24 bytes', 'whsec_' + randomBytes(24).toString('base64')],
    ['whsec_ of 64 bytes', 'whsec_' + randomBytes(64).toString('base64')],
  ])('accepts %s', (_what, secret) => expect(webhookSecretProblem(secret)).toBeUndefined());

  it.each([
    ['15 characters', 'x'.repeat(15)],
    ['129 characters', 'x'.repeat(129)],
    ['a newline', 'abcdefghijklmnop\n'],
    ['non-ASCII', 'ééééééééééééééééé'],
    ['whsec_ with bad base64', 'whsec_!!!!notbase64!!!!!!!!!!!!!!!!!!!'],
    ['whsec_ with base64url', 'whsec_' + 'A-_'.repeat(20) + 'AAA='],
    ['whsec_ too short', 'whsec_' + randomBytes(16).toString('base64')],
    ['whsec_ too long', 'whsec_' + randomBytes(65).toString('base64')],
    ['whsec_ with nothing after it', 'whsec_'],
    ['16 spaces', ' '.repeat(16)],
    ['a leading space', ' abcdefghijklmnop'],
    ['a trailing space', 'abcdefghijklmnop '],
  ])('refuses %s without repeating it', (_what, secret) => {
    const problem = webhookSecretProblem(secret);
    expect(problem).toEqual(expect.any(String));
    if (secret.length > 'whsec_'.length) expect(problem).not.toContain(secret);
  });
});

describe('hmacKeyOf', () => {
  it('decodes whsec_ secrets and uses UTF-8 bytes otherwise', () => {
    const raw = randomBytes(32);
    expect(hmacKeyOf('whsec_' + raw.toString('base64')).equals(raw)).toBe(true);
    expect(hmacKeyOf('plain-secret-0123456789').equals(Buffer.from('plain-secret-0123456789'))).toBe(true);
  });

  it('derives the key the Standard Webhooks library verifies with', () => {
    const secret = generateWebhookSecret();
    const id = 'msg_1';
    const timestamp = Math.floor(Date.now() / 1000);
    const body = '{"hello":"world"}';
    const mac = createHmac('sha256', hmacKeyOf(secret)).update(`${id}.${timestamp}.${body}`).digest('base64');
    const headers = {
      'webhook-id': id,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': `v1,${mac}`,
    };
    expect(new Webhook(secret).verify(body, headers)).toEqual({ hello: 'world' });
  });
});
