/**
 * The executor: one HTTP attempt of one claimed delivery (contract section 4). Builds the envelope,
 * signs it, POSTs it with got through the shared agents (presenting the webhook's mTLS client
 * certificate, when it has one), and reads at most the first 1 KiB of the answer. Success is decided on the status code alone; the body is only kept as an excerpt, and an
 * endless or huge body is cut off at the cap, never buffered.
 */
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import type https from 'node:https';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { checkServerIdentity } from 'node:tls';
import got, { type ExtendOptions, type Got, type HandlerFunction, type Options } from 'got';
import type { ClaimedDelivery } from '../queries/deliveries.js';
import { projectRoot } from '../paths.js';
import type { SecretBox } from '../security/secret-box.js';
import type { AttemptAbort } from './attempt-abort.js';
import type { HttpAgents } from './http-agents.js';
import { hmacKeyOf, signDelivery } from './signing.js';

export const USER_AGENT = `Postbox/${(JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { version: string }).version}`;

/** Bytes of the response body kept as delivery_attempts.response_excerpt. */
export const EXCERPT_BYTES = 1024;

/** What one attempt produced, before the retry policy turns it into an outcome. */
export interface SendResult {
  startedAt: Date;
  durationMs: number;
  /** HTTP status, null when no answer came (timeout, connection error). */
  statusCode: number | null;
  /** Why the attempt failed, null for a 2xx. Never contains secrets or the payload. */
  error: string | null;
  responseExcerpt: string | null;
  /** The Retry-After header as sent, for the retry policy to read. */
  retryAfter: string | undefined;
  /** Aborted (shutdown) before any answer came. */
  aborted: boolean;
  /** The whole request was handed to the socket: the receiver may have it, so the attempt counts. */
  requestSent: boolean;
}

/**
 * The envelope receivers get (docs/receiving.md), built around the stored payload text rather than
 * re-serialised: id, type, timestamp and data always; version, source and metadata only when the event
 * has them, so an event without them is delivered exactly as before they existed.
 */
export function deliveryBody(
  d: Pick<ClaimedDelivery, 'eventId' | 'eventType' | 'occurredAt' | 'payloadJson'> &
    Partial<Pick<ClaimedDelivery, 'eventVersion' | 'metadataJson' | 'source'>>,
) {
  return (
    `{"id":${JSON.stringify(d.eventId)},"type":${JSON.stringify(d.eventType)},` +
    (d.eventVersion != null ? `"version":${d.eventVersion},` : '') +
    `"timestamp":${JSON.stringify(d.occurredAt.toISOString())},` +
    (d.source != null ? `"source":${JSON.stringify(d.source)},` : '') +
    (d.metadataJson != null ? `"metadata":${d.metadataJson},` : '') +
    `"data":${d.payloadJson}}`
  );
}

/** The request headers of one attempt (contract section 4). `keys`: HMAC keys, newest first. */
export function deliveryHeaders(
  d: Pick<ClaimedDelivery, 'id' | 'eventType' | 'attempt' | 'traceparent'>,
  body: string,
  keys: readonly Buffer[],
  timestamp: number,
): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': USER_AGENT,
    'webhook-id': d.id,
    'webhook-timestamp': String(timestamp),
    ...signDelivery(d.id, timestamp, body, keys),
    'X-Webhook-Event': d.eventType,
    'X-Webhook-Attempt': String(d.attempt),
  };
  if (d.traceparent) headers.traceparent = d.traceparent;
  return headers;
}

/** Text of at most `EXCERPT_BYTES` UTF-8 bytes: no split characters, no NUL (text columns refuse it). */
export function excerptOf(chunks: readonly Buffer[]): string {
  if (chunks.length === 0) return ''; // an empty body, the common answer
  const head = Buffer.concat(chunks).subarray(0, EXCERPT_BYTES);
  // StringDecoder.write holds back a character cut at the end instead of emitting U+FFFD for it.
  // eslint-disable-next-line no-control-regex
  const text = new StringDecoder('utf8').write(head).replace(/\u0000/g, '');
  // Invalid bytes decode to U+FFFD (3 bytes each), which can push the text past the cap: cut again.
  if (Buffer.byteLength(text) <= EXCERPT_BYTES) return text;
  return new StringDecoder('utf8').write(Buffer.from(text).subarray(0, EXCERPT_BYTES));
}

/** The error of an attempt that could not be signed: Postbox's fault (its SECRETS_KEY), not the receiver's. */
export const UNDECRYPTABLE_SECRET = 'cannot decrypt the webhook secret';

/** Prefix of the error of an attempt that ran out of its timeout_ms. */
export const TIMEOUT_ERROR_PREFIX = 'timeout after ';

function describeError(err: unknown, timeoutMs: number): string {
  const e = err as { code?: string; message?: string };
  if (e.code === 'ETIMEDOUT') return `${TIMEOUT_ERROR_PREFIX}${timeoutMs} ms`;
  // Bounded, and without NUL (a text column refuses it and would fail the whole result batch).
  // eslint-disable-next-line no-control-regex
  const message = (e.message ?? String(err)).slice(0, 500).replace(/\u0000/g, '');
  return e.code && !message.includes(e.code) ? `${e.code}: ${message}` : message;
}

function describeStatus(status: number): string {
  if (status >= 300 && status < 400) return `HTTP ${status} (redirects are not followed)`;
  return `HTTP ${status}`;
}

/**
 * The native options of one request (what got hands to http.request / https.request), built from the
 * options the sender can set, in place of got's Options#createNativeRequestOptions. got's builds a
 * ~35-key object per request, most of it undefined (every TLS, DNS and HTTP/2 option it supports),
 * and Node's ClientRequest and the agent's pool key (Agent#getName) then walk all of them. Measured
 * on the sender alone (15,000 requests to a local receiver, 50 at a time): ~45 µs of CPU per request,
 * object building plus the garbage it leaves. The values are got's own, read from the same internals;
 * test/delivery/sender-native-options.test.ts checks them against got's method for every shape of
 * request the sender makes, so an option got starts to set is noticed. An undefined option and an
 * absent one mean the same to Node.
 */
export function nativeRequestOptions(options: Options): NativeRequestOptions {
  const agents = options.agent;
  const https = options.https;
  const native: NativeRequestOptions = {
    agent: options.url instanceof URL && options.url.protocol === 'https:' ? agents.https : agents.http,
    checkServerIdentity: https.checkServerIdentity ?? checkServerIdentity,
    setHost: options.setHost,
    method: options.method,
    headers: options.headers,
  };
  if (https.certificate !== undefined) native.cert = https.certificate;
  if (https.key !== undefined) native.key = https.key;
  return native;
}

export interface NativeRequestOptions {
  agent: http.Agent | https.Agent | false | undefined;
  checkServerIdentity: NonNullable<Options['https']['checkServerIdentity']> | typeof checkServerIdentity;
  setHost: boolean;
  method: string;
  headers: Options['headers'];
  cert?: NonNullable<Options['https']['certificate']>;
  key?: NonNullable<Options['https']['key']>;
}

/**
 * The sender's handler (got.extend handlers): each request's Options get nativeRequestOptions as their
 * createNativeRequestOptions, an own property of that request's Options only (got's class and other got
 * instances are untouched).
 */
const withNativeRequestOptions: HandlerFunction = (options, next) => {
  (options as { createNativeRequestOptions: () => unknown }).createNativeRequestOptions =
    ownNativeRequestOptions;
  return next(options);
};
function ownNativeRequestOptions(this: Options) {
  return nativeRequestOptions(this);
}

/** The sender's got instance options (exported for the test that checks nativeRequestOptions). */
export function senderClientOptions(agents: HttpAgents): ExtendOptions {
  return {
    agent: { http: agents.http, https: agents.https },
    followRedirect: false,
    throwHttpErrors: false,
    retry: { limit: 0 },
    // Receivers are not asked to compress: no decompression cost, and the cap counts wire bytes.
    decompress: false,
    http2: false,
    handlers: [withNativeRequestOptions],
  };
}

export interface SenderOptions {
  /** Pooled keep-alive agents (and the SSRF filter, when installed): see http-agents.ts. */
  agents: HttpAgents;
  /** Decrypts webhook secrets and client keys; decrypted ones are cached per ciphertext. */
  secretBox: SecretBox;
  /** Most decrypted keys kept in memory (the cache is dropped whole when full). */
  keyCacheSize?: number;
}

export class Sender {
  private readonly client: Got;
  private readonly keys = new Map<string, Buffer>();
  private readonly clientKeys = new Map<string, string>();
  private readonly keyCacheSize: number;

  constructor(private readonly options: SenderOptions) {
    this.keyCacheSize = options.keyCacheSize ?? 10_000;
    this.client = got.extend(senderClientOptions(options.agents));
  }

  private keyOf(ciphertext: Buffer): Buffer {
    const id = ciphertext.toString('base64');
    let key = this.keys.get(id);
    if (!key) {
      if (this.keys.size >= this.keyCacheSize) this.keys.clear();
      key = hmacKeyOf(this.options.secretBox.decrypt(ciphertext));
      this.keys.set(id, key);
    }
    return key;
  }

  private clientKeyOf(ciphertext: Buffer): string {
    const id = ciphertext.toString('base64');
    let key = this.clientKeys.get(id);
    if (key === undefined) {
      if (this.clientKeys.size >= this.keyCacheSize) this.clientKeys.clear();
      key = this.options.secretBox.decrypt(ciphertext);
      this.clientKeys.set(id, key);
    }
    return key;
  }

  /**
   * got's TLS options for a webhook with a client certificate. The https agent pools sockets by these
   * options too (Node's Agent#getName includes cert and key), so a keep-alive socket opened with one
   * webhook's certificate is never reused for another's. The SSRF check is the agent's, unchanged.
   */
  private tlsOf(d: ClaimedDelivery): { certificate: string; key: string } | undefined {
    if (!d.clientCertPem || !d.clientKeyCiphertext) return undefined;
    return { certificate: d.clientCertPem, key: this.clientKeyOf(d.clientKeyCiphertext) };
  }

  /** Sends one attempt. Never throws: every failure is a SendResult. */
  send(d: ClaimedDelivery, abort?: AttemptAbort): Promise<SendResult> {
    const started = performance.now();
    const startedAt = new Date();
    let headers: Record<string, string>;
    let body: string;
    let tls: ReturnType<Sender['tlsOf']>;
    try {
      tls = this.tlsOf(d);
      const keys = [this.keyOf(d.secretCiphertext)];
      if (d.previousSecretCiphertext) keys.push(this.keyOf(d.previousSecretCiphertext));
      body = deliveryBody(d);
      headers = deliveryHeaders(d, body, keys, Math.floor(startedAt.getTime() / 1000));
    } catch {
      // A secret sealed with another key: retrying will not help, but the policy decides, visibly.
      return Promise.resolve(this.result(started, startedAt, null, UNDECRYPTABLE_SECRET));
    }

    if (abort?.aborted)
      return Promise.resolve(
        this.result(started, startedAt, null, 'aborted by shutdown', null, undefined, true),
      );

    return new Promise((resolve) => {
      // The shutdown signal is watched here rather than handed to got: got's own handling of `signal`
      // cost ~50 µs of CPU per request (measured: 250 -> 205 µs per request against a local receiver).
      // The instance called with method and isStream rather than through got.stream.post, which copies
      // the options into another object first: ~9 µs of CPU per request (15,000-20,000 requests to a
      // local receiver, 3 runs each: 79-84 -> 71-80 µs). An undefined `https` is not merged.
      const stream = this.client(d.url, {
        method: 'POST',
        isStream: true,
        body,
        headers,
        timeout: { request: d.timeoutMs },
        https: tls,
      });
      let status: number | null = null;
      let requestSent = false;
      let retryAfter: string | undefined;
      const chunks: Buffer[] = [];
      let kept = 0;
      let settled = false;
      const finish = (err?: unknown) => {
        if (settled) return;
        settled = true;
        if (abort) abort.onAbort = undefined;
        stream.destroy();
        const excerpt = status === null ? null : excerptOf(chunks);
        if (status !== null) {
          const error = status >= 200 && status < 300 ? null : describeStatus(status);
          resolve(this.result(started, startedAt, status, error, excerpt, retryAfter));
        } else if (abort?.aborted) {
          resolve(
            this.result(started, startedAt, null, 'aborted by shutdown', null, undefined, true, requestSent),
          );
        } else {
          resolve(this.result(started, startedAt, null, describeError(err, d.timeoutMs)));
        }
      };
      // Aborted: an answer already received still decides; otherwise the attempt is 'aborted by shutdown'.
      if (abort) abort.onAbort = finish;
      stream.once('request', (req: { once(event: 'finish', listener: () => void): unknown }) =>
        req.once('finish', () => (requestSent = true)),
      );
      stream.on('response', (res: { statusCode: number; headers: Record<string, string | string[]> }) => {
        status = res.statusCode;
        const ra = res.headers['retry-after'];
        retryAfter = Array.isArray(ra) ? ra[0] : ra;
      });
      stream.on('data', (chunk: Buffer) => {
        if (kept < EXCERPT_BYTES) {
          chunks.push(chunk);
          kept += chunk.length;
        }
        // The cap is reached: stop reading (the socket is dropped rather than drained).
        if (kept >= EXCERPT_BYTES) finish();
      });
      stream.on('end', () => finish());
      // After the status arrived, a timeout or reset while reading the body does not change the verdict.
      stream.on('error', (err: unknown) => finish(err));
    });
  }

  private result(
    started: number,
    startedAt: Date,
    statusCode: number | null,
    error: string | null,
    responseExcerpt: string | null = null,
    retryAfter: string | undefined = undefined,
    aborted = false,
    requestSent = statusCode !== null,
  ): SendResult {
    return {
      startedAt,
      durationMs: Math.round(performance.now() - started),
      statusCode,
      error,
      responseExcerpt,
      retryAfter,
      aborted,
      requestSent,
    };
  }
}
