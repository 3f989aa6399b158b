import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { eventually, startGateway } from './helpers/gateway.ts';

let db: TestDatabase;
let app: FastifyInstance;

beforeAll(async () => {
  db = await createTestDatabase();
  app = await startGateway(db);
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

async function publish(name: string, notify = `notify pgrst, 'reload schema'`) {
  await db.admin.unsafe(`create function ${name}() returns int language sql as $$ select 7 $$; grant execute on function ${name}() to anon; ${notify}`).simple();
}

describe('schema cache reload', () => {
  it("NOTIFY pgrst, 'reload schema' publishes a new function within a second", async () => {
    expect((await app.inject('/rpc/fresh_one')).statusCode).toBe(404);
    const start = Date.now();
    await publish('fresh_one');
    await eventually(async () => expect((await app.inject('/rpc/fresh_one')).statusCode).toBe(200), 1000, 10);
    expect(Date.now() - start).toBeLessThan(1000);
  });

  it('a call sent right after the NOTIFY (a script: psql, then curl) waits for that reload instead of a 404', async () => {
    for (const [name, kind] of [['at_once_fn', 'function'], ['at_once_tbl', 'table']] as const) {
      const ddl = kind === 'function'
        ? `create function ${name}() returns int language sql as $$ select 7 $$; grant execute on function ${name}() to anon;`
        : `create table ${name} (x int); insert into ${name} values (7); grant select on ${name} to anon;`;
      await db.admin.unsafe(`${ddl} notify pgrst, 'reload schema'`).simple();
      // no eventually(): the very first call must see it
      const res = await app.inject(`/${kind === 'function' ? 'rpc/' : ''}${name}`);
      expect(res.statusCode, res.body).toBe(200);
      expect(res.body).toContain('7');
    }
    // without a NOTIFY an object stays unpublished (as under PostgREST): 404 after the bounded wait
    await db.admin.unsafe(`create function unpublished_fn() returns int language sql as $$ select 1 $$; grant execute on function unpublished_fn() to anon;`).simple();
    const started = Date.now();
    expect((await app.inject('/rpc/unpublished_fn')).statusCode).toBe(404);
    expect(Date.now() - started).toBeLessThan(3000);
    // and a name that is nowhere costs no wait
    const t0 = Date.now();
    expect((await app.inject('/rpc/no_such_fn_anywhere')).statusCode).toBe(404);
    expect(Date.now() - t0).toBeLessThan(500);
  });

  it('an empty payload reloads too', async () => {
    await publish('fresh_two', 'notify pgrst');
    await eventually(async () => expect((await app.inject('/rpc/fresh_two')).json()).toBe(7), 1000, 10);
  });

  it('a burst of notifications is debounced into few reloads', async () => {
    const before = app.gateway.cache.reloads;
    await db.admin.unsafe(Array.from({ length: 30 }, () => `notify pgrst, 'reload schema';`).join('\n')).simple();
    await new Promise((r) => setTimeout(r, 400));
    const count = app.gateway.cache.reloads - before;
    expect(count).toBeGreaterThanOrEqual(1);
    expect(count).toBeLessThanOrEqual(2);
  });

  it("'reload config' applies pgrst.* settings stored on the authenticator role", async () => {
    await db.admin.unsafe(`
      create function ten() returns setof int language sql as $$ select generate_series(1, 10) $$;
      grant execute on function ten() to anon;
      notify pgrst, 'reload schema';`).simple();
    await eventually(async () => expect((await app.inject('/rpc/ten')).json()).toHaveLength(10), 1000, 10);
    await db.admin.unsafe(`alter role authenticator in database ${db.name} set pgrst.db_max_rows = '3'; notify pgrst, 'reload config';`).simple();
    await eventually(async () => expect((await app.inject('/rpc/ten')).json()).toEqual([1, 2, 3]), 1000, 10);
    await db.admin.unsafe(`alter role authenticator in database ${db.name} reset pgrst.db_max_rows; notify pgrst, 'reload config';`).simple();
    await eventually(async () => expect((await app.inject('/rpc/ten')).json()).toHaveLength(10), 1000, 10);
  });

  it('the listener reconnects after losing its connection and reloads', async () => {
    const killed = await db.admin`
      select pg_terminate_backend(pid) as ok from pg_stat_activity
      where datname = ${db.name} and usename = 'authenticator' and query ilike 'listen%'`;
    expect(killed.length).toBe(1);
    // created without a NOTIFY: only the reload after reconnecting can find it
    await db.admin.unsafe(`create function after_reconnect() returns int language sql as $$ select 1 $$; grant execute on function after_reconnect() to anon;`).simple();
    await eventually(async () => expect((await app.inject('/rpc/after_reconnect')).statusCode).toBe(200), 5000, 50);
    await publish('after_reconnect_notify');
    await eventually(async () => expect((await app.inject('/rpc/after_reconnect_notify')).statusCode).toBe(200), 1000, 10);
  });
});
