/**
 * pgml.predict evaluated by PostgreSQL itself (sql/008: the model compiled to SQL):
 * `SELECT pgml.predict('p', features) FROM t` over 10k rows of the 100-tree depth-6 xgboost model
 * of bench/predict.ts (20 features), run
 *   psql  straight on PostgreSQL as the data role (no gateway),
 *   rpc   GET /rpc/sql_predict_all, an SQL function with that SELECT (no bridge round),
 * against the HTTP batch path in the same run (POST /models/{p}/predict, the same 10k rows as one
 * binary float32 body). Rounds are interleaved; medians are reported. Also checks that the three
 * agree (labels) and that /rpc made no bridge round.
 *
 * Environment: BENCH_SQL_PREDICT_ROWS (10000), BENCH_SQL_PREDICT_ROUNDS (5),
 * BENCH_DATABASE_URL (else an embedded PostgreSQL).
 */
import { predictDataSql } from './lib/predict-data.ts';
import { runIfMain } from './lib/results.ts';
import { cleanupAll } from './lib/cleanup.ts';
import { startBenchDatabase, type BenchDatabase } from './lib/database.ts';
import { startGatewayProcess, type RunningGateway } from './lib/gateway.ts';
import { randomSecret, signToken } from './lib/jwt.ts';
import { httpRequest } from './lib/net.ts';
import { metricValue } from './lib/prometheus.ts';
import { formatTable } from './lib/table.ts';
import type { BenchResult, Metrics } from './lib/types.ts';

const FEATURES = 20;
const TREES = 100;
const DEPTH = 6;
const PROJECT = 'bench_sql_predict';
const F = Array.from({ length: FEATURES }, (_, i) => `f${i + 1}`);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function run(): Promise<BenchResult> {
  const rows = Number(process.env.BENCH_SQL_PREDICT_ROWS ?? 10_000);
  const rounds = Number(process.env.BENCH_SQL_PREDICT_ROUNDS ?? 5);
  let db: BenchDatabase | undefined;
  let gw: RunningGateway | undefined;
  try {
    db = await startBenchDatabase();
    // the data of bench/predict.ts
    await db.admin.unsafe(`
      ${predictDataSql('sqlp', rows)}
      create table public.sqlp_features as select id, array[${F.join(', ')}]::real[] as features from public.sqlp;
      analyze public.sqlp; analyze public.sqlp_features;
      create view public.sqlp_train as select ${F.join(', ')}, label from public.sqlp;
      grant select on public.sqlp, public.sqlp_features, public.sqlp_train to authenticated;`).simple();
    const [version] = await db.admin`select current_setting('server_version') as v`;
    const secret = randomSecret();
    const token = await signToken(secret, { role: 'authenticated' }, 3600);
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    gw = await startGatewayProcess({ dbUri: db.authenticatorUri, migrationDbUri: db.adminUri, jwtSecret: secret, pool: 10 });
    const QUERY = `select id, pgml.predict('${PROJECT}', features) as p from public.sqlp_features`;
    await db.admin.unsafe(`
      create function public.sql_predict_all() returns table (id int, p real) language sql stable as $$ ${QUERY} $$;
      grant execute on function public.sql_predict_all() to authenticated;
      notify pgrst, 'reload schema';`).simple();
    await new Promise((r) => setTimeout(r, 500));
    const train = await httpRequest(`${gw.url}/models/train`, {
      method: 'POST', headers, timeoutMs: 600_000,
      body: JSON.stringify({ project_name: PROJECT, task: 'classification', relation_name: 'public.sqlp_train', y_column_name: 'label', algorithm: 'xgboost', hyperparams: { n_estimators: TREES, max_depth: DEPTH } }),
    });
    if (train.status !== 200) throw new Error(`training failed: ${train.status} ${train.body}`);
    const modelId = (JSON.parse(train.body) as { model_id: number }).model_id;
    const [compiled] = await db.admin`select count(*)::int as n from pg_proc where pronamespace = 'pgml_compiled'::regnamespace and proname = ${'m' + modelId}`;
    if (compiled.n !== 1) throw new Error(`model ${modelId} was not compiled to SQL`);

    const data = await db.admin.unsafe(`select features from public.sqlp_features order by id`);
    const f32 = new Float32Array(rows * FEATURES);
    data.forEach((r, i) => (r.features as number[]).forEach((v, j) => (f32[i * FEATURES + j] = v)));
    const body = Buffer.from(f32.buffer);

    let psqlOut: number[] = [];
    let rpcOut: number[] = [];
    let httpOut: number[] = [];
    const psql = async () => {
      const t0 = performance.now();
      const r = await db!.admin.begin(async (tx) => {
        await tx.unsafe('set local role authenticated');
        return tx.unsafe(`${QUERY} order by id`);
      });
      const s = (performance.now() - t0) / 1000;
      psqlOut = r.map((x) => x.p as number);
      return s;
    };
    const rpc = async () => {
      const t0 = performance.now();
      const r = await httpRequest(`${gw!.url}/rpc/sql_predict_all?order=id`, { headers, timeoutMs: 600_000 });
      const s = (performance.now() - t0) / 1000;
      if (r.status !== 200) throw new Error(`sql_predict_all: ${r.status} ${r.body.slice(0, 300)}`);
      rpcOut = (JSON.parse(r.body) as { p: number }[]).map((x) => x.p);
      return s;
    };
    const http = async () => {
      const t0 = performance.now();
      const res = await fetch(`${gw!.url}/models/${PROJECT}/predict`, { method: 'POST', headers: { ...headers, 'content-type': 'application/octet-stream' }, body, signal: AbortSignal.timeout(600_000) });
      const text = await res.text();
      const s = (performance.now() - t0) / 1000;
      if (res.status !== 200) throw new Error(`batch predict: ${res.status} ${text.slice(0, 300)}`);
      httpOut = (JSON.parse(text) as { predictions: number[] }).predictions.map(Number);
      return s;
    };
    const bridgeBefore = metricValue((await httpRequest(`${gw.url}/metrics`)).body, 'pgml_bridge_rounds_count') || 0;
    // warm-up (session plan caches, the gateway's model cache), then interleaved rounds
    await psql();
    await rpc();
    await http();
    const times = { psql: [] as number[], rpc: [] as number[], http: [] as number[] };
    for (let i = 0; i < rounds; i++) {
      times.psql.push(await psql());
      times.rpc.push(await rpc());
      times.http.push(await http());
    }
    const bridgeAfter = metricValue((await httpRequest(`${gw.url}/metrics`)).body, 'pgml_bridge_rounds_count') || 0;
    const disagree = httpOut.filter((v, i) => v !== psqlOut[i] || v !== rpcOut[i]).length;
    if (psqlOut.length !== rows || rpcOut.length !== rows || httpOut.length !== rows || disagree > 0) {
      throw new Error(`the paths disagree: ${disagree} of ${rows} labels (psql ${psqlOut.length}, rpc ${rpcOut.length}, http ${httpOut.length} rows)`);
    }
    const psqlRps = rows / median(times.psql);
    const rpcRps = rows / median(times.rpc);
    const httpRps = rows / median(times.http);
    console.log('\n' + formatTable(['path', 'rows', 'seconds (median)', 'rows/s'], [
      ['psql: SELECT pgml.predict(p, features) FROM t (compiled SQL)', rows, median(times.psql).toFixed(3), Math.round(psqlRps)],
      ['rpc: GET /rpc/sql_predict_all (the same SELECT)', rows, median(times.rpc).toFixed(3), Math.round(rpcRps)],
      ['HTTP: POST /models/{p}/predict, one binary float32 batch', rows, median(times.http).toFixed(3), Math.round(httpRps)],
    ]));
    const metrics: Metrics = {
      rows,
      trees: TREES,
      depth: DEPTH,
      features: FEATURES,
      rounds,
      postgres: `${version.v}${db.embedded ? ' (embedded)' : ' (BENCH_DATABASE_URL)'}`,
      psql_rows_per_s: Math.round(psqlRps),
      rpc_rows_per_s: Math.round(rpcRps),
      http_batch_rows_per_s: Math.round(httpRps),
      psql_seconds_median: Number(median(times.psql).toFixed(3)),
      rpc_seconds_median: Number(median(times.rpc).toFixed(3)),
      http_batch_seconds_median: Number(median(times.http).toFixed(3)),
      rpc_bridge_rounds: bridgeAfter - bridgeBefore,
      labels_agree: 1,
      target_rows_per_s: 20_000,
    };
    return { name: 'sql-predict', metrics };
  } finally {
    await gw?.stop().catch(() => {});
    await db?.stop().catch(() => {});
    await cleanupAll();
  }
}

runIfMain(import.meta.url, run);
