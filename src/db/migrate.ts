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
export async function migrate(admin: Sql, migrations?: Migration[], opts: { workerRole?: string } = {}): Promise<string[]> {
  const all = migrations ?? (await loadMigrations());
  const applied = await admin.begin(async (tx) => {
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
  if (opts.workerRole) await grantWorker(admin, opts.workerRole);
  return applied;
}

/**
 * Lets the gateway's login role run the job and training functions of schema pgml_worker
 * (claiming, heartbeats, sweeps). Only that role: request roles cannot reach the schema, since
 * the login role is a member of them and not the reverse. Idempotent.
 */
export async function grantWorker(admin: Sql, role: string): Promise<void> {
  const r = '"' + role.replace(/"/g, '""') + '"';
  await admin.begin(async (tx) => {
    const [{ exists }] = await tx`select to_regnamespace('pgml_worker') is not null as exists`;
    if (!exists) return;
    await tx.unsafe(`grant usage on schema pgml_worker to ${r}; grant execute on all functions in schema pgml_worker to ${r}`).simple();
  });
}

/** The role a connection URI logs in as (libpq's defaults when it names none). */
export function loginRoleOf(uri: string): string {
  let user = '';
  try {
    user = decodeURIComponent(new URL(uri).username);
  } catch {
    user = /(?:^|\s)user=(\S+)/.exec(uri)?.[1] ?? '';
  }
  return user || process.env.PGUSER || process.env.USER || 'postgres';
}

export interface StartupWork {
  /** migrations not yet recorded in pgml.schema_migrations (all of them when it is absent or unreadable) */
  pending: string[];
  /** the login role cannot yet use schema pgml_worker's functions */
  workerGrantMissing: boolean;
}

/**
 * What the migration step would have to do, seen by the gateway's own login role (no admin
 * connection needed): pending migrations, and whether the pgml_worker grant is in place. When
 * nothing is to do, a start needs no PGML_MIGRATION_DB_URI.
 */
export async function startupWork(sql: Sql, migrations?: Migration[]): Promise<StartupWork> {
  const all = migrations ?? (await loadMigrations());
  const [{ readable }] = await sql`
    select case when to_regclass('pgml.schema_migrations') is null then false
                else has_table_privilege('pgml.schema_migrations', 'select') end as readable`;
  let done = new Set<number>();
  if (readable) done = new Set((await sql`select version from pgml.schema_migrations`).map((r) => r.version as number));
  const pending = all.filter((m) => !done.has(m.version)).map((m) => m.name);
  const [{ granted }] = await sql`
    select case when to_regnamespace('pgml_worker') is null then false
                else has_schema_privilege('pgml_worker', 'usage')
                 and not exists (select 1 from pg_proc p where p.pronamespace = to_regnamespace('pgml_worker') and not has_function_privilege(p.oid, 'execute')) end as granted`;
  return { pending, workerGrantMissing: !granted };
}
