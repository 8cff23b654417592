/**
 * Certificates made with the openssl CLI for a test, and an HTTPS receiver on 127.0.0.1 that requires
 * a client certificate signed by its CA (mTLS), recording which certificate each request came with.
 *
 *   const pki = certificateAuthority('Receiver CA');
 *   const server = pki.issue('127.0.0.1', 'server');
 *   const client = pki.issue('postbox-client', 'client');
 *   const receiver = await startMtlsReceiver({ ca: pki.cert, ...server });
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';

export interface Issued {
  cert: string;
  key: string;
}

export interface CertificateAuthority {
  cert: string;
  /**
   * A certificate for `name` signed by this CA: `server` for 127.0.0.1 (SAN), `client` for clientAuth.
   * Valid for `days` from now (default 2); a negative number makes one that has already expired.
   */
  issue(name: string, use: 'server' | 'client', days?: number): Issued;
  /** An EC private key encrypted with a passphrase (for refusals). */
  encryptedKey(): string;
  remove(): void;
}

export function certificateAuthority(name: string): CertificateAuthority {
  const dir = mkdtempSync(join(tmpdir(), 'postbox-pki-'));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-subj',
    `/CN=${name}`,
    '-days',
    '400',
  );
  let n = 0;
  return {
    cert: readFileSync(join(dir, 'ca.crt'), 'utf8'),
    issue(cn, use, days = 2) {
      const base = `leaf${n++}`;
      writeFileSync(
        join(dir, `${base}.ext`),
        use === 'server'
          ? 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n'
          : 'extendedKeyUsage=clientAuth\n',
      );
      openssl('req', ...ec, '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${cn}`);
      openssl(
        'x509',
        '-req',
        '-in',
        `${base}.csr`,
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        `${base}.crt`,
        '-days',
        String(days),
        '-extfile',
        `${base}.ext`,
      );
      return {
        cert: readFileSync(join(dir, `${base}.crt`), 'utf8'),
        key: readFileSync(join(dir, `${base}.key`), 'utf8'),
      };
    },
    encryptedKey() {
      openssl(
        'genpkey',
        '-algorithm',
        'EC',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-aes-256-cbc',
        '-pass',
        'pass:not-given-to-postbox',
        '-out',
        'encrypted.key',
      );
      return readFileSync(join(dir, 'encrypted.key'), 'utf8');
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface MtlsRequest {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** CN of the client certificate the connection presented. */
  clientCn: string;
  /** Its SHA-256 fingerprint, as X509Certificate#fingerprint256 writes it. */
  clientFingerprint: string;
}

export interface MtlsReceiver {
  /** https://127.0.0.1:<port> */
  origin: string;
  url(path: string): string;
  readonly requests: MtlsRequest[];
  /** TLS handshakes refused because no (or no valid) client certificate came. */
  readonly refusedHandshakes: number;
  close(): Promise<void>;
}

/** Answers 200 to every request over a connection whose client certificate `ca` signed; refuses the rest. */
export async function startMtlsReceiver(o: { ca: string; cert: string; key: string }): Promise<MtlsReceiver> {
  const requests: MtlsRequest[] = [];
  const sockets = new Set<Socket>();
  let refused = 0;
  const server: Server = createServer(
    { ca: o.ca, cert: o.cert, key: o.key, requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const peer = (req.socket as TLSSocket).getPeerCertificate();
        requests.push({
          path: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          clientCn: String(peer.subject?.CN ?? ''),
          clientFingerprint: peer.fingerprint256,
        });
        res.writeHead(200, { 'content-length': '2' }).end('ok');
      });
    },
  );
  server.on('tlsClientError', () => refused++);
  server.on('secureConnection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const origin = `https://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  return {
    origin,
    url: (path) => origin + path,
    requests,
    get refusedHandshakes() {
      return refused;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
