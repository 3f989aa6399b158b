/**
 * Issue 14, jobs: a tenant cannot steer a job at another tenant's model (SQL and HTTP, every
 * column of pgml.jobs, anonymous and authenticated), cannot call the worker functions, and
 * cannot starve other tenants' jobs by queueing many of its own. The gateway logs in as a role
 * that is not called authenticator (issue 15) and still claims and runs jobs. While each attack
 * runs, /live and another tenant's /rpc are probed (attack.ts).
 */
import type { FastifyInstance } from 'fastify';
import postgres, { type Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { bearer, eventually, startGateway, token } from '../helpers/gateway.ts';
import { createBystander, expectBystanderServed, underAttack } from './attack.ts';
import { baseUrl, createLoginRole, createTrainingTable, http, type LoginRole } from './training-helpers.ts';

const ALICE = 'jobsa_alice';
const BOB = 'jobsa_bob';

let db: TestDatabase;
let login: LoginRole;
let app: FastifyInstance;
let base: string;
let alice: Record<string, string>;
let bob: Record<string, string>;
let bystander: Record<string, string>;
let victimModel = 0;

const job = async (id: number) => (await db.admin`select status, owner, model_id::int, claimed_by, error from pgml.jobs where id = ${id}`)[0];
const model = async (id: number) => (await db.admin`select status, error, owner from pgml.models where id = ${id}`)[0];
const rpc = (name: string, body: unknown, h: Record<string, string>) => http(base, 'POST', `/rpc/${name}`, body, h);
const denied = (r: { status: number }) => r.status === 401 || r.status === 403;

beforeAll(async () => {
  db = await createTestDatabase();
  login = await createLoginRole(db, [ALICE, BOB]);
  await createTrainingTable(db, 'pts', 300, [ALICE, BOB, 'anon', 'authenticated']);
  await createTrainingTable(db, 'pts_big', 20000, [BOB]);
  await createBystander(db.admin);
  // tenants' SQL, served over /rpc: every way to write pgml.jobs or reach the worker functions
  await db.admin.unsafe(`
    create function jobs_insert(cols text, vals text) returns bigint language plpgsql as $$
    declare id bigint;
    begin
      execute format('insert into pgml.jobs (%s) values (%s) returning id', cols, vals) into id;
      return id;
    end $$;
    create function jobs_update(jid bigint, col text, val text) returns int language plpgsql as $$
    declare n int;
    begin
      execute format('update pgml.jobs set %I = %L where id = %s', col, val, jid);
      get diagnostics n = row_count;
      return n;
    end $$;
    create function call_sql(q text) returns text language plpgsql as $$
    declare r text;
    begin
      execute q into r;
      return r;
    end $$;
    create function sql_train(pname text) returns bigint language sql as $$
      select job_id from pgml.train(pname, 'regression', 'pts', 'y', 'linear')
    $$;
    grant execute on function jobs_insert(text, text), jobs_update(bigint, text, text), call_sql(text), sql_train(text) to anon, authenticated, ${ALICE}, ${BOB};
    -- alice's model in training (heart-beaten far ahead, so only an attack could fail it)
    insert into pgml.projects (name, task, owner) values ('alice_proj', 'regression', '${ALICE}');
    insert into pgml.models (project_id, num_features, algorithm, hyperparams, status, owner, heartbeat_at)
      select id, 0, 'linear', '{}', 'in_progress', '${ALICE}', clock_timestamp() + interval '1 hour' from pgml.projects where name = 'alice_proj';
    notify pgrst, 'reload schema';`).simple();
  victimModel = Number((await db.admin`select id from pgml.models where owner = ${ALICE}`)[0].id);
  app = await startGateway(db, { PGRST_DB_URI: login.url, PGML_JOB_STALE_SECONDS: '2', PGML_JOB_CONCURRENCY: '2', PGML_JOB_MAX_RUNNING_PER_OWNER: '1', PGRST_DB_POOL: '8' });
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = baseUrl(app);
  alice = bearer(await token({ role: ALICE }));
  bob = bearer(await token({ role: BOB }));
  bystander = bearer(await token({ role: 'authenticated' }));
  await eventually(async () => expect((await rpc('bystander_ping', {}, bystander)).status).toBe(200), 5000);
}, 60_000);

afterAll(async () => {
  if (app?.server.listening) await app.close();
  await db?.drop();
  await login?.drop();
});

describe('jobs steered across tenants', () => {
  it('no column but kind and params can be written on insert, none but the cancel request on update, as bob, anon or authenticated', async () => {
    const callers = { bob, anon: {}, authenticated: bystander };
    const { result, report } = await underAttack({ baseUrl: base, headers: bystander }, async () => {
      const out: string[] = [];
      for (const [who, h] of Object.entries(callers)) {
        const steered: [string, string][] = [
          ['kind, params, model_id', `'train', '{"project_name":"x"}', ${victimModel}`],
          ['kind, params, owner', `'train', '{"project_name":"x"}', '${ALICE}'`],
          ['kind, params, status, claimed_by, heartbeat_at', `'train', '{}', 'running', 'w', now()`],
          ['kind, params, status, model_id', `'train', '{}', 'failed', ${victimModel}`],
          ['kind, params, result, error, progress, attempts', `'train', '{}', '{}', '{}', 1, 5`],
        ];
        for (const [cols, vals] of steered) {
          const r = await rpc('jobs_insert', { cols, vals }, h);
          if (!denied(r)) out.push(`${who} insert (${cols}): ${r.status} ${r.body}`);
        }
        // what a tenant needs still works (anon too: it owns its own jobs)
        // (a relation that does not exist: if the worker claims it first, it fails at once)
        const own = await rpc('jobs_insert', { cols: 'kind, params', vals: `'train', '{"project_name":"own_${who}","task":"regression","relation_name":"no_such_relation","y_column_name":"y"}'` }, h);
        if (own.status !== 200) {
          out.push(`${who} insert (kind, params): ${own.status} ${own.body}`);
          continue;
        }
        const ownId = Number(own.body);
        for (const [col, val] of [['model_id', String(victimModel)], ['owner', ALICE], ['status', 'queued'], ['claimed_by', 'w'], ['heartbeat_at', '2100-01-01'], ['params', '{}'], ['result', '{}'], ['progress', '1'], ['attempts', '0'], ['error', '{}'], ['kind', 'train']]) {
          const r = await rpc('jobs_update', { jid: ownId, col, val }, h);
          if (!denied(r)) out.push(`${who} update ${col}: ${r.status} ${r.body}`);
        }
        const cancel = await rpc('jobs_update', { jid: ownId, col: 'cancel_requested', val: 'true' }, h);
        if (cancel.status !== 200 || cancel.body !== '1') out.push(`${who} cancel own: ${cancel.status} ${cancel.body}`);
        // a cancel request is one-way
        await rpc('jobs_update', { jid: ownId, col: 'cancel_requested', val: 'false' }, h);
        const after = (await db.admin`select cancel_requested from pgml.jobs where id = ${ownId}`)[0];
        if (!after.cancel_requested) out.push(`${who} un-cancel: ${JSON.stringify(after)}`);
        // and another tenant's job is out of reach (RLS): no row
        const foreign = await rpc('jobs_update', { jid: ownId, col: 'cancel_requested', val: 'true' }, who === 'bob' ? alice : bob);
        if (foreign.status !== 200 || foreign.body !== '0') out.push(`cancel ${who}'s job as another: ${foreign.status} ${foreign.body}`);
      }
      // wrong kinds and oversized params are refused by the table itself
      for (const [vals, what] of [[`'embed', '{}'`, 'kind'], [`'train', '[1,2]'`, 'array params'], [`'train', jsonb_build_object('pad', repeat(md5(random()::text), 20000))`, '640 kB params']]) {
        const r = await rpc('jobs_insert', { cols: 'kind, params', vals }, bob);
        if (r.status !== 400) out.push(`bob insert ${what}: ${r.status} ${r.body}`);
      }
      return out;
    });
    expect(result).toEqual([]);
    expect(await model(victimModel)).toMatchObject({ status: 'in_progress', error: null });
    expectBystanderServed(report);
  });

  it('a job row pointing at alice\'s model (as rows written before this migration could) never fails it', async () => {
    const { result, report } = await underAttack({ baseUrl: base, headers: bystander }, async () => {
      // the shapes claim_job sweeps: queued or failed with a model in_progress
      const planted = [];
      for (const status of ['queued', 'failed', 'running']) {
        const [r] = await db.admin`insert into pgml.jobs (kind, params, owner, status, model_id, heartbeat_at, attempts)
          values ('train', '{"project_name":"steer","task":"regression","relation_name":"pts","y_column_name":"y"}', ${BOB}, ${status}, ${victimModel}, now() - interval '1 hour', 2) returning id::int`;
        planted.push(r.id as number);
      }
      // bob's own jobs, over HTTP (extra fields aimed at alice) and SQL; each claim runs the sweeps
      const extra = await http(base, 'POST', '/models/train', { project_name: 'alice_proj', task: 'regression', relation_name: 'pts', y_column_name: 'y', model_id: victimModel, owner: ALICE }, { ...bob, prefer: 'respond-async' });
      const viaSql = await rpc('sql_train', { pname: 'bob_sql' }, bob);
      const ids = [extra.status === 202 ? extra.json().job_id : null, Number(viaSql.body)].filter((x): x is number => x !== null);
      for (const id of ids) await eventually(async () => expect((await job(id)).status).toMatch(/succeeded|failed/), 20_000, 50);
      // the planted queued job runs too, as bob
      await eventually(async () => expect((await db.admin`select count(*)::int as n from pgml.jobs where status in ('queued', 'running')`)[0].n).toBe(0), 20_000, 50);
      return { planted, ids, extra: extra.status, sql: viaSql.status, jobs: await Promise.all(ids.map(job)) };
    });
    expect([202, 400]).toContain(result.extra);
    expect(result.sql).toBe(200);
    for (const j of result.jobs) expect(j).toMatchObject({ status: 'succeeded', owner: BOB });
    // bob's "alice_proj" is his own project; alice's project got no model, hers is untouched
    expect((await db.admin`select count(*)::int as n from pgml.models m join pgml.projects p on p.id = m.project_id where p.owner = ${ALICE}`)[0].n).toBe(1);
    expect(await model(victimModel)).toMatchObject({ status: 'in_progress', error: null });
    expectBystanderServed(report);
  });

  it('the worker functions are the login role\'s alone: tenants get permission denied in SQL, and claims run under a login role not named authenticator', async () => {
    const calls = [
      `select pgml_worker.claim_job('x', '1 second', 100)::text`,
      `select pgml.claim_job('x')::text`,
      `select pgml_worker.finish_job(1, 'x', 'failed', null, null)::text`,
      `select pgml_worker.job_model(1, 'x', ${victimModel})::text`,
      `select pgml_worker.job_heartbeat(1, 'x', 0)::text`,
      `select pgml_worker.sweep_stale_trainings('0 seconds')::text`,
      `select pgml_worker.beat_trainings(array[${victimModel}]::bigint[], array['${ALICE}'])::text`,
    ];
    const { result, report } = await underAttack({ baseUrl: base, headers: bystander }, async () => {
      const out: string[] = [];
      for (const [who, h] of Object.entries({ bob, anon: {}, authenticated: bystander })) {
        for (const q of calls) {
          const r = await rpc('call_sql', { q }, h);
          if (!denied(r)) out.push(`${who}: ${q} -> ${r.status} ${r.body}`);
        }
      }
      return out;
    });
    expect(result).toEqual([]);
    const privileges = await db.admin`
      select r.rolname, has_schema_privilege(r.rolname, 'pgml_worker', 'usage') as usage,
             has_function_privilege(r.rolname, 'pgml_worker.claim_job(text, interval, integer)', 'execute') as claim
      from pg_roles r where r.rolname in (${ALICE}, ${BOB}, 'anon', 'authenticated', ${login.name}) order by 1`;
    for (const p of privileges) expect(p, p.rolname).toMatchObject(p.rolname === login.name ? { usage: true, claim: true } : { usage: false });
    expect(login.name).not.toBe('authenticator');
    // the gateway (logged in as that role) claimed and ran the jobs of the earlier tests
    expect((await db.admin`select count(*)::int as n from pgml.jobs where status = 'succeeded' and claimed_by is not null`)[0].n).toBeGreaterThan(0);
    expect(await model(victimModel)).toMatchObject({ status: 'in_progress' });
    expectBystanderServed(report);
  });
});

describe('job queue fairness', () => {
  it('bob\'s queue of long jobs does not hold alice\'s job back, and bob never runs more than his share', async () => {
    const slow = { task: 'regression', relation_name: 'pts_big', y_column_name: 'y', algorithm: 'xgboost', hyperparams: { n_estimators: 5000, max_depth: 8 } };
    let maxBobRunning = 0;
    const { result, report } = await underAttack({ baseUrl: base, headers: bystander }, async () => {
      const bobJobs: number[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await http(base, 'POST', '/models/train', { project_name: `bob_slow_${i}`, ...slow }, { ...bob, prefer: 'respond-async' });
        expect(r.status, r.body).toBe(202);
        bobJobs.push(r.json().job_id);
      }
      await eventually(async () => expect((await job(bobJobs[0])).status).toBe('running'), 10_000, 50);
      const sampler = setInterval(async () => {
        const [{ n }] = await db.admin`select count(*)::int as n from pgml.jobs where owner = ${BOB} and status = 'running'`;
        maxBobRunning = Math.max(maxBobRunning, n);
      }, 50);
      try {
        // alice queues after all of bob's, in SQL
        const aliceJob = Number((await rpc('sql_train', { pname: 'alice_fair' }, alice)).body);
        await eventually(async () => expect((await job(aliceJob)).status).toBe('succeeded'), 20_000, 50);
        const bobStates = await Promise.all(bobJobs.map(job));
        return { alice: await job(aliceJob), bobStates: bobStates.map((j) => j.status) };
      } finally {
        clearInterval(sampler);
        for (const id of bobJobs) await http(base, 'DELETE', `/models/jobs/${id}`, undefined, bob);
        await eventually(async () => expect((await Promise.all(bobJobs.map(job))).every((j) => j.status !== 'running')).toBe(true), 10_000, 50);
      }
    });
    expect(result.alice).toMatchObject({ status: 'succeeded', owner: ALICE });
    // alice finished while bob's first job was still running and the rest of his queue waited
    expect(result.bobStates[0]).toBe('running');
    expect(result.bobStates.slice(1)).toEqual(['queued', 'queued', 'queued', 'queued']);
    expect(maxBobRunning).toBe(1);
    expectBystanderServed(report);
  }, 60_000);
});

describe('claim_job in SQL, as the login role', () => {
  let conns: Sql[] = [];
  afterAll(async () => {
    for (const c of conns) await c.end();
  });

  it('claims fairly across owners, caps each owner across concurrent claimers, and skips cancelled jobs', async () => {
    // the gateway's worker would claim these jobs too: the claims here are the only ones
    await app.close();
    conns = Array.from({ length: 4 }, () => postgres(login.url, { max: 1, onnotice: () => {} }));
    const [c] = conns;
    // a tenant's cancel request on its queued job cancels it at once
    const cancelled = await c.begin(async (tx) => {
      await tx.unsafe(`set local role ${BOB}`);
      const [{ id }] = await tx`insert into pgml.jobs (kind, params) values ('train', '{}') returning id`;
      return tx`update pgml.jobs set cancel_requested = true where id = ${id} returning status, finished_at is not null as finished`;
    });
    expect(cancelled[0]).toEqual({ status: 'cancelled', finished: true });
    await db.admin`update pgml.jobs set status = 'cancelled' where status in ('queued', 'running')`;
    const enqueue = async (owner: string, n: number) => {
      const ids: number[] = [];
      for (let i = 0; i < n; i++) ids.push((await db.admin`insert into pgml.jobs (params, owner) values ('{}', ${owner}) returning id::int`)[0].id as number);
      return ids;
    };
    const bobIds = await enqueue(BOB, 4);
    const aliceIds = await enqueue(ALICE, 1);
    const anonIds = await enqueue('anon', 2);
    await db.admin`update pgml.jobs set cancel_requested = true where id = ${anonIds[0]}`;
    const claim = async (cap: number, conn = c) => (await conn`select id::int, owner from pgml_worker.claim_job('t', '1 hour', ${cap})`)[0] ?? null;
    // fewest running first, then oldest: bob, alice, anon (its cancelled job skipped); then bob is capped
    expect([await claim(1), await claim(1), await claim(1), await claim(1)]).toEqual([
      { id: bobIds[0], owner: BOB }, { id: aliceIds[0], owner: ALICE }, { id: anonIds[1], owner: 'anon' }, null,
    ]);
    expect(await claim(2)).toEqual({ id: bobIds[1], owner: BOB });
    // four replicas claiming at once with a cap of 3: bob gets exactly one more
    const raced = await Promise.all(conns.map((conn) => claim(3, conn)));
    expect(raced.filter(Boolean)).toEqual([{ id: bobIds[2], owner: BOB }]);
    expect((await db.admin`select count(*)::int as n from pgml.jobs where owner = ${BOB} and status = 'running'`)[0].n).toBe(3);
  });
});
