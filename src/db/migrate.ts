import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Sql } from 'postgres';

export const SQL_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'sql');

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export async function loadMigrations(dir = SQL_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d+_.*\.sql$/.test(f)).sort();
  const out: Migration[] = [];
  for (const file of files) {
    const version = Number(file.split('_')[0]);
    if (out.some((m) => m.version === version)) throw new Error(`two migrations numbered ${version} in ${dir}`);
    out.push({ version, name: file.replace(/\.sql$/, ''), sql: await readFile(join(dir, file), 'utf8') });
  }
  return out;
}

/**
 * Applies pending migrations in one transaction under an advisory lock, so that replicas starting
 * together apply each migration exactly once and a failure leaves nothing half-applied.
 * Returns the names applied by this call.
 */
export async function migrate(admin: Sql, migrations?: Migration[]): Promise<string[]> {
  const all = migrations ?? (await loadMigrations());
  return admin.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtext('pgml-gateway:migrations'))`;
    await tx.unsafe(`
      create schema if not exists pgml;
      create table if not exists pgml.schema_migrations (
        version integer primary key,
        name text not null,
        applied_at timestamptz not null default now()
      )`).simple();
    const done = new Set((await tx`select version from pgml.schema_migrations`).map((r) => r.version as number));
    const applied: string[] = [];
    for (const m of all) {
      if (done.has(m.version)) continue;
      await tx.unsafe(m.sql).simple();
      await tx`insert into pgml.schema_migrations (version, name) values (${m.version}, ${m.name})`;
      applied.push(m.name);
    }
    return applied;
  });
}
