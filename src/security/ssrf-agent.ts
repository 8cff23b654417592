/**
 * Connection-time SSRF defence: keep-alive agents that check the address each new socket actually
 * connects to, after DNS resolution. Registration checks the URL once; DNS answers can change after
 * that (rebinding) or mix public and private addresses, so the check that counts is this one.
 *
 * Two layers, both on every new connection:
 * 1. classifyAddress (src/security/ssrf.ts) on the literal host or on every DNS answer — the same
 *    policy as registration, SSRF_ALLOW_CIDRS included, with a clear refusal message.
 * 2. request-filtering-agent underneath, as a second opinion that refuses every non-unicast range.
 *    Its own CIDR allow list is not used: it matches each entry with ipaddr.js, which throws (and the
 *    library prints a warning with a stack trace) whenever the entry and the address are of different
 *    families — on every connection to an IPv4 receiver once an IPv6 range is listed. So when
 *    SSRF_ALLOW_CIDRS is set (local testing), layer 2 lets private ranges through and layer 1 alone
 *    applies the list; in production (no list) both layers refuse.
 */
import dns, { type LookupAddress } from 'node:dns';
import { Socket, isIP, type TcpNetConnectOpts } from 'node:net';
import type { Duplex } from 'node:stream';
import { RequestFilteringHttpAgent, RequestFilteringHttpsAgent } from 'request-filtering-agent';
import { classifyAddress, parseCidrs } from './ssrf.js';

/** The error a refused connection fails with; got keeps `code` on its RequestError. */
export class SsrfBlockedError extends Error {
  readonly code = 'ERR_SSRF_BLOCKED';
  constructor(host: string, address: string, reason: string) {
    const where = host === address ? address : `${host} (${address})`;
    super(`blocked by SSRF protection: ${where} is ${reason}; it is not in SSRF_ALLOW_CIDRS`);
  }
}

export interface DeliveryAgentOptions {
  /** CIDRs deliveries may reach although private/loopback (SSRF_ALLOW_CIDRS). */
  allowCidrs: readonly string[];
  /** Most sockets open to one receiver (host:port) at once. */
  maxSocketsPerHost?: number;
  /** Idle keep-alive sockets kept per receiver. */
  maxFreeSocketsPerHost?: number;
}

type Allow = ReturnType<typeof parseCidrs>;
type LookupFn = NonNullable<TcpNetConnectOpts['lookup']>;
type ConnectListener = (error: Error | null, socket: Duplex) => void;

function refusal(host: string, address: string, allow: Allow): SsrfBlockedError | undefined {
  const verdict = classifyAddress(address, allow);
  return verdict.allowed ? undefined : new SsrfBlockedError(host, address, verdict.reason);
}

/** Wraps the lookup the socket would use so that any disallowed answer fails the connection. */
function guardedLookup(inner: LookupFn, allow: Allow): LookupFn {
  const lookup = (hostname: string, options: dns.LookupOptions, callback: (...args: unknown[]) => void) => {
    inner(hostname, options, ((
      err: NodeJS.ErrnoException | null,
      address: string | LookupAddress[],
      family?: number,
    ) => {
      if (err) return callback(err);
      const answers = Array.isArray(address) ? address : [{ address, family: family ?? 0 }];
      // Every answer, not just the first: with autoSelectFamily the socket may try any of them.
      for (const answer of answers) {
        const error = refusal(hostname, answer.address, allow);
        if (error) return callback(error);
      }
      callback(null, address, family);
    }) as never);
  };
  return lookup as unknown as LookupFn;
}

/** Layer 1 for one connection: the literal host now, or the DNS answers when they arrive. */
function guardConnection(
  options: TcpNetConnectOpts,
  allow: Allow,
): { options: TcpNetConnectOpts } | { error: SsrfBlockedError } {
  const host = options.host ?? 'localhost';
  if (isIP(host) !== 0) {
    const error = refusal(host, host, allow);
    return error ? { error } : { options };
  }
  const inner = options.lookup ?? (dns.lookup as unknown as LookupFn);
  return { options: { ...options, lookup: guardedLookup(inner, allow) } };
}

/** Fails the request the way http.Agent expects a failed connection to (as request-filtering-agent does). */
function failedSocket(error: Error, listener?: ConnectListener): Duplex {
  const socket = new Socket();
  if (listener) listener(error, socket);
  else socket.destroy(error);
  return socket;
}

/** Library options for layer 2; see the file comment for why its allow list stays empty. */
function libraryOptions(o: DeliveryAgentOptions) {
  return {
    keepAlive: true,
    keepAliveMsecs: 1000,
    maxSockets: o.maxSocketsPerHost ?? Infinity,
    maxFreeSockets: o.maxFreeSocketsPerHost ?? 256,
    // LIFO reuse keeps hot sockets hot and lets idle ones time out.
    scheduling: 'lifo' as const,
    // Idle sockets close before typical server keep-alive timeouts (5 s in Node).
    timeout: 4000,
    allowPrivateIPAddress: o.allowCidrs.length > 0,
    allowMetaIPAddress: false,
  };
}

export class SsrfHttpAgent extends RequestFilteringHttpAgent {
  private readonly allow: Allow;
  constructor(o: DeliveryAgentOptions) {
    super(libraryOptions(o));
    this.allow = parseCidrs(o.allowCidrs);
  }
  override createConnection(options: TcpNetConnectOpts, listener?: ConnectListener) {
    const guarded = guardConnection(options, this.allow);
    if ('error' in guarded) return failedSocket(guarded.error, listener);
    return super.createConnection(guarded.options, listener);
  }
}

export class SsrfHttpsAgent extends RequestFilteringHttpsAgent {
  private readonly allow: Allow;
  constructor(o: DeliveryAgentOptions) {
    super(libraryOptions(o));
    this.allow = parseCidrs(o.allowCidrs);
  }
  override createConnection(options: TcpNetConnectOpts, listener?: ConnectListener) {
    const guarded = guardConnection(options, this.allow);
    if ('error' in guarded) return failedSocket(guarded.error, listener);
    return super.createConnection(guarded.options, listener);
  }
}

/** Keep-alive agents for got (`agent: {http, https}`) that refuse disallowed addresses per connection. */
export function createDeliveryAgents(o: DeliveryAgentOptions): {
  http: SsrfHttpAgent;
  https: SsrfHttpsAgent;
} {
  return { http: new SsrfHttpAgent(o), https: new SsrfHttpsAgent(o) };
}
