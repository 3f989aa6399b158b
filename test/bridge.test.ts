/**
 * The seed scenarios and the semantics of pgml.* inside SQL, computed by the gateway
 * (collect and replay), on a real PostgreSQL with no extension installed.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTinyModels } from './embed/helpers.ts';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { loadCsv } from './helpers/data.ts';
import { bearer, eventually, startGateway, token } from './helpers/gateway.ts';

let db: TestDatabase;
let app: FastifyInstance;
let models: { dir: string; cleanup: () => void };
let user: Record<string, string>;
let other: Record<string, string>;

const EMBED_MODEL = 'all-MiniLM-L12-v2';

beforeAll(async () => {
  // the tiny random-weight model stands in for the scenario's all-MiniLM-L12-v2
  models = makeTinyModels([EMBED_MODEL]);
  process.env.PGML_MODEL_DIR = models.dir;
  db = await createTestDatabase();
  await db.admin.unsafe(`
    do $$ begin
      if not exists (select from pg_roles where rolname = 'data_person') then create role data_person nologin; end if;
      if not exists (select from pg_roles where rolname = 'other_team') then create role other_team nologin; end if;
    end $$;
    grant data_person, other_team to authenticator;
    grant usage, create on schema public to data_person;
  `).simple();
  await loadCsv(db.admin, 'clickbait_all', 'title text, is_clickbait int', 'clickbait/clickbait_data.csv');
  // a deterministic 2k sample, both classes
  await db.admin.unsafe(`
    create table clickbait as select row_number() over () as id, title, is_clickbait from (
      (select * from clickbait_all where is_clickbait = 1 order by md5(title) limit 1000)
      union all (select * from clickbait_all where is_clickbait = 0 order by md5(title) limit 1000)) s;
    create table training (embedding real[], is_clickbait int);
    alter table clickbait owner to data_person;
    alter table training owner to data_person;
  `).simple();
  await loadCsv(db.admin, 'iris_labeled', 'sepal_length real, sepal_width real, petal_length real, petal_width real, species text', 'iris/iris.csv');
  await db.admin.unsafe(`
    alter table iris_labeled add column id serial;
    create table iris_data as select sepal_length, sepal_width, petal_length, petal_width, species from iris_labeled order by id;
    create table testing_data as select id, sepal_length, sepal_width, petal_length, petal_width from iris_labeled;
    alter table iris_data owner to data_person;
    alter table testing_data owner to data_person;
  `).simple();
  app = await startGateway(db);
  user = bearer(await token({ role: 'data_person' }));
  other = bearer(await token({ role: 'other_team' }));
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
  models?.cleanup();
});

const rpc = (name: string, body: unknown, headers: Record<string, string>) =>
  app.inject({ method: 'POST', url: `/rpc/${name}`, payload: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });

/** SQL as the data person in psql would run it (their role, no gateway). */
async function asDataPerson<T>(fn: (tx: import('postgres').TransactionSql) => Promise<T>): Promise<T> {
  return db.admin.begin(async (tx) => {
    await tx`set local role data_person`;
    return fn(tx);
  }) as Promise<T>;
}

async function waitForJob(id: number) {
  return eventually(async () => {
    const [j] = await db.admin`select status, error, model_id from pgml.jobs where id = ${id}`;
    expect(['succeeded', 'failed', 'cancelled']).toContain(j.status);
    return j;
  }, 60000, 100);
}

describe('scenario 1: the clickbait classifier served over /rpc', () => {
  it('embeds the headlines through an RPC function in one batched computation', async () => {
    await asDataPerson((tx) => tx.unsafe(`
      create function embed_headlines() returns int language sql as $$
        insert into training (embedding, is_clickbait) select pgml.embed('${EMBED_MODEL}', title), is_clickbait from clickbait;
        select count(*)::int from training
      $$;
      notify pgrst, 'reload schema';`).simple());
    await app.gateway.reloadSchema();
    const stats = () => app.gateway.embedder.loaded().find((m) => m.name === EMBED_MODEL)?.batches ?? { batches: 0, items: 0 };
    const before = stats();
    const res = await rpc('embed_headlines', {}, user);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toBe(2000);
    const rows = await db.admin`select count(*)::int as n, min(cardinality(embedding)) as d, count(*) filter (where embedding is null)::int as nulls from training`;
    expect(rows[0]).toMatchObject({ n: 2000, nulls: 0 });
    // one batched computation of 2000 inputs: a handful of model runs (max batch 64), not 2000
    const after = stats();
    expect(after.items - before.items).toBe(2000);
    expect(after.batches - before.batches).toBeGreaterThan(0);
    expect(after.batches - before.batches).toBeLessThanOrEqual(Math.ceil(2000 / 8));
  });

  it('trains clickbait_classifier with pgml.train in SQL: a job owned by the caller, run by the gateway', async () => {
    await asDataPerson((tx) => tx.unsafe(`
      create function model_train() returns setof pgml.train_result language sql as $$
        select * from pgml.train('clickbait_classifier', algorithm => 'xgboost', task => 'classification',
          relation_name => 'training', y_column_name => 'is_clickbait', test_sampling => 'random',
          hyperparams => '{"n_estimators": 30, "max_depth": 4}')
      $$;`).simple());
    await app.gateway.reloadSchema();
    const res = await rpc('model_train', {}, user);
    expect(res.statusCode, res.body).toBe(200);
    const [queued] = res.json();
    expect(queued).toMatchObject({ project: 'clickbait_classifier', task: 'classification', algorithm: 'xgboost', status: 'queued' });
    const job = await waitForJob(queued.job_id);
    expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
    const [owner] = await db.admin`select owner from pgml.jobs where id = ${queued.job_id}`;
    expect(owner.owner).toBe('data_person');
    const listed = await asDataPerson((tx) => tx`select id, name, algorithm from pgml.trained_models`);
    expect(listed.map((r) => [r.name, r.algorithm])).toContainEqual(['clickbait_classifier', 'xgboost']);
  });

  it('POST /rpc/predict_clickbait answers [{"is_clickbait": 0|1}]', async () => {
    await asDataPerson((tx) => tx.unsafe(`
      CREATE FUNCTION predict_clickbait(input_string text) RETURNS TABLE(is_clickbait real) LANGUAGE sql AS $$
        SELECT pgml.predict(project_name => 'clickbait_classifier',
                            features => (SELECT pgml.embed('${EMBED_MODEL}', input_string)))
      $$;
      NOTIFY pgrst, 'reload schema';`).simple());
    await eventually(async () => expect((await rpc('predict_clickbait', { input_string: 'x' }, user)).statusCode).toBe(200), 2000, 25);
    const res = await rpc('predict_clickbait', { input_string: 'Once A Huge Star, Today He Lives Alone in Westlake.' }, user);
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(body).toHaveLength(1);
    expect([0, 1]).toContain(body[0].is_clickbait);
    // the bridge's answer is the model's: the same features through the HTTP predict API
    const emb = (await app.inject({ method: 'POST', url: '/models/embed', payload: JSON.stringify({ model: EMBED_MODEL, inputs: ['Once A Huge Star, Today He Lives Alone in Westlake.'] }), headers: { 'content-type': 'application/json', ...user } })).json().embeddings[0];
    const direct = (await app.inject({ method: 'POST', url: '/models/clickbait_classifier/predict', payload: JSON.stringify({ features: emb }), headers: { 'content-type': 'application/json', ...user } })).json();
    expect(body[0].is_clickbait).toBe(direct.prediction);
  });

  it('the scheduled weekly retrain command works when run (pg_cron runs exactly this)', async () => {
    const before = (await db.admin`select count(*)::int as n from pgml.models m join pgml.projects p on p.id = m.project_id where p.name = 'clickbait_classifier'`)[0].n;
    const [queued] = await asDataPerson((tx) => tx`SELECT * FROM model_train()`);
    expect((await waitForJob(Number(queued.job_id))).status).toBe('succeeded');
    const after = (await db.admin`select count(*)::int as n from pgml.models m join pgml.projects p on p.id = m.project_id where p.name = 'clickbait_classifier'`)[0].n;
    expect(after).toBe(before + 1);
  });
});

describe('scenario 2: the iris flow', () => {
  it('trains iris_model with logistic regression and predicts every row of testing_data through an RPC function', async () => {
    const [queued] = await asDataPerson((tx) => tx`select * from pgml.train('iris_model', 'classification', 'iris_data', 'species', 'logistic')`);
    expect((await waitForJob(Number(queued.job_id))).status).toBe('succeeded');
    await asDataPerson((tx) => tx.unsafe(`
      create function predict_iris() returns table (id int, prediction real) language sql stable as $$
        select id, pgml.predict('iris_model', array[sepal_length, sepal_width, petal_length, petal_width]) from testing_data order by id
      $$;`).simple());
    await app.gateway.reloadSchema();
    const res = await app.inject({ url: '/rpc/predict_iris', headers: user });
    expect(res.statusCode, res.body).toBe(200);
    const rows = res.json() as { id: number; prediction: number }[];
    expect(rows).toHaveLength(150);
    const truth = await db.admin`select id, species from iris_labeled order by id`;
    const classes = ['Iris-setosa', 'Iris-versicolor', 'Iris-virginica'];
    const correct = rows.filter((r, i) => classes[r.prediction] === truth[i].species).length;
    expect(correct / 150).toBeGreaterThan(0.9);
  });

  it('from psql, pgml.predict evaluates the model in SQL and agrees with the gateway within 1e-5', async () => {
    const features = [6.1, 2.8, 4.7, 1.2];
    const sql = await asDataPerson((tx) => tx`select pgml.predict_proba('iris_model', ${features}::real[]) as p, pgml.predict('iris_model', ${features}::real[]) as c`);
    const http = (await app.inject({ method: 'POST', url: '/models/iris_model/predict_proba', payload: JSON.stringify({ features }), headers: { 'content-type': 'application/json', ...user } })).json();
    (sql[0].p as number[]).forEach((p, i) => expect(Math.abs(p - http.probabilities[0][i])).toBeLessThan(1e-5));
    expect(sql[0].c).toBe(http.probabilities[0].indexOf(Math.max(...http.probabilities[0])));
  });

  it('from psql, a deployed tree model agrees too, and the row form works by column name', async () => {
    const [queued] = await asDataPerson((tx) => tx`select * from pgml.train('iris_trees', 'regression', 'testing_data', 'petal_width', 'xgboost', '{"n_estimators": 20, "max_depth": 3}')`);
    expect((await waitForJob(Number(queued.job_id))).status).toBe('succeeded');
    const rows = await asDataPerson((tx) => tx`
      select pgml.predict('iris_trees', array[id, sepal_length, sepal_width, petal_length]::real[]) as by_array,
             pgml.predict('iris_trees', t) as by_row, id, sepal_length, sepal_width, petal_length
      from testing_data t order by id limit 5`);
    for (const r of rows) {
      const http = (await app.inject({ method: 'POST', url: '/models/iris_trees/predict', payload: JSON.stringify({ features: [r.id, r.sepal_length, r.sepal_width, r.petal_length] }), headers: { 'content-type': 'application/json', ...user } })).json();
      expect(Math.abs(r.by_array - http.prediction)).toBeLessThan(1e-5);
      expect(Math.abs(r.by_row - http.prediction)).toBeLessThan(1e-5);
    }
  });
});

describe('the rest of the SQL API', () => {
  it('pgml.embed over text[] returns one row per input, in order', async () => {
    await asDataPerson((tx) => tx.unsafe(`
      create function embed_many(texts text[]) returns table (d int, first real) language sql as $$
        select cardinality(e), e[1] from pgml.embed('${EMBED_MODEL}', texts) as e
      $$;`).simple());
    await app.gateway.reloadSchema();
    const res = await rpc('embed_many', { texts: ['alpha one', 'beta two', 'gamma three'] }, user);
    expect(res.statusCode, res.body).toBe(200);
    const rows = res.json() as { d: number; first: number }[];
    expect(rows).toHaveLength(3);
    const single = (await app.inject({ method: 'POST', url: '/models/embed', payload: JSON.stringify({ model: EMBED_MODEL, inputs: ['alpha one', 'beta two', 'gamma three'] }), headers: { 'content-type': 'application/json', ...user } })).json().embeddings as number[][];
    rows.forEach((r, i) => {
      expect(r.d).toBe(single[i].length);
      expect(r.first).toBeCloseTo(single[i][0], 6);
    });
  });

  it('pgml.predict_batch takes rows flattened into one array', async () => {
    const rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]];
    const batch = await asDataPerson((tx) => tx`select pgml.predict_batch('iris_model', ${rows.flat()}::real[]) as p`);
    const one = await asDataPerson((tx) => Promise.all(rows.map((r) => tx`select pgml.predict('iris_model', ${r}::real[]) as p`)));
    expect(batch.map((r) => r.p)).toEqual(one.map((r) => r[0].p));
    await expect(asDataPerson((tx) => tx`select pgml.predict_batch('iris_model', ${[1, 2, 3]}::real[])`)).rejects.toThrow(/multiple of the model width/);
  });

  it('pgml.deploy deploys by strategy in SQL and every replica serves it', async () => {
    const second = await app.inject({ method: 'POST', url: '/models/train', payload: JSON.stringify({ project_name: 'iris_model', task: 'classification', relation_name: 'iris_data', y_column_name: 'species', algorithm: 'random_forest', automatic_deploy: false }), headers: { 'content-type': 'application/json', ...user } });
    expect(second.statusCode, second.body).toBe(200);
    const [d] = await asDataPerson((tx) => tx`select * from pgml.deploy('iris_model', 'most_recent')`);
    expect(d.deployed).toBe(true);
    const latest = (await db.admin`select max(m.id)::int as id from pgml.models m join pgml.projects p on p.id = m.project_id where p.name = 'iris_model' and m.status = 'successful'`)[0].id;
    const served = (await app.inject({ method: 'POST', url: '/models/iris_model/predict', payload: JSON.stringify({ features: [5.1, 3.5, 1.4, 0.2] }), headers: { 'content-type': 'application/json', ...user } })).json();
    expect(served.model_id).toBe(latest);
    const [rolled] = await asDataPerson((tx) => tx`select * from pgml.deploy('iris_model', 'rollback')`);
    expect(rolled.deployed).toBe(true);
    const after = (await app.inject({ method: 'POST', url: '/models/iris_model/predict', payload: JSON.stringify({ features: [5.1, 3.5, 1.4, 0.2] }), headers: { 'content-type': 'application/json', ...user } })).json();
    expect(after.model_id).not.toBe(latest);
    await expect(asDataPerson((tx) => tx`select * from pgml.deploy('iris_model', 'sideways')`)).rejects.toThrow(/unknown strategy/);
  });
});

describe('bridge semantics', () => {
  it('volatile side effects of a replayed statement happen once', async () => {
    await asDataPerson((tx) => tx.unsafe(`
      create table audit (id serial, note text);
      create function embed_and_log(t text) returns int language sql as $$
        insert into audit(note) values (t);
        select cardinality(pgml.embed('${EMBED_MODEL}', t || ' (logged)'));
      $$;`).simple());
    await app.gateway.reloadSchema();
    const res = await rpc('embed_and_log', { t: `side effect ${Date.now()}` }, user);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toBeGreaterThan(0);
    const n = await db.admin`select count(*)::int as n from audit`;
    expect(n[0].n).toBe(1);
  });

  it('calls that keep producing new work stop after a bounded number of rounds', async () => {
    await asDataPerson((tx) => tx.unsafe(`
      create function chain(t text, depth int) returns text language plpgsql as $$
      declare e real[]; s text := t;
      begin
        for i in 1 .. depth loop
          e := pgml.embed('${EMBED_MODEL}', s);
          if e is null then return null; end if;
          s := s || e[1]::text;
        end loop;
        return s;
      end $$;`).simple());
    await app.gateway.reloadSchema();
    expect((await rpc('chain', { t: `short ${Date.now()}`, depth: 2 }, user)).statusCode).toBe(200);
    const res = await rpc('chain', { t: `long ${Date.now()}`, depth: 12 }, user);
    expect(res.statusCode).toBe(500);
    expect(res.json().code).toBe('PGML508');
  });

  it('from psql, pgml.embed works for cached inputs and otherwise raises an error with a hint', async () => {
    const text = 'Once A Huge Star, Today He Lives Alone in Westlake.';
    const cached = await asDataPerson((tx) => tx`select cardinality(pgml.embed(${EMBED_MODEL}, ${text})) as d`);
    expect(cached[0].d).toBeGreaterThan(0);
    const err = await asDataPerson((tx) => tx`select pgml.embed(${EMBED_MODEL}, ${'never seen before ' + Date.now()})`).catch((e) => e);
    expect(err.message).toMatch(/not in the embeddings cache/);
    expect(err.hint).toMatch(/gateway/);
  });

  it('bad inputs become PostgREST error bodies; another role cannot use the project', async () => {
    await asDataPerson((tx) => tx.unsafe(`
      create function predict_any(project text, f real[]) returns real language sql as $$ select pgml.predict(project, f) $$;
      grant execute on function predict_any(text, real[]) to other_team;`).simple());
    await app.gateway.reloadSchema();
    const unknown = await rpc('predict_any', { project: 'no_such_project', f: [1, 2, 3, 4] }, user);
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().message).toMatch(/not found/);
    const wrongType = await rpc('predict_any', { project: 'iris_model', f: 'abc' }, user);
    expect(wrongType.statusCode).toBe(400);
    expect(Object.keys(wrongType.json()).sort()).toEqual(['code', 'details', 'hint', 'message']);
    const wrongWidth = await rpc('predict_any', { project: 'iris_model', f: [1, 2] }, user);
    expect(wrongWidth.statusCode).toBe(400);
    const denied = await rpc('predict_any', { project: 'iris_model', f: [5.1, 3.5, 1.4, 0.2] }, other);
    expect(denied.statusCode).toBe(404);
  });
});

describe('several replicas on one database', () => {
  it('a deploy through one is served by the other at once, a reload reaches both, a queued job runs once', async () => {
    const second = await startGateway(db);
    try {
      const predictVia = async (gw: FastifyInstance) =>
        (await gw.inject({ method: 'POST', url: '/models/iris_model/predict', payload: JSON.stringify({ features: [5.1, 3.5, 1.4, 0.2] }), headers: { 'content-type': 'application/json', ...user } })).json().model_id;
      const [queued] = await asDataPerson((tx) => tx`select * from pgml.train('iris_model', 'classification', 'iris_data', 'species', 'decision_tree', automatic_deploy => false)`);
      const job = await waitForJob(Number(queued.job_id));
      expect(job.status).toBe('succeeded');
      const [attempts] = await db.admin`select attempts, claimed_by from pgml.jobs where id = ${queued.job_id}`;
      expect(attempts.attempts).toBe(1);
      const deployed = (await app.inject({ method: 'POST', url: '/models/iris_model/deploy', payload: JSON.stringify({ model_id: Number(job.model_id) }), headers: { 'content-type': 'application/json', ...user } })).json();
      expect(deployed.model_id).toBe(Number(job.model_id));
      const t0 = Date.now();
      await eventually(async () => expect(await predictVia(second)).toBe(Number(job.model_id)), 1000, 10);
      expect(Date.now() - t0).toBeLessThan(1000);
      await db.admin.unsafe(`create function both_see_me() returns int language sql as $$ select 1 $$; grant execute on function both_see_me() to data_person; notify pgrst, 'reload schema';`).simple();
      for (const gw of [app, second]) await eventually(async () => expect((await gw.inject({ url: '/rpc/both_see_me', headers: user })).statusCode).toBe(200), 1000, 10);
    } finally {
      await second.close();
    }
  });
});
