/**
 * RPC benchmark: a trivial function over HTTP, through three servers on the same database and
 * the same pool size, measured by the same HTTP load generator:
 *   gateway   this gateway (src/main.ts) in its own process
 *   postgrest real PostgREST 12.0.2
 *   raw_pg      node-postgres doing the gateway's per-request transaction behind bare node:http ("the
 *               limit"): BEGIN, set_config, the gateway's SELECT, COMMIT as four queries on named
 *               prepared statements (four round trips, no parse/plan after the first)
 *   raw_pg_1rt  the same four statements as one simple-protocol message (one round trip, parsed
 *               and planned every time)
 * rps_ratio_vs_raw_pg compares with the faster of the two raw variants.
 * Every request carries an HS256 bearer token for the role "authenticated".
 *
 * Environment: BENCH_RPC_DURATION (s per point, default 10), BENCH_RPC_WARMUP (s, default 2),
 * BENCH_RPC_CONCURRENCY (default 1,8,32), BENCH_RPC_TARGETS (default
 * gateway,postgrest,raw_pg,raw_pg_1rt), BENCH_RPC_SETOF=0 to leave out the setof point,
 * BENCH_RPC_GATEWAY_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"), BENCH_DATABASE_URL.
 */
import { runIfMain } from './lib/results.ts';
import { isDeepStrictEqual } from 'node:util';
import { cleanupAll } from './lib/cleanup.ts';
import { startBenchDatabase, type BenchDatabase } from './lib/database.ts';
import { startGatewayProcess } from './lib/gateway.ts';
import { randomSecret, signToken } from './lib/jwt.ts';
import { failures, runLoad, runLoadFor, type LoadSummary } from './lib/load.ts';
import { httpRequest } from './lib/net.ts';
import { postgrestBinary, startPostgrest } from './lib/postgrest.ts';
import { cpuMeter, processTree, type Service } from './lib/proc.ts';
import { startRawPgServer, type RawFunction } from './lib/raw-pg.ts';
import { formatTable } from './lib/table.ts';
import type { BenchResult, Metrics } from './lib/types.ts';

const POOL = 10;

const FUNCTIONS_SQL = `
create or replace function public.bench_add(a int, b int) returns int
  language sql immutable as $$ select a + b $$;
create or replace function public.bench_rows(n int) returns table(id int, label text)
  language sql stable as $$ select i, 'row ' || i from generate_series(1, n) as i $$;
grant execute on function public.bench_add(int, int), public.bench_rows(int) to anon, authenticated;
`;

const RAW_FUNCTIONS: RawFunction[] = [
  { schema: 'public', name: 'bench_add', args: [{ name: 'a', type: 'integer' }, { name: 'b', type: 'integer' }], returns: 'scalar' },
  { schema: 'public', name: 'bench_rows', args: [{ name: 'n', type: 'integer' }], returns: 'table' },
];

interface Workload {
  key: string;
  label: string;
  path: string;
  body: string;
  expected: unknown;
  concurrencies: number[];
}

interface Target {
  name: string;
  url: string;
  service: Service;
  /** exact body of the checked response: every response under load must equal it */
  bodies: Map<string, string>;
}

interface Point {
  target: string;
  workload: string;
  concurrency: number;
  load: LoadSummary;
  targetCpuSeconds: number;
  dbCpuSeconds: number;
}

function envNumber(name: string, fallback: number): number {
  const v = process.env[name];
  const n = v === undefined || v === '' ? fallback : Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(v)}`);
  return n;
}

/** latencies arrive over IPC as JSON: NaN (no 2xx response at all) became null */
const ms = (v: number | null) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(2) : '-');
const round = (v: number | null, digits: number) => (typeof v === 'number' && Number.isFinite(v) ? Math.round(v * 10 ** digits) / 10 ** digits : null);

async function check(target: Target, w: Workload, headers: Record<string, string>): Promise<void> {
  const res = await httpRequest(target.url + w.path, { method: 'POST', headers, body: w.body });
  let parsed: unknown;
  try {
    parsed = JSON.parse(res.body);
  } catch {
    parsed = Symbol('not json');
  }
  if (res.status !== 200 || !isDeepStrictEqual(parsed, w.expected)) {
    throw new Error(`${target.name} answered POST ${w.path} ${w.body} with ${res.status} ${res.body.slice(0, 300)}; expected 200 ${JSON.stringify(w.expected).slice(0, 300)}`);
  }
  target.bodies.set(w.key, res.body);
}

export async function run(): Promise<BenchResult> {
  const duration = envNumber('BENCH_RPC_DURATION', 10);
  const warmup = envNumber('BENCH_RPC_WARMUP', 2);
  const concurrencies = (process.env.BENCH_RPC_CONCURRENCY ?? '1,8,32').split(',').map((s) => Number(s.trim()));
  if (concurrencies.some((c) => !Number.isInteger(c) || c < 1)) throw new Error('BENCH_RPC_CONCURRENCY must list positive integers');
  const top = Math.max(...concurrencies);
  const wanted = (process.env.BENCH_RPC_TARGETS ?? 'gateway,postgrest,raw_pg,raw_pg_1rt').split(',').map((s) => s.trim());
  const notes: string[] = [];
  if (wanted.includes('postgrest') && !postgrestBinary()) {
    wanted.splice(wanted.indexOf('postgrest'), 1);
    notes.push('PostgREST binary not found: measured without it');
  }
  const workloads: Workload[] = [
    { key: 'add', label: 'bench_add(1,2)', path: '/rpc/bench_add', body: '{"a":1,"b":2}', expected: 3, concurrencies },
  ];
  if (process.env.BENCH_RPC_SETOF !== '0') {
    workloads.push({
      key: 'rows10',
      label: 'bench_rows(10)',
      path: '/rpc/bench_rows',
      body: '{"n":10}',
      expected: Array.from({ length: 10 }, (_, i) => ({ id: i + 1, label: `row ${i + 1}` })),
      concurrencies: [top],
    });
  }

  let db: BenchDatabase | undefined;
  try {
    const t0 = Date.now();
    db = await startBenchDatabase();
    await db.admin.unsafe(FUNCTIONS_SQL);
    const secret = randomSecret();
    const token = await signToken(secret, { role: 'authenticated' }, 3600);
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' };
    const gatewayNodeArgs = (process.env.BENCH_RPC_GATEWAY_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);

    // one after the other: parallel starts on two cores only make each slower to come up
    const targets: Target[] = [];
    for (const name of wanted) {
      let started: { url: string; service?: Service };
      if (name.startsWith('gateway')) {
        // gateway_w2: two HTTP worker processes (PGML_WORKERS=2) sharing the same total pool;
        // gateway_pipe*: the one-round-trip request client (PGML_DB_CLIENT=pipeline)
        const variants: Record<string, Record<string, string>> = {
          gateway: {},
          gateway_w2: { PGML_WORKERS: '2' },
          gateway_pipe: { PGML_DB_CLIENT: 'pipeline' },
          gateway_pipe_w2: { PGML_DB_CLIENT: 'pipeline', PGML_WORKERS: '2' },
        };
        const env = variants[name];
        if (!env) throw new Error(`unknown target ${name} in BENCH_RPC_TARGETS`);
        started = await startGatewayProcess({ dbUri: db.authenticatorUri, migrationDbUri: db.adminUri, jwtSecret: secret, pool: POOL, nodeArgs: gatewayNodeArgs, env });
      } else if (name === 'postgrest') {
        // PostgREST's JWT cache is off by default; the gateway always caches verified tokens: compare like with like
        started = await startPostgrest({ dbUri: db.authenticatorUri, jwtSecret: secret, pool: POOL, jwtCacheMaxLifetime: 3600 });
      } else if (name === 'raw_pg' || name === 'raw_pg_1rt') {
        started = await startRawPgServer({ name, dbUri: db.authenticatorUri, jwtSecret: secret, pool: POOL, functions: RAW_FUNCTIONS, mode: name === 'raw_pg' ? 'prepared' : 'pipelined' });
      } else {
        throw new Error(`unknown target ${name} in BENCH_RPC_TARGETS (gateway, postgrest, raw_pg, raw_pg_1rt)`);
      }
      targets.push({ name, url: started.url, service: started.service!, bodies: new Map() });
    }
    console.log(`rpc: database and ${targets.length} targets up in ${((Date.now() - t0) / 1000).toFixed(1)} s (${db.embedded ? 'embedded PostgreSQL 18 in a temp dir' : 'BENCH_DATABASE_URL'}, pool ${POOL} each)`);

    for (const t of targets) for (const w of workloads) await check(t, w, headers);
    console.log(`rpc: all targets answered correct bodies; ~${duration} s per point after ~${warmup} s warm-up (runs end with no request in flight)`);

    const points: Point[] = [];
    for (const w of workloads) {
      for (const c of w.concurrencies) {
        for (const t of targets) {
          const base = { url: t.url + w.path, method: 'POST' as const, headers, body: w.body, connections: c, expectBody: t.bodies.get(w.key) };
          // warm-up (sized by a short probe) gives the rate; the measured run sends rate × duration requests
          const warm = (await runLoadFor(base, warmup)).run;
          const rate = warm.ok / Math.max(0.05, warm.durationSeconds);
          const database = db;
          const targetCpu = cpuMeter(() => processTree(t.service.pid));
          const dbCpu = cpuMeter(() => database.serverPids());
          const load = await runLoad({ ...base, amount: Math.max(c * 5, Math.round(rate * duration)) });
          const gone = await Promise.race([t.service.exited, new Promise<null>((r) => setTimeout(() => r(null), 0))]);
          if (gone) throw new Error(`${t.name} exited during the measurement (code ${gone.code}, signal ${gone.signal}):\n${t.service.output()}`);
          // still answering? (a pool that leaked its connections would time out here)
          await check(t, w, headers).catch((e: Error) => {
            throw new Error(`${t.name} stopped answering correctly after the ${w.label} run at c=${c}: ${e.message}`);
          });
          const point: Point = { target: t.name, workload: w.key, concurrency: c, load, targetCpuSeconds: await targetCpu.stop(), dbCpuSeconds: await dbCpu.stop() };
          points.push(point);
          console.log(`  ${w.label.padEnd(15)} ${t.name.padEnd(16)} c=${String(c).padEnd(3)} ${load.rps.toFixed(0).padStart(6)} req/s  p50 ${ms(load.latencyMs.p50)} ms  p99 ${ms(load.latencyMs.p99)} ms  failed ${failures(load)}${failures(load) ? ` (${load.errors} socket errors ${JSON.stringify(load.errorKinds)}, ${load.non2xx} non-2xx, ${load.mismatches} wrong bodies)` : ''}`);
        }
      }
    }

    const rows = points.map((p) => {
      const n = Math.max(1, p.load.ok);
      return [
        workloads.find((w) => w.key === p.workload)!.label,
        p.target,
        p.concurrency,
        Math.round(p.load.rps),
        round(p.load.latencyMs.p50, 2),
        round(p.load.latencyMs.p99, 2),
        `${p.load.errors}/${p.load.non2xx}/${p.load.mismatches}`,
        Math.round((p.targetCpuSeconds / n) * 1e6),
        Math.round((p.dbCpuSeconds / n) * 1e6),
        Math.round((p.load.loadCpuSeconds / n) * 1e6),
      ];
    });
    console.log('\n' + formatTable(['rpc', 'target', 'conc', 'req/s', 'p50 ms', 'p99 ms', 'err/non2xx/badbody', 'server CPU µs/req', 'db CPU µs/req', 'loadgen CPU µs/req'], rows));

    const metrics: Metrics = {};
    const at = (target: string, workload: string, c: number) => points.find((p) => p.target === target && p.workload === workload && p.concurrency === c);
    // the gateway's best configuration in this run (one process, or PGML_WORKERS=2), named in gateway_config
    const oursAt = (workload: string) =>
      ['gateway', 'gateway_w2', 'gateway_pipe', 'gateway_pipe_w2'].map((g) => at(g, workload, top)).filter((p) => p !== undefined).sort((a, b) => b!.load.rps - a!.load.rps)[0];
    const ratio = (workload: string, others: string[]): number | null => {
      const ours = oursAt(workload);
      const best = Math.max(...others.map((o) => at(o, workload, top)?.load.rps ?? 0));
      return ours && best > 0 ? round(ours.load.rps / best, 3) : null;
    };
    metrics.rps_ratio_vs_postgrest = ratio('add', ['postgrest']);
    metrics.rps_ratio_vs_raw_pg = ratio('add', ['raw_pg', 'raw_pg_1rt']);
    metrics.rps_ratio_vs_raw_pg_prepared = ratio('add', ['raw_pg']);
    metrics.rps_ratio_vs_raw_pg_1rt = ratio('add', ['raw_pg_1rt']);
    metrics.rows10_rps_ratio_vs_postgrest = ratio('rows10', ['postgrest']);
    metrics.rows10_rps_ratio_vs_raw_pg = ratio('rows10', ['raw_pg', 'raw_pg_1rt']);
    metrics.ratio_concurrency = top;
    const configs: Record<string, string> = {
      gateway: 'one process, postgres.js (pool 10)',
      gateway_w2: 'PGML_WORKERS=2, postgres.js (pool 5 + 5)',
      gateway_pipe: 'one process, PGML_DB_CLIENT=pipeline (pool 10)',
      gateway_pipe_w2: 'PGML_WORKERS=2, PGML_DB_CLIENT=pipeline (pool 5 + 5)',
    };
    metrics.gateway_config = configs[oursAt('add')?.target ?? 'gateway'];
    for (const p of points) {
      const prefix = `${p.target}${p.workload === 'add' ? '' : '_' + p.workload}_c${p.concurrency}`;
      const n = Math.max(1, p.load.ok);
      metrics[`${prefix}_rps`] = round(p.load.rps, 1);
      metrics[`${prefix}_seconds`] = round(p.load.durationSeconds, 2);
      metrics[`${prefix}_p50_ms`] = round(p.load.latencyMs.p50, 3);
      metrics[`${prefix}_p99_ms`] = round(p.load.latencyMs.p99, 3);
      metrics[`${prefix}_errors`] = failures(p.load);
      metrics[`${prefix}_server_cpu_us_per_req`] = round((p.targetCpuSeconds / n) * 1e6, 0);
      metrics[`${prefix}_db_cpu_us_per_req`] = round((p.dbCpuSeconds / n) * 1e6, 0);
    }
    metrics.duration_s = duration;
    metrics.pool = POOL;
    metrics.database = db.embedded ? 'embedded PostgreSQL 18' : 'BENCH_DATABASE_URL';
    metrics.load_generator = 'autocannon 8 in a forked child process';
    if (notes.length) metrics.notes = notes.join('; ');
    const failed = points.filter((p) => failures(p.load) > 0);
    if (failed.length) console.log(`\nrpc: WARNING: failed requests in ${failed.map((p) => `${p.target}/${p.workload}/c${p.concurrency}`).join(', ')}`);
    if (metrics.rps_ratio_vs_postgrest !== null || metrics.rps_ratio_vs_raw_pg !== null) {
      console.log(`\nrpc at c=${top}: gateway/postgrest = ${metrics.rps_ratio_vs_postgrest ?? '-'} (target ≥ 1.2), gateway/raw_pg = ${metrics.rps_ratio_vs_raw_pg ?? '-'} (target ≥ 0.7)`);
    }
    return { name: 'rpc', metrics };
  } finally {
    await cleanupAll();
  }
}

runIfMain(import.meta.url, run);
