import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { CuttableProxy, viaProxy } from '../helpers/proxy.ts';
import { DatabaseUnavailableError, PoolTimeoutError } from '../../src/db/pool.ts';
import { RequestAborted, StageError, type CallerContext } from '../../src/db/as-caller.ts';
import { runAsCallerPipelined } from '../../src/db/wire/as-caller.ts';
import { toHttp } from '../../src/errors.ts';
import { eventually, rowsOf, sleep, wirePool } from './lib.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase({ migrate: false });
});
afterAll(async () => {
  await db.drop();
});

const ctx: CallerContext = { role: 'authenticated', claims: { role: 'authenticated' }, method: 'GET', path: '/x', headers: {}, cookies: {}, settings: [] };
const q = (text: string, params: unknown[] = []) => ({ text, params });

describe('wire pool', () => {
  it('times out acquisition with PoolTimeoutError (504)', async () => {
    let timeouts = 0;
    const pool = wirePool(db.authenticatorUrl, { max: 1, acquisitionTimeout: 300, onAcquisitionTimeout: () => timeouts++ });
    try {
      const held = runAsCallerPipelined(pool, ctx, q('select pg_sleep(1.2)::text as s'), { readOnly: true });
      await sleep(50);
      const t0 = Date.now();
      const err = await runAsCallerPipelined(pool, ctx, q('select 1 as x'), { readOnly: true }).catch((e) => e);
      expect(err).toBeInstanceOf(PoolTimeoutError);
      expect(toHttp(err, true).status).toBe(504);
      expect(Date.now() - t0).toBeLessThan(1000);
      expect(timeouts).toBe(1);
      await held;
      expect(pool.stats).toEqual({ max: 1, inUse: 0, waiting: 0 });
    } finally {
      await pool.end();
    }
  });

  it('cancels a running statement on abort and leaves no connection idle in transaction', async () => {
    const app = `wire_cancel_${process.pid}`;
    const pool = wirePool(db.authenticatorUrl, { max: 1, applicationName: app });
    try {
      const ac = new AbortController();
      const t0 = Date.now();
      const running = runAsCallerPipelined(pool, ctx, q('select pg_sleep(30)::text as s'), { readOnly: true, signal: ac.signal }).catch((e) => e);
      await sleep(300);
      ac.abort();
      const err = await running;
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(err).toBeInstanceOf(StageError);
      expect(err.stage).toBe('main');
      expect(err.cause.code).toBe('57014');
      // the cancelled connection is closed rather than reused (a late CancelRequest could hit the next statement)
      const states = await eventually(
        () => db.admin`select state from pg_stat_activity where application_name = ${app}`,
        (rows) => rows.length === 0,
      );
      expect(states).toEqual([]);
      expect(await runAsCallerPipelined(pool, ctx, q('select 7 as x'), { readOnly: true })).toEqual([{ x: '7' }]);
      const aborted = new AbortController();
      aborted.abort();
      await expect(runAsCallerPipelined(pool, ctx, q('select 1 as x'), { readOnly: true, signal: aborted.signal })).rejects.toBeInstanceOf(RequestAborted);
    } finally {
      await pool.end();
    }
  });

  it('fails fast with DatabaseUnavailableError (503) during an outage and recovers when the database returns', async () => {
    const u = new URL(db.authenticatorUrl);
    const proxy = new CuttableProxy(u.hostname, Number(u.port || 5432));
    const port = await proxy.start();
    const pool = wirePool(viaProxy(db.authenticatorUrl, port), { max: 3, acquisitionTimeout: 3000 });
    try {
      expect(await runAsCallerPipelined(pool, ctx, q('select 1 as x'), { readOnly: true })).toEqual([{ x: '1' }]);
      // in flight when the database goes away
      const inFlight = runAsCallerPipelined(pool, ctx, q('select pg_sleep(5)::text as s'), { readOnly: true }).catch((e) => e);
      await sleep(200);
      const t0 = Date.now();
      await proxy.cut();
      const lost = await inFlight;
      expect(lost).toBeInstanceOf(DatabaseUnavailableError);
      expect(Date.now() - t0).toBeLessThan(1000);
      expect(toHttp(lost, true).status).toBe(503);
      // new requests while it is down: no hang, 503 each
      const during = await Promise.all(Array.from({ length: 8 }, () => runAsCallerPipelined(pool, ctx, q('select 1 as x'), { readOnly: true }).catch((e) => e)));
      for (const e of during) expect(e).toBeInstanceOf(DatabaseUnavailableError);
      expect(Date.now() - t0).toBeLessThan(2500);
      await proxy.restore();
      const after = await Promise.all(Array.from({ length: 8 }, (_, i) => runAsCallerPipelined(pool, ctx, q('select $1::int as i', [i]), { readOnly: true })));
      expect(after.map((r) => r[0].i)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7']);
      expect(pool.stats.inUse).toBe(0);
    } finally {
      await pool.end();
      await proxy.stop();
    }
  });

  it('drops a connection the server terminated while idle and hands out a fresh one', async () => {
    const app = `wire_term_${process.pid}`;
    const pool = wirePool(db.authenticatorUrl, { max: 1, applicationName: app });
    try {
      const pid1 = (await pool.use((c) => rowsOf(c, 'select pg_backend_pid() as p')))[0].p;
      await db.admin`select pg_terminate_backend(pid) from pg_stat_activity where application_name = ${app}`;
      await sleep(100);
      const pid2 = (await pool.use((c) => rowsOf(c, 'select pg_backend_pid() as p')))[0].p;
      expect(pid2).not.toBe(pid1);
      // terminated in the middle of a statement: 57P01 → 503
      const running = runAsCallerPipelined(pool, ctx, q('select pg_sleep(5)::text as s'), { readOnly: true }).catch((e) => e);
      await sleep(200);
      await db.admin`select pg_terminate_backend(pid) from pg_stat_activity where application_name = ${app}`;
      expect(await running).toBeInstanceOf(DatabaseUnavailableError);
      expect(await runAsCallerPipelined(pool, ctx, q('select 2 as x'), { readOnly: true })).toEqual([{ x: '2' }]);
    } finally {
      await pool.end();
    }
  });

  it('runs many concurrent transactions with matching results', async () => {
    const pool = wirePool(db.authenticatorUrl, { max: 5 });
    try {
      const n = 400;
      let next = 0;
      const results: string[] = new Array(n);
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (next < n) {
            const i = next++;
            const c = { ...ctx, path: `/p/${i}` };
            const rows = await runAsCallerPipelined(pool, c, q(`select $1::int * 2 as v, current_setting('request.path') as path, repeat('x', $1::int % 50) as pad`, [i]), { readOnly: i % 2 === 0 });
            results[i] = `${rows[0].v}|${rows[0].path}|${rows[0].pad.length}`;
          }
        }),
      );
      results.forEach((r, i) => expect(r).toBe(`${i * 2}|/p/${i}|${i % 50}`));
      expect(pool.stats).toEqual({ max: 5, inUse: 0, waiting: 0 });
    } finally {
      await pool.end();
    }
  });
});
