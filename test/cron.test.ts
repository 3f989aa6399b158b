/**
 * Scheduled retraining as in the Tembo post: cron.schedule('weekly-retrain', '0 0 * * 0',
 * 'SELECT model_train()'). Where pg_cron is loaded (the system PostgreSQL 15 after
 * .ci/enable-pg-cron.sh) the schedule is created and a per-minute twin is seen firing; elsewhere
 * (the embedded PostgreSQL has no pg_cron) the scheduled command is run directly.
 */
import postgres from 'postgres';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { loadCsv } from './helpers/data.ts';
import { eventually, startGateway } from './helpers/gateway.ts';

let db: TestDatabase;
let app: FastifyInstance;
let cron: postgres.Sql | null = null;

async function pgCronAvailable(): Promise<postgres.Sql | null> {
  const sql = postgres(inject('adminUrl'), { max: 1, onnotice: () => {} });
  try {
    const loaded = await sql`select current_setting('shared_preload_libraries') like '%pg_cron%' as ok`;
    if (!loaded[0].ok) throw new Error('pg_cron not loaded');
    await sql`create extension if not exists pg_cron`;
    return sql;
  } catch {
    await sql.end();
    return null;
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  await db.admin.unsafe(`
    do $$ begin
      if not exists (select from pg_roles where rolname = 'cron_trainer') then create role cron_trainer login; end if;
    end $$;
    grant cron_trainer to authenticator;
    grant usage, create on schema public to cron_trainer;`).simple();
  await loadCsv(db.admin, 'iris', 'sepal_length real, sepal_width real, petal_length real, petal_width real, species text', 'iris/iris.csv');
  await db.admin.unsafe(`
    alter table iris owner to cron_trainer;
    create function model_train() returns setof pgml.train_result language sql as $$
      select * from pgml.train('iris_weekly', 'classification', 'iris', 'species', 'logistic')
    $$;
    alter function model_train() owner to cron_trainer;`).simple();
  app = await startGateway(db);
  cron = await pgCronAvailable();
});
afterAll(async () => {
  if (cron) {
    await cron`select cron.unschedule(jobid) from cron.job where database = ${db.name}`.catch(() => {});
    await cron.end();
  }
  await app?.close();
  await db?.drop();
});

const trainedModels = async () =>
  (await db.admin`select count(*)::int as n from pgml.models m join pgml.projects p on p.id = m.project_id where p.name = 'iris_weekly' and m.status = 'successful'`)[0].n as number;

describe('scheduled retraining', () => {
  it('the weekly schedule retrains as the role that scheduled it', async () => {
    const command = 'SELECT model_train()';
    if (cron) {
      await cron`select cron.schedule_in_database(${`weekly-retrain-${db.name}`}, '0 0 * * 0', ${command}, ${db.name}, 'cron_trainer')`;
      const [job] = await cron`select schedule, command, database, username from cron.job where jobname = ${`weekly-retrain-${db.name}`}`;
      expect(job).toEqual({ schedule: '0 0 * * 0', command, database: db.name, username: 'cron_trainer' });
      // the same command every minute: pg_cron itself runs it, the gateway trains
      await cron`select cron.schedule_in_database(${`minutely-retrain-${db.name}`}, '* * * * *', ${command}, ${db.name}, 'cron_trainer')`;
      await eventually(async () => expect(await trainedModels()).toBeGreaterThanOrEqual(1), 80_000, 500);
      const runs = await cron`select status from cron.job_run_details d join cron.job j on j.jobid = d.jobid where j.jobname = ${`minutely-retrain-${db.name}`}`;
      expect(runs.map((r) => r.status)).toContain('succeeded');
    } else {
      // no pg_cron on this server: run exactly what the schedule would run, as that role
      const sql = postgres(db.adminUrl, { max: 1, onnotice: () => {} });
      try {
        await sql.begin(async (tx) => {
          await tx`set local role cron_trainer`;
          await tx.unsafe(command);
        });
      } finally {
        await sql.end();
      }
      await eventually(async () => expect(await trainedModels()).toBe(1), 30_000, 200);
    }
    const [owner] = await db.admin`select owner from pgml.jobs order by id desc limit 1`;
    expect(owner.owner).toBe('cron_trainer');
  }, 120_000);
});
