/**
 * Issue 14, bridge reports: any role can raise NOTICE 'pgml.bridge' (through pgml._report or with
 * RAISE), so every report is hostile input. Each attack runs over HTTP against a SQL function
 * served over /rpc, as the anonymous role and as a tenant, on both request clients, while a
 * bystander's /live and /rpc are probed; afterwards no connection is held (both pools idle, and
 * /models/* of every tenant still answers).
 */
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/gateway.ts';
import { makeTinyModels } from '../embed/helpers.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { bearer, eventually, startGateway, token } from '../helpers/gateway.ts';
import { createBystander, expectBystanderServed, underAttack } from './attack.ts';
import { ensureRoles } from './helpers.ts';

const MODEL = 'tiny-ba';
const TENANT = 'ba_mallory';
const VICTIM = 'ba_victim';
const OTHER = 'ba_other';
const LIMITS = { PGML_BRIDGE_MAX_CALLS: '50', PGML_BRIDGE_MAX_FEATURES: '16', PGML_BRIDGE_MAX_ROUND_BYTES: '65536' };
const MAX_INPUT_CHARS = 2000;

let db: TestDatabase;
let models: { dir: string; cleanup: () => void };
const h: Record<string, Record<string, string>> = {};
const ids = { tenantModel: 0, victimModel: 0, tenantTextModel: 0 };

beforeAll(async () => {
  models = makeTinyModels([MODEL]);
  process.env.PGML_MODEL_DIR = models.dir;
  process.env.PGML_EMBED_MAX_INPUT_CHARS = String(MAX_INPUT_CHARS);
  db = await createTestDatabase();
  await ensureRoles(db.admin, [TENANT, VICTIM, OTHER]);
  await createBystander(db.admin);
  await db.admin.unsafe(`
    grant execute on function public.bystander_ping() to ${OTHER};
    create table public.points (x real, y real);
    insert into public.points select i, 2 * i + 1 from generate_series(1, 30) i;
    grant select on public.points to ${TENANT}, ${VICTIM};
    -- a text feature: the model has no SQL form, so pgml.predict of it still goes through the bridge
    create table public.tagged (x real, tag text, y real);
    insert into public.tagged select i, (i % 3)::text, 2 * i + (i % 3) from generate_series(1, 30) i;
    grant select on public.tagged to ${TENANT};
    -- a forged report through the stubs' own helper
    create function public.forge(call jsonb) returns text language plpgsql as $$ begin perform pgml._report(call); return 'ok'; end $$;
    -- a raw notice; $ID becomes the statement's bridge id
    create function public.forge_notice(detail text) returns text language plpgsql as $$
    begin
      raise notice using message = 'pgml.bridge', detail = replace(detail, '$ID', coalesce(current_setting('pgml.bridge_id', true), ''));
      return 'ok';
    end $$;
    create function public.embed_many(n int, salt text, len int default 8) returns int language sql as $$
      select count(pgml.embed('${MODEL}', salt || repeat('w', len) || i))::int from generate_series(1, n) i $$;
    create function public.predict_id(id bigint, f real[]) returns real language sql as $$ select pgml.predict(id, f) $$;
    create function public.embed_one(t text) returns int language sql as $$ select cardinality(pgml.embed('${MODEL}', t)) $$;
    -- shows its bridge id to the database's superuser (pg_stat_activity), then takes its time
    create function public.victim_slow() returns text language plpgsql as $$
    begin
      perform set_config('application_name', 'bid:' || coalesce(current_setting('pgml.bridge_id', true), ''), true);
      perform pg_sleep(1.5);
      return 'victim-ok';
    end $$;
    grant execute on all functions in schema public to anon, ${TENANT}, ${VICTIM};
  `);
  for (const role of [TENANT, VICTIM, OTHER]) h[role] = bearer(await token({ role }));
  h.anon = {};
  // one model each for the tenant and the victim (trained through a throwaway gateway)
  const app = await startGateway(db);
  try {
    for (const [role, key] of [[TENANT, 'tenantModel'], [VICTIM, 'victimModel']] as const) {
      const r = await app.inject({ method: 'POST', url: '/models/train', payload: { project_name: `${role}_p`, task: 'regression', relation_name: 'points', y_column_name: 'y', algorithm: 'linear' }, headers: h[role] });
      expect(r.statusCode, r.body).toBe(200);
      ids[key] = r.json().model_id;
    }
    const r = await app.inject({ method: 'POST', url: '/models/train', payload: { project_name: `${TENANT}_tagged`, task: 'regression', relation_name: 'tagged', y_column_name: 'y', algorithm: 'linear' }, headers: h[TENANT] });
    expect(r.statusCode, r.body).toBe(200);
    ids.tenantTextModel = r.json().model_id;
    const [{ sql_model: none }] = await db.admin`select sql_model from pgml.models where id = ${ids.tenantTextModel}`;
    expect(none).toBeNull();
  } finally {
    await app.close();
  }
}, 120_000);

afterAll(async () => {
  await db?.drop();
  models?.cleanup();
});

describe.each(['pipeline', 'postgres'] as const)('forged bridge reports (%s client)', (client) => {
  let app: FastifyInstance;
  let gw: Gateway;
  let baseUrl: string;

  beforeAll(async () => {
    app = await startGateway(db, { PGML_DB_CLIENT: client, PGRST_DB_POOL: '4', PGRST_DB_POOL_ACQUISITION_TIMEOUT: '3', ...LIMITS });
    await app.listen({ port: 0, host: '127.0.0.1' });
    baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    gw = app.gateway;
  });
  afterAll(async () => {
    await app?.close();
  });

  const call = async (fn: string, args: unknown, who: string) => {
    const res = await fetch(`${baseUrl}/rpc/${fn}`, { method: 'POST', body: JSON.stringify(args), headers: { 'content-type': 'application/json', ...h[who] }, signal: AbortSignal.timeout(8000) });
    const text = await res.text();
    return { status: res.status, text, body: (() => { try { return JSON.parse(text); } catch { return text; } })() };
  };
  const bystander = () => ({ baseUrl, headers: h[OTHER] });

  /** nothing held: both pools idle, and /models of other tenants answers at once */
  async function expectNothingHeld() {
    await eventually(async () => {
      expect(gw.pool.stats.inUse).toBe(0);
      expect(gw.wirePool?.stats.inUse ?? 0).toBe(0);
    }, 3000);
    for (const who of [VICTIM, OTHER, 'anon']) {
      const started = performance.now();
      const r = await fetch(`${baseUrl}/models`, { headers: h[who], signal: AbortSignal.timeout(5000) });
      expect(r.status, await r.text()).toBe(200);
      expect(performance.now() - started).toBeLessThan(2000);
    }
  }

  const key = (c: string) => c.repeat(32);
  const predictKey = (id: number, proba = false) => `p:${id}:${key('a')}${proba ? ':proba' : ''}`;

  it('refuses malformed reports made with pgml._report with 400, as anon and as a tenant', async () => {
    const reports: unknown[] = [
      { fn: 'predict' },
      { fn: 'embed' },
      { fn: 'nope', key: key('e') },
      {},
      [1, 2, 3],
      'just a string',
      { fn: 'predict', key: predictKey(ids.tenantModel), model_id: 'x', features: 'y' },
      { fn: 'predict', key: predictKey(ids.tenantModel), model_id: -1, features: [1] },
      { fn: 'predict', key: predictKey(ids.tenantModel), model_id: 1.5, features: [1] },
      { fn: 'predict', key: predictKey(ids.tenantModel), model_id: ids.tenantModel, features: [1, 'two'] },
      { fn: 'predict', key: predictKey(ids.tenantModel), model_id: ids.tenantModel, features: [[1]] },
      { fn: 'predict', key: predictKey(ids.tenantModel), model_id: ids.tenantModel, features: { length: 3 } },
      { fn: 'predict', key: predictKey(ids.tenantModel + 1), model_id: ids.tenantModel, features: [1] },
      { fn: 'predict', key: predictKey(ids.tenantModel, true), model_id: ids.tenantModel, features: [1] },
      { fn: 'predict', key: 'e:' + key('b'), model_id: ids.tenantModel, features: [1] },
      { fn: 'embed', key: key('e'), model: MODEL, input: 'x' },
      { fn: 'embed', key: 'e:' + key('c'), model: MODEL, input: 5 },
      { fn: 'embed', key: 'e:' + key('c'), model: ['x'], input: 'x' },
      { fn: 'embed', key: 'e:' + key('c'), model: '../../../etc/passwd', input: 'x' },
      { fn: 'embed', key: 'e:' + key('c'), model: '/etc/passwd', input: 'x' },
      { fn: 'embed', key: 'e:' + key('c'), model: 'a/../../b', input: 'x' },
      { fn: 'embed', key: 'e:' + key('c'), model: MODEL, input: 'x', kwargs: { pooling: 'max' } },
      { fn: 'embed', key: 'e:' + key('c'), model: MODEL, input: 'x', kwargs: { normalize: 'yes' } },
      { fn: 'embed', key: 'e:' + key('c'), model: MODEL, input: 'x', kwargs: [] },
      { fn: 'embed', key: 'e:' + key('c'), model: MODEL, input: 'x'.repeat(MAX_INPUT_CHARS + 1) },
      { fn: 'predict', key: predictKey(ids.tenantModel), model_id: ids.tenantModel, features: new Array(17).fill(1) },
    ];
    const { result, report } = await underAttack(bystander(), async () => {
      const seen: string[] = [];
      for (const who of ['anon', TENANT]) {
        for (const r of reports) {
          // more attempts than the pools have connections: a leak would starve them
          for (let i = 0; i < 2; i++) {
            const res = await call('forge', { call: r }, who);
            if (res.status !== 400 || res.body?.code !== 'PGML400' || !('hint' in res.body) || !('details' in res.body)) seen.push(`${who} ${JSON.stringify(r).slice(0, 80)}: ${res.status} ${res.text.slice(0, 200)}`);
          }
        }
      }
      return seen;
    });
    expect(result).toEqual([]);
    expectBystanderServed(report);
    await expectNothingHeld();
  });

  it('answers reports naming models the caller cannot see as a plain 404, and predicts its own', async () => {
    const forged = (id: number) => ({ fn: 'predict', key: predictKey(id), model_id: id, features: [1] });
    const { result, report } = await underAttack(bystander(), async () => {
      const out: Record<string, { status: number; body: unknown }> = {};
      for (const who of ['anon', TENANT]) {
        for (const [name, id] of [['victim', ids.victimModel], ['missing', 987654321]] as const) {
          const r = await call('forge', { call: forged(id) }, who);
          out[`${who}/${name}`] = { status: r.status, body: JSON.parse(JSON.stringify(r.body).replaceAll(String(id), 'ID')) };
        }
      }
      out.own = await call('predict_id', { id: ids.tenantModel, f: [3] }, TENANT);
      return out;
    });
    for (const who of ['anon', TENANT]) {
      expect(result[`${who}/victim`].status).toBe(404);
      // a model of another tenant is indistinguishable from one that does not exist
      expect(result[`${who}/victim`]).toEqual(result[`${who}/missing`]);
    }
    expect(result.own.status).toBe(200);
    expect(Math.abs((result.own.body as number) - 7)).toBeLessThan(0.1);
    expectBystanderServed(report);
    await expectNothingHeld();
  });

  it('refuses raw NOTICE pgml.bridge with arbitrary detail, and drops notices that name no statement', async () => {
    const details = ['null', '[]', '"x"', '{', 'not json at all', '{"bridge_id":"$ID"}', '{"bridge_id":"$ID","fn":"predict","key":"a"}', '{"bridge_id":5}',
      `{"bridge_id":"$ID","fn":"embed","key":"e:${key('d')}","model":"${MODEL}","input":"x","__proto__":{"admin":true}}`.replace('"x"', '{"nested":1}'),
      `{"bridge_id":"00000000-0000-0000-0000-000000000000","fn":"embed","key":"e:${key('d')}","model":"${MODEL}","input":"x"}`,
      '{"bridge_id":"$ID","pad":"' + 'p'.repeat(70_000) + '"}'];
    const { result, report } = await underAttack(bystander(), async () => {
      const seen: string[] = [];
      for (const who of ['anon', TENANT]) {
        for (const d of details) {
          const res = await call('forge_notice', { detail: d }, who);
          // the pipeline client knows which connection a notice came from: on a statement's own
          // connection every 'pgml.bridge' notice is judged; postgres.js does not say, so there a
          // notice reaches a statement only by carrying its id, and one that does not is dropped
          const judged = d.includes('$ID') || client === 'pipeline';
          const ok = judged ? res.status === 400 && res.body?.code === 'PGML400' : res.status === 200 && res.body === 'ok';
          if (!ok) seen.push(`${who} ${d.slice(0, 60)}: ${res.status} ${res.text.slice(0, 200)}`);
        }
      }
      return seen;
    });
    expect(result).toEqual([]);
    expectBystanderServed(report);
    await expectNothingHeld();
  });

  it('limits the calls and report bytes of one statement (settings), and still serves legitimate calls', async () => {
    const { result, report } = await underAttack(bystander(), async () => ({
      tooMany: await call('embed_many', { n: 51, salt: client }, TENANT),
      tooManyAnon: await call('embed_many', { n: 200, salt: client }, 'anon'),
      tooBig: await call('embed_many', { n: 40, len: 1980, salt: client }, TENANT),
      longInput: await call('embed_one', { t: 'y'.repeat(MAX_INPUT_CHARS + 5) }, 'anon'),
      // pgml.predict of numeric models is evaluated in SQL (sql/008); a model with a text feature
      // still goes through the bridge, and so does a forged report
      wide: await call('predict_id', { id: ids.tenantTextModel, f: new Array(17).fill(1) }, TENANT),
      wideForged: await call('forge', { call: { fn: 'predict', key: predictKey(ids.tenantModel), model_id: ids.tenantModel, features: new Array(17).fill(1) } }, 'anon'),
      fine: await call('embed_many', { n: 50, salt: client }, TENANT),
      fineAnon: await call('embed_one', { t: 'hello' }, 'anon'),
      fineBridged: await call('predict_id', { id: ids.tenantTextModel, f: [4, 1] }, TENANT),
      fineForged: await call('forge', { call: { fn: 'predict', key: predictKey(ids.tenantModel), model_id: ids.tenantModel, features: new Array(16).fill(1) } }, TENANT),
    }));
    expect(result.tooMany.status, result.tooMany.text).toBe(400);
    expect(result.tooMany.body.details).toBe('Limit PGML_BRIDGE_MAX_CALLS');
    expect(result.tooManyAnon.body.details).toBe('Limit PGML_BRIDGE_MAX_CALLS');
    expect(result.tooBig.status, result.tooBig.text).toBe(400);
    expect(result.tooBig.body.details).toBe('Limit PGML_BRIDGE_MAX_ROUND_BYTES');
    expect(result.longInput.status, result.longInput.text).toBe(400);
    expect(result.longInput.body.details).toBe('Limit PGML_EMBED_MAX_INPUT_CHARS');
    expect(result.wide.status, result.wide.text).toBe(400);
    expect(result.wide.body.details).toBe('Limit PGML_BRIDGE_MAX_FEATURES');
    expect(result.wideForged.status, result.wideForged.text).toBe(400);
    expect(result.wideForged.body.details).toBe('Limit PGML_BRIDGE_MAX_FEATURES');
    // within the limits the bridge computes: the text model's prediction, and a forged report of
    // 16 features reaches the model (which has 1) instead of being refused by the limit
    expect(result.fineBridged.status, result.fineBridged.text).toBe(200);
    expect(typeof result.fineBridged.body).toBe('number');
    expect(result.fineForged.status, result.fineForged.text).toBe(400);
    expect(result.fineForged.body.details).not.toBe('Limit PGML_BRIDGE_MAX_FEATURES');
    expect(result.fineForged.text).toMatch(/expected 1 features, got 16/);
    expect(result.fine.status, result.fine.text).toBe(200);
    expect(result.fine.body).toBe(50);
    expect(result.fineAnon.body).toBeGreaterThan(0);
    expectBystanderServed(report);
    await expectNothingHeld();
  });

  it.runIf(client === 'pipeline')("ignores a report sent from another connection with a live statement's bridge id", async () => {
    const { result, report } = await underAttack(bystander(), async () => {
      const victim = call('victim_slow', {}, VICTIM);
      const id = await eventually(async () => {
        const [row] = await db.admin`select substr(application_name, 5) as id from pg_stat_activity where application_name like 'bid:%' and datname = current_database()`;
        expect(row?.id).toMatch(/^[0-9a-f-]{36}$/);
        return row.id as string;
      }, 1200, 10);
      // a report the victim's round would refuse (400) if it accepted it, and a valid one
      const injected = [
        await call('forge_notice', { detail: JSON.stringify({ bridge_id: id, fn: 'nope' }) }, TENANT),
        await call('forge_notice', { detail: JSON.stringify({ bridge_id: id, fn: 'embed', key: 'e:' + key('f'), model: MODEL, input: 'injected' }) }, TENANT),
      ];
      return { victim: await victim, injected };
    });
    expect(result.victim.status, result.victim.text).toBe(200);
    expect(result.victim.body).toBe('victim-ok');
    // on the attacker's own statement the notice names a round that is not its own
    for (const r of result.injected) expect(r.status).toBe(400);
    expectBystanderServed(report);
    await expectNothingHeld();
  });
});
