import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadMigrations, migrate } from '../src/db/migrate.ts';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase({ migrate: false });
});
afterAll(async () => db?.drop());

describe('migrations', () => {
  it('are numbered files in sql/ and create the pgml schema', async () => {
    const all = await loadMigrations();
    expect(all.length).toBeGreaterThan(0);
    expect(all.map((m) => m.version)).toEqual([...all.map((m) => m.version)].sort((a, b) => a - b));
    expect(all[0].sql).toMatch(/create schema if not exists pgml/i);
  });

  it('applied by several processes at once run exactly once, and are recorded', async () => {
    const conns = [0, 1, 2].map(() => postgres(db.adminUrl, { max: 1, onnotice: () => {} }));
    try {
      const results = await Promise.all(conns.map((c) => migrate(c)));
      const total = (await loadMigrations()).length;
      expect(results.map((r) => r.length).sort()).toEqual([0, 0, total]);
      const rows = await db.admin`select version from pgml.schema_migrations order by version`;
      expect(rows.length).toBe(total);
      expect((await db.admin`select count(*)::int as n from pg_namespace where nspname = 'pgml'`)[0].n).toBe(1);
    } finally {
      await Promise.all(conns.map((c) => c.end()));
    }
  });

  it('a failing migration leaves nothing half-applied', async () => {
    const bad = [
      { version: 9001, name: '9001_ok_part', sql: 'create table pgml.half_a (id int);' },
      { version: 9002, name: '9002_broken', sql: 'create table pgml.half_b (id int); select 1/0;' },
    ];
    await expect(migrate(db.admin, [...(await loadMigrations()), ...bad])).rejects.toThrow(/division by zero/);
    const tables = await db.admin`select relname from pg_class where relname in ('half_a', 'half_b')`;
    expect(tables).toEqual([]);
    expect((await db.admin`select count(*)::int as n from pgml.schema_migrations where version > 9000`)[0].n).toBe(0);
  });
});
