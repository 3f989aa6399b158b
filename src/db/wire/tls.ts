/**
 * TLS for PostgreSQL connections, with libpq's URI parameters: `sslmode` (disable, allow,
 * prefer, require, verify-ca, verify-full), `sslrootcert` (a PEM file, or `system` for the
 * operating system's CAs), `sslcert`/`sslkey` (a client certificate) and `channel_binding`
 * (disable, prefer, require: SCRAM-SHA-256-PLUS over tls-server-end-point).
 *
 * Without `sslmode` the connection is plain, as postgres.js and node-postgres default (libpq would
 * try TLS first). `allow` (libpq: plain first, TLS only if the server insists) connects plainly.
 * `require` with an `sslrootcert` verifies the chain, as libpq does.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP, type Socket } from 'node:net';
import { checkServerIdentity, connect as tlsConnect, rootCertificates, TLSSocket, type ConnectionOptions, type PeerCertificate } from 'node:tls';

export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';
export type ChannelBinding = 'disable' | 'prefer' | 'require';

export interface TlsSettings {
  mode: SslMode;
  /** PEM of the CAs to trust; 'system' = Node's bundled roots */
  rootCert: string | 'system' | null;
  cert: string | null;
  key: string | null;
  channelBinding: ChannelBinding;
}

export class TlsConfigError extends Error {}

const MODES: SslMode[] = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];
const BINDINGS: ChannelBinding[] = ['disable', 'prefer', 'require'];

/** The URI parameters this module reads (postgres.js must not pass them on as server settings). */
export const TLS_PARAMS = ['sslmode', 'ssl', 'sslrootcert', 'sslcert', 'sslkey', 'channel_binding'];

function readPem(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new TlsConfigError(`${what}: cannot read ${path} (${(e as Error).message})`);
  }
}

export function tlsSettings(params: URLSearchParams): TlsSettings {
  const ssl = params.get('ssl');
  const raw = params.get('sslmode') ?? (ssl === 'true' || ssl === 'require' ? 'require' : 'disable');
  if (!MODES.includes(raw as SslMode)) throw new TlsConfigError(`sslmode=${raw} is not one of ${MODES.join(', ')}`);
  const cb = params.get('channel_binding') ?? 'prefer';
  if (!BINDINGS.includes(cb as ChannelBinding)) throw new TlsConfigError(`channel_binding=${cb} is not one of ${BINDINGS.join(', ')}`);
  const root = params.get('sslrootcert');
  let mode = raw as SslMode;
  // libpq: a root certificate given with sslmode=require means the chain is verified
  if (mode === 'require' && root) mode = 'verify-ca';
  if ((mode === 'verify-ca' || mode === 'verify-full') && !root) {
    throw new TlsConfigError(`sslmode=${mode} needs sslrootcert (a PEM file of the CA, or sslrootcert=system)`);
  }
  if (cb === 'require' && (mode === 'disable' || mode === 'allow')) throw new TlsConfigError('channel_binding=require needs TLS (sslmode=require or stronger)');
  const certPath = params.get('sslcert');
  const keyPath = params.get('sslkey');
  if ((certPath === null) !== (keyPath === null)) throw new TlsConfigError('sslcert and sslkey go together');
  return {
    mode,
    rootCert: root === null ? null : root === 'system' ? 'system' : readPem(root, 'sslrootcert'),
    cert: certPath === null ? null : readPem(certPath, 'sslcert'),
    key: keyPath === null ? null : readPem(keyPath, 'sslkey'),
    channelBinding: cb as ChannelBinding,
  };
}

export const wantsTls = (s: TlsSettings): boolean => s.mode === 'prefer' || s.mode === 'require' || s.mode === 'verify-ca' || s.mode === 'verify-full';

/** Node TLS options for `host`, verifying as the mode says. */
export function tlsOptions(s: TlsSettings, host: string): ConnectionOptions {
  const verify = s.mode === 'verify-ca' || s.mode === 'verify-full';
  const o: ConnectionOptions = { rejectUnauthorized: verify };
  if (host && !isIP(host) && !host.startsWith('/')) o.servername = host;
  if (s.rootCert !== null) o.ca = s.rootCert === 'system' ? [...rootCertificates] : s.rootCert;
  if (s.cert !== null && s.key !== null) {
    o.cert = s.cert;
    o.key = s.key;
  }
  // verify-ca checks the chain only; verify-full also the host name (or IP) against the
  // certificate, always against the configured host, whatever the socket was opened with
  o.checkServerIdentity = s.mode === 'verify-full' ? (_name: string, cert: PeerCertificate) => checkServerIdentity(host, cert) : () => undefined;
  return o;
}

const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

/**
 * On a connected socket: SSLRequest, then a TLS handshake if the server agrees. Resolves with
 * the socket to speak the protocol on (the TLS socket, or the plain one under `prefer` when the
 * server has no TLS).
 */
export function negotiateTls(socket: Socket, s: TlsSettings, host: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    socket.once('error', onError);
    socket.once('data', (answer: Buffer) => {
      socket.removeListener('error', onError);
      if (answer.length !== 1) return reject(new Error('the server answered the SSL request with more than one byte (possible man-in-the-middle)'));
      if (answer[0] === 0x4e /* N */) {
        if (s.mode === 'prefer') return resolve(socket);
        return reject(new Error(`the server does not support TLS, but sslmode=${s.mode} requires it`));
      }
      if (answer[0] !== 0x53 /* S */) return reject(new Error(`unexpected answer to the SSL request: ${answer[0]}`));
      const secure = tlsConnect({ ...tlsOptions(s, host), socket });
      secure.once('secureConnect', () => {
        secure.removeListener('error', reject);
        resolve(secure);
      });
      secure.once('error', reject);
    });
    socket.write(SSL_REQUEST);
  });
}

/** The tls-server-end-point channel binding data (RFC 5929) of a TLS socket, or null. */
export function serverEndPoint(socket: Socket): Buffer | null {
  if (!(socket instanceof TLSSocket)) return null;
  const raw = socket.getPeerCertificate()?.raw;
  if (!raw) return null;
  // the certificate's own signature hash, with MD5 and SHA-1 upgraded to SHA-256
  const hash = signatureHash(raw);
  return createHash(hash).update(raw).digest();
}

/** The hash of a DER certificate's signatureAlgorithm (sha256 when unknown or weaker). */
function signatureHash(der: Buffer): 'sha256' | 'sha384' | 'sha512' {
  const oid = signatureOid(der);
  // sha384WithRSA, ecdsa-with-SHA384 / sha512WithRSA, ecdsa-with-SHA512
  if (oid === '1.2.840.113549.1.1.12' || oid === '1.2.840.10045.4.3.3') return 'sha384';
  if (oid === '1.2.840.113549.1.1.13' || oid === '1.2.840.10045.4.3.4') return 'sha512';
  return 'sha256';
}

/** Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm SEQUENCE { OID, ... }, ... } */
function signatureOid(der: Buffer): string | null {
  const header = (at: number): { len: number; body: number } | null => {
    if (at + 2 > der.length) return null;
    let len = der[at + 1];
    let body = at + 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n < 1 || n > 4 || body + n > der.length) return null;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + der[body + i];
      body += n;
    }
    return body + len <= der.length ? { len, body } : null;
  };
  const cert = header(0);
  if (!cert) return null;
  const tbs = header(cert.body);
  if (!tbs) return null;
  const alg = header(tbs.body + tbs.len);
  if (!alg || der[alg.body] !== 0x06) return null;
  const oid = header(alg.body);
  if (!oid) return null;
  const bytes = der.subarray(oid.body, oid.body + oid.len);
  const parts = [Math.floor(bytes[0] / 40), bytes[0] % 40];
  let v = 0;
  for (let i = 1; i < bytes.length; i++) {
    v = v * 128 + (bytes[i] & 0x7f);
    if (!(bytes[i] & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

/** postgres.js's `ssl` option for the same settings (false = plain). */
export function postgresJsSsl(s: TlsSettings, host: string): false | 'prefer' | ConnectionOptions {
  if (!wantsTls(s)) return false;
  if (s.mode === 'prefer') return 'prefer';
  return tlsOptions(s, host);
}

/** The URI without the TLS parameters, which postgres.js would send to the server as settings. */
export function withoutTlsParams(uri: string): string {
  const u = new URL(uri);
  for (const p of TLS_PARAMS) u.searchParams.delete(p);
  return u.toString();
}
