/**
 * Predict benchmark (`npm run bench -- predict`, or `npx tsx bench/predict.ts`).
 *
 * Data: 100k × 20 synthetic rows generated in SQL (table bench_predict: id primary key, f1..f20
 * float8, a nonlinear 0/1 label), in a throw-away embedded PostgreSQL or BENCH_DATABASE_URL.
 * Model: gradient boosting, 100 trees, depth 6, trained by the gateway over HTTP
 * (POST /models/train, algorithm xgboost) on the view bench_predict_train (f1..f20, label).
 *
 * 1. Single-row predict over HTTP at concurrency 32, every request a different row:
 *    gateway  POST /models/bench_predict/predict {"features": [20 numbers]}: the features come in
 *             the body (PostgresML's predict API); per request the gateway verifies the JWT, runs
 *             one read-only transaction as the caller (role switch + request settings + lookup of
 *             the deployed model under RLS) and evaluates the cached model natively. The
 *             transactions of requests arriving together go to PostgreSQL in one write, each an
 *             implicit transaction ending in its own Sync (PGML_DB_BATCH; the run reports how
 *             many per write).
 *    flask    the "traditional deployment": GET /predict/<id> on Flask + python xgboost
 *             (bench/flask_predict.py) under gunicorn gthread: fetches the row's 20 features from
 *             PostgreSQL by primary key (one autocommit SELECT on the thread's own connection, as a
 *             superuser: no role switch, no RLS) and predicts with its own xgboost model (100 trees,
 *             depth 6, trained at start on the same table) via inplace_predict.
 *    So Flask does one more thing (fetching the features) and ours does others (JWT, a
 *    transaction as the caller, the deployment lookup): both are one database round trip
 *    or more plus a 100-tree evaluation per request.
 * 2. Batch predict of 10k rows over HTTP, two bodies, both answered with JSON
 *    {"model_id", "predictions": [...]} (what a user pays):
 *    json     POST /models/bench_predict/predict {"features": [[...], ...]} (3.9 MB of JSON);
 *    binary   the same POST with Content-Type: application/octet-stream, the same rows as
 *             rows × 20 little-endian float32 (800 kB).
 *    Against a raw onnxruntime-node InferenceSession on the model's ONNX (downloaded from
 *    GET /models/bench_predict/models/{id}/onnx) fed the same rows as one Float32Array, default
 *    session options and intraOpNumThreads 1; the faster is "raw". Both gateway answers are
 *    checked label by label against raw ORT's.
 *    Also in this process, without HTTP: JSON.parse of the request body, featuresToRow,
 *    serving.ts predictRows (validation + preprocessing + the flat tree evaluator, split over
 *    PGML_PREDICT_THREADS threads), the binary body's decoding and evaluation, ORT on one
 *    thread for comparison, and JSON.stringify of the answer, to show where the time goes.
 *
 * metrics.rps_ratio_vs_flask = gateway req/s ÷ Flask req/s at c=32, best round each (target ≥ 5);
 * metrics.batch_ratio_vs_raw_ort = raw ORT p50 ÷ the faster gateway body's HTTP p50 (target ≥ 0.9;
 * which body: metrics.batch_gateway_body); metrics.batch_ratio_vs_raw_ort_json the same for JSON.
 *
 * Environment: BENCH_PREDICT_DURATION (s, default 10), BENCH_PREDICT_WARMUP (s, default 3),
 * BENCH_PREDICT_CONCURRENCY (default 32), BENCH_PREDICT_ROUNDS (single-row rounds, sides taking
 * turns, best round counts; default 2), BENCH_PREDICT_BATCH_RUNS (default 20),
 * BENCH_PREDICT_GATEWAY_WORKERS (the gateway's PGML_WORKERS, default 1),
 * BENCH_PREDICT_FLASK_WORKERS (default: CPU count) and BENCH_PREDICT_FLASK_THREADS (default
 * concurrency ÷ workers), BENCH_PREDICT_FLASK=0 to leave Flask out, BENCH_PREDICT_APT=0 to never
 * apt-get install, BENCH_PREDICT_GATEWAY_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"),
 * BENCH_DATABASE_URL.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { binaryFeatureMatrix } from '../src/ml/binary-rows.ts';
import { featuresToRow, ModelCache, predictFeatures, predictRows, type LoadedModel } from '../src/ml/serving.ts';
import { OrtModel } from '../src/ml/onnx/runtime.ts';
import { encodeRawRows } from '../src/ml/onnx/raw-input.ts';
import { cleanupAll, onCleanup } from './lib/cleanup.ts';
import { startBenchDatabase, type BenchDatabase } from './lib/database.ts';
import { startGatewayProcess, type RunningGateway } from './lib/gateway.ts';
import { randomSecret, signToken } from './lib/jwt.ts';
import { failures, type LoadSummary } from './lib/load.ts';
import { cpuMeter, processTree, type Service } from './lib/proc.ts';
import { predictDataSql } from './lib/predict-data.ts';
import { runIfMain } from './lib/results.ts';
import { metricValue } from './lib/prometheus.ts';
import { formatTable, type Cell } from './lib/table.ts';
import type { Metrics } from './lib/types.ts';
import { pythonSide, runVariedLoad, runVariedLoadFor, startFlask, timeRuns, trainFlaskModel, type RunningFlask, type Timing } from './predict-lib.ts';

const ROWS = 100_000;
const FEATURES = 20;
const TREES = 100;
const DEPTH = 6;
const BATCH = 10_000;
const POOL = 10;
const PROJECT = 'bench_predict';
/** rows used by the single-row load, in a fixed shuffled order (each request a different row) */
const LOAD_ROWS = 20_000;

const F = Array.from({ length: FEATURES }, (_, i) => `f${i + 1}`);

const DATA_SQL = predictDataSql('bench_predict', ROWS) + `
create view public.bench_predict_train as select ${F.join(', ')}, label from public.bench_predict;
grant select on public.bench_predict, public.bench_predict_train to authenticated;
`;

function envNumber(name: string, fallback: number): number {
  const v = process.env[name];
  const n = v === undefined || v === '' ? fallback : Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(v)}`);
  return n;
}

const round = (v: number | null | undefined, digits = 3): number | null =>
  typeof v === 'number' && Number.isFinite(v) ? Math.round(v * 10 ** digits) / 10 ** digits : null;

/** A deterministic permutation of 1..n (xorshift). */
function shuffledIds(n: number, take: number): number[] {
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  let s = 0x9e3779b9;
  for (let i = n - 1; i > 0; i--) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const j = (s >>> 0) % (i + 1);
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  return ids.slice(0, take);
}

async function http(url: string, init: { method?: string; headers?: Record<string, string>; body?: string | Uint8Array; timeoutMs?: number } = {}): Promise<{ status: number; text: string; bytes: Uint8Array }> {
  const res = await fetch(url, { method: init.method ?? 'GET', headers: init.headers, body: init.body, signal: AbortSignal.timeout(init.timeoutMs ?? 30_000) });
  const bytes = new Uint8Array(await res.arrayBuffer());
  return { status: res.status, text: new TextDecoder().decode(bytes), bytes };
}

interface LoadPoint {
  target: 'gateway' | 'flask';
  load: LoadSummary;
  serverCpuSeconds: number;
  dbCpuSeconds: number;
  /** gateway only: access checks sent per write to PostgreSQL during the run (PGML_DB_BATCH) */
  requestsPerWrite?: number;
}

/** The gateway's pgml_db_request_batches counters (writes, requests) from GET /metrics. */
async function requestBatches(url: string): Promise<{ writes: number; requests: number }> {
  const text = (await http(`${url}/metrics`)).text;
  return { writes: metricValue(text, 'pgml_db_request_batches', { what: 'writes' }), requests: metricValue(text, 'pgml_db_request_batches', { what: 'requests' }) };
}

async function measureLoad(
  target: LoadPoint['target'],
  service: Service,
  db: BenchDatabase,
  opts: Parameters<typeof runVariedLoadFor>[0],
  warmup: number,
  duration: number,
): Promise<LoadPoint> {
  // warm-up (sized by a short probe) gives the rate; the measured run sends rate × duration requests
  const warm = await runVariedLoadFor(opts, warmup);
  const rate = warm.run.ok / Math.max(0.05, warm.run.durationSeconds);
  const batches0 = target === 'gateway' ? await requestBatches(opts.origin) : null;
  const serverCpu = cpuMeter(() => processTree(service.pid));
  const dbCpu = cpuMeter(() => db.serverPids());
  const load = await runVariedLoad({ ...opts, offset: (opts.offset ?? 0) + warm.probe.ok + warm.run.ok, amount: Math.max(opts.connections * 5, Math.round(rate * duration)) });
  const serverCpuSeconds = await serverCpu.stop();
  const dbCpuSeconds = await dbCpu.stop();
  const gone = await Promise.race([service.exited, new Promise<null>((r) => setTimeout(() => r(null), 0))]);
  if (gone) throw new Error(`${target} exited during the measurement (code ${gone.code}, signal ${gone.signal}):\n${service.output()}`);
  const batches1 = batches0 ? await requestBatches(opts.origin) : null;
  const requestsPerWrite = batches0 && batches1 ? (batches1.requests - batches0.requests) / Math.max(1, batches1.writes - batches0.writes) : undefined;
  return { target, load, serverCpuSeconds, dbCpuSeconds, requestsPerWrite };
}

export async function run(): Promise<{ name: 'predict'; metrics: Metrics }> {
  const duration = envNumber('BENCH_PREDICT_DURATION', 10);
  const warmup = envNumber('BENCH_PREDICT_WARMUP', 3);
  const concurrency = envNumber('BENCH_PREDICT_CONCURRENCY', 32);
  const batchRuns = envNumber('BENCH_PREDICT_BATCH_RUNS', 20);
  const rounds = envNumber('BENCH_PREDICT_ROUNDS', 2);
  const ncpu = cpus().length;
  const flaskWorkers = envNumber('BENCH_PREDICT_FLASK_WORKERS', ncpu);
  const flaskThreads = envNumber('BENCH_PREDICT_FLASK_THREADS', Math.max(1, Math.ceil(concurrency / flaskWorkers)));
  // PGML_WORKERS for the gateway; 2 measured slower than 1 here (5300-5900 vs 7100-7250 req/s at
  // c=32 on 2 cores: the processes then compete with PostgreSQL and the load generator)
  const gatewayWorkers = envNumber('BENCH_PREDICT_GATEWAY_WORKERS', 1);
  const gatewayNodeArgs = (process.env.BENCH_PREDICT_GATEWAY_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const notes: string[] = [];
  const metrics: Metrics = {};
  const load0 = loadavg()[0];
  if (load0 > ncpu * 0.5) {
    const msg = `the machine was busy at the start (1-min load average ${load0.toFixed(2)} on ${ncpu} CPUs): figures may be noisy`;
    console.log(`predict: WARNING: ${msg}`);
    notes.push(msg);
  }

  // the Python side first: a missing package skips Flask, not the whole benchmark
  const py = process.env.BENCH_PREDICT_FLASK === '0' ? { reason: 'BENCH_PREDICT_FLASK=0' } : pythonSide();
  if ('reason' in py) {
    console.log(`predict: Flask side skipped: ${py.reason}`);
    notes.push(`Flask side skipped: ${py.reason}`);
  } else {
    console.log(`predict: Python side: ${py.python} (${py.versions})${py.installed.length ? `; installed ${py.installed.join(' ')}` : ''}`);
  }

  let db: BenchDatabase | undefined;
  const tmp = mkdtempSync(join(tmpdir(), 'pgml-bench-predict-'));
  const removeTmp = onCleanup('predict temp dir', () => rmSync(tmp, { recursive: true, force: true }), () => rmSync(tmp, { recursive: true, force: true }));
  try {
    const t0 = Date.now();
    db = await startBenchDatabase();
    await db.admin.unsafe(DATA_SQL).simple();
    const [{ positives }] = await db.admin<{ positives: number }[]>`select avg(label)::float8 as positives from bench_predict`;
    console.log(`predict: ${ROWS} × ${FEATURES} rows generated in SQL in ${((Date.now() - t0) / 1000).toFixed(1)} s (${(positives * 100).toFixed(1)}% positive; ${db.embedded ? 'embedded PostgreSQL 18 in a temp dir' : 'BENCH_DATABASE_URL'})`);

    const secret = randomSecret();
    const token = await signToken(secret, { role: 'authenticated' }, 3 * 3600);
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' };
    const gateway: RunningGateway = await startGatewayProcess({ dbUri: db.authenticatorUri, migrationDbUri: db.adminUri, jwtSecret: secret, pool: POOL, nodeArgs: gatewayNodeArgs, env: { PGML_WORKERS: String(gatewayWorkers) } });

    // ---- train ours over HTTP
    const tTrain = Date.now();
    const trained = await http(`${gateway.url}/models/train`, {
      method: 'POST',
      headers,
      timeoutMs: 1_800_000,
      body: JSON.stringify({ project_name: PROJECT, task: 'classification', relation_name: 'bench_predict_train', y_column_name: 'label', algorithm: 'xgboost', hyperparams: { n_estimators: TREES, max_depth: DEPTH } }),
    });
    if (trained.status !== 200) throw new Error(`POST /models/train answered ${trained.status}: ${trained.text.slice(0, 500)}`);
    const train = JSON.parse(trained.text) as { model_id: number; deployed: boolean; metrics: Record<string, number> };
    if (!train.deployed) throw new Error(`the trained model was not deployed: ${trained.text.slice(0, 300)}`);
    const trainSeconds = (Date.now() - tTrain) / 1000;
    console.log(`predict: gateway trained model ${train.model_id} (xgboost, ${TREES} trees, depth ${DEPTH}) over HTTP in ${trainSeconds.toFixed(1)} s; test accuracy ${train.metrics.accuracy?.toFixed(4)}, roc_auc ${train.metrics.roc_auc?.toFixed(4) ?? '-'}`);
    metrics.gateway_train_seconds = round(trainSeconds, 2);
    metrics.gateway_model_test_accuracy = round(train.metrics.accuracy, 4);

    // ---- Flask side: train python xgboost on the same table, serve it
    let flask: RunningFlask | null = null;
    if (!('reason' in py)) {
      const modelFile = join(tmp, 'xgboost-model.json');
      const ref = trainFlaskModel(py, db.adminUri, 'bench_predict', modelFile, TREES, DEPTH, ncpu);
      console.log(`predict: python xgboost ${ref.version} trained on ${ref.rows} rows in ${ref.seconds.toFixed(1)} s (hist, ${TREES} trees, depth ${DEPTH}, eta 0.3)`);
      flask = await startFlask(py, { dsn: db.adminUri, table: 'bench_predict', modelFile, workers: flaskWorkers, threads: flaskThreads });
      console.log(`predict: Flask service up: ${flask.server}`);
      metrics.flask_server = flask.server;
      metrics.python_versions = py.versions;
    }

    // ---- the rows the load uses, and a correctness check of both services on some of them
    const loadIds = shuffledIds(ROWS, LOAD_ROWS);
    const featureRows = (await db.admin.unsafe(`select id, label, array[${F.join(', ')}] as x from bench_predict`)) as unknown as { id: number; label: number; x: number[] }[];
    const byId = new Map(featureRows.map((r) => [r.id, r]));
    const gatewayBodies = loadIds.map((id) => JSON.stringify({ features: byId.get(id)!.x }));
    const flaskPaths = loadIds.map((id) => `/predict/${id}`);
    const predictPath = `/models/${PROJECT}/predict`;
    let agree = 0;
    let gatewayRight = 0;
    let flaskRight = 0;
    const CHECK = 200;
    for (let i = 0; i < CHECK; i++) {
      const row = byId.get(loadIds[i])!;
      const g = await http(gateway.url + predictPath, { method: 'POST', headers, body: gatewayBodies[i] });
      if (g.status !== 200) throw new Error(`gateway answered ${g.status} to POST ${predictPath} ${gatewayBodies[i]}: ${g.text.slice(0, 300)}`);
      const gp = (JSON.parse(g.text) as { prediction: number }).prediction;
      if (gp === row.label) gatewayRight++;
      if (flask) {
        const f = await http(flask.url + flaskPaths[i]);
        if (f.status !== 200) throw new Error(`flask answered ${f.status} to GET ${flaskPaths[i]}: ${f.text.slice(0, 300)}`);
        const fp = (JSON.parse(f.text) as { prediction: number }).prediction;
        if (fp === row.label) flaskRight++;
        if (fp === gp) agree++;
      }
    }
    console.log(`predict: checked ${CHECK} rows: gateway right on ${gatewayRight}${flask ? `, Flask right on ${flaskRight}, the two agree on ${agree}` : ''}`);
    metrics.check_rows = CHECK;
    metrics.check_gateway_correct = gatewayRight;
    if (flask) {
      metrics.check_flask_correct = flaskRight;
      metrics.check_agreement = agree;
    }

    // ---- 1. single-row predict under load
    console.log(`predict: single-row load at c=${concurrency}: ~${duration} s per side and round after ~${warmup} s warm-up, ${rounds} rounds taking turns (best counts), each request a different row (${LOAD_ROWS} rows in turn)`);
    // the sides take turns, `rounds` times; each side's best round counts (the machine may be shared)
    const points: LoadPoint[] = [];
    const keepBest = (p: LoadPoint) => {
      console.log(`  round: ${p.target.padEnd(8)} ${p.load.rps.toFixed(0).padStart(6)} req/s  p50 ${p.load.latencyMs.p50.toFixed(2)} ms  p99 ${p.load.latencyMs.p99.toFixed(2)} ms${p.requestsPerWrite !== undefined ? `  ${p.requestsPerWrite.toFixed(1)} access checks per write to PostgreSQL` : ''}`);
      const i = points.findIndex((q) => q.target === p.target);
      if (i < 0) points.push(p);
      else if (p.load.rps > points[i].load.rps) points[i] = p;
    };
    for (let r = 0; r < rounds; r++) {
      const offset = r * 7919;
      keepBest(await measureLoad('gateway', gateway.service!, db, { origin: gateway.url, method: 'POST', headers, path: predictPath, bodies: gatewayBodies, connections: concurrency, offset }, warmup, duration));
      if (flask) keepBest(await measureLoad('flask', flask.service, db, { origin: flask.url, method: 'GET', headers: { accept: 'application/json' }, paths: flaskPaths, connections: concurrency, offset }, warmup, duration));
    }
    for (const p of points) {
      const n = Math.max(1, p.load.ok);
      console.log(`  ${p.target.padEnd(8)} c=${concurrency} ${p.load.rps.toFixed(0).padStart(6)} req/s  p50 ${p.load.latencyMs.p50.toFixed(2)} ms  p99 ${p.load.latencyMs.p99.toFixed(2)} ms  failed ${failures(p.load)}  server CPU ${Math.round((p.serverCpuSeconds / n) * 1e6)} µs/req  db CPU ${Math.round((p.dbCpuSeconds / n) * 1e6)} µs/req  loadgen CPU ${Math.round((p.load.loadCpuSeconds / n) * 1e6)} µs/req`);
      if (failures(p.load)) console.log(`  ${p.target}: WARNING: ${p.load.errors} socket errors ${JSON.stringify(p.load.errorKinds)}, ${p.load.non2xx} non-2xx`);
      metrics[`${p.target}_c${concurrency}_rps`] = round(p.load.rps, 1);
      metrics[`${p.target}_c${concurrency}_p50_ms`] = round(p.load.latencyMs.p50, 3);
      metrics[`${p.target}_c${concurrency}_p99_ms`] = round(p.load.latencyMs.p99, 3);
      metrics[`${p.target}_c${concurrency}_requests`] = p.load.ok;
      metrics[`${p.target}_c${concurrency}_errors`] = failures(p.load);
      metrics[`${p.target}_c${concurrency}_server_cpu_us_per_req`] = round((p.serverCpuSeconds / n) * 1e6, 0);
      metrics[`${p.target}_c${concurrency}_db_cpu_us_per_req`] = round((p.dbCpuSeconds / n) * 1e6, 0);
      metrics[`${p.target}_c${concurrency}_loadgen_cpu_us_per_req`] = round((p.load.loadCpuSeconds / n) * 1e6, 0);
      if (p.requestsPerWrite !== undefined) metrics[`${p.target}_c${concurrency}_access_checks_per_db_write`] = round(p.requestsPerWrite, 2);
    }
    const g1 = points.find((p) => p.target === 'gateway')!;
    const f1 = points.find((p) => p.target === 'flask');
    metrics.rps_ratio_vs_flask = f1 && f1.load.rps > 0 ? round(g1.load.rps / f1.load.rps, 3) : null;
    metrics.p50_ratio_flask_over_gateway = f1 ? round(f1.load.latencyMs.p50 / g1.load.latencyMs.p50, 3) : null;

    // ---- 2. batch of 10k rows
    const batchIds = loadIds.slice(0, BATCH);
    const batchX = batchIds.map((id) => byId.get(id)!.x);
    const batchBody = JSON.stringify({ features: batchX });
    const f32 = new Float32Array(BATCH * FEATURES);
    for (let i = 0; i < BATCH; i++) for (let j = 0; j < FEATURES; j++) f32[i * FEATURES + j] = batchX[i][j];

    const f32Body = new Uint8Array(f32.buffer);
    type Answer = { predictions: (number | string)[] };
    const gatewayAnswers: { json?: Answer; binary?: Answer } = {};
    const timeGateway = (body: 'json' | 'binary') =>
      timeRuns(2, batchRuns, async () => {
        const r = await http(gateway.url + predictPath, {
          method: 'POST',
          headers: body === 'json' ? headers : { ...headers, 'content-type': 'application/octet-stream' },
          body: body === 'json' ? batchBody : f32Body,
          timeoutMs: 120_000,
        });
        if (r.status !== 200) throw new Error(`gateway answered ${r.status} to the ${BATCH}-row ${body} batch: ${r.text.slice(0, 300)}`);
        gatewayAnswers[body] = JSON.parse(r.text) as Answer;
      });
    const gatewayBatch = await timeGateway('json');
    const gatewayBinary = await timeGateway('binary');

    const onnx = await http(`${gateway.url}/models/${PROJECT}/models/${train.model_id}/onnx`, { headers: { authorization: headers.authorization } });
    if (onnx.status !== 200) throw new Error(`GET .../onnx answered ${onnx.status}: ${onnx.text.slice(0, 300)}`);
    const rawTimings: Record<string, Timing> = {};
    let rawLabels: ArrayLike<number | bigint> | null = null;
    for (const [name, options] of [
      ['default', {}],
      ['1thread', { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' }],
    ] as const) {
      const session = await ort.InferenceSession.create(onnx.bytes, options as ort.InferenceSession.SessionOptions);
      const feeds = () => ({ [session.inputNames[0]]: new ort.Tensor('float32', f32, [BATCH, FEATURES]) });
      rawTimings[name] = await timeRuns(2, batchRuns, async () => {
        const out = await session.run(feeds());
        rawLabels = out.label.data as ArrayLike<number | bigint>;
      });
      await session.release();
    }
    const rawBest = rawTimings.default.p50 <= rawTimings['1thread'].p50 ? 'default' : '1thread';

    // the same model in this process, without HTTP: where the gateway's time goes
    const cache = new ModelCache();
    const loaded: LoadedModel = await db.admin.begin((tx) => cache.get(tx, String(train.model_id)));
    // as in the gateway, whose earlier requests started it: batches split over the predict worker
    const split = await loaded.threads.whenReady();
    const classes = loaded.meta.classes ?? [];
    const mismatchesOf = (answer: Answer | undefined) => {
      let n = 0;
      for (let i = 0; i < BATCH; i++) {
        const raw = Number(rawLabels![i]);
        if (String(answer!.predictions[i]) !== String(classes.length ? classes[raw] : raw)) n++;
      }
      return n;
    };
    const mismatches = mismatchesOf(gatewayAnswers.json);
    const binaryMismatches = mismatchesOf(gatewayAnswers.binary);
    const parse = await timeRuns(2, batchRuns, () => JSON.parse(batchBody));
    const parsed = JSON.parse(batchBody) as { features: number[][] };
    const toRows = await timeRuns(2, batchRuns, () => parsed.features.map((r) => featuresToRow(loaded.meta.columns, r)));
    const rows = parsed.features.map((r) => featuresToRow(loaded.meta.columns, r));
    let preds: Awaited<ReturnType<typeof predictRows>> | null = null;
    const serve = await timeRuns(2, batchRuns, async () => {
      preds = await predictRows(loaded, rows);
    });
    const binaryDecode = await timeRuns(2, batchRuns, () => binaryFeatureMatrix(loaded, f32Body, 'float32'));
    const decoded = binaryFeatureMatrix(loaded, f32Body, 'float32');
    const binaryServe = await timeRuns(2, batchRuns, () => predictFeatures(loaded, decoded.x, decoded.rows));
    const encode = await timeRuns(2, batchRuns, () => encodeRawRows(loaded.meta, rows as never));
    const ortInside = await OrtModel.create(loaded.onnx, { labelValues: loaded.meta.labelValues });
    const ortOnly = await timeRuns(2, batchRuns, () => ortInside.run(f32, BATCH));
    await ortInside.release();
    const stringify = await timeRuns(2, batchRuns, () =>
      JSON.stringify({ model_id: train.model_id, predictions: Array.from({ length: BATCH }, (_, i) => (classes.length ? classes[preds!.values[i]] : preds!.values[i])) }),
    );
    // single rows in process: the model evaluation inside one request
    const single = await timeRuns(1000, 20_000, (() => {
      let i = 0;
      return () => predictRows(loaded, [rows[i++ % rows.length]]);
    })());
    await cache.close();

    const bestBody = gatewayBinary.p50 <= gatewayBatch.p50 ? 'binary' : 'json';
    const bestGateway = bestBody === 'binary' ? gatewayBinary : gatewayBatch;
    metrics.batch_ratio_vs_raw_ort = round(rawTimings[rawBest].p50 / bestGateway.p50, 3);
    metrics.batch_gateway_body = bestBody === 'binary' ? 'application/octet-stream (float32 rows)' : 'application/json';
    metrics.batch_raw_ort_reference = rawBest === 'default' ? 'default session options' : 'intraOpNumThreads 1';
    metrics.batch_ratio_vs_raw_ort_1thread = round(rawTimings['1thread'].p50 / bestGateway.p50, 3);
    metrics.batch_ratio_vs_raw_ort_json = round(rawTimings[rawBest].p50 / gatewayBatch.p50, 3);
    metrics.batch_ratio_vs_raw_ort_binary = round(rawTimings[rawBest].p50 / gatewayBinary.p50, 3);
    metrics.batch_ratio_in_process_vs_raw_ort = round(rawTimings[rawBest].p50 / serve.p50, 3);
    metrics.batch_rows = BATCH;
    metrics.batch_in_process_split_over_threads = split ? loaded.threads.threads : 1;
    metrics.batch_runs = batchRuns;
    metrics.batch_request_bytes = batchBody.length;
    metrics.batch_request_bytes_binary = f32Body.byteLength;
    metrics.batch_prediction_mismatches_vs_raw_ort = mismatches;
    metrics.batch_prediction_mismatches_vs_raw_ort_binary = binaryMismatches;
    const batchRowsOut: [string, Timing, string][] = [
      ['gateway HTTP POST (JSON in/out)', gatewayBatch, 'gateway_http'],
      ['gateway HTTP POST (float32 body in, JSON out)', gatewayBinary, 'gateway_http_binary'],
      ['raw ORT session, default options', rawTimings.default, 'raw_ort_default'],
      ['raw ORT session, intraOpNumThreads 1', rawTimings['1thread'], 'raw_ort_1thread'],
      ['in process: JSON.parse of the body', parse, 'inproc_json_parse'],
      ['in process: featuresToRow', toRows, 'inproc_features_to_row'],
      ['in process: predictRows (serving.ts)', serve, 'inproc_predict_rows'],
      ['in process: binary body → feature matrix', binaryDecode, 'inproc_binary_decode'],
      ['in process: predictFeatures of it (serving.ts)', binaryServe, 'inproc_binary_predict'],
      ['for comparison: encodeRawRows (ORT input)', encode, 'inproc_encode_raw_rows'],
      ['for comparison: OrtModel.run (1 thread)', ortOnly, 'inproc_ort_run'],
      ['in process: JSON.stringify of the answer', stringify, 'inproc_json_stringify'],
    ];
    for (const [, t, key] of batchRowsOut) {
      metrics[`batch_${key}_p50_ms`] = round(t.p50, 2);
      metrics[`batch_${key}_p99_ms`] = round(t.p99, 2);
    }
    metrics.single_row_in_process_predict_rows_p50_us = round(single.p50 * 1000, 1);
    metrics.single_row_in_process_predict_rows_p99_us = round(single.p99 * 1000, 1);

    // ---- report
    const loadTable: Cell[][] = points.map((p) => {
      const n = Math.max(1, p.load.ok);
      return [
        p.target === 'gateway' ? 'gateway POST /models/…/predict (features in body)' : `flask GET /predict/<id> (row fetched from PG)`,
        concurrency,
        Math.round(p.load.rps),
        round(p.load.latencyMs.p50, 2),
        round(p.load.latencyMs.p99, 2),
        failures(p.load),
        Math.round((p.serverCpuSeconds / n) * 1e6),
        Math.round((p.dbCpuSeconds / n) * 1e6),
      ];
    });
    console.log('\n' + formatTable(['single-row predict', 'conc', 'req/s', 'p50 ms', 'p99 ms', 'failed', 'server CPU µs/req', 'db CPU µs/req'], loadTable));
    console.log(`\n${BATCH}-row batch, ${batchRuns} timed runs each (p99 of ${batchRuns} runs = the slowest):`);
    console.log(formatTable(['batch of 10k rows', 'p50 ms', 'p99 ms', 'mean ms'], batchRowsOut.map(([label, t]) => [label, round(t.p50, 2), round(t.p99, 2), round(t.mean, 2)])));
    console.log(`in process, single row: predictRows p50 ${(single.p50 * 1000).toFixed(1)} µs, p99 ${(single.p99 * 1000).toFixed(1)} µs`);
    console.log(`\npredict: rps_ratio_vs_flask = ${metrics.rps_ratio_vs_flask ?? '-'} (target ≥ 5); batch_ratio_vs_raw_ort = ${metrics.batch_ratio_vs_raw_ort} (${bestBody} body) vs the ${metrics.batch_raw_ort_reference} session (target ≥ 0.9); JSON body ${metrics.batch_ratio_vs_raw_ort_json}; in process without HTTP ${metrics.batch_ratio_in_process_vs_raw_ort}`);
    if (mismatches) console.log(`predict: WARNING: ${mismatches} of ${BATCH} gateway JSON batch predictions differ from raw ORT's labels`);
    if (binaryMismatches) console.log(`predict: WARNING: ${binaryMismatches} of ${BATCH} gateway binary batch predictions differ from raw ORT's labels`);

    metrics.concurrency = concurrency;
    metrics.duration_s = duration;
    metrics.rounds = rounds;
    metrics.pool = POOL;
    metrics.database = db.embedded ? 'embedded PostgreSQL 18' : 'BENCH_DATABASE_URL';
    metrics.load_generator = 'autocannon 8 in a forked child process, a different row per request';
    metrics.gateway_request = 'POST /models/bench_predict/predict {"features":[20 numbers]}: JWT, one read-only transaction as the caller (role switch, settings, deployed-model lookup under RLS; the transactions of requests arriving together share one write to PostgreSQL), native evaluation of the cached model';
    metrics.flask_request = 'GET /predict/<id>: one autocommit SELECT of the 20 features by primary key (superuser, no role switch), python xgboost inplace_predict';
    metrics.load_average_at_start = round(load0, 2);
    if (notes.length) metrics.notes = notes.join('; ');
    return { name: 'predict', metrics };
  } finally {
    await cleanupAll();
    removeTmp();
    rmSync(tmp, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, run);
