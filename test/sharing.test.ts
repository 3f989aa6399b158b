/**
 * Sharing a model with anon (README, "Sharing a model with anon"): the documented SQL block runs
 * as written, then anon predicts without a token through /models and /rpc; the SECURITY DEFINER
 * wrapper the README warns about answers 404 PGML404 through the gateway, as documented.
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { loadCsv } from './helpers/data.ts';
import { eventually, startGateway } from './helpers/gateway.ts';

const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const block = (() => {
  const at = README.indexOf('**Sharing a model with anon.**');
  return /```sql\n([\s\S]*?)```/.exec(README.slice(at))![1];
})();

let db: TestDatabase;
let app: FastifyInstance;
const role = /create role (\w+) nologin/.exec(block)![1];

beforeAll(async () => {
  db = await createTestDatabase();
  await db.admin.unsafe(`drop role if exists ${role}`).catch(() => {});
  await loadCsv(db.admin, 'iris', 'sepal_length real, sepal_width real, petal_length real, petal_width real, species text', 'iris/iris.csv');
  await db.admin.unsafe(`grant usage on schema public to anon, authenticated; alter table iris owner to authenticated;`).simple();
  app = await startGateway(db, { PGRST_DB_ANON_ROLE: 'anon' });
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
  const { default: postgres } = await import('postgres');
  const { inject } = await import('vitest');
  const server = postgres(inject('adminUrl'), { max: 1, onnotice: () => {} });
  await server.unsafe(`drop role if exists ${role}`).catch(() => {});
  await server.end();
});

describe('sharing a model with anon', () => {
  it('the README block, as written: anon predicts without a token', async () => {
    expect(block).toMatch(/grant \w+ to authenticated, anon/);
    await db.admin.unsafe(block).simple();
    await db.admin.unsafe(`notify pgrst, 'reload schema'`);
    await eventually(async () => {
      const [m] = await db.admin`select count(*)::int as n from pgml.models m join pgml.projects p on p.id = m.project_id where p.name = ${role} and m.status = 'successful' and p.owner = ${role}`;
      expect(m.n).toBe(1);
    }, 60_000, 200);
    const viaModels = await app.inject({ method: 'POST', url: `/models/${role}/predict`, payload: { features: [5.1, 3.5, 1.4, 0.2] } });
    expect(viaModels.statusCode, viaModels.body).toBe(200);
    expect(viaModels.json().prediction).toBe('Iris-setosa');
    const viaRpc = await eventually(async () => {
      const r = await app.inject({ method: 'POST', url: '/rpc/iris_species', payload: { sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 } });
      expect(r.statusCode, r.body).toBe(200);
      return r;
    }, 10_000, 100);
    expect(typeof viaRpc.json()).toBe('number');
  }, 90_000);

  it('a SECURITY DEFINER wrapper over a model anon is not a member of: the documented outcome', async () => {
    await db.admin.unsafe(`
      set role authenticated;
      select project from pgml.train('iris_private', 'classification', 'iris', 'species', 'logistic');
      reset role;`).simple();
    await eventually(async () => {
      const [m] = await db.admin`select count(*)::int as n from pgml.models m join pgml.projects p on p.id = m.project_id where p.name = 'iris_private' and m.status = 'successful'`;
      expect(m.n).toBe(1);
    }, 60_000, 200);
    await db.admin.unsafe(`
      create function iris_private(f real[]) returns real language sql stable security definer
        as $$ select pgml.predict('iris_private', f) $$;
      alter function iris_private(real[]) owner to authenticated;
      grant execute on function iris_private(real[]) to anon;
      notify pgrst, 'reload schema';`).simple();
    const r = await eventually(async () => {
      const res = await app.inject({ method: 'POST', url: '/rpc/iris_private', payload: { f: [5.1, 3.5, 1.4, 0.2] } });
      expect(res.statusCode).not.toBe(404 === res.statusCode && /PGRST202/.test(res.body) ? 404 : -1);
      return res;
    }, 10_000, 100);
    // README: where pgml.predict evaluates in SQL the definer's rights apply (200, the right label's
    // index); where the gateway computes it, as the requesting role, 404 PGML404
    console.log(`sharing.test: SECURITY DEFINER wrapper through the gateway answered ${r.statusCode} ${r.body}`);
    if (r.statusCode === 200) expect(r.json()).toBe(0);
    else {
      expect(r.statusCode, r.body).toBe(404);
      expect(r.json().code).toBe('PGML404');
    }
  }, 90_000);
});
