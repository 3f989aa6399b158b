import { randomBytes } from 'node:crypto';
import postgres, { type Sql } from 'postgres';
import { inject } from 'vitest';
import { migrate } from '../../src/db/migrate.ts';

export interface TestDatabase {
  name: string;
  /** superuser connection to the test database */
  admin: Sql;
  adminUrl: string;
  /** URI of the authenticator role on the test database */
  authenticatorUrl: string;
  drop(): Promise<void>;
}

function withDatabase(url: string, db: string, user?: string, password?: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  if (user !== undefined) {
    u.username = user;
    u.password = password ?? '';
  }
  return u.toString();
}

/** A fresh database (migrated) in the shared test cluster; dropped by drop(). */
export async function createTestDatabase(opts: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const base = inject('adminUrl');
  const name = `pgml_test_${randomBytes(6).toString('hex')}`;
  const server = postgres(base, { max: 1, onnotice: () => {} });
  await server.unsafe(`create database ${name}`);
  await server.end();
  const adminUrl = withDatabase(base, name);
  const admin = postgres(adminUrl, { max: 2, onnotice: () => {} });
  if (opts.migrate !== false) await migrate(admin);
  return {
    name,
    admin,
    adminUrl,
    authenticatorUrl: withDatabase(base, name, 'authenticator', 'authenticator'),
    async drop() {
      await admin.end();
      const s = postgres(base, { max: 1, onnotice: () => {} });
      await s.unsafe(`drop database if exists ${name} with (force)`);
      await s.end();
    },
  };
}
