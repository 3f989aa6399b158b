/**
 * Issue 15, part 3: training from SQL as PostgresML users write it, from a psql-like connection
 * (postgres.js, one connection, logged in as the tenant) and from the real psql binary, while a
 * gateway runs. The gateway logs in as a role that is NOT called authenticator and is not a
 * superuser (createLoginRole).
 *
 * - a job its gateway could not run as its owner is refused at once, naming the missing GRANT
 * - pgml.train(project) alone repeats the last training (data, split, algorithm, hyperparams)
 * - CALL pgml.train_and_wait(...) queues, commits, waits and returns the result row
 * - pgml.predict before the first model is trained says the training is queued / running
 * - SQL and HTTP training share their defaults and agree on classification predictions
 */
import { spawn } from 'node:child_process';
import type { FastifyInstance } from 'fastify';
import postgres, { type Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { loadCsv } from './helpers/data.ts';
import { bearer, eventually, startGateway, token } from './helpers/gateway.ts';
import { createLoginRole, createTrainingTable, type LoginRole } from './security/training-helpers.ts';

const ANALYST = 'sqlt_analyst';
const OUTSIDER = 'sqlt_outsider';
const PASSWORD = 'sqlt-password';

let db: TestDatabase;
let login: LoginRole;
let app: FastifyInstance;
let admin: string;
let analyst: Sql; // psql as the data person: one connection, autocommit
let notices: string[] = [];
let user: Record<string, string>;

function urlAs(role: string): string {
  const u = new URL(db.adminUrl);
  u.username = role;
  u.password = PASSWORD;
  return u.toString();
}

/** The real psql binary (spawned asynchronously: the gateway under test runs in this process). */
function psql(url: string, command: string): Promise<{ out: string; err: string; status: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn('psql', [url, '-X', '-v', 'ON_ERROR_STOP=1', '-c', command], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ out, err, status }));
  });
}

async function sqlError(p: Promise<unknown>): Promise<{ code: string; message: string; detail?: string; hint?: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code: string; message: string; detail?: string; hint?: string };
  }
  throw new Error('expected an SQL error');
}

const jobCount = async () => (await db.admin`select count(*)::int as n from pgml.jobs`)[0].n as number;
const inject = (method: 'GET' | 'POST', url: string, body?: unknown) =>
  app.inject({ method, url, payload: body === undefined ? undefined : JSON.stringify(body), headers: { 'content-type': 'application/json', ...user } });

async function waitForJob(id: number) {
  return eventually(async () => {
    const [j] = await db.admin`select status, error, params, model_id::int from pgml.jobs where id = ${id}`;
    expect(['succeeded', 'failed', 'cancelled']).toContain(j.status);
    return j;
  }, 60_000, 100);
}

beforeAll(async () => {
  db = await createTestDatabase();
  admin = (await db.admin`select current_user as u`)[0].u as string;
  await db.admin.unsafe(`
    do $$ begin
      if not exists (select from pg_roles where rolname = '${ANALYST}') then create role ${ANALYST} login password '${PASSWORD}'; end if;
      if not exists (select from pg_roles where rolname = '${OUTSIDER}') then create role ${OUTSIDER} login password '${PASSWORD}'; end if;
    end $$;
    grant usage, create on schema public to ${ANALYST}, ${OUTSIDER};`).simple();
  // the gateway's login role serves the analyst, not the outsider (nor the superuser)
  login = await createLoginRole(db, [ANALYST]);
  await loadCsv(db.admin, 'iris', 'sepal_length real, sepal_width real, petal_length real, petal_width real, species text', 'iris/iris.csv');
  await db.admin.unsafe(`
    create table iris_num as select sepal_length, sepal_width, petal_length, petal_width,
      case species when 'Iris-setosa' then 0 when 'Iris-versicolor' then 1 else 2 end as label from iris;
    grant select on iris, iris_num to ${ANALYST}, ${OUTSIDER};
    create function predict_iris(project text, f real[]) returns real language sql as $$ select pgml.predict(project, f) $$;
    grant execute on function predict_iris(text, real[]) to ${ANALYST};`).simple();
  await createTrainingTable(db, 'pts', 300, [ANALYST]);
  app = await startGateway(db, { PGRST_DB_URI: login.url, PGRST_DB_POOL: '6' });
  await app.ready();
  user = bearer(await token({ role: ANALYST }));
  analyst = postgres(urlAs(ANALYST), { max: 1, onnotice: (n) => void notices.push(n.message as string) });
  // the job worker has recorded the role it logs in as
  await eventually(async () => expect((await db.admin`select role from pgml_worker.login_roles`).map((r) => r.role)).toContain(login.name), 10_000);
}, 60_000);

afterAll(async () => {
  await analyst?.end();
  await app?.close();
  await db?.drop();
  await login?.drop();
});

describe('a job the gateway could not run is refused at once', () => {
  it('psql as the superuser: pgml.train fails now, naming the GRANT and warning against it', async () => {
    const before = await jobCount();
    const r = await psql(db.adminUrl, "select * from pgml.train('su_proj', 'classification', 'iris', 'species')");
    expect(r.status).not.toBe(0);
    expect(r.err).toContain(`pgml-gateway cannot train as role "${admin}": missing GRANT "${admin}" TO "${login.name}"`);
    expect(r.err).toContain('is a superuser: do not grant it');
    expect(await jobCount()).toBe(before);
  });

  it('a role the login role is not a member of: 42501 with the GRANT; after that GRANT the job trains', async () => {
    const outsider = postgres(urlAs(OUTSIDER), { max: 1, onnotice: () => {} });
    try {
      const e = await sqlError(outsider`select * from pgml.train('outsider_proj', 'regression', 'pts_o', 'y')`);
      // the relation is checked first: then the owner
      expect(e.code).toBe('42P01');
      await db.admin.unsafe(`create table pts_o as select * from pts; grant select on pts_o to ${OUTSIDER}`).simple();
      const before = await jobCount();
      const refused = await sqlError(outsider`select * from pgml.train('outsider_proj', 'regression', 'pts_o', 'y')`);
      expect(refused.code).toBe('42501');
      expect(refused.message).toBe(`pgml-gateway cannot train as role "${OUTSIDER}": missing GRANT "${OUTSIDER}" TO "${login.name}"`);
      expect(refused.hint).toContain(`GRANT "${OUTSIDER}" TO "${login.name}";`);
      expect(await jobCount()).toBe(before);
      // CALL is refused the same way, before anything is committed
      const called = await sqlError(outsider`call pgml.train_and_wait('outsider_proj', 'regression', 'pts_o', 'y')`);
      expect(called.code).toBe('42501');
      expect(await jobCount()).toBe(before);

      await db.admin.unsafe(`grant "${OUTSIDER}" to "${login.name}"`);
      const [queued] = await outsider`select * from pgml.train('outsider_proj', 'regression', 'pts_o', 'y')`;
      const job = await waitForJob(Number(queued.job_id));
      expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
    } finally {
      await outsider.end();
    }
  }, 60_000);
});

describe('CALL pgml.train_and_wait from psql', () => {
  it('queues, commits, waits and returns PostgresML\'s result row', async () => {
    notices = [];
    const [row] = await analyst`call pgml.train_and_wait('iris_sql', 'classification', 'iris', 'species', 'xgboost', hyperparams => '{"n_estimators": 10, "max_depth": 3}')`;
    expect(row).toMatchObject({ project: 'iris_sql', task: 'classification', algorithm: 'xgboost', deployed: true });
    expect(row.metrics.accuracy).toBeGreaterThan(0.8);
    expect(Number(row.model_id)).toBeGreaterThan(0);
    const [job] = await db.admin`select status, owner, model_id::int from pgml.jobs where id = ${row.job_id}`;
    expect(job).toEqual({ status: 'succeeded', owner: ANALYST, model_id: Number(row.model_id) });
    // the model serves at once, from SQL and over HTTP
    const [p] = await analyst`select pgml.predict('iris_sql', array[5.1, 3.5, 1.4, 0.2]::real[]) as p`;
    expect(p.p).toBe(0);
  }, 60_000);

  it('the real psql binary prints the row', async () => {
    const r = await psql(urlAs(ANALYST), "call pgml.train_and_wait('pts_sql', 'regression', 'pts', 'y', 'linear')");
    expect(r.status, r.err).toBe(0);
    expect(r.out).toMatch(/task\s*\|\s*algorithm\s*\|.*project\s*\|\s*deployed\s*\|\s*metrics/);
    expect(r.out).toMatch(/regression\s*\|\s*linear\s*\|.*pts_sql\s*\|\s*t\s*\|\s*\{.*"r2"/);
  }, 60_000);

  it('a failed training raises its error (the worker\'s message, PT400)', async () => {
    const e = await sqlError(analyst`call pgml.train_and_wait('bad_sql', 'regression', 'pts', 'y', 'ridge', '{"no_such_param": 1}')`);
    expect(e.code).toBe('PT400');
    expect(e.message).toMatch(/^training job \d+ failed: .*no_such_param/);
  }, 60_000);

  it('inside a transaction block: a clear error and nothing queued', async () => {
    const before = await jobCount();
    const e = await sqlError(analyst.begin(async (tx) => {
      await tx`select pg_sleep(1.2)`;
      await tx`call pgml.train_and_wait('tx_sql', 'regression', 'pts', 'y')`;
    }));
    expect(e.code).toBe('25001');
    expect(e.message).toBe('CALL pgml.train_and_wait(...) cannot run inside a transaction block');
    expect(e.hint).toContain('SELECT * FROM pgml.train');
    expect(await jobCount()).toBe(before);
  });

  it('bad timeout: 22023', async () => {
    const e = await sqlError(analyst`call pgml.train_and_wait('pts_sql', timeout => '-1 second')`);
    expect(e.code).toBe('22023');
  });
});

describe('while the first training is queued', () => {
  it('pgml.predict and HTTP predict say so; the CALL times out saying the job keeps going', async () => {
    const gw = (app as unknown as { gateway: { jobWorker: { stop(): Promise<void> } | null; startJobWorker(): Promise<void> } }).gateway;
    await gw.jobWorker!.stop();
    gw.jobWorker = null;
    try {
      const e = await sqlError(analyst`call pgml.train_and_wait('pending_sql', 'classification', 'iris_num', 'label', 'logistic', timeout => '300 milliseconds')`);
      expect(e.code).toBe('57014');
      const id = Number(/training job (\d+) did not finish/.exec(e.message)![1]);
      expect(e.detail).toContain('queued');
      expect((await db.admin`select status from pgml.jobs where id = ${id}`)[0].status).toBe('queued');

      const p = await sqlError(analyst`select pgml.predict('pending_sql', array[5.1, 3.5, 1.4, 0.2]::real[])`);
      expect(p.message).toBe(`project "pending_sql" has no deployed model yet: its training (job ${id}) is queued`);
      expect(p.code).toBe('PT404');
      const viaRpc = await inject('POST', '/rpc/predict_iris', { project: 'pending_sql', f: [5.1, 3.5, 1.4, 0.2] });
      expect(viaRpc.statusCode).toBe(404);
      expect(viaRpc.json().message).toContain('is queued');
      const http = await inject('POST', '/models/pending_sql/predict', { features: [5.1, 3.5, 1.4, 0.2] });
      expect(http.statusCode).toBe(404);
      expect(http.json().message).toBe(`Project "pending_sql" has no deployed model yet: its training (job ${id}) is queued`);
      // a project nobody trains is still plainly not found
      expect((await sqlError(analyst`select pgml.predict('nope_sql', array[1, 2]::real[])`)).message).toBe('project "nope_sql" not found');

      await gw.startJobWorker();
      expect((await waitForJob(id)).status).toBe('succeeded');
      const [ok] = await analyst`select pgml.predict('pending_sql', array[5.1, 3.5, 1.4, 0.2]::real[]) as p`;
      expect(ok.p).toBe(0);
    } finally {
      if (!gw.jobWorker) await gw.startJobWorker();
    }
  }, 60_000);
});

describe('pgml.train(project_name) alone repeats the last training', () => {
  it('reuses relation, y column, task, split, algorithm and hyperparams; pg_cron\'s command succeeds and so does the job', async () => {
    await analyst.unsafe(`
      create or replace function model_retrain() returns setof pgml.train_result language sql as $$ select * from pgml.train('iris_sql') $$`);
    const [queued] = await analyst`select * from model_retrain()`;
    expect(queued).toMatchObject({ project: 'iris_sql', task: 'classification', algorithm: 'xgboost', status: 'queued' });
    const job = await waitForJob(Number(queued.job_id));
    expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
    expect(job.params).toMatchObject({ project_name: 'iris_sql', relation_name: 'public.iris', y_column_name: 'species', algorithm: 'xgboost', test_size: 0.25 });
    expect(job.params.hyperparams).toMatchObject({ n_estimators: 10, max_depth: 3 });
    const models = await db.admin`
      select m.algorithm, m.hyperparams, s.relation_name, s.y_column_name, s.test_size, s.test_sampling::text from pgml.models m
      join pgml.projects p on p.id = m.project_id join pgml.snapshots s on s.id = m.snapshot_id where p.name = 'iris_sql' order by m.id`;
    expect(models).toHaveLength(2);
    expect(models[1]).toMatchObject({ algorithm: 'xgboost', relation_name: 'public.iris', y_column_name: ['species'], test_size: 0.25, test_sampling: 'stratified' });
    expect(models[1].hyperparams).toMatchObject({ n_estimators: 10, max_depth: 3 });
    // another algorithm can be named; the data is still the last one
    const [other] = await analyst`select * from pgml.train('iris_sql', algorithm => 'logistic')`;
    expect((await waitForJob(Number(other.job_id))).params).toMatchObject({ relation_name: 'public.iris', algorithm: 'logistic' });
  }, 60_000);

  it('over HTTP too: {"project_name"} alone', async () => {
    const r = await inject('POST', '/models/train', { project_name: 'pts_sql' });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json()).toMatchObject({ project: 'pts_sql', task: 'regression', algorithm: 'linear' });
    const none = await inject('POST', '/models/train', { project_name: 'never_http', task: 'regression' });
    expect(none.statusCode).toBe(400);
    expect(none.json().message).toBe('project "never_http" has no earlier training to repeat: pass relation_name and y_column_name');
  }, 60_000);

  it('what would fail later is refused at once, and nothing is queued', async () => {
    const before = await jobCount();
    const cases: [Promise<unknown>, string, RegExp][] = [
      [analyst`select * from pgml.train('never_sql')`, '22023', /^project "never_sql" does not exist yet: pass task$/],
      [analyst`select * from pgml.train('never_sql', 'classification')`, '22023', /no earlier training to repeat: pass relation_name and y_column_name/],
      [analyst`select * from pgml.train('iris_sql', 'regression')`, '22023', /has task classification, not regression/],
      [analyst`select * from pgml.train('x_sql', 'regression', 'no_such_table', 'y')`, '42P01', /relation "no_such_table" does not exist/],
      [analyst`select * from pgml.train('x_sql', 'regression', 'pts', 'no_such_col')`, '42703', /column "no_such_col" does not exist in public.pts/],
      [analyst`select * from pgml.train('x_sql', 'regression', 'pts')`, '22023', /regression needs y_column_name/],
      [analyst`select * from pgml.train('x_sql', 'sorting', 'pts', 'y')`, '22023', /unknown task "sorting"/],
    ];
    for (const [p, code, message] of cases) {
      const e = await sqlError(p);
      expect(e.code, e.message).toBe(code);
      expect(e.message).toMatch(message);
    }
    // a temp table: the worker, on another connection, could never read it
    const temp = await sqlError(analyst.begin(async (tx) => {
      await tx`create temp table tmp_pts as select * from pts`;
      await tx`select * from pgml.train('x_sql', 'regression', 'tmp_pts', 'y')`;
    }));
    expect(temp.code).toBe('0A000');
    expect(await jobCount()).toBe(before);
  });
});

describe('SQL and HTTP training agree', () => {
  it('on the default test split, and so on metrics', async () => {
    const http = await inject('POST', '/models/train', { project_name: 'agree_http', task: 'classification', relation_name: 'iris_num', y_column_name: 'label', algorithm: 'logistic' });
    expect(http.statusCode, http.body).toBe(200);
    const [sql] = await analyst`call pgml.train_and_wait('agree_sql', 'classification', 'iris_num', 'label', 'logistic')`;
    const snaps = await db.admin`
      select p.name, s.test_size, s.test_sampling::text from pgml.projects p join pgml.models m on m.project_id = p.id
      join pgml.snapshots s on s.id = m.snapshot_id where p.name in ('agree_http', 'agree_sql') order by p.name`;
    expect(snaps).toEqual([
      { name: 'agree_http', test_size: 0.25, test_sampling: 'stratified' },
      { name: 'agree_sql', test_size: 0.25, test_sampling: 'stratified' },
    ]);
    const scores = (m: Record<string, number>) => Object.fromEntries(Object.entries(m).filter(([k]) => !k.endsWith('_time')));
    expect(scores(sql.metrics)).toEqual(scores(http.json().metrics));
    expect(Object.keys(scores(sql.metrics))).toContain('accuracy');
    // regression has no classes to stratify: both split at random
    const reg = await db.admin`
      select s.test_sampling::text from pgml.projects p join pgml.models m on m.project_id = p.id join pgml.snapshots s on s.id = m.snapshot_id
      where p.name = 'pts_sql'`;
    expect(new Set(reg.map((r) => r.test_sampling))).toEqual(new Set(['random']));
  }, 60_000);

  it('on classification predictions: numeric labels alike; text labels are the label over HTTP and its class index in SQL', async () => {
    const rows = [[5.1, 3.5, 1.4, 0.2], [6.0, 2.9, 4.5, 1.5], [6.7, 3.0, 5.2, 2.3]];
    const http = (await inject('POST', '/models/agree_sql/predict', { features: rows })).json().predictions as number[];
    for (let i = 0; i < rows.length; i++) {
      const [s] = await analyst`select pgml.predict('agree_sql', ${rows[i]}::real[]) as p`;
      const viaRpc = (await inject('POST', '/rpc/predict_iris', { project: 'agree_sql', f: rows[i] })).json();
      expect(s.p).toBe(http[i]);
      expect(viaRpc).toBe(http[i]);
    }
    const text = (await inject('POST', '/models/iris_sql/predict', { features: rows })).json();
    const proba = (await inject('POST', '/models/iris_sql/predict_proba', { features: rows })).json();
    for (let i = 0; i < rows.length; i++) {
      const viaRpc = (await inject('POST', '/rpc/predict_iris', { project: 'iris_sql', f: rows[i] })).json();
      expect(typeof text.predictions[i]).toBe('string');
      expect(viaRpc).toBe(proba.classes.indexOf(text.predictions[i]));
    }
  }, 60_000);
});
