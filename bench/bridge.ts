/**
 * The bridge on set-based SQL: an RPC function that predicts 10k rows with pgml.predict(...) in
 * one SELECT, against the same 10k predictions through the HTTP /models path (one request per
 * row at concurrency 32, and one 10k-row batch request). The bridge should make one batched
 * computation (2 attempts: collect, then replay), not 10k round trips.
 *
 * Environment: BENCH_BRIDGE_ROWS (default 10000), BENCH_DATABASE_URL (else an embedded PostgreSQL).
 */
import { runIfMain } from './lib/results.ts';
import { cleanupAll } from './lib/cleanup.ts';
import { startBenchDatabase, type BenchDatabase } from './lib/database.ts';
import { startGatewayProcess, type RunningGateway } from './lib/gateway.ts';
import { randomSecret, signToken } from './lib/jwt.ts';
import { runLoad } from './lib/load.ts';
import { httpRequest } from './lib/net.ts';
import { formatTable } from './lib/table.ts';
import type { BenchResult, Metrics } from './lib/types.ts';
import { metricValue } from './lib/prometheus.ts';

const FEATURES = 8;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function timed(n: number, fn: () => Promise<void>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    out.push((performance.now() - t0) / 1000);
  }
  return out;
}

export async function run(): Promise<BenchResult> {
  const rows = Number(process.env.BENCH_BRIDGE_ROWS ?? 10_000);
  let db: BenchDatabase | undefined;
  let gw: RunningGateway | undefined;
  try {
    db = await startBenchDatabase();
    const cols = Array.from({ length: FEATURES }, (_, i) => `f${i + 1}`);
    await db.admin.unsafe(`
      create table public.bridge_rows as
        select g as id, ${cols.map((c, i) => `(sin(g * ${i + 1}) * 10)::real as ${c}`).join(', ')},
               (sin(g) * 10 + cos(g * 3) * 5)::real as target
        from generate_series(1, ${rows}) g;
      create view public.bridge_train as select ${cols.join(', ')}, target from public.bridge_rows;
      grant select on public.bridge_rows, public.bridge_train to authenticated;`).simple();
    const secret = randomSecret();
    const token = await signToken(secret, { role: 'authenticated' }, 3600);
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    gw = await startGatewayProcess({ dbUri: db.authenticatorUri, migrationDbUri: db.adminUri, jwtSecret: secret, pool: 10 });
    // created once the gateway's migrations made the pgml schema (SQL bodies are checked at creation)
    await db.admin.unsafe(`
      create function public.predict_all() returns table (id int, p real) language sql stable as $$
        select id, pgml.predict('bench_bridge', array[${cols.join(', ')}]) from public.bridge_rows
      $$;
      grant execute on function public.predict_all() to authenticated;
      notify pgrst, 'reload schema';`).simple();
    await new Promise((r) => setTimeout(r, 500));
    const post = (path: string, body: unknown) => httpRequest(`${gw!.url}${path}`, { method: 'POST', headers, body: JSON.stringify(body), timeoutMs: 300_000 });

    const train = await post('/models/train', { project_name: 'bench_bridge', task: 'regression', relation_name: 'public.bridge_train', y_column_name: 'target', algorithm: 'xgboost', hyperparams: { n_estimators: 50, max_depth: 5 } });
    if (train.status !== 200) throw new Error(`training failed: ${train.status} ${train.body}`);

    const data = await db.admin.unsafe(`select ${cols.join(', ')} from public.bridge_rows order by id`);
    const features = data.map((r) => cols.map((c) => r[c] as number));

    // the bridge: one RPC, the SELECT predicts every row
    let bridgeRows = 0;
    const bridge = await timed(3, async () => {
      const r = await httpRequest(`${gw!.url}/rpc/predict_all`, { headers, timeoutMs: 300_000 });
      if (r.status !== 200) throw new Error(`predict_all: ${r.status} ${r.body.slice(0, 300)}`);
      bridgeRows = (JSON.parse(r.body) as unknown[]).length;
    });
    const metricsText = (await httpRequest(`${gw.url}/metrics`)).body;
    const attempts = metricValue(metricsText, 'pgml_bridge_rounds_sum') / metricValue(metricsText, 'pgml_bridge_rounds_count');
    const attemptsPerRequest = Number.isFinite(attempts) ? attempts : null;

    // the HTTP path: all rows in one request
    const batch = await timed(3, async () => {
      const r = await post('/models/bench_bridge/predict', { features });
      if (r.status !== 200) throw new Error(`batch predict: ${r.status} ${r.body.slice(0, 300)}`);
    });

    // the HTTP path: one request per row, concurrency 32
    const single = await runLoad({
      url: `${gw.url}/models/bench_bridge/predict`,
      method: 'POST',
      headers,
      body: JSON.stringify({ features: features[0] }),
      connections: 32,
      amount: Math.min(rows, 5000),
    });
    if (single.ok === 0) throw new Error('single-row predict answered no 2xx');

    const bridgeRps = bridgeRows / median(bridge);
    const batchRps = rows / median(batch);
    const singleRps = single.rps;
    const table = [
      ['bridge: GET /rpc/predict_all (one SELECT over all rows)', bridgeRows, median(bridge).toFixed(3), Math.round(bridgeRps)],
      ['HTTP: POST /models/{p}/predict, all rows in one request', rows, median(batch).toFixed(3), Math.round(batchRps)],
      ['HTTP: POST /models/{p}/predict, one row per request, c=32', single.ok, single.durationSeconds.toFixed(3), Math.round(singleRps)],
    ];
    console.log('\n' + formatTable(['path', 'rows', 'seconds (median)', 'rows/s'], table));
    console.log(`bridge attempts per request: ${attemptsPerRequest ?? 'n/a'} (1 = nothing to compute, 2 = one batched computation)`);
    const metrics: Metrics = {
      rows,
      bridge_rows_per_s: Math.round(bridgeRps),
      http_batch_rows_per_s: Math.round(batchRps),
      http_single_row_rows_per_s: Math.round(singleRps),
      bridge_ratio_vs_http_single_row: Number((bridgeRps / singleRps).toFixed(2)),
      bridge_ratio_vs_http_batch: Number((bridgeRps / batchRps).toFixed(2)),
      bridge_attempts_per_request: attemptsPerRequest,
      bridge_seconds_median: Number(median(bridge).toFixed(3)),
    };
    return { name: 'bridge', metrics };
  } finally {
    await gw?.stop().catch(() => {});
    await db?.stop().catch(() => {});
    await cleanupAll();
  }
}

runIfMain(import.meta.url, run);
