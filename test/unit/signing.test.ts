import { createHmac } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { Webhook } from 'standardwebhooks';
import { hmacKeyOf, signDelivery } from '../../src/delivery/signing.js';

const raw = Buffer.from('0123456789abcdef0123456789abcdef');
const whsec = 'whsec_' + raw.toString('base64');
const id = '0190b6a4-3f1e-7c3a-9d2e-000000000001';
const body = '{"id":"e1","type":"order.created","timestamp":"2025-01-01T00:00:00.000Z","data":{"a":1}}';

describe('hmacKeyOf', () => {
  it('base64-decodes a whsec_ secret', () => {
    expect(hmacKeyOf(whsec).equals(raw)).toBe(true);
  });

  it('uses the UTF-8 bytes of any other secret', () => {
    expect(hmacKeyOf('plain-secret-ünïcode').equals(Buffer.from('plain-secret-ünïcode', 'utf8'))).toBe(true);
  });
});

describe('signDelivery', () => {
  it('matches the Standard Webhooks reference implementation', () => {
    const ts = Math.floor(Date.now() / 1000);
    const signed = signDelivery(id, ts, body, [hmacKeyOf(whsec)]);
    expect(signed['webhook-signature']).toBe(new Webhook(whsec).sign(id, new Date(ts * 1000), body));
    expect(() =>
      new Webhook(whsec).verify(body, {
        'webhook-id': id,
        'webhook-timestamp': String(ts),
        'webhook-signature': signed['webhook-signature'],
      }),
    ).not.toThrow();
  });

  it('signs "<id>.<timestamp>.<body>" with HMAC-SHA256, base64 and hex', () => {
    const key = hmacKeyOf('a-plain-secret-of-some-length');
    const expected = createHmac('sha256', key).update(`${id}.1700000000.${body}`).digest();
    expect(signDelivery(id, 1700000000, body, [key])).toEqual({
      'webhook-signature': `v1,${expected.toString('base64')}`,
      'X-Webhook-Signature': `sha256=${expected.toString('hex')}`,
    });
  });

  it('during a rotation, signs with every key (space separated) and X-Webhook-Signature with the newest', () => {
    const newest = hmacKeyOf('the-new-secret-0123456789');
    const old = hmacKeyOf('the-old-secret-0123456789');
    const { 'webhook-signature': sig, 'X-Webhook-Signature': hex } = signDelivery(id, 1700000000, body, [
      newest,
      old,
    ]);
    const parts = sig.split(' ');
    expect(parts).toHaveLength(2);
    expect(parts[0]).toBe(signDelivery(id, 1700000000, body, [newest])['webhook-signature']);
    expect(parts[1]).toBe(signDelivery(id, 1700000000, body, [old])['webhook-signature']);
    expect(hex).toBe(signDelivery(id, 1700000000, body, [newest])['X-Webhook-Signature']);
  });

  it('changes when the id, timestamp or body change', () => {
    const key = [hmacKeyOf(whsec)];
    const base = signDelivery(id, 1, body, key)['webhook-signature'];
    expect(signDelivery(id + 'x', 1, body, key)['webhook-signature']).not.toBe(base);
    expect(signDelivery(id, 2, body, key)['webhook-signature']).not.toBe(base);
    expect(signDelivery(id, 1, body + ' ', key)['webhook-signature']).not.toBe(base);
  });

  it('refuses to sign without a key', () => {
    expect(() => signDelivery(id, 1, body, [])).toThrow();
  });
});
