import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { LookupAddress } from 'node:dns';
import got, { type RequestError } from 'got';
import { createDeliveryAgents } from '../../src/security/ssrf-agent.js';
import { checkWebhookUrl } from '../../src/security/ssrf.js';

/** A receiver on 127.0.0.1 that counts requests and connections. */
let server: Server;
let port: number;
let requests = 0;
let connections = 0;
beforeAll(async () => {
  server = createServer((_req, res) => {
    requests += 1;
    res.end('ok');
  });
  server.on('connection', () => (connections += 1));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const agentsToClose: ReturnType<typeof createDeliveryAgents>[] = [];
afterEach(() => {
  for (const a of agentsToClose.splice(0)) {
    a.http.destroy();
    a.https.destroy();
  }
});
function agents(allowCidrs: string[]) {
  const a = createDeliveryAgents({ allowCidrs });
  agentsToClose.push(a);
  return a;
}

/** A DNS lookup answering `addresses` for every name, in the shape the caller asks for. */
function fakeLookup(addresses: string[]) {
  const answers: LookupAddress[] = addresses.map((address) => ({
    address,
    family: address.includes(':') ? 6 : 4,
  }));
  return (_host: string, options: { all?: boolean }, callback: (...args: any[]) => void) => {
    if (options.all) callback(null, answers);
    else callback(null, answers[0]!.address, answers[0]!.family);
  };
}

/** A lookup that answers differently on each call, as a rebinding DNS server would. */
function rebindingLookup(sequence: string[][]) {
  let call = 0;
  return (host: string, options: { all?: boolean }, callback: (...args: any[]) => void) =>
    fakeLookup(sequence[Math.min(call++, sequence.length - 1)]!)(host, options, callback);
}

async function post(url: string, a: ReturnType<typeof createDeliveryAgents>, dnsLookup?: unknown) {
  return got.post(url, {
    agent: a,
    body: '{}',
    retry: { limit: 0 },
    followRedirect: false,
    timeout: { request: 5000 },
    throwHttpErrors: false,
    ...(dnsLookup ? { dnsLookup: dnsLookup as never } : {}),
  });
}

async function refusal(promise: Promise<unknown>): Promise<RequestError> {
  try {
    await promise;
  } catch (err) {
    return err as RequestError;
  }
  throw new Error('the request was not refused');
}

describe('connection-time SSRF filter', () => {
  it('refuses a loopback literal before connecting', async () => {
    const before = connections;
    const err = await refusal(post(`http://127.0.0.1:${port}/hook`, agents([])));
    expect(err.code).toBe('ERR_SSRF_BLOCKED');
    expect(err.message).toBe(
      'blocked by SSRF protection: 127.0.0.1 is a loopback address; it is not in SSRF_ALLOW_CIDRS',
    );
    expect(connections).toBe(before);
  });

  it('refuses https to a private literal, and IPv6 loopback', async () => {
    const a = agents([]);
    expect((await refusal(post(`https://10.0.0.1:${port}/`, a))).code).toBe('ERR_SSRF_BLOCKED');
    expect((await refusal(post(`http://[::1]:${port}/`, a))).code).toBe('ERR_SSRF_BLOCKED');
    expect((await refusal(post(`http://169.254.169.254/latest/meta-data/`, a))).message).toMatch(/metadata/);
  });

  it('refuses a public-looking name that resolves to loopback', async () => {
    const before = requests;
    const err = await refusal(
      post(`http://hooks.example.com:${port}/`, agents([]), fakeLookup(['127.0.0.1'])),
    );
    expect(err.code).toBe('ERR_SSRF_BLOCKED');
    expect(err.message).toBe(
      'blocked by SSRF protection: hooks.example.com (127.0.0.1) is a loopback address; it is not in SSRF_ALLOW_CIDRS',
    );
    expect(requests).toBe(before);
  });

  it('refuses mixed answers: public first, loopback second', async () => {
    const err = await refusal(
      post(`http://mixed.example.com:${port}/`, agents([]), fakeLookup(['93.184.216.34', '127.0.0.1'])),
    );
    expect(err.code).toBe('ERR_SSRF_BLOCKED');
    expect(err.message).toMatch(/mixed\.example\.com \(127\.0\.0\.1\) is a loopback address/);
  });

  it('catches DNS rebinding: public at registration, loopback at delivery', async () => {
    const lookup = rebindingLookup([['93.184.216.34'], ['127.0.0.1']]);
    const resolve = (host: string) =>
      new Promise<LookupAddress[]>((ok) =>
        lookup(host, { all: true }, (_e, list: LookupAddress[]) => ok(list)),
      );
    const url = `http://rebind.example.com:${port}/`;
    expect(await checkWebhookUrl(url, { allowCidrs: [], resolve })).toEqual({ ok: true });
    const before = requests;
    expect((await refusal(post(url, agents([]), lookup))).code).toBe('ERR_SSRF_BLOCKED');
    expect(requests).toBe(before);
  });

  it('lets an allowed loopback receiver through, over one kept-alive socket', async () => {
    const a = agents(['127.0.0.0/8', '::1/128']);
    const beforeRequests = requests;
    const beforeConnections = connections;
    for (let i = 0; i < 3; i++) {
      const res = await post(`http://127.0.0.1:${port}/hook`, a);
      expect(res.statusCode).toBe(200);
    }
    const named = await post(`http://receiver.test:${port}/`, a, fakeLookup(['127.0.0.1']));
    expect(named.statusCode).toBe(200);
    expect(requests - beforeRequests).toBe(4);
    // The literal and the name are different pool keys: two sockets for four requests.
    expect(connections - beforeConnections).toBe(2);
  });

  it('keeps refusing what the allow list does not cover', async () => {
    const a = agents(['127.0.0.0/8']);
    expect((await refusal(post(`http://192.168.1.10:${port}/`, a))).message).toMatch(/private address/);
    expect(
      (await refusal(post(`http://x.test:${port}/`, a, fakeLookup(['127.0.0.1', '10.0.0.1'])))).message,
    ).toMatch(/x\.test \(10\.0\.0\.1\) is a private address/);
    expect((await refusal(post(`http://[::ffff:127.0.0.1]:${port}/`, a))).code).toBe('ERR_SSRF_BLOCKED');
  });

  it('passes resolution errors through unchanged', async () => {
    const failing = (_h: string, _o: unknown, cb: (...args: any[]) => void) =>
      cb(Object.assign(new Error('getaddrinfo ENOTFOUND nowhere.invalid'), { code: 'ENOTFOUND' }));
    const err = await refusal(post(`http://nowhere.invalid:${port}/`, agents([]), failing));
    expect(err.code).toBe('ENOTFOUND');
  });
});
