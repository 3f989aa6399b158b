/**
 * The database a benchmark runs against: a throw-away embedded PostgreSQL in a temp dir, or a
 * fresh database inside the cluster of BENCH_DATABASE_URL (a superuser URI), dropped afterwards.
 * Either way PostgREST's roles exist (authenticator / anon / authenticated).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres, { type Sql } from 'postgres';
import { createDefaultRoles } from '../../src/db/bootstrap.ts';
import { startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { onCleanup } from './cleanup.ts';
import { freePort } from './net.ts';
import { processTree } from './proc.ts';

export const AUTHENTICATOR_PASSWORD = 'authenticator';

export interface BenchDatabase {
  /** superuser URI of the benchmark's database */
  adminUri: string;
  /** URI of the authenticator role on the same database */
  authenticatorUri: string;
  embedded: boolean;
  /** a superuser connection (max 2) to the benchmark's database */
  admin: Sql;
  /** server processes whose CPU time is the database's (embedded: the whole cluster; external: our database's backends) */
  serverPids(): Promise<number[]>;
  stop(): Promise<void>;
}

function withDatabase(uri: string, db: string, user?: string, password?: string): string {
  const u = new URL(uri);
  u.pathname = `/${db}`;
  if (user !== undefined) {
    u.username = user;
    u.password = password ?? '';
  }
  return u.toString();
}

export async function startBenchDatabase(opts: { log?: (line: string) => void } = {}): Promise<BenchDatabase> {
  const external = process.env.BENCH_DATABASE_URL;
  if (external) {
    const name = `pgml_bench_${randomBytes(5).toString('hex')}`;
    const server = postgres(external, { max: 1, onnotice: () => {} });
    try {
      await server.unsafe(`create database ${name}`);
      await createDefaultRoles(server, AUTHENTICATOR_PASSWORD);
    } finally {
      await server.end();
    }
    const adminUri = withDatabase(external, name);
    const admin = postgres(adminUri, { max: 2, onnotice: () => {} });
    const drop = async () => {
      await admin.end({ timeout: 2 });
      const s = postgres(external, { max: 1, onnotice: () => {} });
      try {
        await s.unsafe(`drop database if exists ${name} with (force)`);
      } finally {
        await s.end();
      }
    };
    const unregister = onCleanup(`database ${name}`, drop);
    return {
      adminUri,
      authenticatorUri: withDatabase(external, name, 'authenticator', AUTHENTICATOR_PASSWORD),
      embedded: false,
      admin,
      async serverPids() {
        // same machine only: backends serving our database (the /proc reads find nothing otherwise)
        const rows = await admin<{ pid: number }[]>`select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`;
        return rows.map((r) => r.pid);
      },
      async stop() {
        unregister();
        await drop();
      },
    };
  }

  const dir = mkdtempSync(join(tmpdir(), 'pgml-bench-pg-'));
  chmodSync(dir, 0o755); // when run as root, the postgres OS user must reach its data directory
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  let db: Awaited<ReturnType<typeof startEmbeddedPostgres>>;
  const dataDir = join(dir, 'data');
  try {
    db = await startEmbeddedPostgres({ dataDir, port: await freePort(), persistent: false, log: opts.log });
  } catch (e) {
    removeDir();
    throw e;
  }
  const postmasterPid = (): number | null => {
    try {
      return Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    } catch {
      return null;
    }
  };
  const pmPid = postmasterPid();
  const admin = postgres(db.adminUri, { max: 2, onnotice: () => {} });
  const stop = async () => {
    await admin.end({ timeout: 2 }).catch(() => {});
    await db.stop().catch(() => {});
    removeDir();
  };
  const unregister = onCleanup('embedded PostgreSQL', stop, () => {
    if (pmPid) {
      try {
        process.kill(pmPid, 'SIGQUIT');
      } catch {
        /* gone */
      }
    }
    removeDir();
  });
  try {
    await createDefaultRoles(admin, AUTHENTICATOR_PASSWORD);
  } catch (e) {
    unregister();
    await stop();
    throw e;
  }
  return {
    adminUri: db.adminUri,
    authenticatorUri: withDatabase(db.adminUri, 'postgres', 'authenticator', AUTHENTICATOR_PASSWORD),
    embedded: true,
    admin,
    async serverPids() {
      return pmPid ? processTree(pmPid) : [];
    },
    async stop() {
      unregister();
      await stop();
    },
  };
}
