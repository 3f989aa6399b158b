/**
 * Scheduled retraining: README's pg_cron recipe ("Weekly retraining with pg_cron"), run exactly as
 * written (its psql block, with the URL and -v db= pointing here) where pg_cron is loaded (the
 * system PostgreSQL 15 after .ci/enable-pg-cron.sh); the weekly job is then made to fire every
 * minute and pg_cron itself runs it. Elsewhere (the embedded PostgreSQL has no pg_cron) the
 * recipe's roles are created and the scheduled command runs as the recipe's LOGIN role.
 * The walkthrough's data and model_train() are owned by authenticated, as in the README.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import postgres from 'postgres';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { loadCsv } from './helpers/data.ts';
import { eventually, startGateway } from './helpers/gateway.ts';

const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

/** The README's recipe: the sh block after "Weekly retraining with pg_cron". */
function recipe(): { block: string; sql: string; command: string; role: string } {
  const at = README.indexOf('Weekly retraining with pg_cron');
  expect(at).toBeGreaterThan(0);
  const m = /```sh\n([\s\S]*?)```/.exec(README.slice(at));
  const block = m![1];
  const sql = /<<'SQL'\n([\s\S]*?)\nSQL\n/.exec(block)![1];
  const call = /cron\.schedule_in_database\('weekly-retrain', '0 0 \* \* 0',\s*'([^']*)', :'db', '([a-z_]+)'\)/.exec(sql);
  expect(call, 'the recipe schedules weekly-retrain in :db as a LOGIN role').not.toBeNull();
  return { block, sql, command: call![1], role: call![2] };
}

let db: TestDatabase;
let app: FastifyInstance;
let cronDb: string | null = null; // pg_cron's database when it is loaded here

async function dropRecipeRole(role: string) {
  const sql = postgres(inject('adminUrl'), { max: 1, onnotice: () => {} });
  try {
    if (cronDb) {
      const c = postgres(withDb(inject('adminUrl'), cronDb), { max: 1, onnotice: () => {} });
      await c`select cron.unschedule(jobid) from cron.job where username = ${role}`.catch(() => {});
      await c.end();
    }
    await sql.unsafe(`drop role if exists ${role}`);
  } finally {
    await sql.end();
  }
}

function withDb(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

beforeAll(async () => {
  db = await createTestDatabase();
  const server = postgres(inject('adminUrl'), { max: 1, onnotice: () => {} });
  try {
    const [{ loaded }] = await server`select current_setting('shared_preload_libraries') ~ '(^|[ ,])pg_cron($|[ ,])' as loaded`;
    if (loaded) {
      cronDb = (await server`select current_setting('cron.database_name') as d`)[0].d as string;
      const c = postgres(withDb(inject('adminUrl'), cronDb), { max: 1, onnotice: () => {} });
      await c`create extension if not exists pg_cron`;
      await c.end();
    }
  } finally {
    await server.end();
  }
  console.log(cronDb ? `cron.test: pg_cron is loaded (cron.database_name = ${cronDb}): running the README recipe through pg_cron` : 'cron.test: no pg_cron on this server: running the scheduled command as the recipe\'s role directly (fallback)');
  await dropRecipeRole(recipe().role);
  // the walkthrough's set-up, data and function owned by authenticated
  await db.admin.unsafe(`grant usage, create on schema public to authenticated;`).simple();
  await loadCsv(db.admin, 'iris', 'sepal_length real, sepal_width real, petal_length real, petal_width real, species text', 'iris/iris.csv');
  await db.admin.unsafe(`
    alter table iris owner to authenticated;
    set role authenticated;
    create function model_train() returns setof pgml.train_result language sql as $$
      select * from pgml.train('iris_weekly', 'classification', 'iris', 'species', 'logistic')
    $$;
    reset role;`).simple();
  app = await startGateway(db);
});
afterAll(async () => {
  await dropRecipeRole(recipe().role).catch(() => {});
  await app?.close();
  await db?.drop();
});

const trainedModels = async () =>
  (await db.admin`select count(*)::int as n from pgml.models m join pgml.projects p on p.id = m.project_id where p.name = 'iris_weekly' and m.status = 'successful'`)[0].n as number;

describe('scheduled retraining (README pg_cron recipe)', () => {
  it('the weekly schedule retrains as the role that owns the data', async () => {
    const { block, sql, command, role } = recipe();
    if (cronDb) {
      // the README block exactly as written, pointed at this server and this test's database
      const url = withDb(inject('adminUrl'), cronDb);
      const script = block.replace('postgres://postgres@localhost:5432/postgres', url).replace('-v db=app', `-v db=${db.name}`);
      expect(script).not.toBe(block);
      const run = spawnSync('bash', ['-euo', 'pipefail', '-c', script.replace(/^psql /m, 'psql -v ON_ERROR_STOP=1 ')], { encoding: 'utf8' });
      expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
      const cron = postgres(url, { max: 1, onnotice: () => {} });
      try {
        const [job] = await cron`select jobid, schedule, command, database, username from cron.job where jobname = 'weekly-retrain' and username = ${role}`;
        expect({ ...job, jobid: undefined }).toEqual({ jobid: undefined, schedule: '0 0 * * 0', command, database: db.name, username: role });
        // the same job every minute: pg_cron itself logs in as the role and runs it, the gateway trains
        await cron`select cron.alter_job(${job.jobid}::bigint, schedule => '* * * * *')`;
        await eventually(async () => expect(await trainedModels()).toBeGreaterThanOrEqual(1), 100_000, 500);
        const runs = await cron`select status, return_message from cron.job_run_details where jobid = ${job.jobid}`;
        expect(runs.map((r) => r.status), JSON.stringify(runs)).toContain('succeeded');
      } finally {
        await cron`select cron.unschedule(jobid) from cron.job where username = ${role}`.catch(() => {});
        await cron.end();
      }
    } else {
      // no pg_cron: the recipe's role statements, then its command, logged in as that role
      const roleSql = sql.split('\n').filter((l) => !/cron\.|^\s+'/.test(l)).join('\n');
      expect(roleSql).toMatch(/CREATE ROLE/);
      await db.admin.unsafe(roleSql).simple();
      await db.admin.unsafe(`alter role ${role} password 'cron-test'`);
      const u = new URL(db.adminUrl);
      u.username = role;
      u.password = 'cron-test';
      const asRole = postgres(u.toString(), { max: 1, onnotice: () => {} });
      try {
        await asRole.unsafe(command).simple();
      } finally {
        await asRole.end();
      }
      await eventually(async () => expect(await trainedModels()).toBe(1), 60_000, 200);
    }
    const [owner] = await db.admin`select owner from pgml.jobs order by id desc limit 1`;
    expect(owner.owner).toBe('authenticated');
  }, 150_000);
});
