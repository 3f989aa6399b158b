/**
 * In-process comparison of the request path's database clients (not a vitest file):
 *   postgresjs  runAsCaller on src/db/pool.ts (postgres.js sql.begin: 3 round trips)
 *   pipeline    runAsCallerPipelined on src/db/wire (1 round trip)
 * Both run the gateway's transaction for POST /rpc/bench_add {"a":1,"b":2} as "authenticated"
 * (BEGIN READ ONLY, set_config settings, bench/rpc.ts's main statement, COMMIT).
 * Per round and client: WIRE_BENCH_TX transactions (default 5000) at WIRE_BENCH_CONC in flight
 * (default 32) on a pool of WIRE_BENCH_POOL (default 10), after a warm-up; reports tx/s, Node CPU
 * µs/tx (process.cpuUsage) and database CPU µs/tx.
 * Run: npx tsx test/wire/bench.ts   (BENCH_DATABASE_URL to use an existing cluster)
 */
import { cleanupAll } from '../../bench/lib/cleanup.ts';
import { startBenchDatabase } from '../../bench/lib/database.ts';
import { cpuMeter } from '../../bench/lib/proc.ts';
import { mainSql } from '../../bench/lib/raw-pg-server.ts';
import { runAsCaller, type CallerContext } from '../../src/db/as-caller.ts';
import { Pool } from '../../src/db/pool.ts';
import { runAsCallerPipelined } from '../../src/db/wire/as-caller.ts';
import { WirePool } from '../../src/db/wire/pool.ts';

const N = Number(process.env.WIRE_BENCH_TX ?? 5000);
const CONC = Number(process.env.WIRE_BENCH_CONC ?? 32);
const POOL = Number(process.env.WIRE_BENCH_POOL ?? 10);
const ROUNDS = Number(process.env.WIRE_BENCH_ROUNDS ?? 3);

const ctx: CallerContext = {
  role: 'authenticated',
  claims: { role: 'authenticated', exp: 9999999999 },
  method: 'POST',
  path: '/rpc/bench_add',
  headers: { 'content-type': 'application/json', accept: 'application/json', host: '127.0.0.1', 'user-agent': 'autocannon' },
  cookies: {},
  settings: [['search_path', '"public"']],
};
const statement = { text: mainSql({ schema: 'public', name: 'bench_add', args: [{ name: 'a', type: 'integer' }, { name: 'b', type: 'integer' }], returns: 'scalar' }, '$1'), params: ['{"a":1,"b":2}'] };

type Run = () => Promise<{ body: string }[]>;

async function drive(run: Run, n: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONC }, async () => {
      while (next < n) {
        next++;
        const rows = await run();
        if (rows[0]?.body !== '3') throw new Error(`wrong result ${JSON.stringify(rows)}`);
      }
    }),
  );
}

async function measure(run: Run, dbPids: () => Promise<number[]>) {
  const db = cpuMeter(dbPids);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await drive(run, N);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return { tps: N / seconds, nodeUs: (cpu.user + cpu.system) / N, dbUs: ((await db.stop()) * 1e6) / N };
}

async function main() {
  const db = await startBenchDatabase();
  try {
    await db.admin.unsafe(`create or replace function public.bench_add(a int, b int) returns int language sql immutable as $$ select a + b $$;
      grant execute on function public.bench_add(int, int) to anon, authenticated;`);
    const opts = { uri: db.authenticatorUri, max: POOL, acquisitionTimeout: 10_000, prepare: true };
    const pg = new Pool(opts);
    const wire = new WirePool(opts);
    const clients: [string, Run][] = [
      ['postgresjs', () => runAsCaller(pg, ctx, statement, { readOnly: true }) as never],
      ['pipeline', () => runAsCallerPipelined(wire, ctx, statement, { readOnly: true }) as never],
    ];
    for (const [, run] of clients) await drive(run, 1000);
    const results = new Map<string, { tps: number; nodeUs: number; dbUs: number }[]>();
    for (let r = 0; r < ROUNDS; r++) {
      for (const [name, run] of r % 2 ? [...clients].reverse() : clients) {
        const m = await measure(run, () => db.serverPids());
        (results.get(name) ?? results.set(name, []).get(name)!).push(m);
        console.log(`round ${r + 1} ${name.padEnd(11)} ${m.tps.toFixed(0).padStart(6)} tx/s  node ${m.nodeUs.toFixed(0).padStart(4)} µs/tx  db ${m.dbUs.toFixed(0).padStart(4)} µs/tx`);
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    console.log(`\nmedian of ${ROUNDS} rounds, ${N} tx at ${CONC} in flight, pool ${POOL}, ${db.embedded ? 'embedded PostgreSQL 18' : 'BENCH_DATABASE_URL'}:`);
    const summary: Record<string, unknown> = {};
    for (const [name, ms] of results) {
      const s = { tps: Math.round(median(ms.map((m) => m.tps))), node_cpu_us_per_tx: Math.round(median(ms.map((m) => m.nodeUs))), db_cpu_us_per_tx: Math.round(median(ms.map((m) => m.dbUs))) };
      summary[name] = s;
      console.log(`  ${name.padEnd(11)} ${JSON.stringify(s)}`);
    }
    console.log(JSON.stringify(summary));
    await pg.end();
    await wire.end();
  } finally {
    await db.stop();
    await cleanupAll();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
