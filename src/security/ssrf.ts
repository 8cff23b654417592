/**
 * SSRF defence: which addresses a webhook may point at. `classifyAddress` is the pure policy (used at
 * registration and, through src/security/ssrf-agent.ts, on every connection); `checkWebhookUrl` is the
 * registration check that also resolves the host name.
 *
 * Policy: only global unicast addresses, unless an address falls in SSRF_ALLOW_CIDRS. IPv6 forms that
 * carry an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo) are refused whatever they
 * carry: the reason names the embedded address, and an operator should register the IPv4 form instead.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

export type AddressVerdict = { allowed: true } | { allowed: false; reason: string };

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** Named explicitly so the refusal says what the address is (they are also link-local/CGN/ULA). */
const METADATA_ADDRESSES = new Set(['169.254.169.254', '169.254.170.2', '100.100.100.200', 'fd00:ec2::254']);

const IPV4_RANGE_REASONS: Record<string, string> = {
  unspecified: 'an unspecified address (0.0.0.0/8)',
  broadcast: 'the broadcast address',
  multicast: 'a multicast address',
  linkLocal: 'a link-local address (169.254.0.0/16)',
  loopback: 'a loopback address',
  carrierGradeNat: 'a carrier-grade NAT address (100.64.0.0/10)',
  private: 'a private address (RFC 1918)',
  reserved: 'a reserved address',
  as112: 'a reserved address (AS112)',
  amt: 'a reserved address (AMT)',
};

const IPV6_RANGE_REASONS: Record<string, string> = {
  unspecified: 'the unspecified address (::)',
  linkLocal: 'a link-local address (fe80::/10)',
  multicast: 'a multicast address',
  loopback: 'a loopback address',
  uniqueLocal: 'a unique-local address (fc00::/7)',
  deprecatedSiteLocal: 'a site-local address (fec0::/10)',
  discard: 'a discard-only address (100::/64)',
};

/** Global unicast IPv6 is 2000::/3; everything outside it that ipaddr calls "unicast" is unassigned. */
const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3') as [ipaddr.IPv6, number];

/** Parses SSRF_ALLOW_CIDRS entries; an entry that is not a CIDR throws (config validation catches it). */
export function parseCidrs(cidrs: readonly string[]): [Address, number][] {
  return cidrs.map((c) => ipaddr.parseCIDR(c));
}

function inAllowList(addr: Address, allow: readonly [Address, number][]): boolean {
  // Same family only: ipaddr throws on a cross-family match, and an IPv4-mapped IPv6 address is not
  // let through by an IPv4 range (the connection-time filter treats it the same way).
  return allow.some(([net, bits]) => net.kind() === addr.kind() && addr.match(net, bits));
}

function v4FromParts(hi: number, lo: number): ipaddr.IPv4 {
  return new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
}

function describeV4(v4: ipaddr.IPv4): string {
  const text = v4.toString();
  if (METADATA_ADDRESSES.has(text)) return `${text}, a cloud metadata address`;
  const range = v4.range();
  return range === 'unicast' ? text : `${text}, ${IPV4_RANGE_REASONS[range] ?? `a ${range} address`}`;
}

/** IPv6 transition forms that carry an IPv4 address: the form's name and the address it carries. */
function embeddedV4(v6: ipaddr.IPv6): { form: string; v4: ipaddr.IPv4 } | undefined {
  const p = v6.parts;
  const range = v6.range();
  if (range === 'ipv4Mapped' || range === 'rfc6145')
    return { form: 'an IPv4-mapped IPv6 address', v4: v4FromParts(p[6]!, p[7]!) };
  if (range === 'rfc6052') return { form: 'a NAT64 address', v4: v4FromParts(p[6]!, p[7]!) };
  if (range === '6to4') return { form: 'a 6to4 address', v4: v4FromParts(p[1]!, p[2]!) };
  // Teredo carries the client's IPv4 address inverted in the last 32 bits.
  if (range === 'teredo')
    return { form: 'a Teredo address', v4: v4FromParts(~p[6]! & 0xffff, ~p[7]! & 0xffff) };
  // IPv4-compatible (::a.b.c.d, deprecated): the first 96 bits are zero; :: and ::1 are named above.
  if (p.slice(0, 6).every((x) => x === 0) && range === 'unicast')
    return { form: 'an IPv4-compatible IPv6 address', v4: v4FromParts(p[6]!, p[7]!) };
  return undefined;
}

function classifyV6(v6: ipaddr.IPv6): AddressVerdict {
  const text = v6.toNormalizedString();
  if (METADATA_ADDRESSES.has(v6.toString())) return { allowed: false, reason: 'a cloud metadata address' };
  const embedded = embeddedV4(v6);
  if (embedded) return { allowed: false, reason: `${embedded.form} (of ${describeV4(embedded.v4)})` };
  const range = v6.range();
  if (range !== 'unicast') {
    return { allowed: false, reason: IPV6_RANGE_REASONS[range] ?? `a reserved address (${range})` };
  }
  if (!v6.match(GLOBAL_UNICAST_V6))
    return { allowed: false, reason: `not a global unicast address (${text})` };
  return { allowed: true };
}

/**
 * ipaddr.js reads ::a.b.c.d as ::ffff:a.b.c.d (its "deprecated transitional" form), but the address
 * is IPv4-compatible ::a.b:c.d. Rewriting a dotted tail into hex keeps the two apart.
 */
function hexTail(ip: string): string {
  const m = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)(%.*)?$/.exec(ip);
  if (!m) return ip;
  const [a, b, c, d] = m.slice(2, 6).map(Number) as [number, number, number, number];
  return `${m[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}${m[6] ?? ''}`;
}

/**
 * Whether a connection to `ip` is allowed. Pure. `allowCidrs` (SSRF_ALLOW_CIDRS) opens ranges that would
 * otherwise be refused. Anything that is not an IP address literal is refused.
 */
export function classifyAddress(
  ip: string,
  allowCidrs: readonly string[] | readonly [Address, number][] = [],
): AddressVerdict {
  // net.isIP is strict (dotted-quad IPv4 only); ipaddr.parse would also take 0x7f.1 and friends.
  const family = isIP(ip);
  if (family === 0) return { allowed: false, reason: 'not an IP address' };
  const addr = ipaddr.parse(family === 6 ? hexTail(ip) : ip);
  const allow =
    allowCidrs.length > 0 && typeof allowCidrs[0] === 'string'
      ? parseCidrs(allowCidrs as readonly string[])
      : (allowCidrs as readonly [Address, number][]);
  if (inAllowList(addr, allow)) return { allowed: true };
  if (addr.kind() === 'ipv6') return classifyV6(addr as ipaddr.IPv6);
  const v4 = addr as ipaddr.IPv4;
  if (METADATA_ADDRESSES.has(v4.toString())) return { allowed: false, reason: 'a cloud metadata address' };
  const range = v4.range();
  if (range !== 'unicast')
    return { allowed: false, reason: IPV4_RANGE_REASONS[range] ?? `a ${range} address` };
  return { allowed: true };
}

export type Resolver = (hostname: string) => Promise<{ address: string; family: number }[]>;

export interface UrlCheckOptions {
  /** SSRF_ALLOW_CIDRS. */
  allowCidrs: readonly string[];
  /** Refuse http: (REQUIRE_HTTPS). */
  requireHttps?: boolean;
  /** Host name resolution; defaults to dns.lookup with every answer. Tests pass their own. */
  resolve?: Resolver;
  /** Give up resolving after this long. */
  resolveTimeoutMs?: number;
  /**
   * Refuse a name that does not resolve (or not in time). Off by default: registration cannot judge
   * a name without answers (DNS not set up yet, an offline test run), and the connection-time filter
   * checks the addresses actually used on every delivery anyway.
   */
  refuseUnresolvable?: boolean;
}

export type UrlCheck = { ok: true } | { ok: false; reason: string };

const defaultResolve: Resolver = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

async function resolveWithin(resolve: Resolver, host: string, ms: number) {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error('timed out'), { code: 'ETIMEOUT' })), ms);
  });
  try {
    return await Promise.race([resolve(host), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The registration check: scheme, no userinfo, and the host (a literal, or every address the name
 * resolves to) allowed by classifyAddress. Deliveries check again at connection time, since DNS
 * answers change (rebinding); this check exists to refuse bad URLs early with a clear reason.
 */
export async function checkWebhookUrl(url: string, options: UrlCheckOptions): Promise<UrlCheck> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { ok: false, reason: 'must be an absolute http or https URL' };
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    return { ok: false, reason: `scheme ${parsed.protocol.slice(0, -1)} is not allowed: use http or https` };
  if (options.requireHttps && parsed.protocol !== 'https:')
    return { ok: false, reason: 'must use https (REQUIRE_HTTPS is set)' };
  // user@host is a classic way to disguise the real host; receivers authenticate with the signature.
  if (parsed.username !== '' || parsed.password !== '')
    return { ok: false, reason: 'must not contain credentials (user:password@)' };

  // WHATWG URL has already turned 2130706433, 0x7f000001, 017700000001 and 127.1 into 127.0.0.1.
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') return { ok: false, reason: 'must name a host' };
  const allow = parseCidrs(options.allowCidrs);
  if (isIP(host) !== 0) {
    const verdict = classifyAddress(host, allow);
    return verdict.allowed ? { ok: true } : { ok: false, reason: `host ${host} is ${verdict.reason}` };
  }

  let answers: { address: string }[];
  try {
    answers = await resolveWithin(options.resolve ?? defaultResolve, host, options.resolveTimeoutMs ?? 2000);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    if (!options.refuseUnresolvable) return { ok: true };
    return { ok: false, reason: `host ${host} could not be resolved (${code})` };
  }
  if (answers.length === 0 && options.refuseUnresolvable)
    return { ok: false, reason: `host ${host} could not be resolved (no addresses)` };
  // Every answer must pass: a client may connect to any of them.
  for (const { address } of answers) {
    const verdict = classifyAddress(address, allow);
    if (!verdict.allowed)
      return { ok: false, reason: `host ${host} resolves to ${address}, ${verdict.reason}` };
  }
  return { ok: true };
}
