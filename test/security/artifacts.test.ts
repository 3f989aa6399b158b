/**
 * Issue 14, model artifacts: sizes declared by an upload or a stored artifact are checked before
 * anything is allocated, stored artifacts are validated where they are loaded (a looping tree
 * cannot freeze the process), artifacts are immutable for tenants, training is capped, and the
 * model cache is bounded by bytes. Every attack runs while a bystander probes /live and /rpc.
 */
import type { FastifyInstance } from 'fastify';
import type { Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeModel, encodeModel } from '../../src/ml/model-codec.ts';
import type { TreeEnsembleModel } from '../../src/ml/model-types.ts';
import {
  attr, DataType, encodeModel as encodeOnnx, floatTensor, node, type NodeProto, type TensorProto, type ValueInfoProto, valueInfo,
} from '../../src/ml/onnx/proto.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { bearer, startGateway, token } from '../helpers/gateway.ts';
import { createBystander, expectBystanderServed, underAttack } from './attack.ts';

let db: TestDatabase;
let app: FastifyInstance;
let base: string;
let tenant: Record<string, string>;
let modelId: number;

const json = (h: Record<string, string> = {}) => ({ 'content-type': 'application/json', ...h });

async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { method: 'POST', headers: json(headers), body: JSON.stringify(body), signal: AbortSignal.timeout(20_000) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function listen(a: FastifyInstance): Promise<string> {
  await a.listen({ port: 0, host: '127.0.0.1' });
  const addr = a.server.address();
  if (!addr || typeof addr === 'string') throw new Error('no address');
  return `http://127.0.0.1:${addr.port}`;
}

beforeAll(async () => {
  db = await createTestDatabase();
  await createBystander(db.admin);
  await db.admin.unsafe(`
    create table public.art_data as select i::float8 as a, (i % 7)::float8 as b, (i * 0.5 + (i % 3))::float8 as y from generate_series(1, 300) i;
    grant select on public.art_data to authenticated;
    create or replace function public.art_predict(a float8, b float8) returns real language sql stable as $$ select pgml.predict('art', array[a, b]) $$;
    grant execute on function public.art_predict(float8, float8) to authenticated;
    notify pgrst, 'reload schema';`).simple();
  app = await startGateway(db);
  base = await listen(app);
  tenant = bearer(await token({ role: 'authenticated' }));
  const trained = await post(`${base}/models/train`, { project_name: 'art', task: 'regression', relation_name: 'art_data', y_column_name: 'y', algorithm: 'xgboost', hyperparams: { n_estimators: 3, max_depth: 3 } }, tenant);
  expect(trained.status, JSON.stringify(trained.body)).toBe(200);
  modelId = trained.body.model_id as number;
}, 60_000);

afterAll(async () => {
  await app?.close();
  await db?.drop();
});

// ------------------------------------------------------------------------------------ uploads

const ML = [{ domain: '', version: 17 }, { domain: 'ai.onnx.ml', version: 3 }];

function onnx(nodes: NodeProto[], input: ValueInfoProto, output: ValueInfoProto, initializer: TensorProto[] = []): string {
  return Buffer.from(encodeOnnx({ ir_version: 8, opset_import: ML, graph: { name: 'g', node: nodes, input: [input], output: [output], initializer } })).toString('base64');
}

const lr = (w: number) => node('LinearRegressor', ['X'], ['variable'], [attr.floats('coefficients', Array(w).fill(1)), attr.floats('intercepts', [0])], 'ai.onnx.ml');
const out1 = valueInfo('variable', DataType.FLOAT, ['N', 1]);

function tree(extra: Record<string, number[] | string[]>, nTargets = 1): NodeProto {
  const a: Record<string, number[] | string[]> = {
    nodes_treeids: [0, 0, 0], nodes_nodeids: [0, 1, 2], nodes_featureids: [0, 0, 0], nodes_modes: ['BRANCH_LEQ', 'LEAF', 'LEAF'],
    nodes_values: [0.5, 0, 0], nodes_truenodeids: [1, 0, 0], nodes_falsenodeids: [2, 0, 0],
    target_treeids: [0, 0], target_nodeids: [1, 2], target_ids: [0, 0], target_weights: [1, 2], ...extra,
  };
  const attrs = Object.entries(a).map(([k, v]) => (k === 'nodes_modes' ? attr.strings(k, v as string[]) : /values|weights/.test(k) ? attr.floats(k, v as number[]) : attr.ints(k, v as number[])));
  return node('TreeEnsembleRegressor', ['X'], ['variable'], [...attrs, attr.int('n_targets', nTargets)], 'ai.onnx.ml');
}

const X2 = valueInfo('X', DataType.FLOAT, ['N', 2]);

/** name → [upload, what the 400 must say] */
const UPLOADS: [string, string, RegExp][] = [
  // the issue's 182-byte model: one input of 2,147,483,647 features
  ['input of 2^31-1 features', onnx([lr(1)], valueInfo('X', DataType.FLOAT, ['N', 2 ** 31 - 1]), out1), /tensor X declares a dimension of 2147483647, above the limit of 100000/],
  ['input of 2^40 features', onnx([lr(1)], valueInfo('X', DataType.FLOAT, ['N', 2 ** 40]), out1), /above the limit/],
  ['output declaring 2^31-1 columns', onnx([lr(2)], X2, valueInfo('variable', DataType.FLOAT, ['N', 2 ** 31 - 1])), /declares a dimension of 2147483647/],
  ['initializer declaring 2^31 × 2^31 elements', onnx([node('Add', ['X', 'W'], ['variable'])], X2, out1, [{ ...floatTensor('W', [1], [1]), dims: [2 ** 31, 2 ** 31] }]), /initializer W declares dims/],
  ['tree ensemble with n_targets 2^31-1', onnx([tree({}, 2 ** 31 - 1)], X2, out1), /n_targets .* above the limit/],
  ['tree ensemble with mismatched attribute lengths', onnx([tree({ nodes_featureids: [0] })], X2, out1), /nodes_featureids has 1 entries for 3 nodes/],
  ['tree ensemble with a cycle', onnx([tree({ nodes_modes: ['BRANCH_LEQ', 'BRANCH_LEQ', 'LEAF'], nodes_truenodeids: [1, 0, 0], nodes_falsenodeids: [2, 2, 0] })], X2, out1), /reached twice|cycle/],
  ['ConstantOfShape sized by a value', onnx([node('ConstantOfShape', ['S'], ['variable'])], X2, out1, [{ name: 'S', dims: [2], data_type: DataType.INT64, int64_data: [2 ** 20, 2 ** 20] }]), /ConstantOfShape is not accepted/],
];

describe('ONNX uploads: every declared size is checked before anything is allocated', () => {
  it('authenticated: each hostile upload gets a 400 naming the problem; bystanders are served', async () => {
    const { result, report } = await underAttack({ baseUrl: base }, async () => {
      const out: { name: string; status: number; body: Record<string, unknown> }[] = [];
      for (const [name, upload] of UPLOADS) out.push({ name, ...(await post(`${base}/models/atk/import`, { task: 'regression', onnx: upload }, tenant)) });
      return out;
    });
    result.forEach((r, i) => {
      expect(r.status, `${r.name}: ${JSON.stringify(r.body)}`).toBe(400);
      expect(r.body.code, r.name).toBe('PGML400');
      expect(String(r.body.message), r.name).toMatch(UPLOADS[i][2]);
    });
    expect(result[0].body.details).toMatch(/PGML_MAX_FEATURES/);
    expectBystanderServed(report);
  }, 60_000);

  it('feature_names and classes in the body are bounded too', async () => {
    const names = Array.from({ length: 100_001 }, (_, i) => `f${i}`);
    const r = await post(`${base}/models/atk/import`, { task: 'regression', onnx: onnx([lr(1)], valueInfo('X', DataType.FLOAT, ['N', 'W']), out1), feature_names: names }, tenant);
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(String(r.body.message)).toMatch(/above the limit of 100000/);
  });

  it('anonymous: refused with 401 before the upload is parsed, unless PGML_IMPORT_ALLOW_ANONYMOUS', async () => {
    const { result, report } = await underAttack({ baseUrl: base }, () => post(`${base}/models/atk/import`, { task: 'regression', onnx: UPLOADS[0][1] }));
    expect(result.status).toBe(401);
    expect(Object.keys(result.body).sort()).toEqual(['code', 'details', 'hint', 'message']);
    expect(result.body.code).toBe('42501');
    expect(String(result.body.hint)).toMatch(/PGML_IMPORT_ALLOW_ANONYMOUS/);
    expectBystanderServed(report);

    const open = await startGateway(db, {}, { importAllowAnonymous: true });
    try {
      const url = await listen(open);
      const anon = await underAttack({ baseUrl: url }, () => post(`${url}/models/atk/import`, { task: 'regression', onnx: UPLOADS[0][1] }));
      expect(anon.result.status, JSON.stringify(anon.result.body)).toBe(400);
      expect(String(anon.result.body.message)).toMatch(/above the limit/);
      expectBystanderServed(anon.report);
    } finally {
      await open.close();
    }
  }, 60_000);
});

// ------------------------------------------------------------------------- stored artifacts

/**
 * A deployed copy of the trained model (as superuser), its files or columns corrupted.
 * `sqlModel` is the stored sql_model as the row is inserted (what a tenant can do: INSERT a model
 * row with any sql_model, which is then never compiled from a valid version); `sqlModelLater`
 * rewrites it after the deploy compiled the valid one (only the superuser still may, sql/006).
 */
async function plant(admin: Sql, corrupt: { json?: (m: TreeEnsembleModel) => void; metadata?: string; sqlModel?: string; sqlModelLater?: string; onnxPad?: number }): Promise<number> {
  const [row] = await admin.unsafe(`insert into pgml.models (project_id, num_features, algorithm, runtime, hyperparams, status, metadata, sql_model, owner)
    select project_id, num_features, algorithm, runtime, hyperparams, status, metadata, ${corrupt.sqlModel ?? 'sql_model'}, owner from pgml.models where id = $1
    returning id::int, project_id, owner`, [modelId]);
  await admin`insert into pgml.files (model_id, path, data, owner) select ${row.id}, path, data, owner from pgml.files where model_id = ${modelId}`;
  await admin`insert into pgml.deployments (project_id, model_id, strategy, owner) values (${row.project_id}, ${row.id}, 'specific', ${row.owner})`;
  // rewritten in place, as a tenant could before sql/006 (the superuser still may)
  if (corrupt.json) {
    const [f] = await admin`select data from pgml.files where model_id = ${row.id} and path = 'model.json'`;
    const m = decodeModel(f.data as Uint8Array) as TreeEnsembleModel;
    corrupt.json(m);
    await admin`update pgml.files set data = ${Buffer.from(encodeModel(m))} where model_id = ${row.id} and path = 'model.json'`;
  }
  if (corrupt.onnxPad) await admin`update pgml.files set data = data || ${Buffer.alloc(corrupt.onnxPad)} where model_id = ${row.id} and path = 'model.onnx'`;
  if (corrupt.metadata) await admin.unsafe(`update pgml.models set metadata = ${corrupt.metadata} where id = ${row.id}`);
  if (corrupt.sqlModelLater) await admin.unsafe(`update pgml.models set sql_model = ${corrupt.sqlModelLater} where id = ${row.id}`);
  return row.id as number;
}

const firstInternal = (m: TreeEnsembleModel) => m.trees[0].feature.findIndex((f, i) => i > 0 && f >= 0);

/** the first internal node of the stored sql_model's first tree other than the root, as SQL */
const SQL_FIRST_INTERNAL = `(select (n - 1)::text from jsonb_array_elements_text(sql_model->'trees'->0->'f') with ordinality u(f, n) where n > 1 and f::int >= 0 order by n limit 1)`;

/**
 * name → [the corruption, what the HTTP 422 must say]. The HTTP path reads the model's files
 * (model.json) and metadata; /rpc evaluates in SQL, which reads sql_model (or the function
 * compiled from it) and never model.json, so each case corrupts the sql_model the same way too,
 * as the row is inserted (a tenant's own row: never compiled from a valid version).
 */
const STORED: [string, Parameters<typeof plant>[1], RegExp][] = [
  ['a tree whose node points back at the root (cycle)', { json: (m) => { m.trees[0].left[firstInternal(m)] = 0; }, sqlModel: `jsonb_set(sql_model, array['trees', '0', 'l', ${SQL_FIRST_INTERNAL}], '0')` }, /reached twice/],
  ['a root that is its own child', { json: (m) => { m.trees[0].right[0] = 0; }, sqlModel: `jsonb_set(sql_model, '{trees,0,r,0}', '0')` }, /reached twice/],
  ['a child index out of range', { json: (m) => { m.trees[0].left[0] = 1_000_000; }, sqlModel: `jsonb_set(sql_model, '{trees,0,l,0}', '1000000')` }, /has child 1000000/],
  ['a split on a feature the model does not have', { json: (m) => { m.trees[0].feature[0] = 99_999; }, sqlModel: `jsonb_set(sql_model, '{trees,0,f,0}', '99999')` }, /splits on feature 99999/],
  ['leaf values that do not match the nodes', { json: (m) => { m.trees[1].value = new Float64Array(1); }, sqlModel: `jsonb_set(sql_model, '{trees,1,v}', '[0]')` }, /leaf values/],
  ['2^31-1 outputs', { json: (m) => { m.outputs = 2 ** 31 - 1; }, sqlModel: `jsonb_set(sql_model, '{outputs}', '2147483647')` }, /number of outputs is 2147483647, above the limit/],
  ['metadata declaring 2^31-1 features', { metadata: `jsonb_set(metadata, '{featureCount}', '2147483647')`, sqlModel: `jsonb_set(sql_model, '{raw_width}', '2147483647')` }, /feature count is 2147483647, above the limit/],
  ['metadata with a column 2^31-1 wide', { metadata: `jsonb_set(metadata, '{columns,0,width}', '2147483647')`, sqlModel: `jsonb_set(sql_model, '{columns,0,width}', '2147483647')` }, /width of column .* above the limit/],
  ['metadata that is not an object', { metadata: `'[1,2,3]'::jsonb`, sqlModel: `'[1,2,3]'::jsonb` }, /metadata is not an object/],
];

describe('stored artifacts are validated where they are loaded', () => {
  it('each corrupted artifact answers 422 over HTTP and through /rpc; bystanders are served', async () => {
    const planted: number[] = [];
    for (const [, corrupt] of STORED) planted.push(await plant(db.admin, corrupt));
    // each planted model is the deployed one while it is attacked
    const { result, report } = await underAttack({ baseUrl: base }, async () => {
      const out: { http: Awaited<ReturnType<typeof post>>; rpc: Awaited<ReturnType<typeof post>> }[] = [];
      for (const id of planted) {
        await db.admin`insert into pgml.deployments (project_id, model_id, strategy, owner) select project_id, id, 'specific', owner from pgml.models where id = ${id}`;
        const http = await post(`${base}/models/art/predict`, { features: [[1, 2], [3, 4]] }, tenant);
        const rpc = await post(`${base}/rpc/art_predict`, { a: 1, b: 2 }, tenant);
        out.push({ http, rpc });
      }
      return out;
    });
    result.forEach(({ http, rpc }, i) => {
      const what = `${STORED[i][0]}: ${JSON.stringify(http.body)}`;
      expect(http.status, what).toBe(422);
      expect(http.body.code, what).toBe('PGML422');
      expect(String(http.body.message), what).toMatch(STORED[i][2]);
      expect(rpc.status, `${STORED[i][0]} /rpc: ${JSON.stringify(rpc.body)}`).toBeGreaterThanOrEqual(400);
      expect(rpc.status).toBeLessThan(500);
    });
    expectBystanderServed(report);
    // none of them was compiled: the SQL path had nothing valid to answer from
    const compiled = await db.admin`select count(*)::int as n from pg_proc where pronamespace = 'pgml_compiled'::regnamespace and proname = any(${planted.map((id) => `m${id}`)})`;
    expect(compiled[0].n).toBe(0);
    // the original model still serves
    await db.admin`insert into pgml.deployments (project_id, model_id, strategy, owner) select project_id, id, 'specific', owner from pgml.models where id = ${modelId}`;
    const ok = await post(`${base}/models/art/predict`, { features: [1, 2] }, tenant);
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
  }, 60_000);

  it('a looping or oversized sql_model ends with an error in SQL (pgml._evaluate is bounded)', async () => {
    // a tenant's own rows, never compiled from a valid version; and a superuser's rewrite of a
    // compiled model, whose compiled form must go with the sql_model it was compiled from
    const looping = await plant(db.admin, { sqlModel: `jsonb_set(sql_model, '{trees,0,l,0}', '0')` });
    const wide = await plant(db.admin, { sqlModel: `jsonb_set(sql_model, '{columns,0,width}', '2147483647')` });
    const outputs = await plant(db.admin, { sqlModel: `jsonb_set(sql_model, '{outputs}', '2147483647')` });
    const rewritten = await plant(db.admin, { sqlModelLater: `jsonb_set(sql_model, '{trees,0,l,0}', '0')` });
    const inSql = async (id: number) =>
      db.admin.begin(async (tx) => {
        await tx.unsafe(`set local statement_timeout = '20s'; set local role authenticated`);
        return tx`select pgml.predict(${id}::bigint, array[1, 2]::real[]) as p`;
      }).then(() => 'ok', (e: Error) => e.message);
    // the compiler refuses each of them (null source, no function), and ends doing so
    const compile = async (id: number) =>
      db.admin.begin(async (tx) => {
        await tx.unsafe(`set local statement_timeout = '20s'; set local role authenticated`);
        const [r] = await tx`select pgml.compile_model(${id}::bigint) as installed, pgml._compile_source(${id}::bigint, sql_model) is null as refused from pgml.models where id = ${id}`;
        return `${r.installed}/${r.refused}`;
      }).catch((e: Error) => e.message);
    const ids = [looping, wide, outputs, rewritten];
    const { result, report } = await underAttack({ baseUrl: base }, async () => ({
      predicted: [await inSql(looping), await inSql(wide), await inSql(outputs), await inSql(rewritten)],
      compiled: await Promise.all(ids.map(compile)),
    }));
    expect(result.predicted[0]).toMatch(/does not end/);
    expect(result.predicted[1]).toMatch(/column widths do not add up/);
    expect(result.predicted[2]).toMatch(/malformed sql_model: 2147483647 outputs/);
    expect(result.predicted[3]).toMatch(/does not end/);
    expect(result.compiled).toEqual(ids.map(() => 'false/true'));
    const [{ n }] = await db.admin`select count(*)::int as n from pg_proc where pronamespace = 'pgml_compiled'::regnamespace and proname = any(${ids.map((id) => `m${id}`)})`;
    expect(n).toBe(0);
    expectBystanderServed(report);
  }, 60_000);

  it('a model larger than PGML_MODEL_MAX_BYTES is refused with 422, and the cache stays within PGML_MODEL_CACHE_BYTES', async () => {
    const mib = 1024 * 1024;
    const small = await startGateway(db, {}, { modelMaxBytes: 2 * mib, modelCacheBytes: 2 * mib });
    try {
      const url = await listen(small);
      const big = await plant(db.admin, { onnxPad: 3 * mib });
      const { result, report } = await underAttack({ baseUrl: url }, () => post(`${url}/models/art/predict`, { features: [1, 2] }, tenant));
      expect(result.status, JSON.stringify(result.body)).toBe(422);
      expect(String(result.body.message)).toMatch(/above the per-model limit of 2 MiB/);
      expect(String(result.body.details)).toMatch(/PGML_MODEL_MAX_BYTES/);
      expectBystanderServed(report);
      expect(big).toBeGreaterThan(0);

      // two models of ~1.2 MiB each: loading the second drops the first
      const a = await plant(db.admin, { onnxPad: 1.2 * mib });
      expect((await post(`${url}/models/art/predict`, { features: [1, 2] }, tenant)).status).toBe(200);
      const b = await plant(db.admin, { onnxPad: 1.2 * mib });
      expect((await post(`${url}/models/art/predict`, { features: [1, 2] }, tenant)).status).toBe(200);
      const cache = small.gateway.models;
      expect(cache.peek(String(b))).toBeDefined();
      expect(cache.peek(String(a))).toBeUndefined();
      expect(cache.bytes).toBeLessThanOrEqual(2 * mib);
    } finally {
      await small.close();
    }
  }, 60_000);
});

// ---------------------------------------------------------------------------- immutability

describe('tenants cannot rewrite artifacts in place (sql/006)', () => {
  const asTenant = (statement: string) =>
    db.admin.begin(async (tx) => {
      await tx.unsafe('set local role authenticated');
      await tx.unsafe(statement);
    }).then(() => 'ok', (e: Error & { code?: string }) => `${e.code}: ${e.message}`);

  it('UPDATE / DELETE of pgml.files, new files on a trained model and changes to its artifact columns are refused', async () => {
    const { result, report } = await underAttack({ baseUrl: base }, async () => ({
      updateFile: await asTenant(`update pgml.files set data = '\\x00' where model_id = ${modelId}`),
      deleteFile: await asTenant(`delete from pgml.files where model_id = ${modelId}`),
      addFile: await asTenant(`insert into pgml.files (model_id, path, data) values (${modelId}, 'model.extra', '\\x00')`),
      metadata: await asTenant(`update pgml.models set metadata = '{}' where id = ${modelId}`),
      sqlModel: await asTenant(`update pgml.models set sql_model = null where id = ${modelId}`),
      features: await asTenant(`update pgml.models set num_features = 7 where id = ${modelId}`),
      algorithm: await asTenant(`update pgml.models set algorithm = 'linear' where id = ${modelId}`),
      runtime: await asTenant(`update pgml.models set runtime = 'onnx' where id = ${modelId}`),
      status: await asTenant(`update pgml.models set status = 'in_progress' where id = ${modelId}`),
      metrics: await asTenant(`update pgml.models set metrics = '{"r2": 1}' where id = ${modelId}`),
    }));
    for (const k of ['updateFile', 'deleteFile', 'addFile', 'metadata', 'sqlModel', 'features', 'algorithm', 'runtime', 'status'] as const) {
      expect(result[k], k).toMatch(/^42501: /);
    }
    expect(result.metrics).toBe('ok');
    expectBystanderServed(report);
    // and the HTTP path that writes artifacts (train) still works under the triggers
    const again = await post(`${base}/models/train`, { project_name: 'art', algorithm: 'linear' , relation_name: 'art_data', y_column_name: 'y' }, tenant);
    expect(again.status, JSON.stringify(again.body)).toBe(200);
  }, 60_000);
});

// ---------------------------------------------------------------------------- training caps

describe('training hyperparameters are capped', () => {
  it('trees, depth, clusters and search size above the limits get a 400 naming the hyperparameter, limit and setting', async () => {
    const train = (body: Record<string, unknown>) => post(`${base}/models/train`, { project_name: 'caps', task: 'regression', relation_name: 'art_data', y_column_name: 'y', ...body }, tenant);
    const { result, report } = await underAttack({ baseUrl: base }, async () => [
      await train({ algorithm: 'random_forest', hyperparams: { n_estimators: 20_000 } }),
      await train({ algorithm: 'xgboost', hyperparams: { num_boost_round: 1_000_000 } }),
      await train({ algorithm: 'decision_tree', hyperparams: { max_depth: 100_000 } }),
      await train({ algorithm: 'xgboost', search: 'grid', search_params: { n_estimators: [1, 20_000] } }),
      await train({ algorithm: 'xgboost', search: 'grid', search_params: { learning_rate: Array(100).fill(0.1), reg_lambda: Array(100).fill(1) } }),
      await post(`${base}/models/train`, { project_name: 'caps_k', task: 'clustering', relation_name: 'art_data', algorithm: 'kmeans', hyperparams: { n_clusters: 1_000_000 } }, tenant),
    ]);
    const expected: [RegExp, RegExp][] = [
      [/"n_estimators" = 20000 is above the limit of 10000/, /PGML_MAX_TREES/],
      [/"num_boost_round" = 1000000/, /PGML_MAX_TREES/],
      [/"max_depth" = 100000 is above the limit of 512/, /PGML_MAX_TREE_DEPTH/],
      [/"n_estimators" = 20000/, /PGML_MAX_TREES/],
      [/search grid size = 10000 is above the limit of 1000/, /PGML_MAX_SEARCH_CANDIDATES/],
      [/"n_clusters" = 1000000 is above the limit of 10000/, /PGML_MAX_CLASSES/],
    ];
    result.forEach((r, i) => {
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      expect(String(r.body.message)).toMatch(expected[i][0]);
      expect(String(r.body.details)).toMatch(expected[i][1]);
    });
    expectBystanderServed(report);
    // queued trainings are refused at once too, not failed later in the queue
    const queued = await post(`${base}/models/train`, { project_name: 'caps_async', task: 'regression', relation_name: 'art_data', y_column_name: 'y', algorithm: 'random_forest', hyperparams: { n_estimators: 20_000 } }, { ...tenant, prefer: 'respond-async' });
    expect(queued.status, JSON.stringify(queued.body)).toBe(400);
    expect(String(queued.body.details)).toMatch(/PGML_MAX_TREES/);
  }, 60_000);
});
