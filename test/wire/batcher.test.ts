import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { runAsCallerPipelined } from '../../src/db/wire/as-caller.ts';
import { SETUP_SQL, StageError, type CallerContext } from '../../src/db/as-caller.ts';
import { DatabaseUnavailableError } from '../../src/db/pool.ts';
import type { TxStep } from '../../src/db/wire/transaction.ts';
import { wirePool, withPool } from './lib.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase({ migrate: false });
  await db.admin.unsafe(`
    create table notes (id int primary key, owner text not null default current_user, body text);
    alter table notes enable row level security;
    create policy own on notes using (owner = current_user);
    grant select, insert on notes to anon, authenticated;
    insert into notes values (1, 'anon', 'for anon'), (2, 'authenticated', 'for authenticated');
    create function pick(n int) returns int language sql as 'select 10 / n';
    grant execute on function pick(int) to public;`);
});
afterAll(async () => {
  await db.drop();
});

const settings = (pairs: Record<string, string>): TxStep => ({ text: SETUP_SQL, params: [JSON.stringify(pairs)] });

function ctx(role: string, extra: [string, string][] = []): CallerContext {
  return { role, claims: { role }, method: 'POST', path: '/models/p/predict', headers: {}, cookies: {}, settings: extra };
}

describe('implicit-transaction batches (one write, a Sync per request)', () => {
  it('requests of one turn share a write, and each sees only its own role, settings and rows', async () => {
    await withPool(wirePool(db.authenticatorUrl, { max: 2 }), async (pool) => {
      const batcher = pool.batcher!;
      const n = 24;
      const outcomes = await Promise.all(
        Array.from({ length: n }, (_, i) => {
          const role = i % 2 ? 'authenticated' : 'anon';
          // only odd requests set app.tag: an even one sees it only if a setting leaked
          return batcher.run([
            settings(i % 2 ? { role, 'app.tag': `t${i}` } : { role }),
            { text: `select current_user::text as who, coalesce(current_setting('app.tag', true), '') as tag, (select string_agg(body, ',') from notes) as seen`, params: [] },
          ]);
        }),
      );
      outcomes.forEach((o, i) => {
        expect(o.failure).toBeNull();
        const role = i % 2 ? 'authenticated' : 'anon';
        expect(o.results[1]).toEqual([{ who: role, tag: i % 2 ? `t${i}` : '', seen: `for ${role}` }]);
      });
      // 24 requests queued in one turn: at most 16 per write, so two writes (not 24)
      expect(batcher.stats.groups).toBe(n);
      expect(batcher.stats.batches).toBe(Math.ceil(n / batcher.maxGroups));
      // nothing outlives its implicit transaction: the next use runs as the connecting role again
      const after = await batcher.run([{ text: `select current_user::text as who, coalesce(current_setting('app.tag', true), '') as tag`, params: [] }]);
      expect(after.results[0]).toEqual([{ who: 'authenticator', tag: '' }]);
    });
  });

  it('a failing request ends only itself: the error is its own, the requests around it succeed', async () => {
    await withPool(wirePool(db.authenticatorUrl, { max: 1 }), async (pool) => {
      const divisors = [1, 2, 0, 5, 0, 10];
      const outcomes = await Promise.all(divisors.map((d) => pool.batcher!.run([settings({ role: 'anon' }), { text: 'select pick($1) as v', params: [d] }])));
      outcomes.forEach((o, i) => {
        if (divisors[i] === 0) {
          expect(o.failure?.at).toBe(1);
          expect(o.failure?.error.code).toBe('22012');
          expect(o.results[1]).toEqual([]);
        } else {
          expect(o.failure).toBeNull();
          expect(o.results[1]).toEqual([{ v: String(10 / divisors[i]) }]);
        }
      });
      expect(pool.batcher!.stats.batches).toBe(1);
    });
  });

  it('a statement that cannot be prepared fails the requests that use it with its own error, not the others', async () => {
    await withPool(wirePool(db.authenticatorUrl, { max: 1 }), async (pool) => {
      const [bad, good, alsoGood] = await Promise.all([
        pool.batcher!.run([settings({ role: 'anon' }), { text: 'select no_such_function() as v', params: [] }]),
        pool.batcher!.run([settings({ role: 'anon' }), { text: 'select 7 as v', params: [] }]),
        pool.batcher!.run([settings({ role: 'anon' }), { text: 'select 8 as v', params: [] }]),
      ]);
      expect(bad.failure?.at).toBe(1);
      expect(bad.failure?.error.code).toBe('42883');
      expect(good).toEqual({ results: [[{ set_config: 'anon' }], [{ v: '7' }]], failure: null });
      expect(alsoGood.failure).toBeNull();
      expect(alsoGood.results[1]).toEqual([{ v: '8' }]);
      // the statement is not left half-known: a later request gets the same clear error
      const again = await pool.batcher!.run([{ text: 'select no_such_function() as v', params: [] }]);
      expect(again.failure?.error.code).toBe('42883');
    });
  });

  it('runs as the caller, READ COMMITTED and read-only, as BEGIN would', async () => {
    await withPool(wirePool(db.authenticatorUrl, { max: 1 }), async (pool) => {
      const rows = await runAsCallerPipelined(pool, ctx('authenticated'), { text: `select current_user::text as who, current_setting('transaction_isolation') as iso, current_setting('transaction_read_only') as ro`, params: [] }, { readOnly: true, shareWrite: true });
      expect(rows).toEqual([{ who: 'authenticated', iso: 'read committed', ro: 'on' }]);
      const write = await runAsCallerPipelined(pool, ctx('authenticated'), { text: `insert into notes (id, body) values (3, 'x') returning id`, params: [] }, { readOnly: true, shareWrite: true }).catch((e) => e);
      expect(write).toBeInstanceOf(StageError);
      expect(write.stage).toBe('main');
      expect(write.cause.code).toBe('25006');
      expect((await db.admin`select count(*)::int as n from notes`)[0].n).toBe(2);
      expect(pool.batcher!.stats.batches).toBe(2);
      expect(pool.batcher!.enabled).toBe(true);
    });
  });

  it('a session default other than READ COMMITTED sends requests back to BEGIN…COMMIT, still READ COMMITTED', async () => {
    const u = new URL(db.authenticatorUrl);
    u.searchParams.set('options', '-c default_transaction_isolation=serializable');
    await withPool(wirePool(u.toString(), { max: 1 }), async (pool) => {
      const q = { text: `select current_user::text as who, current_setting('transaction_isolation') as iso, current_setting('transaction_read_only') as ro`, params: [] };
      expect(await runAsCallerPipelined(pool, ctx('authenticated'), q, { readOnly: true, shareWrite: true })).toEqual([{ who: 'authenticated', iso: 'read committed', ro: 'on' }]);
      expect(pool.batcher!.enabled).toBe(false);
      expect(await runAsCallerPipelined(pool, ctx('anon'), q, { readOnly: true, shareWrite: true })).toEqual([{ who: 'anon', iso: 'read committed', ro: 'on' }]);
      // the one refused attempt, then BEGIN…COMMIT only
      expect(pool.batcher!.stats.batches).toBe(1);
    });
  });

  it('a role that does not exist fails at the setup stage; the others of the batch are unaffected', async () => {
    await withPool(wirePool(db.authenticatorUrl, { max: 1 }), async (pool) => {
      const q = { text: 'select current_user::text as who', params: [] };
      // the failing request comes first on a fresh connection: its statements' Parse must not be
      // skipped with it, or the next requests' Binds would name statements that do not exist
      const [bad, ok1, ok2] = await Promise.allSettled([
        runAsCallerPipelined(pool, ctx('nobody_here'), q, { readOnly: true, shareWrite: true }),
        runAsCallerPipelined(pool, ctx('anon'), q, { readOnly: true, shareWrite: true }),
        runAsCallerPipelined(pool, ctx('authenticated'), q, { readOnly: true, shareWrite: true }),
      ]);
      expect(ok1).toEqual({ status: 'fulfilled', value: [{ who: 'anon' }] });
      expect(ok2).toEqual({ status: 'fulfilled', value: [{ who: 'authenticated' }] });
      expect(bad.status).toBe('rejected');
      const e = (bad as PromiseRejectedResult).reason;
      expect(e).toBeInstanceOf(StageError);
      expect(e.stage).toBe('setup');
      expect(e.cause.code).toBe('22023');
    });
  });

  it('a connection that dies mid-batch fails every request of that batch with 503, and the pool recovers', async () => {
    await withPool(wirePool(db.adminUrl, { max: 1 }), async (pool) => {
      const results = await Promise.allSettled([
        pool.batcher!.run([{ text: 'select 1 as v', params: [] }]),
        pool.batcher!.run([{ text: 'select pg_terminate_backend(pg_backend_pid())', params: [] }]),
        pool.batcher!.run([{ text: 'select 3 as v', params: [] }]),
      ]);
      // the first group may finish before the backend dies; the others cannot
      expect(results.slice(1).every((r) => r.status === 'rejected')).toBe(true);
      const viaCaller = await runAsCallerPipelined(pool, ctx(decodeURIComponent(new URL(db.adminUrl).username)), { text: 'select pg_terminate_backend(pg_backend_pid())', params: [] }, { readOnly: true, shareWrite: true }).catch((e) => e);
      expect(viaCaller).toBeInstanceOf(DatabaseUnavailableError);
      const fresh = await pool.batcher!.run([{ text: 'select 4 as v', params: [] }]);
      expect(fresh).toEqual({ results: [[{ v: '4' }]], failure: null });
    });
  });

  it('user SQL (no shareWrite) never shares a write: it runs BEGIN…COMMIT on its own connection turn', async () => {
    await withPool(wirePool(db.authenticatorUrl, { max: 1 }), async (pool) => {
      const q = { text: `select current_user::text as who, current_setting('transaction_read_only') as ro`, params: [] };
      const rows = await Promise.all([1, 2, 3].map(() => runAsCallerPipelined(pool, ctx('anon'), q, { readOnly: true })));
      expect(rows).toEqual([1, 2, 3].map(() => [{ who: 'anon', ro: 'on' }]));
      expect(pool.batcher!.stats).toEqual({ batches: 0, groups: 0 });
    });
  });

  it('PGML_DB_BATCH=0 (batchGroups 0) turns the implicit path off: requests run BEGIN…COMMIT', async () => {
    await withPool(wirePool(db.authenticatorUrl, { max: 1, batchGroups: 0 }), async (pool) => {
      expect(pool.batcher).toBeNull();
      const rows = await runAsCallerPipelined(pool, ctx('anon'), { text: `select current_user::text as who, current_setting('transaction_read_only') as ro`, params: [] }, { readOnly: true, shareWrite: true });
      expect(rows).toEqual([{ who: 'anon', ro: 'on' }]);
    });
  });
});
