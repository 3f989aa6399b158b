import type { FastifyInstance } from 'fastify';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { loadCsv } from './helpers/data.ts';
import { bearer, eventually, startGateway, token } from './helpers/gateway.ts';
import { binaryFeatureMatrix } from '../src/ml/binary-rows.ts';
import { predictMatrix } from '../src/ml/predict-native.ts';
import { predictFeatures } from '../src/ml/serving.ts';

let db: TestDatabase;
let app: FastifyInstance;
let alice: Record<string, string>;
let bob: Record<string, string>;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.admin.unsafe(`
    do $$ begin
      if not exists (select from pg_roles where rolname = 'ml_alice') then create role ml_alice nologin; end if;
      if not exists (select from pg_roles where rolname = 'ml_bob') then create role ml_bob nologin; end if;
    end $$;
    grant ml_alice, ml_bob to authenticator;
  `).simple();
  await loadCsv(db.admin, 'iris', 'sepal_length float8, sepal_width float8, petal_length float8, petal_width float8, species text', 'iris/iris.csv');
  await loadCsv(db.admin, 'housing', 'longitude float8, latitude float8, housing_median_age float8, total_rooms float8, total_bedrooms float8, population float8, households float8, median_income float8, median_house_value float8, ocean_proximity text', 'california_housing/housing.csv');
  await loadCsv(db.admin, 'adult', 'age int, workclass text, education text, education_num int, marital_status text, occupation text, relationship text, race text, sex text, capital_gain int, capital_loss int, hours_per_week int, native_country text, income_gt_50k int', 'adult_income/adult_income.csv');
  await db.admin.unsafe(`
    create table empty_t (x float8, y float8);
    create table labels_with_nulls (x float8, y float8); insert into labels_with_nulls values (1, 1), (2, null), (3, 3);
    create table secret_rows (x float8, y float8, tenant text);
    insert into secret_rows select g, g * 2, case when g % 2 = 0 then 'ml_alice' else 'ml_bob' end from generate_series(1, 40) g;
    alter table secret_rows enable row level security;
    create policy mine on secret_rows using (tenant = current_user);
    create function ping() returns int language sql as $$ select 1 $$;
    grant select on iris, housing, adult, empty_t, labels_with_nulls, secret_rows to ml_alice, ml_bob;
    grant execute on function ping() to ml_alice, ml_bob, anon;
  `).simple();
  app = await startGateway(db);
  alice = bearer(await token({ role: 'ml_alice' }));
  bob = bearer(await token({ role: 'ml_bob' }));
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

const post = (url: string, body: unknown, headers: Record<string, string>) =>
  app.inject({ method: 'POST', url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });

describe('training on real data', () => {
  it('iris: logistic classification reaches accuracy ≥ 0.9 and predicts the label as in the data', async () => {
    const res = await post('/models/train', { project_name: 'iris_model', task: 'classification', relation_name: 'iris', y_column_name: 'species', algorithm: 'logistic', test_sampling: 'stratified' }, alice);
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ project: 'iris_model', task: 'classification', algorithm: 'logistic', deployed: true });
    expect(body.metrics.accuracy).toBeGreaterThanOrEqual(0.9);
    for (const k of ['f1', 'precision', 'recall', 'mcc', 'fit_time', 'score_time']) expect(typeof body.metrics[k]).toBe('number');
    const one = await post('/models/iris_model/predict', { features: [5.1, 3.5, 1.4, 0.2] }, alice);
    expect(one.json().prediction).toBe('Iris-setosa');
    const many = await post('/models/iris_model/predict', { features: [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]] }, alice);
    expect(many.json().predictions).toEqual(['Iris-setosa', 'Iris-virginica']);
    const byName = await post('/models/iris_model/predict', { rows: [{ petal_width: 0.2, petal_length: 1.4, sepal_width: 3.5, sepal_length: 5.1 }] }, alice);
    expect(byName.json().predictions).toEqual(['Iris-setosa']);
    const proba = await post('/models/iris_model/predict_proba', { features: [5.1, 3.5, 1.4, 0.2] }, alice);
    expect(proba.json().classes).toEqual(['Iris-setosa', 'Iris-versicolor', 'Iris-virginica']);
    const p = proba.json().probabilities[0] as number[];
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    expect(p[0]).toBeGreaterThan(0.5);
  });

  it('California housing: xgboost regression reaches r2 ≥ 0.8, with a text categorical and NULLs imputed', async () => {
    const res = await post('/models/train', {
      project_name: 'housing', task: 'regression', relation_name: 'housing', y_column_name: 'median_house_value', algorithm: 'xgboost',
      hyperparams: { n_estimators: 150, max_depth: 6, learning_rate: 0.1 }, preprocess: { total_bedrooms: { impute: 'median' }, ocean_proximity: { encode: 'one_hot' } },
    }, alice);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().metrics.r2).toBeGreaterThanOrEqual(0.8);
    const pred = await post('/models/housing/predict', { rows: [{ longitude: -122.23, latitude: 37.88, housing_median_age: 41, total_rooms: 880, total_bedrooms: null, population: 322, households: 126, median_income: 8.3252, ocean_proximity: 'NEAR BAY' }] }, alice);
    expect(pred.statusCode, pred.body).toBe(200);
    expect(pred.json().predictions[0]).toBeGreaterThan(200000);
  });

  it('adult income: text categoricals with NULLs need preprocess, then train', async () => {
    const refused = await post('/models/train', { project_name: 'adult', task: 'classification', relation_name: 'adult', y_column_name: 'income_gt_50k', algorithm: 'xgboost' }, alice);
    expect(refused.statusCode).toBe(400);
    expect(refused.json().message + refused.json().hint).toMatch(/NULL|impute/i);
    const cats = ['workclass', 'education', 'marital_status', 'occupation', 'relationship', 'race', 'sex', 'native_country'];
    const res = await post('/models/train', {
      project_name: 'adult', task: 'classification', relation_name: 'adult', y_column_name: 'income_gt_50k', algorithm: 'xgboost',
      hyperparams: { n_estimators: 60, max_depth: 5 }, preprocess: Object.fromEntries(cats.map((c) => [c, { encode: 'one_hot', impute: 'mode' }])),
    }, alice);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().metrics.roc_auc).toBeGreaterThan(0.88);
    expect(res.json().metrics.accuracy).toBeGreaterThan(0.8);
  });
});

describe('registry and deployment', () => {
  it('lists projects and a project with models and deployment history', async () => {
    const list = (await app.inject({ url: '/models', headers: alice })).json() as { name: string; deployed_model: { model_id: number } }[];
    expect(list.map((p) => p.name)).toEqual(expect.arrayContaining(['iris_model', 'housing']));
    const iris = (await app.inject({ url: '/models/iris_model', headers: alice })).json();
    expect(iris.models.length).toBeGreaterThanOrEqual(1);
    expect(iris.deployments.length).toBeGreaterThanOrEqual(1);
    expect(iris.deployed_model_id).toBe(iris.deployments.at(-1).model_id);
  });

  it('the owner deletes a model (its deployments go with it) and then the project', async () => {
    const train = (extra: Record<string, unknown>) => post('/models/train', { project_name: 'gone', task: 'classification', relation_name: 'iris', y_column_name: 'species', algorithm: 'logistic', ...extra }, alice);
    const first = (await train({})).json();
    const second = (await train({ algorithm: 'decision_tree', automatic_deploy: false })).json();
    expect([first.deployed, second.deployed]).toEqual([true, false]);
    const del = (url: string) => app.inject({ method: 'DELETE', url, headers: alice });
    const predictGone = () => post('/models/gone/predict', { features: [5.1, 3.5, 1.4, 0.2] }, alice);
    expect((await del(`/models/gone/models/${second.model_id}`)).statusCode).toBe(204);
    expect((await del(`/models/gone/models/${second.model_id}`)).statusCode).toBe(404);
    expect((await app.inject({ url: '/models/gone', headers: alice })).json().models.map((m: { id: number }) => m.id)).toEqual([first.model_id]);
    expect((await predictGone()).json().model_id).toBe(first.model_id);
    // the deployed model: its deployment rows go too, so nothing is served
    expect((await del(`/models/gone/models/${first.model_id}`)).statusCode).toBe(204);
    const none = await predictGone();
    expect(none.statusCode).toBe(404);
    expect(none.json().message).toMatch(/no deployed model/);
    expect((await del('/models/gone')).statusCode).toBe(204);
    expect((await app.inject({ url: '/models/gone', headers: alice })).statusCode).toBe(404);
    expect((await del('/models/gone')).statusCode).toBe(404);
    expect((await db.admin`select count(*)::int as n from pgml.projects where name = 'gone'`)[0].n).toBe(0);
  });

  it('deploy strategies: best_score compares numerically, most_recent, rollback, model_id', async () => {
    const a = (await post('/models/train', { project_name: 'strat', task: 'regression', relation_name: 'housing', y_column_name: 'median_house_value', algorithm: 'linear', preprocess: { total_bedrooms: { impute: 'mean' }, ocean_proximity: { encode: 'one_hot' } } }, alice)).json();
    const b = (await post('/models/train', { project_name: 'strat', task: 'regression', relation_name: 'housing', y_column_name: 'median_house_value', algorithm: 'xgboost', hyperparams: { n_estimators: 40 }, preprocess: { total_bedrooms: { impute: 'mean' }, ocean_proximity: { encode: 'one_hot' } } }, alice)).json();
    expect(b.metrics.r2).toBeGreaterThan(a.metrics.r2);
    expect(b.deployed).toBe(true);
    const c = (await post('/models/train', { project_name: 'strat', task: 'regression', relation_name: 'housing', y_column_name: 'median_house_value', algorithm: 'lasso', preprocess: { total_bedrooms: { impute: 'mean' }, ocean_proximity: { encode: 'one_hot' } } }, alice)).json();
    expect(c.deployed).toBe(false);
    expect((await post('/models/strat/deploy', { strategy: 'most_recent' }, alice)).json().model_id).toBe(c.model_id);
    expect((await post('/models/strat/deploy', { strategy: 'best_score' }, alice)).json().model_id).toBe(b.model_id);
    expect((await post('/models/strat/deploy', { strategy: 'rollback' }, alice)).json().model_id).toBe(c.model_id);
    expect((await post('/models/strat/deploy', { strategy: 'most_recent', algorithm: 'linear' }, alice)).json().model_id).toBe(a.model_id);
    expect((await post('/models/strat/deploy', { model_id: b.model_id }, alice)).json().model_id).toBe(b.model_id);
    expect((await post('/models/strat/deploy', { strategy: 'sideways' }, alice)).statusCode).toBe(400);
    const rows = await db.admin`select strategy::text from pgml.deployments d join pgml.projects p on p.id = d.project_id where p.name = 'strat' order by d.id`;
    expect(rows.map((r) => r.strategy)).toEqual(['new_score', 'new_score', 'most_recent', 'best_score', 'rollback', 'most_recent', 'specific']);
  });

  it('the ONNX download runs in onnxruntime and agrees with the served prediction', async () => {
    const iris = (await app.inject({ url: '/models/iris_model', headers: alice })).json();
    const res = await app.inject({ url: `/models/iris_model/models/${iris.deployed_model_id}/onnx`, headers: alice });
    expect(res.statusCode).toBe(200);
    const session = await ort.InferenceSession.create(res.rawPayload);
    const out = await session.run({ input: new ort.Tensor('float32', Float32Array.from([6.7, 3.0, 5.2, 2.3]), [1, 4]) });
    const probs = Array.from(out.probabilities.data as Float32Array);
    const served = (await post('/models/iris_model/predict_proba', { features: [6.7, 3.0, 5.2, 2.3] }, alice)).json().probabilities[0];
    probs.forEach((p, i) => expect(p).toBeCloseTo(served[i], 5));
  });

  it('large batches (flat tree evaluator, split over threads) agree with single-row predictions', async () => {
    const rows = await db.admin`select longitude, latitude, housing_median_age, total_rooms, total_bedrooms, population, households, median_income, ocean_proximity from housing limit 600`;
    const batch = (await post('/models/housing/predict', { rows }, alice)).json().predictions as number[];
    expect(batch).toHaveLength(600);
    for (let i = 0; i < 600; i += 97) {
      const one = (await post('/models/housing/predict', { rows: [rows[i]] }, alice)).json().predictions[0];
      expect(Math.abs(one - batch[i]) / Math.max(1, Math.abs(one))).toBeLessThan(1e-5);
    }
  });
});

describe('bad inputs → clear 4xx', () => {
  const base = { project_name: 'bad', task: 'regression', relation_name: 'housing', y_column_name: 'median_house_value', algorithm: 'linear' };
  it.each([
    [{ ...base, relation_name: 'no_such_table' }, /does not exist/],
    [{ ...base, y_column_name: 'nope' }, /column "nope" does not exist/],
    [{ ...base, y_column_name: 'ocean_proximity' }, /numeric/],
    [{ ...base, relation_name: 'empty_t', y_column_name: 'y' }, /empty/],
    [{ ...base, relation_name: 'labels_with_nulls', y_column_name: 'y' }, /NULL/],
    [{ ...base, algorithm: 'quantum' }, /quantum/],
    [{ ...base, task: 'astrology' }, /./],
    [{ ...base, hyperparams: { nonsense: 1 } }, /nonsense/],
    [{ ...base, extra_key: 1 }, /./],
  ])('%#', async (body, pattern) => {
    const res = await post('/models/train', body, alice);
    expect(res.statusCode, res.body).toBe(400);
    const e = res.json();
    expect(Object.keys(e).sort()).toEqual(['code', 'details', 'hint', 'message']);
    expect(`${e.message} ${e.details} ${e.hint}`).toMatch(pattern);
  });

  it('wrong feature width, non-numeric features, unknown project', async () => {
    const wide = await post('/models/iris_model/predict', { features: [1, 2, 3] }, alice);
    expect(wide.statusCode).toBe(400);
    expect(wide.json().message).toMatch(/expected 4 features, got 3/);
    expect((await post('/models/iris_model/predict', { features: [1, 2, 'x', 4] }, alice)).statusCode).toBe(400);
    expect((await post('/models/iris_model/predict', { nothing: true }, alice)).statusCode).toBe(400);
    expect((await post('/models/nobody/predict', { features: [1] }, alice)).statusCode).toBe(404);
  });
});

describe('binary batch bodies', () => {
  const NUMERIC = ['longitude', 'latitude', 'housing_median_age', 'total_rooms', 'total_bedrooms', 'population', 'households', 'median_income'];
  let rows: (number | null)[][];
  const binary = (url: string, body: Buffer, contentType: string, headers: Record<string, string>) =>
    app.inject({ method: 'POST', url, payload: body, headers: { 'content-type': contentType, ...headers } });
  const float32Body = (values: (number | null)[][]) => Buffer.from(Float32Array.from(values.flat(), (v) => (v === null ? NaN : v)).buffer);
  const float64Body = (values: (number | null)[][]) => Buffer.from(Float64Array.from(values.flat(), (v) => (v === null ? NaN : v)).buffer);
  const fround = (values: (number | null)[][]) => values.map((r) => r.map((v) => (v === null ? null : Math.fround(v))));

  beforeAll(async () => {
    await db.admin.unsafe(`create view housing_numeric as select ${NUMERIC.join(', ')}, median_house_value from housing;
      grant select on housing_numeric to ml_alice, ml_bob`);
    const res = await post('/models/train', {
      project_name: 'housing_numeric', task: 'regression', relation_name: 'housing_numeric', y_column_name: 'median_house_value', algorithm: 'xgboost',
      hyperparams: { n_estimators: 40, max_depth: 6 }, preprocess: { total_bedrooms: { impute: 'median' } },
    }, alice);
    expect(res.statusCode, res.body).toBe(200);
    const data = await db.admin.unsafe(`select ${NUMERIC.join(', ')} from housing order by total_bedrooms is null desc, longitude, latitude limit 3000`);
    rows = data.map((r) => NUMERIC.map((c) => r[c] as number | null));
    expect(rows.some((r) => r.includes(null))).toBe(true);
  });

  it('a float32 body predicts what the JSON batch of the same (float32) values predicts, NULLs as NaN', async () => {
    const json = await post('/models/housing_numeric/predict', { features: fround(rows) }, alice);
    expect(json.statusCode, json.body).toBe(200);
    for (let attempt = 0; attempt < 2; attempt++) {
      // the first large batch starts the predict worker; the second is split over it
      const bin = await binary('/models/housing_numeric/predict', float32Body(rows), 'application/octet-stream', alice);
      expect(bin.statusCode, bin.body).toBe(200);
      expect(bin.json()).toEqual(json.json());
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  });

  it('a float64 body carries the exact values: the same answer as JSON', async () => {
    const json = await post('/models/housing_numeric/predict', { features: rows.slice(0, 700) }, alice);
    const bin = await binary('/models/housing_numeric/predict', float64Body(rows.slice(0, 700)), 'application/x-float64; charset=binary', alice);
    expect(bin.statusCode, bin.body).toBe(200);
    expect(bin.json()).toEqual(json.json());
    expect(bin.json().predictions).toHaveLength(700);
  });

  it('predict_proba with a float32 body equals the JSON answer', async () => {
    const iris = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]];
    const json = await post('/models/iris_model/predict_proba', { features: fround(iris) }, alice);
    const bin = await binary('/models/iris_model/predict_proba', float32Body(iris), 'application/octet-stream', alice);
    expect(bin.statusCode, bin.body).toBe(200);
    expect(bin.json()).toEqual(json.json());
    expect(bin.json().probabilities).toHaveLength(3);
    const labels = await binary('/models/iris_model/predict', float32Body(iris), 'application/octet-stream', alice);
    expect(labels.json()).toEqual((await post('/models/iris_model/predict', { features: fround(iris) }, alice)).json());
  });

  it('the served (flat) predictions of the trained model equal the exact native path', async () => {
    const [{ id }] = await db.admin`select d.model_id::text as id from pgml.deployments d join pgml.projects p on p.id = d.project_id where p.name = 'housing_numeric' order by d.id desc limit 1`;
    const loaded = app.gateway.models.peek(id as string)!;
    expect(loaded.flat).not.toBeNull();
    const { x, rows: n } = binaryFeatureMatrix(loaded, float64Body(rows), 'float64');
    const served = await predictFeatures(loaded, x, n);
    const exact = predictMatrix(loaded.native!, { data: x, rows: n, cols: loaded.meta.featureCount });
    expect(Array.from(served.values)).toEqual(Array.from(exact));
  });

  it('bad bodies → 400 in PostgREST\'s error shape; other content types → 415', async () => {
    const d = NUMERIC.length;
    const cases: [Buffer, string, string, RegExp][] = [
      [Buffer.alloc(4 * d + 4), 'application/octet-stream', 'housing_numeric', /whole rows of 8 features \(32 bytes each\); got 36 bytes/],
      [Buffer.alloc(3), 'application/octet-stream', 'housing_numeric', /whole rows/],
      [Buffer.alloc(4 * d), 'application/x-float64', 'housing_numeric', /float64 body must hold whole rows of 8 features \(64 bytes each\)/],
      [Buffer.alloc(0), 'application/octet-stream', 'housing_numeric', /empty/],
      [float32Body([[-122.23, 37.88, 41, 880, 129, 322, 126, 8.3252, 0]]), 'application/octet-stream', 'housing', /text/],
      [Buffer.from(JSON.stringify({ features: [1, 2, 3, 4, 5, 6, 7] })), 'application/octet-stream', 'housing_numeric', /whole rows/],
    ];
    for (const [body, type, project, pattern] of cases) {
      const res = await binary(`/models/${project}/predict`, body, type, alice);
      expect(res.statusCode, `${type} ${body.length} bytes → ${project}: ${res.body}`).toBe(400);
      const e = res.json();
      expect(Object.keys(e).sort()).toEqual(['code', 'details', 'hint', 'message']);
      expect(`${e.message} ${e.details} ${e.hint}`).toMatch(pattern);
    }
    const csv = await binary('/models/housing_numeric/predict', Buffer.from('1,2,3'), 'text/csv', alice);
    expect(csv.statusCode).toBe(415);
    expect(Object.keys(csv.json()).sort()).toEqual(['code', 'details', 'hint', 'message']);
  });

  it('the access check is the JSON path\'s: another role gets 404', async () => {
    expect((await binary('/models/housing_numeric/predict', float32Body(rows.slice(0, 2)), 'application/octet-stream', bob)).statusCode).toBe(404);
    expect((await binary('/models/housing_numeric/predict', float32Body(rows.slice(0, 2)), 'application/octet-stream', alice)).statusCode).toBe(200);
  });
});

describe('tenant isolation (RLS)', () => {
  it('another role cannot list, describe, predict, deploy, delete or export a project', async () => {
    const list = (await app.inject({ url: '/models', headers: bob })).json() as { name: string }[];
    expect(list.map((p) => p.name)).not.toContain('iris_model');
    expect((await app.inject({ url: '/models/iris_model', headers: bob })).statusCode).toBe(404);
    expect((await post('/models/iris_model/predict', { features: [5.1, 3.5, 1.4, 0.2] }, bob)).statusCode).toBe(404);
    expect((await post('/models/iris_model/deploy', { strategy: 'most_recent' }, bob)).statusCode).toBe(404);
    expect((await app.inject({ method: 'DELETE', url: '/models/iris_model', headers: bob })).statusCode).toBe(404);
    const id = (await db.admin`select id from pgml.models order by id limit 1`)[0].id;
    expect((await app.inject({ url: `/models/iris_model/models/${id}/onnx`, headers: bob })).statusCode).toBe(404);
    expect((await app.inject({ url: '/models/iris_model', headers: alice })).statusCode).toBe(200);
    const anon = await app.inject({ url: '/models' });
    expect(anon.json()).toEqual([]);
  });

  it('two roles can use the same project name independently', async () => {
    const res = await post('/models/train', { project_name: 'iris_model', task: 'classification', relation_name: 'iris', y_column_name: 'species', algorithm: 'decision_tree' }, bob);
    expect(res.statusCode, res.body).toBe(200);
    const bobs = (await app.inject({ url: '/models/iris_model', headers: bob })).json();
    const alices = (await app.inject({ url: '/models/iris_model', headers: alice })).json();
    expect(bobs.owner).toBe('ml_bob');
    expect(alices.owner).toBe('ml_alice');
    expect(bobs.models.map((m: { algorithm: string }) => m.algorithm)).toEqual(['decision_tree']);
    // predicts of both arriving together share writes to PostgreSQL; each still gets its own model
    const calls = Array.from({ length: 16 }, (_, i) => (i % 2 ? bob : alice));
    const answers = await Promise.all(calls.map((who) => post('/models/iris_model/predict', { features: [5.1, 3.5, 1.4, 0.2] }, who)));
    answers.forEach((a, i) => {
      expect(a.statusCode, a.body).toBe(200);
      expect(a.json().model_id).toBe(calls[i] === bob ? bobs.deployed_model_id : alices.deployed_model_id);
    });
    expect(bobs.deployed_model_id).not.toBe(alices.deployed_model_id);
  });

  it('training reads the relation as the caller: RLS on the data holds', async () => {
    const res = await post('/models/train', { project_name: 'secret', task: 'regression', relation_name: 'secret_rows', y_column_name: 'y', algorithm: 'linear', test_size: 2 }, alice);
    expect(res.statusCode, res.body).toBe(200);
    const snap = await db.admin`select s.analysis from pgml.snapshots s join pgml.models m on m.snapshot_id = s.id join pgml.projects p on p.id = m.project_id where p.name = 'secret'`;
    expect(snap[0].analysis.rows).toBe(20);
  });

  it('a role without a grant on the data gets 403 and no project', async () => {
    await db.admin.unsafe('create table private_data (x float8, y float8); insert into private_data values (1, 2)');
    const res = await post('/models/train', { project_name: 'stolen', task: 'regression', relation_name: 'private_data', y_column_name: 'y' }, bob);
    expect(res.statusCode).toBe(403);
    expect((await db.admin`select count(*)::int as n from pgml.projects where name = 'stolen'`)[0].n).toBe(0);
  });
});

describe('asynchronous training', () => {
  it('Prefer: respond-async → 202 with a job URL; the job runs as its owner and succeeds', async () => {
    const res = await post('/models/train', { project_name: 'async_iris', task: 'classification', relation_name: 'iris', y_column_name: 'species', algorithm: 'random_forest' }, { ...alice, prefer: 'respond-async' });
    expect(res.statusCode).toBe(202);
    const url = res.headers.location as string;
    expect(url).toMatch(/^\/models\/jobs\/\d+$/);
    const job = await eventually(async () => {
      const j = (await app.inject({ url, headers: alice })).json();
      expect(j.status).toBe('succeeded');
      return j;
    }, 20000, 100);
    expect(job.progress).toBe(1);
    expect(job.result.metrics.accuracy).toBeGreaterThan(0.85);
    expect(job.owner).toBe('ml_alice');
    expect((await app.inject({ url, headers: bob })).statusCode).toBe(404);
  });

  it('a cancelled job stops within a second and leaves nothing deployable', async () => {
    const res = await post('/models/train', { project_name: 'to_cancel', task: 'regression', relation_name: 'housing', y_column_name: 'median_house_value', algorithm: 'xgboost', hyperparams: { n_estimators: 5000, max_depth: 8 }, preprocess: { total_bedrooms: { impute: 'mean' }, ocean_proximity: { encode: 'one_hot' } } }, { ...alice, prefer: 'respond-async' });
    const url = res.headers.location as string;
    await eventually(async () => expect((await app.inject({ url, headers: alice })).json().status).toBe('running'), 10000, 50);
    await eventually(async () => expect((await app.inject({ url, headers: alice })).json().model_id).not.toBeNull(), 10000, 50);
    expect((await app.inject({ method: 'DELETE', url, headers: bob })).statusCode).toBe(404);
    const t0 = Date.now();
    expect((await app.inject({ method: 'DELETE', url, headers: alice })).statusCode).toBe(200);
    const job = await eventually(async () => {
      const j = (await app.inject({ url, headers: alice })).json();
      expect(j.status).toBe('cancelled');
      return j;
    }, 3000, 25);
    expect(Date.now() - t0).toBeLessThan(1500);
    const model = await db.admin`select status from pgml.models where id = ${job.model_id}`;
    expect(model[0].status).toBe('failed');
    expect((await db.admin`select count(*)::int as n from pgml.deployments where model_id = ${job.model_id}`)[0].n).toBe(0);
  });

  it('/rpc stays responsive while a large model trains (training runs in a worker thread)', async () => {
    const training = post('/models/train', { project_name: 'big', task: 'regression', relation_name: 'housing', y_column_name: 'median_house_value', algorithm: 'xgboost', hyperparams: { n_estimators: 300, max_depth: 8 }, preprocess: { total_bedrooms: { impute: 'mean' }, ocean_proximity: { encode: 'one_hot' } } }, alice);
    let done = false;
    const started = performance.now();
    let trainingMs = 0;
    void training.then(() => {
      done = true;
      trainingMs = performance.now() - started;
    });
    await new Promise((r) => setTimeout(r, 300));
    const latencies: number[] = [];
    while (!done && latencies.length < 200) {
      const t0 = performance.now();
      expect((await app.inject({ url: '/rpc/ping', headers: alice })).json()).toBe(1);
      latencies.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect((await training).statusCode).toBe(200);
    expect(latencies.length).toBeGreaterThan(5);
    latencies.sort((a, b) => a - b);
    // Training on the event loop would stall a ping for (most of) the training. Off it, even the
    // slowest ping is a small fraction of the training time, however loaded the machine is.
    expect(latencies[latencies.length - 1]).toBeLessThan(Math.min(2000, trainingMs / 4));
  });
});
