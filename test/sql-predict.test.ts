/**
 * pgml.predict evaluated by PostgreSQL itself (sql/008: models compiled to SQL): every algorithm ×
 * task agrees with the gateway's HTTP predictions — labels equal, probabilities within 1e-5 —
 * from psql, through /rpc (with no bridge round), and through the interpreter fallback; and
 * the compiler cannot be abused by a tenant.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { loadCsv } from './helpers/data.ts';
import { bearer, startGateway, token } from './helpers/gateway.ts';

let db: TestDatabase;
let app: FastifyInstance;
let user: Record<string, string>;
let other: Record<string, string>;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.admin.unsafe(`
    do $$ begin
      if not exists (select from pg_roles where rolname = 'sp_person') then create role sp_person nologin; end if;
      if not exists (select from pg_roles where rolname = 'sp_other') then create role sp_other nologin; end if;
    end $$;
    grant sp_person, sp_other to authenticator;
    grant usage, create on schema public to sp_person, sp_other;
  `).simple();
  await loadCsv(db.admin, 'iris_src', 'sepal_length real, sepal_width real, petal_length real, petal_width real, species text', 'iris/iris.csv');
  await db.admin.unsafe(`
    alter table iris_src add column id serial;
    -- every task from one data set: text labels (the issue's case), numeric multiclass, binary, regression, clustering
    create table iris_text as select sepal_length, sepal_width, petal_length, petal_width, species from iris_src order by id;
    create table iris_mc as select sepal_length, sepal_width, petal_length, petal_width,
      (case species when 'Iris-setosa' then 0 when 'Iris-versicolor' then 1 else 2 end) as label from iris_src order by id;
    create table iris_bin as select sepal_length, sepal_width, petal_length, petal_width, (species = 'Iris-virginica')::int as label from iris_src order by id;
    create table iris_reg as select sepal_length, sepal_width, petal_length, petal_width from iris_src order by id;
    create table iris_clu as select sepal_length, sepal_width, petal_length, petal_width from iris_src order by id;
    -- preprocessing folded in: NULLs imputed, standard scaling
    create table iris_pre as select case when id % 7 = 0 then null else sepal_length end as sepal_length, sepal_width, petal_length, petal_width,
      (case species when 'Iris-setosa' then 0 when 'Iris-versicolor' then 1 else 2 end) as label from iris_src order by id;
    -- rows to predict: the 150 iris rows, some with NULLs (imputed by models that impute)
    create table probe as select id, sepal_length, sepal_width, petal_length, petal_width from iris_src;
    insert into probe values (1001, null, 3.0, 4.0, 1.3), (1002, 7.9, 4.4, 6.9, 2.5), (1003, 4.3, 2.0, 1.0, 0.1);
  `).simple();
  for (const t of ['iris_text', 'iris_mc', 'iris_bin', 'iris_reg', 'iris_clu', 'iris_pre', 'probe']) await db.admin.unsafe(`alter table ${t} owner to sp_person`);
  app = await startGateway(db);
  user = bearer(await token({ role: 'sp_person' }));
  other = bearer(await token({ role: 'sp_other' }));
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

const json = (headers: Record<string, string>) => ({ 'content-type': 'application/json', ...headers });

async function asRole<T>(role: string, fn: (tx: import('postgres').TransactionSql) => Promise<T>): Promise<T> {
  return db.admin.begin(async (tx) => {
    await tx.unsafe(`set local role ${role}`);
    return fn(tx);
  }) as Promise<T>;
}

async function train(project: string, task: string, relation: string, y: string | undefined, algorithm: string, extra: Record<string, unknown> = {}) {
  const res = await app.inject({
    method: 'POST', url: '/models/train', headers: json(user),
    payload: JSON.stringify({ project_name: project, task, relation_name: relation, y_column_name: y, algorithm, test_sampling: 'random', ...extra }),
  });
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as { model_id: number; deployed: boolean };
}

interface Probe { id: number; f: (number | null)[] }

async function probeRows(withNulls: boolean): Promise<Probe[]> {
  const rows = await db.admin`select id, array[sepal_length::float8, sepal_width::float8, petal_length::float8, petal_width::float8] as f from probe order by id`;
  // postgres.js reads a NULL element of a float8[] as NaN: NULL it is
  return rows.map((r) => ({ id: r.id as number, f: (r.f as number[]).map((v) => (Number.isFinite(v) ? v : null)) })).filter((r) => withNulls || r.f.every((v) => v !== null));
}

async function httpPredict(project: string, rows: (number | null)[][], proba: boolean) {
  const res = await app.inject({ method: 'POST', url: `/models/${project}/${proba ? 'predict_proba' : 'predict'}`, headers: json(user), payload: JSON.stringify({ features: rows }) });
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
}

interface Case { project: string; task: 'regression' | 'classification' | 'clustering'; relation: string; y?: string; algorithm: string; width: number; extra?: Record<string, unknown>; nulls?: boolean; textLabels?: boolean }

const CASES: Case[] = [
  // the issue's case first: multiclass xgboost on iris with text labels
  { project: 'xgb_iris_text', task: 'classification', relation: 'iris_text', y: 'species', algorithm: 'xgboost', width: 4, textLabels: true, extra: { hyperparams: { n_estimators: 30 } } },
  ...['xgboost', 'random_forest', 'decision_tree', 'linear', 'logistic'].map((a): Case => ({ project: `mc_${a}`, task: 'classification', relation: 'iris_mc', y: 'label', algorithm: a, width: 4, extra: a === 'random_forest' || a === 'xgboost' ? { hyperparams: { n_estimators: 20 } } : {} })),
  ...['xgboost', 'random_forest', 'decision_tree', 'linear', 'logistic'].map((a): Case => ({ project: `bin_${a}`, task: 'classification', relation: 'iris_bin', y: 'label', algorithm: a, width: 4, extra: a === 'random_forest' || a === 'xgboost' ? { hyperparams: { n_estimators: 20 } } : {} })),
  ...['xgboost', 'random_forest', 'decision_tree', 'linear', 'ridge', 'lasso', 'elastic_net'].map((a): Case => ({ project: `reg_${a}`, task: 'regression', relation: 'iris_reg', y: 'petal_width', algorithm: a, width: 3, extra: a === 'random_forest' || a === 'xgboost' ? { hyperparams: { n_estimators: 20 } } : {} })),
  { project: 'clu_kmeans', task: 'clustering', relation: 'iris_clu', algorithm: 'kmeans', width: 4, extra: { hyperparams: { n_clusters: 3 } } },
  ...['xgboost', 'logistic'].map((a): Case => ({ project: `pre_${a}`, task: 'classification', relation: 'iris_pre', y: 'label', algorithm: a, width: 4, nulls: true,
    extra: { preprocess: { sepal_length: { impute: 'mean', scale: 'standard' }, sepal_width: { scale: 'min_max' } }, ...(a === 'xgboost' ? { hyperparams: { n_estimators: 20 } } : {}) } })),
];

async function metric(name: string, label: string): Promise<number> {
  const text = (await app.inject({ url: '/metrics' })).body;
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(label));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('pgml.predict in SQL agrees with the gateway for every algorithm × task', () => {
  for (const c of CASES) {
    it(`${c.task} ${c.algorithm} (${c.project}): psql, /rpc and the interpreter equal HTTP`, async () => {
      const trained = await train(c.project, c.task, c.relation, c.y, c.algorithm, c.extra);
      expect(trained.deployed).toBe(true);
      const probes = await probeRows(c.nulls === true);
      const feats = probes.map((p) => p.f.slice(0, c.width));
      const http = await httpPredict(c.project, feats, false);
      const classification = c.task === 'classification';
      const proba = classification ? ((await httpPredict(c.project, feats, true)).probabilities as number[][]) : null;
      const classes = classification ? ((await httpPredict(c.project, feats.slice(0, 1), true)).classes as unknown[]) : null;
      // the label HTTP answers, as SQL answers it: numeric labels as numbers, text labels as the class index
      const expected = (http.predictions as unknown[]).map((v) => (c.textLabels ? classes!.indexOf(v) : Number(v)));

      const cols = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'].slice(0, c.width).join(', ');
      const ids = probes.map((p) => p.id);
      const select = `select id, pgml.predict('${c.project}', array[${cols}]) as prediction,
        ${classification ? `pgml.predict_proba('${c.project}', array[${cols}])` : 'null::real[]'} as proba
        from probe where id = any($1::int[]) order by id`;
      const psql = await asRole('sp_person', (tx) => tx.unsafe(select, [ids as never])).catch((e) => { throw new Error(`psql: ${e.message} ${e.where}`); });
      // the model is compiled (not left to the interpreter)
      const [compiled] = await db.admin`select count(*)::int as n from pg_proc where pronamespace = 'pgml_compiled'::regnamespace and proname = ${'m' + trained.model_id}`;
      expect(compiled.n).toBe(1);

      // through /rpc: evaluated in SQL, no bridge round
      await asRole('sp_person', (tx) => tx.unsafe(`create function ${c.project}_all(ids int[]) returns table (id int, prediction real, proba real[]) language sql stable as $$ ${select.replace('$1::int[]', 'ids')} $$`));
      await app.gateway.reloadSchema();
      const before = await metric('pgml_bridge_calls_total', 'fn="predict"');
      const res = await app.inject({ method: 'POST', url: `/rpc/${c.project}_all`, headers: json(user), payload: JSON.stringify({ ids }) });
      expect(res.statusCode, res.body).toBe(200);
      const rpc = res.json() as { id: number; prediction: number; proba: number[] | null }[];
      expect(await metric('pgml_bridge_calls_total', 'fn="predict"')).toBe(before);

      // the interpreter (fallback for models too big to compile, rows with NaN) agrees too
      const interp = await asRole('sp_person', (tx) => tx.unsafe(`select id, pgml._evaluate_model($2, array[${cols}]::float8[], false)::real[] as p,
          pgml._evaluate_model($2, array[${cols}]::float8[], true)::real[] as q from probe where id = any($1::int[]) order by id`, [ids as never, trained.model_id])).catch((e) => { throw new Error(`interp: ${e.message} ${e.where}`); });

      expect(psql).toHaveLength(probes.length);
      expect(rpc).toHaveLength(probes.length);
      const bad: string[] = [];
      probes.forEach((p, i) => {
        for (const [where, got, gotProba] of [['psql', psql[i].prediction, psql[i].proba], ['rpc', rpc[i].prediction, rpc[i].proba], ['interpreter', interp[i].p[0], interp[i].q]] as const) {
          if (c.task === 'regression') {
            if (!(Math.abs((got as number) - (expected[i] as number)) <= 1e-5 * Math.max(1, Math.abs(expected[i] as number)))) bad.push(`${where} row ${p.id}: ${got} vs ${expected[i]}`);
          } else if (got !== expected[i]) bad.push(`${where} row ${p.id}: label ${got} vs ${expected[i]}`);
          if (proba) {
            const q = gotProba as number[] | null;
            if (!q || q.length !== proba![i].length || q.some((v, j) => !(Math.abs(v - proba![i][j]) <= 1e-5))) bad.push(`${where} row ${p.id}: proba ${JSON.stringify(q)} vs ${JSON.stringify(proba![i])}`);
          }
        }
      });
      expect(bad.slice(0, 10)).toEqual([]);
    });
  }
});

describe('compiled models and tenants', () => {
  it('another tenant cannot predict with, compile or replace a model it cannot see', async () => {
    await train('mine', 'classification', 'iris_mc', 'label', 'xgboost', { hyperparams: { n_estimators: 5 } });
    const [{ id, sql_model }] = await db.admin`select m.id, m.sql_model from pgml.models m join pgml.projects p on p.id = m.project_id where p.name = 'mine'`;
    await expect(asRole('sp_other', (tx) => tx`select pgml.predict('mine', array[1, 2, 3, 4]::real[])`)).rejects.toThrow(/not found/);
    await expect(asRole('sp_other', (tx) => tx`select pgml.predict(${id}::bigint, array[1, 2, 3, 4]::real[])`)).rejects.toThrow(/not found/);
    // the installer needs the stored sql_model itself as proof of visibility
    const [forged] = await asRole('sp_other', (tx) => tx`select pgml._install_compiled(${id}::bigint, ${tx.json({ kind: 'linear' } as never)}::jsonb) as ok`);
    expect(forged.ok).toBe(false);
    await expect(asRole('sp_other', (tx) => tx.unsafe(`create function pgml_compiled.m999999(f float8[], proba boolean) returns float8[] language sql as 'select f'`))).rejects.toThrow(/permission denied/);
    await expect(asRole('sp_other', (tx) => tx.unsafe(`create or replace function pgml_compiled.m${id}(f float8[], proba boolean) returns float8[] language sql as 'select f'`))).rejects.toThrow(/permission denied|must be owner/);
    await expect(asRole('sp_other', (tx) => tx`select pgml._drop_compiled(${id}::bigint)`)).rejects.toThrow(/permission denied/);
    // the compiled form is the owner's alone: another tenant cannot call it directly
    await asRole('sp_person', (tx) => tx`select pgml.predict('mine', array[1, 2, 3, 4]::real[])`);
    const [{ n }] = await db.admin`select count(*)::int as n from pg_proc where pronamespace = 'pgml_compiled'::regnamespace and proname = ${'m' + id}`;
    expect(n).toBe(1);
    await expect(asRole('sp_other', (tx) => tx.unsafe(`select pgml_compiled.m${id}(array[1, 2, 3, 4]::float8[], true)`))).rejects.toThrow(/permission denied/);
    void sql_model;
  });

  it('only numbers of a tenant-written model reach the SQL; strings and malformed models are refused', async () => {
    const [p] = await asRole('sp_person', (tx) => tx`insert into pgml.projects (name, task) values ('hostile', 'regression') returning id`);
    const evilName = `x'); drop table probe; --`;
    const cols = [{ name: evilName, width: 1, impute: 'mean', impute_value: [0], offset: [0], factor: [1] }];
    const good = { task: 'regression', kind: 'linear', outputs: 1, post: 'none', raw_width: 1, columns: cols, coefficients: [2], intercepts: [1] };
    const bad = { ...good, coefficients: [`1) + (select 1/0`] };
    const ids: string[] = [];
    for (const m of [good, bad]) {
      const [row] = await asRole('sp_person', (tx) => tx`insert into pgml.models (project_id, num_features, algorithm, hyperparams, status, sql_model)
        values (${p.id}, 1, 'linear', '{}', 'successful', ${tx.json(m as never)}) returning id`);
      ids.push(row.id);
    }
    const [a] = await asRole('sp_person', (tx) => tx`select pgml.predict(${ids[0]}::bigint, array[3]::real[]) as v`);
    expect(a.v).toBe(7);
    const [src] = await db.admin`select prosrc from pg_proc where pronamespace = 'pgml_compiled'::regnamespace and proname = ${'m' + ids[0]}`;
    expect(src.prosrc).not.toContain('drop table');
    // the string coefficient: not compiled; the interpreter refuses it as a number
    await expect(asRole('sp_person', (tx) => tx`select pgml.predict(${ids[1]}::bigint, array[3]::real[])`)).rejects.toThrow();
    const [none] = await db.admin`select count(*)::int as n from pg_proc where pronamespace = 'pgml_compiled'::regnamespace and proname = ${'m' + ids[1]}`;
    expect(none.n).toBe(0);
    const [still] = await db.admin`select count(*)::int as n from probe`;
    expect(still.n).toBe(153);
  });

  it('a read-only transaction predicts through the interpreter until the model is compiled; deleting a model drops it', async () => {
    const t = await train('gone', 'regression', 'iris_reg', 'petal_width', 'xgboost', { hyperparams: { n_estimators: 5 } });
    const name = 'm' + t.model_id;
    const [compiled] = await asRole('sp_person', (tx) => tx`select pgml.predict('gone', array[5.1, 3.5, 1.4]::real[]) as v`);
    await db.admin`select pgml._drop_compiled(${t.model_id}::bigint)`;
    const ro = await db.admin.begin(async (tx) => {
      await tx.unsafe('set transaction read only');
      await tx.unsafe('set local role sp_person');
      return tx`select pgml.predict('gone', array[5.1, 3.5, 1.4]::real[]) as v`;
    });
    expect(ro[0].v).toBe(compiled.v);
    const [before] = await db.admin`select count(*)::int as n from pg_proc where pronamespace = 'pgml_compiled'::regnamespace and proname = ${name}`;
    expect(before.n).toBe(0);
    // a writer compiles it again on first use
    await asRole('sp_person', (tx) => tx`select pgml.predict('gone', array[5.1, 3.5, 1.4]::real[]) as v`);
    const [again] = await db.admin`select count(*)::int as n from pg_proc where pronamespace = 'pgml_compiled'::regnamespace and proname = ${name}`;
    expect(again.n).toBe(1);
    await asRole('sp_person', (tx) => tx`delete from pgml.models where id = ${t.model_id}`);
    const [n] = await db.admin`select count(*)::int as n from pg_proc where pronamespace = 'pgml_compiled'::regnamespace and proname = ${name}`;
    expect(n.n).toBe(0);
  });

  it('/rpc for another tenant is refused as before', async () => {
    const res = await app.inject({ method: 'POST', url: '/rpc/mc_xgboost_all', headers: json(other), payload: JSON.stringify({ ids: [1] }) });
    expect(res.statusCode).not.toBe(200);
  });
});
