/**
 * TLS on the pipeline client, as libpq reads sslmode/sslrootcert/channel_binding.
 *
 * A TLS front (test/wire/tls-front.ts) answers PostgreSQL's SSLRequest like a server would, with a
 * certificate of a CA this test makes (openssl), and relays the decrypted protocol to the test
 * database. That covers verify-full / verify-ca / wrong CA / a server without TLS on any machine.
 * SCRAM channel binding needs PostgreSQL itself on TLS with a SCRAM login: CI sets that up on the
 * system PostgreSQL 15 (.ci/enable-pg-tls.sh) and passes its URI as PGML_TEST_TLS_SCRAM_URL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseWireUri } from '../../src/db/wire/config.ts';
import { WireConnection } from '../../src/db/wire/connection.ts';
import { connectPostgresJs } from '../../src/db/pool.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { makeCertificates, startTlsFront, type Certificates, type TlsFront } from './tls-front.ts';
import { rowsOf } from './lib.ts';

let db: TestDatabase;
let certs: Certificates;
let tlsFront: TlsFront;
let plainFront: TlsFront;

beforeAll(async () => {
  db = await createTestDatabase({ migrate: false });
  certs = makeCertificates();
  const target = new URL(db.adminUrl);
  tlsFront = await startTlsFront({ target: { host: target.hostname, port: Number(target.port || 5432) }, tls: { key: certs.serverKey, cert: certs.serverCert } });
  plainFront = await startTlsFront({ target: { host: target.hostname, port: Number(target.port || 5432) }, tls: null });
});

afterAll(async () => {
  await tlsFront?.close();
  await plainFront?.close();
  certs?.cleanup();
  await db?.drop();
});

/** The test database's admin URI through a front, on `host`, with extra parameters. */
function via(front: TlsFront, host: string, params: Record<string, string>): string {
  const u = new URL(db.adminUrl);
  u.hostname = host;
  u.port = String(front.port);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}

const OPTS = { prepare: true, statementCacheSize: 8, connectTimeoutMs: 5000 };

async function query(uri: string): Promise<string> {
  const conn = await WireConnection.connect(parseWireUri(uri), OPTS);
  try {
    const rows = await rowsOf(conn, 'select current_database()::text as d');
    return rows[0].d!;
  } finally {
    conn.close();
  }
}

describe('pipeline client over TLS', () => {
  it('verify-full: connects when the chain and the host name (DNS or IP) match, and speaks through TLS', async () => {
    const before = tlsFront.tlsSessions;
    expect(await query(via(tlsFront, 'localhost', { sslmode: 'verify-full', sslrootcert: certs.caFile }))).toBe(db.name);
    expect(await query(via(tlsFront, '127.0.0.1', { sslmode: 'verify-full', sslrootcert: certs.caFile }))).toBe(db.name);
    expect(tlsFront.tlsSessions).toBe(before + 2);
  });

  it('verify-full refuses a certificate of another CA, and a host name the certificate does not name', async () => {
    const wrongCa = await query(via(tlsFront, 'localhost', { sslmode: 'verify-full', sslrootcert: certs.otherCaFile })).catch((e: Error) => e);
    expect(wrongCa).toBeInstanceOf(Error);
    expect(String((wrongCa as Error).message)).toMatch(/certificate/i);
    // 127.0.0.2 reaches the same front (loopback) but is not in the certificate
    const wrongHost = await query(via(tlsFront, '127.0.0.2', { sslmode: 'verify-full', sslrootcert: certs.caFile })).catch((e: Error) => e);
    expect(wrongHost).toBeInstanceOf(Error);
    expect(String((wrongHost as Error).message)).toMatch(/127\.0\.0\.2|altnames|host/i);
    // verify-ca checks the chain only
    expect(await query(via(tlsFront, '127.0.0.2', { sslmode: 'verify-ca', sslrootcert: certs.caFile }))).toBe(db.name);
    // and require with a root certificate verifies the chain, as libpq does
    const requireWrongCa = await query(via(tlsFront, 'localhost', { sslmode: 'require', sslrootcert: certs.otherCaFile })).catch((e: Error) => e);
    expect(requireWrongCa).toBeInstanceOf(Error);
  });

  it('require encrypts without verifying; a server without TLS is refused with a clear error; prefer falls back', async () => {
    const before = tlsFront.tlsSessions;
    expect(await query(via(tlsFront, '127.0.0.1', { sslmode: 'require' }))).toBe(db.name);
    expect(tlsFront.tlsSessions).toBe(before + 1);
    const refused = await query(via(plainFront, '127.0.0.1', { sslmode: 'require' })).catch((e: Error) => e);
    expect(refused).toBeInstanceOf(Error);
    expect((refused as Error).message).toMatch(/server does not support TLS, but sslmode=require requires it/);
    expect(await query(via(plainFront, '127.0.0.1', { sslmode: 'prefer' }))).toBe(db.name);
    expect(plainFront.plainSessions).toBeGreaterThan(0);
  });

  it('rejects settings libpq would reject, naming the parameter', () => {
    expect(() => parseWireUri('postgres://u@h/db?sslmode=verify-full')).toThrow(/sslrootcert/);
    expect(() => parseWireUri('postgres://u@h/db?sslmode=sometimes')).toThrow(/sslmode=sometimes/);
    expect(() => parseWireUri('postgres://u@h/db?sslmode=disable&channel_binding=require')).toThrow(/channel_binding=require needs TLS/);
    expect(() => parseWireUri('postgres://u@h/db?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem')).toThrow(/cannot read \/nonexistent\/ca.pem/);
    expect(parseWireUri('postgres://u@h/db').tls.mode).toBe('disable');
  });

  it('the postgres.js pool reads the same parameters (verify-full with the test CA, and refuses another CA)', async () => {
    const ok = connectPostgresJs(via(tlsFront, 'localhost', { sslmode: 'verify-full', sslrootcert: certs.caFile }), { max: 1, onnotice: () => {} });
    try {
      expect((await ok`select current_database()::text as d`)[0].d).toBe(db.name);
    } finally {
      await ok.end();
    }
    const bad = connectPostgresJs(via(tlsFront, 'localhost', { sslmode: 'verify-full', sslrootcert: certs.otherCaFile }), { max: 1, onnotice: () => {}, connect_timeout: 5 });
    try {
      await expect(bad`select 1`).rejects.toThrow(/certificate/i);
    } finally {
      await bad.end({ timeout: 1 });
    }
  });
});

const scramUrl = process.env.PGML_TEST_TLS_SCRAM_URL;
describe.runIf(scramUrl)('SCRAM channel binding on a PostgreSQL with TLS (PGML_TEST_TLS_SCRAM_URL)', () => {
  it('binds to the server certificate (SCRAM-SHA-256-PLUS) and channel_binding=require holds', async () => {
    const u = new URL(scramUrl!);
    u.searchParams.set('channel_binding', 'require');
    const conn = await WireConnection.connect(parseWireUri(u.toString()), OPTS);
    try {
      const rows = await rowsOf(conn, 'select ssl::text as ssl from pg_stat_ssl where pid = pg_backend_pid()');
      expect(rows).toEqual([{ ssl: 'true' }]);
    } finally {
      conn.close();
    }
    // a wrong password is still refused with channel binding on
    u.password = 'wrong';
    const err = await WireConnection.connect(parseWireUri(u.toString()), OPTS).catch((e) => e);
    expect(err.code).toBe('28P01');
  });
});
if (!scramUrl) console.log('tls.test: PGML_TEST_TLS_SCRAM_URL not set: SCRAM channel binding is tested only where .ci/enable-pg-tls.sh prepared a server');
