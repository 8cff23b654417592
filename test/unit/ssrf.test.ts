import { describe, expect, it } from '@jest/globals';
import { checkWebhookUrl, classifyAddress, type Resolver } from '../../src/security/ssrf.js';

describe('classifyAddress', () => {
  const refused: [string, RegExp][] = [
    // IPv4
    ['127.0.0.1', /loopback/],
    ['127.255.255.254', /loopback/],
    ['10.0.0.1', /private/],
    ['172.16.0.1', /private/],
    ['172.31.255.255', /private/],
    ['192.168.1.1', /private/],
    ['100.64.0.1', /carrier-grade NAT/],
    ['100.127.255.255', /carrier-grade NAT/],
    ['169.254.1.1', /link-local/],
    ['169.254.169.254', /metadata/],
    ['169.254.170.2', /metadata/],
    ['100.100.100.200', /metadata/],
    ['224.0.0.1', /multicast/],
    ['239.255.255.250', /multicast/],
    ['255.255.255.255', /broadcast/],
    ['0.0.0.0', /unspecified/],
    ['0.1.2.3', /unspecified/],
    ['192.0.2.1', /reserved/],
    ['198.18.0.1', /reserved/],
    ['198.51.100.7', /reserved/],
    ['203.0.113.9', /reserved/],
    ['240.0.0.1', /reserved/],
    ['192.0.0.8', /reserved/],
    // IPv6
    ['::1', /loopback/],
    ['::', /unspecified/],
    ['fe80::1', /link-local/],
    ['fe80::1%eth0', /link-local/],
    ['fc00::1', /unique-local/],
    ['fd12:3456::1', /unique-local/],
    ['fd00:ec2::254', /metadata/],
    ['fec0::1', /site-local/],
    ['ff02::1', /multicast/],
    ['100::1', /discard/],
    ['2001:db8::1', /reserved/],
    ['4000::1', /not a global unicast/],
    // IPv6 forms carrying an IPv4 address
    ['::ffff:127.0.0.1', /IPv4-mapped IPv6 address \(of 127\.0\.0\.1, a loopback/],
    ['::ffff:7f00:1', /IPv4-mapped.*127\.0\.0\.1/],
    ['::ffff:169.254.169.254', /IPv4-mapped.*metadata/],
    ['::ffff:10.0.0.1', /IPv4-mapped.*private/],
    ['::ffff:0:127.0.0.1', /IPv4-mapped.*loopback/],
    ['::ffff:8.8.8.8', /IPv4-mapped IPv6 address \(of 8\.8\.8\.8\)/],
    ['::127.0.0.1', /IPv4-compatible.*loopback/],
    ['::10.0.0.1', /IPv4-compatible.*private/],
    ['64:ff9b::127.0.0.1', /NAT64.*loopback/],
    ['64:ff9b::a9fe:a9fe', /NAT64.*169\.254\.169\.254.*metadata/],
    ['64:ff9b:1::1', /NAT64/],
    ['2002:7f00:1::', /6to4.*127\.0\.0\.1.*loopback/],
    ['2002:c0a8:101::1', /6to4.*192\.168\.1\.1.*private/],
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', /Teredo.*127\.0\.0\.1/],
    // not addresses at all
    ['localhost', /not an IP address/],
    ['0x7f000001', /not an IP address/],
    ['2130706433', /not an IP address/],
    ['127.1', /not an IP address/],
    ['', /not an IP address/],
  ];

  it.each(refused)('refuses %s', (ip, reason) => {
    const verdict = classifyAddress(ip);
    expect(verdict.allowed).toBe(false);
    if (!verdict.allowed) expect(verdict.reason).toMatch(reason);
  });

  it.each([
    '8.8.8.8',
    '93.184.216.34',
    '1.1.1.1',
    '172.32.0.1',
    '100.128.0.1',
    '2606:4700::1111',
    '2a00:1450::1',
  ])('allows the public address %s', (ip) => {
    expect(classifyAddress(ip)).toEqual({ allowed: true });
  });

  it('opens exactly the ranges of SSRF_ALLOW_CIDRS', () => {
    const allow = ['127.0.0.0/8', '::1/128', '10.1.0.0/16'];
    expect(classifyAddress('127.0.0.1', allow)).toEqual({ allowed: true });
    expect(classifyAddress('127.9.9.9', allow)).toEqual({ allowed: true });
    expect(classifyAddress('::1', allow)).toEqual({ allowed: true });
    expect(classifyAddress('10.1.2.3', allow)).toEqual({ allowed: true });
    expect(classifyAddress('10.2.0.1', allow).allowed).toBe(false);
    expect(classifyAddress('169.254.169.254', allow).allowed).toBe(false);
    expect(classifyAddress('8.8.8.8', allow)).toEqual({ allowed: true });
    expect(classifyAddress('2606:4700::1111', allow)).toEqual({ allowed: true });
  });

  it('does not let an IPv4 range open the IPv4-mapped IPv6 form', () => {
    expect(classifyAddress('::ffff:127.0.0.1', ['127.0.0.0/8']).allowed).toBe(false);
  });
});

describe('checkWebhookUrl', () => {
  const none = { allowCidrs: [] as string[] };
  const resolverFor =
    (answers: Record<string, string[]>): Resolver =>
    async (host) => {
      const list = answers[host];
      if (!list) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
      return list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    };

  const refusedUrls: [string, RegExp][] = [
    ['http://127.0.0.1/', /127\.0\.0\.1 is a loopback/],
    ['http://127.0.0.1:8080/hook', /loopback/],
    ['http://2130706433/', /127\.0\.0\.1 is a loopback/],
    ['http://0x7f000001/', /127\.0\.0\.1 is a loopback/],
    ['http://0x7f.0x0.0x0.0x1/', /127\.0\.0\.1 is a loopback/],
    ['http://017700000001/', /127\.0\.0\.1 is a loopback/],
    ['http://0177.0.0.1/', /127\.0\.0\.1 is a loopback/],
    ['http://127.1/', /127\.0\.0\.1 is a loopback/],
    ['http://127.0.1/', /127\.0\.0\.1 is a loopback/],
    ['http://0/', /0\.0\.0\.0 is an unspecified/],
    ['http://0.0.0.0/', /unspecified/],
    ['http://10.0.0.1/', /private/],
    ['http://192.168.0.1/', /private/],
    ['http://172.16.5.4/', /private/],
    ['http://100.64.0.1/', /carrier-grade NAT/],
    ['http://169.254.169.254/latest/meta-data/', /metadata/],
    ['http://100.100.100.200/', /metadata/],
    ['http://[fd00:ec2::254]/', /metadata/],
    ['http://224.0.0.1/', /multicast/],
    ['http://255.255.255.255/', /broadcast/],
    ['http://[::1]/', /loopback/],
    ['http://[::]/', /unspecified/],
    ['http://[fe80::1]/', /link-local/],
    ['http://[fc00::1]/', /unique-local/],
    ['http://[::ffff:127.0.0.1]/', /IPv4-mapped.*loopback/],
    ['http://[::ffff:7f00:1]/', /IPv4-mapped.*loopback/],
    ['http://[::127.0.0.1]/', /IPv4-compatible.*loopback/],
    ['http://[64:ff9b::7f00:1]/', /NAT64.*loopback/],
    ['http://[2002:7f00:1::]/', /6to4.*loopback/],
    ['http://example.com@127.0.0.1/', /credentials/],
    ['http://user:pass@example.com/', /credentials/],
    ['http://:pass@example.com/', /credentials/],
    ['ftp://example.com/', /scheme ftp/],
    ['file:///etc/passwd', /scheme file/],
    ['gopher://127.0.0.1:6379/_', /scheme gopher/],
    ['javascript:alert(1)', /scheme javascript/],
    ['not a url', /absolute http or https URL/],
    ['/relative/path', /absolute http or https URL/],
  ];

  it.each(refusedUrls)('refuses %s', async (url, reason) => {
    const result = await checkWebhookUrl(url, { ...none, resolve: resolverFor({}) });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(reason);
  });

  it('allows public literals and names that resolve only to public addresses', async () => {
    const resolve = resolverFor({ 'hooks.example.com': ['93.184.216.34', '2606:2800:220:1::1'] });
    expect(await checkWebhookUrl('https://93.184.216.34/x', { ...none, resolve })).toEqual({ ok: true });
    expect(await checkWebhookUrl('https://[2606:4700::1111]/', { ...none, resolve })).toEqual({ ok: true });
    expect(await checkWebhookUrl('https://hooks.example.com/in', { ...none, resolve })).toEqual({ ok: true });
  });

  it('refuses a name if any of its answers is disallowed', async () => {
    const resolve = resolverFor({ 'mixed.example.com': ['93.184.216.34', '10.0.0.7'] });
    const result = await checkWebhookUrl('https://mixed.example.com/', { ...none, resolve });
    expect(result).toEqual({
      ok: false,
      reason: 'host mixed.example.com resolves to 10.0.0.7, a private address (RFC 1918)',
    });
  });

  it('refuses names pointing at loopback and metadata', async () => {
    const resolve = resolverFor({
      'localtest.me': ['127.0.0.1'],
      'metadata.google.internal': ['169.254.169.254'],
      'v6.example.com': ['::1'],
    });
    for (const url of ['http://localtest.me/', 'http://metadata.google.internal/', 'http://v6.example.com/'])
      expect((await checkWebhookUrl(url, { ...none, resolve })).ok).toBe(false);
  });

  it('resolves with the system resolver by default (localhost is loopback)', async () => {
    const result = await checkWebhookUrl('http://localhost:3000/', none);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(/^host localhost resolves to .*loopback/);
  });

  it('accepts names that do not resolve (the connection-time filter judges them later)', async () => {
    const resolve = resolverFor({ 'empty.example': [] });
    expect(await checkWebhookUrl('http://nowhere.invalid/', { ...none, resolve })).toEqual({ ok: true });
    expect(await checkWebhookUrl('http://empty.example/', { ...none, resolve })).toEqual({ ok: true });
    const slow = await checkWebhookUrl('http://slow.example/', {
      ...none,
      resolve: () => new Promise(() => undefined),
      resolveTimeoutMs: 50,
    });
    expect(slow).toEqual({ ok: true });
  });

  it('refuses names that do not resolve when asked to, and gives up on a slow resolver', async () => {
    const strict = { ...none, refuseUnresolvable: true };
    const missing = await checkWebhookUrl('http://nowhere.invalid/', { ...strict, resolve: resolverFor({}) });
    expect(missing).toEqual({ ok: false, reason: 'host nowhere.invalid could not be resolved (ENOTFOUND)' });
    const empty = await checkWebhookUrl('http://empty.example/', {
      ...strict,
      resolve: resolverFor({ 'empty.example': [] }),
    });
    expect(empty).toEqual({ ok: false, reason: 'host empty.example could not be resolved (no addresses)' });
    const slow = await checkWebhookUrl('http://slow.example/', {
      ...strict,
      resolve: () => new Promise(() => undefined),
      resolveTimeoutMs: 50,
    });
    expect(slow).toEqual({ ok: false, reason: 'host slow.example could not be resolved (ETIMEOUT)' });
  });

  it('opens SSRF_ALLOW_CIDRS ranges for literals and names', async () => {
    const opts = { allowCidrs: ['127.0.0.0/8'], resolve: resolverFor({ 'local.test': ['127.0.0.1'] }) };
    expect(await checkWebhookUrl('http://127.0.0.1:9000/', opts)).toEqual({ ok: true });
    expect(await checkWebhookUrl('http://2130706433/', opts)).toEqual({ ok: true });
    expect(await checkWebhookUrl('http://local.test/', opts)).toEqual({ ok: true });
    expect((await checkWebhookUrl('http://[::1]/', opts)).ok).toBe(false);
    expect((await checkWebhookUrl('http://10.0.0.1/', opts)).ok).toBe(false);
  });

  it('refuses http: when https is required', async () => {
    const resolve = resolverFor({});
    const result = await checkWebhookUrl('http://93.184.216.34/', { ...none, resolve, requireHttps: true });
    expect(result).toEqual({ ok: false, reason: 'must use https (REQUIRE_HTTPS is set)' });
    expect(await checkWebhookUrl('https://93.184.216.34/', { ...none, resolve, requireHttps: true })).toEqual(
      {
        ok: true,
      },
    );
  });
});
