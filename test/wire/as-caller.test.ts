import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { Pool } from '../../src/db/pool.ts';
import { runAsCaller, StageError, type AsCallerOptions, type CallerContext, type Statement } from '../../src/db/as-caller.ts';
import { runAsCallerPipelined } from '../../src/db/wire/as-caller.ts';
import { dbClientFromEnv, runAsCallerSelected } from '../../src/db/wire/select.ts';
import { WirePool } from '../../src/db/wire/pool.ts';
import { toHttp } from '../../src/errors.ts';

let db: TestDatabase;
let pg: Pool;
let wire: WirePool;
beforeAll(async () => {
  db = await createTestDatabase({ migrate: false });
  await db.admin.unsafe(`
    create table notes (id int primary key, owner text not null, body text);
    alter table notes enable row level security;
    create policy own on notes using (owner = current_setting('request.jwt.claims', true)::json->>'sub');
    grant select, insert on notes to authenticated;
    insert into notes values (1, 'alice', 'a1'), (2, 'bob', 'b1'), (3, 'alice', 'a2');
    create function check_request() returns void language plpgsql as $$
    begin
      if current_setting('request.headers', true)::json->>'x-block' = 'yes' then
        raise sqlstate 'PT403' using message = 'blocked by pre-request';
      end if;
    end $$;
    grant execute on function check_request() to authenticated;
    -- read at run time like the pgml stubs (sql/004): the temp table may not exist when the statement is parsed
    create function bridge_supplied() returns text language plpgsql as $$
    declare v text;
    begin
      execute format('select json_object_agg(key, value order by key)::text from pg_temp.%I', current_setting('pgml.bridge_table')) into v;
      return v;
    end $$;
    grant execute on function bridge_supplied() to authenticated;
  `);
  const opts = { uri: db.authenticatorUrl, max: 3, acquisitionTimeout: 5000, prepare: true };
  pg = new Pool(opts);
  wire = new WirePool(opts);
});
afterAll(async () => {
  await pg.end();
  await wire.end();
  await db.drop();
});

const ctxFor = (sub: string, extra: Partial<CallerContext> = {}): CallerContext => ({
  role: 'authenticated',
  claims: { role: 'authenticated', sub },
  method: 'POST',
  path: '/rpc/thing',
  headers: { 'x-req': 'r1' },
  cookies: { c: 'v' },
  settings: [['search_path', '"public"']],
  ...extra,
});

const MAIN = `select null::bigint as total_result_set, pg_catalog.count(_t) as page_total, coalesce(json_agg(_t order by _t.id), '[]')::text as body,
  current_user::text as who, current_setting('request.jwt.claims', true) as claims, current_setting('request.method', true) as method,
  current_setting('request.path', true) as path, current_setting('request.headers', true) as headers, current_setting('request.cookies', true) as cookies,
  current_setting('search_path') as sp, current_setting('transaction_read_only') as ro, $1::text as param,
  nullif(current_setting('response.headers', true), '') as response_headers, nullif(current_setting('response.status', true), '') as response_status
  from (select * from notes) _t`;

async function both(ctx: CallerContext, st: Statement, opts: AsCallerOptions) {
  const a = await runAsCaller(pg, ctx, st, opts).then((r) => ({ rows: r.map((x) => ({ ...x })) }), (e) => ({ error: e }));
  const b = await runAsCallerPipelined(wire, ctx, st, opts).then((r) => ({ rows: r.map((x) => ({ ...x })) }), (e) => ({ error: e }));
  return { a, b };
}

function describeError(e: unknown) {
  const s = e as StageError & { cause: { code: string; message: string; detail?: string; hint?: string } };
  const api = toHttp(e, true);
  return { type: s.constructor.name, stage: s.stage, code: s.cause?.code ?? (e as { code?: string }).code, message: s.message, status: api.status, body: api.body };
}

describe('runAsCallerPipelined matches runAsCaller', () => {
  it('role switch, request settings, RLS and read-only mode are the same', async () => {
    for (const readOnly of [true, false]) {
      const { a, b } = await both(ctxFor('alice'), { text: MAIN, params: ['p1'] }, { readOnly, preRequest: '"public"."check_request"' });
      expect('rows' in a && a.rows[0].ro).toBe(readOnly ? 'on' : 'off');
      expect(b).toEqual(a);
      expect((b as { rows: Record<string, string>[] }).rows[0]).toMatchObject({ who: 'authenticated', page_total: '2', method: 'POST', path: '/rpc/thing', param: 'p1', sp: '"public"' });
    }
    const bob = await both(ctxFor('bob'), { text: MAIN, params: [null] }, { readOnly: true });
    expect(bob.b).toEqual(bob.a);
  });

  it('writes commit, rollback: true and decide rollback do not', async () => {
    const ins = (id: number) => ({ text: `insert into notes (id, owner, body) values ($1, 'alice', 'n') returning id::text as id`, params: [id] });
    expect(await runAsCallerPipelined(wire, ctxFor('alice'), ins(10), { readOnly: false })).toEqual([{ id: '10' }]);
    expect(await runAsCallerPipelined(wire, ctxFor('alice'), ins(11), { readOnly: false, rollback: true })).toEqual([{ id: '11' }]);
    let seen: unknown = null;
    const decided = await runAsCallerPipelined(wire, ctxFor('alice'), ins(12), { readOnly: false, decide: (rows) => ((seen = rows), 'rollback') });
    expect(decided).toEqual([{ id: '12' }]);
    expect(seen).toEqual([{ id: '12' }]);
    expect(await runAsCallerPipelined(wire, ctxFor('alice'), ins(13), { readOnly: false, decide: () => 'commit' })).toEqual([{ id: '13' }]);
    const ids = await db.admin`select id from notes where id >= 10 order by id`;
    expect(ids.map((r) => r.id)).toEqual([10, 13]);
  });

  it('failures carry the same stage and map to the same HTTP error', async () => {
    const cases: [CallerContext, Statement, AsCallerOptions][] = [
      [ctxFor('alice', { role: 'no_such_role' }), { text: 'select 1 as x', params: [] }, { readOnly: true }],
      [ctxFor('alice', { headers: { 'x-block': 'yes' } }), { text: 'select 1 as x', params: [] }, { readOnly: true, preRequest: '"public"."check_request"' }],
      [ctxFor('alice'), { text: 'select 1/0 as x', params: [] }, { readOnly: true }],
      [ctxFor('alice'), { text: `insert into notes values (1, 'alice', 'dup')`, params: [] }, { readOnly: false }],
      [ctxFor('alice'), { text: `insert into notes values (50, 'alice', 'ro')`, params: [] }, { readOnly: true }],
      [ctxFor('alice'), { text: `insert into notes values (51, 'bob', 'rls')`, params: [] }, { readOnly: false }],
    ];
    for (const [ctx, st, opts] of cases) {
      const { a, b } = await both(ctx, st, opts);
      expect('error' in a && 'error' in b).toBe(true);
      expect(describeError((b as { error: unknown }).error)).toEqual(describeError((a as { error: unknown }).error));
    }
    // still usable after all those failures
    expect(await runAsCallerPipelined(wire, ctxFor('alice'), { text: 'select 1 as x', params: [] }, { readOnly: true })).toEqual([{ x: '1' }]);
  });

  it('bridge rounds: supplied results are loaded before the role switch, then READ ONLY applies', async () => {
    const st = { text: `select bridge_supplied() as supplied, current_setting('pgml.bridge_id', true) as bid, current_setting('transaction_read_only') as ro, current_user::text as who`, params: [] };
    const opts: AsCallerOptions = { readOnly: true, bridge: { id: 'round-1', supplied: new Map([['k1', '[1,2]'], ['k2', '3']]) } };
    const expected = [{ supplied: '{ "k1" : "[1,2]", "k2" : "3" }', bid: 'round-1', ro: 'on', who: 'authenticated' }];
    expect(await runAsCallerPipelined(wire, ctxFor('alice'), st, opts)).toEqual(expected);
    // both clients share the prelude (bridgePrelude): postgres.js sees the same rows
    expect([...(await runAsCaller(pg, ctxFor('alice'), st, opts))]).toEqual(expected);
    // read only really holds after the prelude
    const w = await runAsCallerPipelined(wire, ctxFor('alice'), { text: `insert into notes values (60, 'alice', 'x')`, params: [] }, opts).catch((e) => e);
    expect(w).toBeInstanceOf(StageError);
    expect(w.cause.code).toBe('25006');
  });

  it('selects the client from PGML_DB_CLIENT', async () => {
    expect(dbClientFromEnv({})).toBe('postgres');
    expect(dbClientFromEnv({ PGML_DB_CLIENT: 'pipeline' })).toBe('pipeline');
    expect(() => dbClientFromEnv({ PGML_DB_CLIENT: 'libpq' })).toThrow(/PGML_DB_CLIENT/);
    const st = { text: 'select current_user::text as who', params: [] };
    expect(await runAsCallerSelected({ pool: pg, wirePool: wire }, ctxFor('a'), st, { readOnly: true })).toEqual([{ who: 'authenticated' }]);
    expect([...(await runAsCallerSelected({ pool: pg }, ctxFor('a'), st, { readOnly: true }))]).toEqual([{ who: 'authenticated' }]);
  });
});
