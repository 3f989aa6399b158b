import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { parseWireUri, UnsupportedConfigError } from '../../src/db/wire/config.ts';
import { WireConnection } from '../../src/db/wire/connection.ts';
import { PostgresError } from '../../src/db/wire/errors.ts';
import { transaction } from '../../src/db/wire/transaction.ts';
import { isPgError } from '../../src/errors.ts';
import { rowsOf, tx, wirePool } from './lib.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase({ migrate: false });
  await db.admin.unsafe('create table items (id int primary key, label text)');
});
afterAll(async () => {
  await db.drop();
});

describe('wire connection', () => {
  it('authenticates (SCRAM on the embedded server, trust on PG 15) and runs statements with text values', async () => {
    const pool = wirePool(db.adminUrl);
    try {
      const rows = await pool.use((c) => rowsOf(c, 'select $1::int + 1 as x, $2::text as s, null::text as n, $3::bool as b, $4::jsonb as j', [41, 'héllo', true, { a: [1] }]));
      expect(rows).toEqual([{ x: '42', s: 'héllo', n: null, b: 't', j: '{"a": [1]}' }]);
      const many = await pool.use((c) => rowsOf(c, 'select i, repeat($1, i) as r from generate_series(1, 2000) i', ['ab']));
      expect(many).toHaveLength(2000);
      expect(many[1999].r).toHaveLength(4000);
      expect(await pool.use((c) => rowsOf(c, 'select 1 as a where false'))).toEqual([]);
    } finally {
      await pool.end();
    }
  });

  it('authenticates the authenticator role (password) as the gateway does', async () => {
    const pool = wirePool(db.authenticatorUrl);
    try {
      expect(await pool.use((c) => rowsOf(c, 'select current_user::text as u'))).toEqual([{ u: 'authenticator' }]);
    } finally {
      await pool.end();
    }
  });

  it.runIf(inject('embedded'))('rejects a wrong password with 28P01', async () => {
    const u = new URL(db.authenticatorUrl);
    u.password = 'wrong';
    const err = await WireConnection.connect(parseWireUri(u.toString()), { prepare: true, statementCacheSize: 8, connectTimeoutMs: 5000 }).catch((e) => e);
    expect(err).toBeInstanceOf(PostgresError);
    expect(err.code).toBe('28P01');
  });

  it('parses URIs, TLS settings included (test/wire/tls.test.ts connects with them)', () => {
    expect(() => parseWireUri('mysql://u@h/db')).toThrow(UnsupportedConfigError);
    expect(parseWireUri('postgres://u:p%40ss@h:6543/db?sslmode=disable')).toMatchObject({ host: 'h', port: 6543, user: 'u', password: 'p@ss', database: 'db', tls: { mode: 'disable' } });
    expect(parseWireUri('postgres://u@h/db?sslmode=require').tls).toMatchObject({ mode: 'require', channelBinding: 'prefer', rootCert: null });
    expect(parseWireUri('postgres://u@h/db?ssl=true').tls.mode).toBe('require');
  });

  it('an error mid-pipeline rolls the transaction back, skips the rest and leaves the connection reusable', async () => {
    const pool = wirePool(db.adminUrl, { max: 1 });
    try {
      await pool.use(async (c) => {
        const out = await tx(c, [
          { text: 'insert into items values ($1, $2)', params: [1, 'one'] },
          { text: `select 1/0 as boom` },
          { text: 'insert into items values ($1, $2)', params: [2, 'two'] },
        ]);
        expect(out.failure?.at).toBe(1);
        expect(out.failure?.error.code).toBe('22012');
        expect(out.results[2]).toEqual([]);
        expect(c.status).toBe('E'); // an explicit BEGIN stays aborted past the Sync: the pool rolls it back
      });
      await pool.use(async (c) => {
        expect(c.status).toBe('I');
        expect(await rowsOf(c, 'select count(*)::int as n from items')).toEqual([{ n: '0' }]);
      });
      // PostgresError as src/errors.ts reads it
      const err = await pool.use(async (c) => (await tx(c, [{ text: `do $$ begin raise exception using errcode = 'P0001', message = 'bad thing', detail = 'the detail', hint = 'the hint'; end $$` }])).failure!.error);
      expect(isPgError(err)).toBe(true);
      expect(err).toMatchObject({ name: 'PostgresError', code: 'P0001', message: 'bad thing', detail: 'the detail', hint: 'the hint' });
      // a failing Parse (syntax error) and a Bind with bad input
      const syntax = await pool.use((c) => tx(c, [{ text: 'selec 1' }]));
      expect(syntax.failure).toMatchObject({ at: 0, error: { code: '42601' } });
      const bind = await pool.use((c) => tx(c, [{ text: 'select $1::int as i', params: ['x'] }]));
      expect(bind.failure).toMatchObject({ at: 0, error: { code: '22P02' } });
      // COMMIT failure (deferred constraint) is reported at steps.length
      await db.admin.unsafe('create table if not exists defer_t (id int unique deferrable initially deferred)');
      const commit = await pool.use((c) => tx(c, [{ text: 'insert into defer_t values (1), (1)' }]));
      expect(commit.failure).toMatchObject({ at: 1, error: { code: '23505' } });
      expect(await pool.use((c) => rowsOf(c, 'select 1 as ok'))).toEqual([{ ok: '1' }]);
    } finally {
      await pool.end();
    }
  });

  it('commits, rolls back, and decides after seeing the main rows', async () => {
    const pool = wirePool(db.adminUrl, { max: 1 });
    try {
      await pool.use((c) => tx(c, [{ text: 'insert into items values (10, $1)', params: ['kept'] }]));
      await pool.use((c) => tx(c, [{ text: 'insert into items values (11, $1)', params: ['dropped'] }], 'rollback'));
      const decided = await pool.use((c) =>
        transaction(c, 'begin', [{ text: 'insert into items values (12, $1) returning label', params: ['decided'] }], (rows) => (rows[0].label === 'decided' ? 'rollback' : 'commit')),
      );
      expect(decided).toMatchObject({ failure: null, ended: 'rollback', results: [[{ label: 'decided' }]] });
      const committed = await pool.use((c) => transaction(c, 'begin', [{ text: 'insert into items values (13, $1) returning id', params: ['c'] }], () => 'commit'));
      expect(committed.ended).toBe('commit');
      const failed = await pool.use((c) => transaction(c, 'begin', [{ text: 'insert into items values (10, $1)', params: ['dup'] }], () => 'commit'));
      expect(failed.failure).toMatchObject({ at: 0, error: { code: '23505' } });
      const ids = await pool.use((c) => rowsOf(c, 'select id from items where id >= 10 order by id'));
      expect(ids.map((r) => r.id)).toEqual(['10', '13']);
    } finally {
      await pool.end();
    }
  });

  it('reuses prepared statements and evicts the least recently used beyond the limit', async () => {
    const pool = wirePool(db.adminUrl, { max: 1, statementCacheSize: 4 });
    const count = 'select count(*)::int as n from pg_prepared_statements';
    try {
      await pool.use(async (c) => {
        await rowsOf(c, 'select $1::int as a', [1]);
        const before = await rowsOf(c, count);
        for (let i = 0; i < 5; i++) expect(await rowsOf(c, 'select $1::int as a', [i])).toEqual([{ a: String(i) }]);
        expect(await rowsOf(c, count)).toEqual(before); // no new statement for the same text
        for (let i = 0; i < 20; i++) await rowsOf(c, `select ${i} as k`);
        // begin, commit, the count statement and one more fit; evicted ones were closed on the server
        const n = Number((await rowsOf(c, count))[0].n);
        expect(n).toBeLessThanOrEqual(4 + 1); // the last round's evictions close at the start of the next one
        expect(c.statementCount).toBeLessThanOrEqual(4);
        expect(await rowsOf(c, 'select 3 as k')).toEqual([{ k: '3' }]); // re-prepared after eviction
      });
    } finally {
      await pool.end();
    }
  });

  it('works with prepare: false (the unnamed statement, nothing kept on the server)', async () => {
    const pool = wirePool(db.adminUrl, { max: 1, prepare: false });
    try {
      await pool.use(async (c) => {
        for (let i = 0; i < 3; i++) expect(await rowsOf(c, 'select $1::int as a, count(*)::int as n from pg_prepared_statements', [i])).toEqual([{ a: String(i), n: '0' }]);
        const out = await tx(c, [{ text: 'select 1/0 as x' }, { text: 'select 2 as y' }]);
        expect(out.failure?.at).toBe(0);
      });
      expect(await pool.use((c) => rowsOf(c, 'select 5 as x'))).toEqual([{ x: '5' }]);
    } finally {
      await pool.end();
    }
  });

  it('re-prepares a statement whose result type changed', async () => {
    const pool = wirePool(db.adminUrl, { max: 1 });
    try {
      await db.admin.unsafe('create table shape (a int)');
      await pool.use((c) => rowsOf(c, 'select * from shape'));
      await db.admin.unsafe('alter table shape add column b int');
      const first = await pool.use((c) => tx(c, [{ text: 'select * from shape' }]));
      expect(first.failure?.error.code).toBe('0A000');
      expect(await pool.use((c) => rowsOf(c, 'select * from shape'))).toEqual([]);
    } finally {
      await pool.end();
    }
  });

  it('forwards notices (the bridge reads message pgml.bridge with JSON detail)', async () => {
    const notices: { message?: string; detail?: string }[] = [];
    const pool = wirePool(db.adminUrl, { onNotice: (n) => notices.push({ message: n.message, detail: n.detail }) });
    try {
      await pool.use((c) => tx(c, [{ text: `do $$ begin raise notice 'pgml.bridge' using detail = json_build_object('bridge_id', 'b1', 'key', 'k1')::text; end $$` }, { text: 'select 1 as x' }]));
      expect(notices).toContainEqual({ message: 'pgml.bridge', detail: '{"bridge_id" : "b1", "key" : "k1"}' });
    } finally {
      await pool.end();
    }
  });
});
