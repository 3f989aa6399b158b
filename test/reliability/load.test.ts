/**
 * Load: mixed traffic (RPC GET/POST, table reads, inserts and updates, predict, embed) at
 * concurrency 32 against the gateway as a child process. Zero errors, p99 reported, RSS flat
 * after warm-up, no leaked connections, every acknowledged insert in the table exactly once.
 * Short variant 5 s (npm test); PGML_RELIABILITY=1: 60 s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import {
  authHeaders, checkWrites, createLoadFixture, fmtStatuses, gatewayConnections, makeEmbedModel, mixedPlan, RELIABILITY, rssMb,
  sampler, scale, sleep, slopePerMinute, spawnGateway, startLoad, summarize, trainLoadModel, type GatewayProc,
} from './lib.ts';
import { report } from './report.ts';

const POOL = 10;
/** connections beyond PGRST_DB_POOL (README, Round trips): LISTEN, the training heartbeat, two for the job worker */
const OUTSIDE_POOL = 4;
const CONNECTIONS = 32;
const DURATION_MS = scale(5_000, 60_000);
const WARMUP_MS = scale(2_000, 10_000);

let db: TestDatabase;
let gw: GatewayProc | undefined;
let model: Awaited<ReturnType<typeof makeEmbedModel>> | undefined;

beforeAll(async () => {
  db = await createTestDatabase();
  await createLoadFixture(db.admin);
  model = await makeEmbedModel();
  gw = await spawnGateway({ dbUri: db.authenticatorUrl, migrationDbUri: db.adminUrl, pool: POOL, env: { PGML_MODEL_DIR: model.dir } });
}, 120_000);

afterAll(async () => {
  await gw?.stop();
  model?.cleanup();
  await db?.drop();
}, 60_000);

describe('load', () => {
  it(`mixed traffic at concurrency ${CONNECTIONS} for ${DURATION_MS / 1000} s: no errors, flat RSS, no leaked connections, no lost writes`, async () => {
    const KNOWN_ISSUES: string[] = [];
    const auth = await authHeaders();
    await trainLoadModel(gw!.url, auth, 'rel_load');
    const plan = mixedPlan(auth, { project: 'rel_load', embedModel: model!.name });

    // warm-up: JIT, pool filled, embedding model loaded, caches populated
    const warm = await startLoad({ baseUrl: gw!.url, connections: CONNECTIONS, durationMs: WARMUP_MS, plan }).done;
    const warmSummary = summarize(warm.outcomes);

    const rss = sampler(() => rssMb(gw!.pid), 250);
    const conns = sampler(() => gatewayConnections(db.admin, db.name), 500);
    const run = await startLoad({ baseUrl: gw!.url, connections: CONNECTIONS, durationMs: DURATION_MS, plan }).done;
    await rss.stop();
    await conns.stop();

    await sleep(500);
    const after = await gatewayConnections(db.admin, db.name);
    const s = summarize(run.outcomes);
    const writes = checkWrites(db.admin, 'rel_items', [...warm.outcomes, ...run.outcomes]);
    const w = await writes;

    // RSS: compare the first and last fifth of the run (after warm-up), and the trend
    const pts = rss.samples.filter((p) => p.v > 0);
    const fifth = Math.max(1, Math.floor(pts.length / 5));
    const avg = (xs: { v: number }[]) => xs.reduce((a, p) => a + p.v, 0) / xs.length;
    const rssStart = avg(pts.slice(0, fifth));
    const rssEnd = avg(pts.slice(-fifth));
    const rssMax = Math.max(...pts.map((p) => p.v));
    const growth = rssEnd - rssStart;
    const slope = slopePerMinute(pts);
    const maxConns = Math.max(...conns.samples.map((c) => c.v.total));
    const maxIdleInTx = Math.max(...conns.samples.map((c) => c.v.idleInTx));

    const rssFlat = growth < Math.max(64, rssStart * 0.25);
    const noLeak = maxConns <= POOL + OUTSIDE_POOL && after.total <= POOL + OUTSIDE_POOL && after.idleInTx === 0;
    const ok = gw!.alive() && s.errors === 0 && warmSummary.errors === 0 && w.lost === 0 && w.doubled === 0 && noLeak && (RELIABILITY ? rssFlat : true);
    const figures: Record<string, number | string> = {
      seconds: Math.round(run.durationMs / 100) / 10,
      connections: CONNECTIONS,
      requests: s.total.requests,
      rps: Math.round(s.total.ok / (run.durationMs / 1000)),
      errors: s.errors + warmSummary.errors,
      p50_ms: s.total.p50,
      p99_ms: s.total.p99,
      max_ms: s.total.max,
      ...Object.fromEntries(Object.entries(s.byKind).map(([k, v]) => [`p99_${k}_ms`, v.p99])),
      statuses: fmtStatuses(s.statuses),
      rss_start_mb: Math.round(rssStart),
      rss_end_mb: Math.round(rssEnd),
      rss_max_mb: Math.round(rssMax),
      rss_slope_mb_per_min: Math.round(slope * 10) / 10,
      pg_conns_max: maxConns,
      pg_conns_after: after.total,
      idle_in_tx_max: maxIdleInTx,
      writes_acknowledged: w.acknowledged,
      lost: w.lost,
      doubled: w.doubled,
    };
    if (!RELIABILITY && !rssFlat) figures.rss_note = 'grew (short run: not judged)';
    report(`load/mixed-${Math.round(DURATION_MS / 1000)}s`, ok, figures, KNOWN_ISSUES);

    expect(s.errors, fmtStatuses(s.statuses)).toBe(0);
    expect(warmSummary.errors, fmtStatuses(warmSummary.statuses)).toBe(0);
    expect(w.lost, `lost: ${w.lostIds.join(', ')}`).toBe(0);
    expect(w.doubled).toBe(0);
    expect(maxConns).toBeLessThanOrEqual(POOL + OUTSIDE_POOL);
    expect(after.idleInTx).toBe(0);
    expect(after.total).toBeLessThanOrEqual(POOL + OUTSIDE_POOL);
    if (RELIABILITY) expect(rssFlat, `RSS grew from ${rssStart.toFixed(0)} to ${rssEnd.toFixed(0)} MB`).toBe(true);
    expect(gw!.alive()).toBe(true);
  }, DURATION_MS + WARMUP_MS + 90_000);
});
