/**
 * Issue 14, embeddings: POST /models/embed must refuse a role PostgreSQL refuses exactly as /rpc
 * does, before computing anything; and work whose client is gone (POST /models/embed, a bridged
 * /rpc) must stop: queued inputs are dropped, a large request stops between batches. Every attack
 * runs over a real socket while a bystander's /live and /rpc are probed.
 */
import type { FastifyInstance } from 'fastify';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/gateway.ts';
import { makeTinyModels } from '../embed/helpers.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { bearer, eventually, startGateway, token } from '../helpers/gateway.ts';
import { createBystander, expectBystanderServed, underAttack } from './attack.ts';
import { ensureRoles } from './helpers.ts';

const MODEL = 'tiny-ea';
const TENANT = 'ea_tenant';
const OTHER = 'ea_other';
const NOT_GRANTED = 'ea_not_granted';
const BATCH = 8;

let db: TestDatabase;
let models: { dir: string; cleanup: () => void };
let app: FastifyInstance;
let gw: Gateway;
let baseUrl: string;
let superuser: string;
const h: Record<string, Record<string, string>> = {};

beforeAll(async () => {
  models = makeTinyModels([MODEL]);
  process.env.PGML_MODEL_DIR = models.dir;
  // small batches and one thread: a big request is many batches, each a while
  process.env.PGML_EMBED_MAX_BATCH = String(BATCH);
  process.env.PGML_EMBED_THREADS = '1';
  db = await createTestDatabase();
  await ensureRoles(db.admin, [TENANT, OTHER], [NOT_GRANTED]);
  await createBystander(db.admin);
  superuser = (await db.admin`select current_user as u`)[0].u;
  await db.admin.unsafe(`
    grant execute on function public.bystander_ping() to ${OTHER};
    create function public.embed_many(n int, salt text) returns int language sql as $$
      select count(pgml.embed('${MODEL}', salt || ' ' || repeat('lorem ipsum dolor sit amet ', 30) || i))::int from generate_series(1, n) i $$;
    grant execute on function public.embed_many(int, text) to anon, ${TENANT};
  `);
  app = await startGateway(db, { PGRST_DB_POOL: '4' });
  await app.listen({ port: 0, host: '127.0.0.1' });
  baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  gw = app.gateway;
  for (const role of [TENANT, OTHER, NOT_GRANTED, superuser, 'ea_no_such_role']) h[role] = bearer(await token({ role }));
  h.anon = {};
  // load the model
  const warm = await post('/models/embed', { model: MODEL, inputs: ['warm up'] }, h[TENANT]);
  expect(warm.status, warm.text).toBe(200);
}, 120_000);

afterAll(async () => {
  await app?.close();
  await db?.drop();
  models?.cleanup();
});

async function post(path: string, body: unknown, headers: Record<string, string>) {
  const res = await fetch(`${baseUrl}${path}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers }, signal: AbortSignal.timeout(20_000) });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

/** inputs handed to the model so far, and inputs dropped before they ran */
function work(): { items: number; dropped: number } {
  const m = gw.embedder.loaded().find((x) => x.name === MODEL);
  return { items: m?.batches.items ?? 0, dropped: m?.batches.dropped ?? 0 };
}

const bystander = () => ({ baseUrl, headers: h[OTHER] });

describe('POST /models/embed refuses a role PostgreSQL refuses, as /rpc does, before any work', () => {
  it.each([
    ['a role not granted to the authenticator', NOT_GRANTED],
    ['the superuser', 'SUPERUSER'],
    ['a role that does not exist', 'ea_no_such_role'],
  ])('%s', async (_name, role) => {
    const headers = h[role === 'SUPERUSER' ? superuser : role];
    const before = work();
    const { result, report } = await underAttack(bystander(), async () => {
      const out = [];
      // different sizes: one input, many, long ones
      for (const inputs of [['secret'], Array.from({ length: 256 }, (_, i) => `text ${role} ${i}`), ['x'.repeat(20_000)]]) {
        const embed = await post('/models/embed', { model: MODEL, inputs }, headers);
        const rpc = await post('/rpc/bystander_ping', {}, headers);
        out.push({ embed, rpc });
      }
      return out;
    });
    for (const { embed, rpc } of result) {
      expect([401, 403]).toContain(rpc.status);
      expect(embed.status, embed.text).toBe(rpc.status);
      expect(JSON.parse(embed.text)).toEqual(JSON.parse(rpc.text));
      expect(embed.headers.get('www-authenticate')).toBe(rpc.headers.get('www-authenticate'));
    }
    // nothing was computed for them
    expect(work().items).toBe(before.items);
    expectBystanderServed(report);
  });

  it('still serves a role PostgreSQL accepts (anonymous and a tenant)', async () => {
    for (const who of ['anon', TENANT]) {
      const r = await post('/models/embed', { model: MODEL, inputs: [`ok ${who}`] }, h[who]);
      expect(r.status, r.text).toBe(200);
      expect(JSON.parse(r.text).embeddings).toHaveLength(1);
    }
  });
});

describe('work stops when the client is gone', () => {
  /** POSTs over its own socket and destroys it once `started()` holds; resolves when it is gone */
  function postThenLeave(path: string, body: unknown, headers: Record<string, string>, started: () => boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(`${baseUrl}${path}`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', ...headers } });
      req.on('error', () => {});
      req.on('response', () => reject(new Error('the request finished before the client left: make it bigger')));
      req.end(JSON.stringify(body));
      const poll = setInterval(() => {
        if (!started()) return;
        clearInterval(poll);
        req.destroy();
        resolve();
      }, 2);
    });
  }

  /** after the client left: model work stops within a moment (counters and the process's CPU) */
  async function expectWorkStops(total: number, before: { items: number; dropped: number }) {
    // what was already handed to the model still finishes (two batches in flight at most)
    await new Promise((r) => setTimeout(r, 300));
    const settled = work();
    const cpu0 = process.cpuUsage();
    await new Promise((r) => setTimeout(r, 1000));
    const cpu = process.cpuUsage(cpu0);
    const after = work();
    expect(after.items, 'inputs handed to the model after the client left').toBe(settled.items);
    expect(after.items - before.items).toBeLessThan(total / 2);
    expect(after.dropped - before.dropped).toBeGreaterThan(total / 2);
    // the probes and the idle gateway cost a little; the dropped work would cost far more
    expect((cpu.user + cpu.system) / 1000, 'CPU ms in the second after').toBeLessThan(400);
  }

  it('POST /models/embed with 1,024 inputs (anonymous and a tenant)', async () => {
    for (const who of ['anon', TENANT]) {
      const total = 1024;
      const inputs = Array.from({ length: total }, (_, i) => `${who} ${i} ` + 'lorem ipsum dolor sit amet '.repeat(30));
      const before = work();
      const { report } = await underAttack(bystander(), async () => {
        await postThenLeave('/models/embed', { model: MODEL, inputs }, h[who], () => work().items > before.items);
        await expectWorkStops(total, before);
      });
      expectBystanderServed(report);
    }
  });

  it('a bridged /rpc computing 3,000 embeddings (anonymous and a tenant)', async () => {
    for (const who of ['anon', TENANT]) {
      const total = 3000;
      const before = work();
      const { report } = await underAttack(bystander(), async () => {
        await postThenLeave('/rpc/embed_many', { n: total, salt: who }, h[who], () => work().items > before.items);
        await expectWorkStops(total, before);
      });
      expectBystanderServed(report);
      // nothing held once it is over
      await eventually(async () => {
        expect(gw.pool.stats.inUse).toBe(0);
        expect(gw.wirePool?.stats.inUse ?? 0).toBe(0);
      }, 3000);
    }
  });
});
