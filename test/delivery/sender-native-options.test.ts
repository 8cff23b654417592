/**
 * The sender builds the native options of each request itself (nativeRequestOptions) instead of got's
 * Options#createNativeRequestOptions: for every shape of request it makes (http and https, with and
 * without an mTLS client certificate), what it builds must be exactly what got's method sets (its
 * defined values), so a got upgrade that starts setting another option fails here, not in production.
 */
import http from 'node:http';
import https from 'node:https';
import { describe, expect, it } from '@jest/globals';
import got, { Options } from 'got';
import { nativeRequestOptions, senderClientOptions } from '../../src/delivery/sender.js';

const agents = { http: new http.Agent({ keepAlive: false }), https: new https.Agent({ keepAlive: false }) };
const defaults = got.extend(senderClientOptions(agents)).defaults.options;

function gotsOwn(options: Options): Record<string, unknown> {
  const native = Options.prototype.createNativeRequestOptions.call(options) as Record<string, unknown>;
  return Object.fromEntries(Object.entries(native).filter(([, value]) => value !== undefined));
}

describe("the sender's native request options", () => {
  const shapes: [string, string, { https?: { certificate: string; key: string } }][] = [
    ['http', 'http://receiver.example:8080/hook?x=1', {}],
    ['https', 'https://receiver.example/hook', {}],
    [
      'https with a client certificate',
      'https://receiver.example/hook',
      { https: { certificate: 'CERT', key: 'KEY' } },
    ],
    [
      'http with a client certificate',
      'http://receiver.example/hook',
      { https: { certificate: 'CERT', key: 'KEY' } },
    ],
  ];

  it.each(shapes)('are what got sets itself: %s', (_shape, url, tls) => {
    const options = new Options(
      url,
      {
        method: 'POST',
        isStream: true,
        body: '{"id":"e1"}',
        headers: { 'content-type': 'application/json', 'webhook-id': 'd1' },
        timeout: { request: 5000 },
        ...tls,
      },
      defaults,
    );
    const ours = nativeRequestOptions(options);
    expect(ours).toEqual(gotsOwn(options));
    expect(ours.agent).toBe(url.startsWith('https:') ? agents.https : agents.http);
  });
});
