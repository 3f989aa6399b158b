/**
 * A TLS front for tests: answers PostgreSQL's SSLRequest as a server does ('S' and a TLS
 * handshake with the given certificate, or 'N' when tls is null), then relays the protocol to a
 * real PostgreSQL. Certificates come from openssl (Debian's base system has it).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';

export interface Certificates {
  caFile: string;
  otherCaFile: string;
  serverKey: string;
  serverCert: string;
  cleanup(): void;
}

/** A CA, a server certificate it signs (localhost, 127.0.0.1) and an unrelated second CA. */
export function makeCertificates(): Certificates {
  const dir = mkdtempSync(join(tmpdir(), 'pgml-tls-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ca = (name: string) => ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`);
  ca('pgml-test-ca');
  ca('pgml-other-ca');
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  ssl('x509', '-req', '-in', 'server.csr', '-CA', 'pgml-test-ca.pem', '-CAkey', 'pgml-test-ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf');
  return {
    caFile: join(dir, 'pgml-test-ca.pem'),
    otherCaFile: join(dir, 'pgml-other-ca.pem'),
    serverKey: readFileSync(join(dir, 'server.key'), 'utf8'),
    serverCert: readFileSync(join(dir, 'server.pem'), 'utf8'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface TlsFront {
  port: number;
  tlsSessions: number;
  plainSessions: number;
  close(): Promise<void>;
}

const SSL_REQUEST_CODE = 80877103;

export async function startTlsFront(o: { target: { host: string; port: number }; tls: { key: string; cert: string } | null }): Promise<TlsFront> {
  const sockets = new Set<Socket>();
  const front: TlsFront = { port: 0, tlsSessions: 0, plainSessions: 0, close: async () => {} };
  const relay = (client: Socket, first: Buffer | null) => {
    const upstream = connect(o.target.port, o.target.host);
    sockets.add(upstream);
    if (first) upstream.write(first);
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('data', (buf: Buffer) => {
      const isSslRequest = buf.length >= 8 && buf.readInt32BE(0) === 8 && buf.readInt32BE(4) === SSL_REQUEST_CODE;
      if (!isSslRequest) {
        front.plainSessions++;
        return relay(socket, buf);
      }
      if (!o.tls) {
        front.plainSessions++;
        socket.write('N');
        return relay(socket, buf.length > 8 ? buf.subarray(8) : null);
      }
      socket.write('S');
      const secure = new TLSSocket(socket, { isServer: true, key: o.tls.key, cert: o.tls.cert });
      secure.once('secure', () => front.tlsSessions++);
      secure.on('error', () => socket.destroy());
      relay(secure, null);
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  front.port = (server.address() as { port: number }).port;
  front.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return front;
}
