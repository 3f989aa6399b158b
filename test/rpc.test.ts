import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { bearer, startGateway, token } from './helpers/gateway.ts';

const SETUP = `
create table notes (id serial primary key, body text not null unique, owner text default current_user);
grant select, insert on notes to anon, authenticated;
grant usage on sequence notes_id_seq to anon, authenticated;
create table canary (id int);
insert into canary values (1);
grant select on canary to anon;

create function add(a int, b int) returns int language sql immutable as $$ select a + b $$;
create function greet(name text, greeting text default 'hello') returns text language sql immutable as $$ select greeting || ' ' || name $$;
create function items(n int default 3) returns table(id int, label text) language sql stable as $$ select g, 'item' || g from generate_series(1, n) g $$;
create function nums() returns setof int language sql stable as $$ select generate_series(1, 3) $$;
create function noop() returns void language sql as $$ select $$;
create function echo(jsonb) returns jsonb language sql immutable as $$ select $1 $$;
create function shout(text) returns text language sql immutable as $$ select upper($1) $$;
create function vsum(variadic xs int[]) returns int language sql immutable as $$ select coalesce(sum(x), 0)::int from unnest(xs) x $$;
create function arr_len(xs text[]) returns int language sql immutable as $$ select cardinality(xs) $$;
create function one_note(note_id int) returns notes language sql stable as $$ select * from notes where id = note_id $$;
create function all_notes() returns setof notes language sql stable as $$ select * from notes order by id $$;
create type pair as (l int, r int);
create function make_pair(l int, r int) returns pair language sql immutable as $$ select row(l, r)::pair $$;
create function split(x int, out half int, out rest int) language sql immutable as $$ select x / 2, x % 2 $$;
create function add_note(body text) returns int language sql volatile as $$ insert into notes(body) values (body) returning id $$;
create function stable_writer(body text) returns int language sql stable as $$ select 1 $$;
create function write_in_stable(body text) returns int language sql stable as $$ select add_note(body) $$;
create function over(a int) returns text language sql immutable as $$ select 'int' $$;
create function over(a text) returns text language sql immutable as $$ select 'text' $$;
create function by_names(a int) returns text language sql immutable as $$ select 'a' $$;
create function by_names(a int, b int) returns text language sql immutable as $$ select 'a,b' $$;
create function fail_p0001() returns void language plpgsql as $$ begin raise exception 'custom failure' using hint = 'try again'; end $$;
create function fail_pt402() returns void language plpgsql as $$ begin raise sqlstate 'PT402' using message = 'Payment Required'; end $$;
create function fail_pgrst() returns void language plpgsql as $$ begin
  raise sqlstate 'PGRST' using message = '{"code":"123","message":"Payment Required","details":"Quota exceeded","hint":"Upgrade your plan"}',
    detail = '{"status":402,"headers":{"X-Powered-By":"Nerd Rage"}}'; end $$;
create function fail_pgrst_bad() returns void language plpgsql as $$ begin raise sqlstate 'PGRST' using message = 'not json'; end $$;
create function fail_unique() returns void language sql as $$ insert into notes(body) values ('dup'); insert into notes(body) values ('dup') $$;
create function with_headers() returns text language plpgsql stable as $$ begin
  perform set_config('response.headers', '[{"Cache-Control":"public, max-age=60"},{"X-Extra":"yes"}]', true);
  perform set_config('response.status', '201', true);
  return 'ok'; end $$;
create function request_info() returns json language sql stable as $$ select json_build_object(
  'method', current_setting('request.method', true), 'path', current_setting('request.path', true),
  'headers', current_setting('request.headers', true)::json, 'cookies', current_setting('request.cookies', true)::json,
  'claims', current_setting('request.jwt.claims', true)::json, 'role', current_user, 'ro', current_setting('transaction_read_only')) $$;
create function slow(seconds float8) returns int language sql as $$ select 1 from pg_sleep(seconds) $$;
create function secret_thing() returns int language sql as $$ select 42 $$;
revoke execute on function secret_thing() from public;
create procedure a_procedure() language sql as $$ select 1 $$;
create aggregate my_sum(int) (sfunc = int4pl, stype = int);
create function a_trigger() returns trigger language plpgsql as $$ begin return new; end $$;
grant execute on all functions in schema public to anon, authenticated;
revoke execute on function secret_thing() from anon, authenticated;
`;

let db: TestDatabase;
let app: FastifyInstance;
let userToken: string;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.admin.unsafe(SETUP).simple();
  app = await startGateway(db);
  userToken = await token({ role: 'authenticated', sub: 'u1' });
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

const post = (url: string, payload: unknown, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url, payload: JSON.stringify(payload), headers: { 'content-type': 'application/json', ...headers } });

describe('calling functions', () => {
  it('POST with named arguments returns a bare scalar', async () => {
    const res = await post('/rpc/add', { a: 2, b: 40 });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toBe(42);
  });

  it('GET with query parameters', async () => {
    const res = await app.inject('/rpc/add?a=1&b=2');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toBe(3);
  });

  it('HEAD answers the GET status without a body', async () => {
    const res = await app.inject({ method: 'HEAD', url: '/rpc/items' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('');
    expect(res.headers['content-range']).toBe('0-2/*');
  });

  it('a defaulted argument may be omitted', async () => {
    expect((await post('/rpc/greet', { name: 'ann' })).json()).toBe('hello ann');
    expect((await post('/rpc/greet', { name: 'ann', greeting: 'hi' })).json()).toBe('hi ann');
  });

  it('a single unnamed json parameter receives the whole body', async () => {
    const body = { any: ['shape', 1, { deep: true }] };
    const res = await post('/rpc/echo', body);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual(body);
    const arr = await post('/rpc/echo', [1, 2, 3]);
    expect(arr.json()).toEqual([1, 2, 3]);
  });

  it('a single unnamed text parameter receives a text/plain body', async () => {
    const res = await app.inject({ method: 'POST', url: '/rpc/shout', payload: 'quiet', headers: { 'content-type': 'text/plain' } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toBe('QUIET');
  });

  it('variadic arguments from a JSON array and from repeated query keys', async () => {
    expect((await post('/rpc/vsum', { xs: [1, 2, 3, 4] })).json()).toBe(10);
    expect((await app.inject('/rpc/vsum?xs=5&xs=6')).json()).toBe(11);
    expect((await app.inject('/rpc/vsum?xs=7')).json()).toBe(7);
  });

  it('array arguments from JSON arrays and from a Postgres array literal', async () => {
    expect((await post('/rpc/arr_len', { xs: ['a', 'b', 'c'] })).json()).toBe(3);
    expect((await app.inject('/rpc/arr_len?xs={a,b}')).json()).toBe(2);
  });

  it('form-encoded bodies are accepted', async () => {
    const res = await app.inject({ method: 'POST', url: '/rpc/add', payload: 'a=3&b=4', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(res.json()).toBe(7);
  });
});

describe('return shapes', () => {
  it('SETOF scalar → array', async () => {
    expect((await app.inject('/rpc/nums')).json()).toEqual([1, 2, 3]);
  });

  it('TABLE → array of objects with Content-Range', async () => {
    const res = await app.inject('/rpc/items?n=2');
    expect(res.json()).toEqual([{ id: 1, label: 'item1' }, { id: 2, label: 'item2' }]);
    expect(res.headers['content-range']).toBe('0-1/*');
  });

  it('composite → object; OUT parameters → object', async () => {
    expect((await post('/rpc/make_pair', { l: 1, r: 2 })).json()).toEqual({ l: 1, r: 2 });
    expect((await post('/rpc/split', { x: 7 })).json()).toEqual({ half: 3, rest: 1 });
  });

  it('SETOF table rows → array of objects; a table-typed row → object', async () => {
    await db.admin`insert into notes(body) values ('first'), ('second') on conflict do nothing`;
    const all = (await app.inject('/rpc/all_notes')).json() as { body: string }[];
    expect(all.map((n) => n.body)).toEqual(expect.arrayContaining(['first', 'second']));
    const id = (await db.admin`select id from notes where body = 'first'`)[0].id;
    expect((await app.inject(`/rpc/one_note?note_id=${id}`)).json()).toMatchObject({ id, body: 'first' });
  });

  it('void → 204 with no body', async () => {
    const res = await post('/rpc/noop', {});
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe('');
  });

  it('Accept: application/vnd.pgrst.object+json gives one object or 406 PGRST116', async () => {
    const one = await app.inject({ url: '/rpc/items?n=1', headers: { accept: 'application/vnd.pgrst.object+json' } });
    expect(one.statusCode).toBe(200);
    expect(one.json()).toEqual({ id: 1, label: 'item1' });
    const many = await app.inject({ url: '/rpc/items?n=3', headers: { accept: 'application/vnd.pgrst.object+json' } });
    expect(many.statusCode).toBe(406);
    expect(many.json()).toMatchObject({ code: 'PGRST116', details: 'The result contains 3 rows' });
  });

  it('select, filters, order, limit and offset apply to SETOF results', async () => {
    const res = await app.inject('/rpc/items?n=10&id=gte.3&label=neq.item5&order=id.desc&limit=3&offset=1&select=label');
    expect(res.json()).toEqual([{ label: 'item9' }, { label: 'item8' }, { label: 'item7' }]);
    expect(res.headers['content-range']).toBe('1-3/*');
    const inList = await app.inject('/rpc/items?n=10&id=in.(2,4,6)&select=id');
    expect(inList.json()).toEqual([{ id: 2 }, { id: 4 }, { id: 6 }]);
    const notIn = await app.inject('/rpc/items?n=4&id=not.in.(1,2)&select=id');
    expect(notIn.json()).toEqual([{ id: 3 }, { id: 4 }]);
    const lt = await app.inject('/rpc/items?n=4&id=lt.2&select=id');
    expect(lt.json()).toEqual([{ id: 1 }]);
    const isNull = await app.inject('/rpc/items?n=2&label=is.null');
    expect(isNull.json()).toEqual([]);
    const aliasCast = await app.inject('/rpc/items?n=1&select=num:id::text');
    expect(aliasCast.json()).toEqual([{ num: '1' }]);
  });

  it('typed filters give the same answer when the statement is prepared and reused', async () => {
    await db.admin.unsafe(`create function flags() returns table(id int, ok boolean, meta jsonb) language sql stable as $$ values (1, true, '{"k":1}'::jsonb), (2, false, '{"k":2}'::jsonb) $$;
      grant execute on function flags() to anon; notify pgrst, 'reload schema';`).simple();
    await app.gateway.reloadSchema();
    for (let i = 0; i < 4; i++) {
      expect((await app.inject('/rpc/flags?ok=eq.true&select=id')).json(), `run ${i}`).toEqual([{ id: 1 }]);
      expect((await app.inject('/rpc/flags?meta->>k=eq.2&select=id')).json(), `run ${i}`).toEqual([{ id: 2 }]);
    }
  });

  it('POST also takes filters from the query string', async () => {
    const res = await post('/rpc/items?id=eq.2', { n: 5 });
    expect(res.json()).toEqual([{ id: 2, label: 'item2' }]);
  });

  it('Prefer: count=exact fills the total in Content-Range and answers 206 for a partial page', async () => {
    const res = await app.inject({ url: '/rpc/items?n=10&limit=2', headers: { prefer: 'count=exact' } });
    expect(res.statusCode).toBe(206);
    expect(res.headers['content-range']).toBe('0-1/10');
  });

  it('Range header pages the result', async () => {
    const res = await app.inject({ url: '/rpc/items?n=10', headers: { range: '2-4' } });
    expect((res.json() as { id: number }[]).map((r) => r.id)).toEqual([3, 4, 5]);
    expect(res.headers['content-range']).toBe('2-4/*');
  });

  it('response.headers and response.status set in SQL are applied', async () => {
    const res = await app.inject('/rpc/with_headers');
    expect(res.statusCode).toBe(201);
    expect(res.headers['cache-control']).toBe('public, max-age=60');
    expect(res.headers['x-extra']).toBe('yes');
  });
});

describe('transactions', () => {
  it('GET runs READ ONLY, so a volatile function fails with 405 (25006)', async () => {
    const res = await app.inject('/rpc/add_note?body=via-get');
    expect(res.statusCode).toBe(405);
    expect(res.json().code).toBe('25006');
    expect((await db.admin`select count(*)::int as n from notes where body = 'via-get'`)[0].n).toBe(0);
  });

  it('a non-volatile function runs READ ONLY even on POST', async () => {
    const res = await post('/rpc/write_in_stable', { body: 'sneaky' });
    expect(res.statusCode).toBe(405);
    expect(res.json().code).toBe('25006');
    const info = await post('/rpc/request_info', {});
    expect(info.json().ro).toBe('on');
  });

  it('a volatile POST runs READ WRITE and commits', async () => {
    const res = await post('/rpc/add_note', { body: 'committed' });
    expect(res.statusCode).toBe(200);
    expect((await db.admin`select count(*)::int as n from notes where body = 'committed'`)[0].n).toBe(1);
  });

  it('Prefer: tx=rollback runs the function and rolls it back', async () => {
    const res = await post('/rpc/add_note', { body: 'rolled-back' }, { prefer: 'tx=rollback' });
    expect(res.statusCode).toBe(200);
    expect(typeof res.json()).toBe('number');
    expect(res.headers['preference-applied']).toBe('tx=rollback');
    expect((await db.admin`select count(*)::int as n from notes where body = 'rolled-back'`)[0].n).toBe(0);
  });

  it('a failed statement leaves the connection usable and nothing written', async () => {
    const res = await post('/rpc/fail_unique', {});
    expect(res.statusCode).toBe(409);
    expect((await db.admin`select count(*)::int as n from notes where body = 'dup'`)[0].n).toBe(0);
    for (let i = 0; i < 6; i++) expect((await post('/rpc/add', { a: i, b: 1 })).json()).toBe(i + 1);
  });
});

describe('overloads and exposure', () => {
  it('resolves overloads by the set of argument names', async () => {
    expect((await post('/rpc/by_names', { a: 1 })).json()).toBe('a');
    expect((await post('/rpc/by_names', { a: 1, b: 2 })).json()).toBe('a,b');
    expect((await app.inject('/rpc/by_names?a=1&b=2')).json()).toBe('a,b');
  });

  it('ambiguous overloads → 300 PGRST203', async () => {
    const res = await post('/rpc/over', { a: 1 });
    expect(res.statusCode).toBe(300);
    expect(res.json()).toMatchObject({ code: 'PGRST203' });
    expect(res.json().message).toContain('public.over(a => integer)');
  });

  it('unknown function → 404 PGRST202 with a hint naming the closest function', async () => {
    const res = await post('/rpc/ad', { a: 1, b: 2 });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ code: 'PGRST202', hint: 'Perhaps you meant to call the function public.add' });
  });

  it('extra or missing keys → 404 PGRST202 naming the real signature', async () => {
    const extra = await post('/rpc/add', { a: 1, b: 2, c: 3 });
    expect(extra.statusCode).toBe(404);
    expect(extra.json()).toMatchObject({ code: 'PGRST202', hint: 'Perhaps you meant to call the function public.add(a, b)' });
    const missing = await post('/rpc/add', { a: 1 });
    expect(missing.statusCode).toBe(404);
  });

  it('procedures, aggregates and trigger functions are not exposed', async () => {
    for (const name of ['a_procedure', 'my_sum', 'a_trigger']) {
      const res = await post(`/rpc/${name}`, {});
      expect(res.statusCode, name).toBe(404);
      expect(res.json().code).toBe('PGRST202');
    }
  });

  it('methods other than GET/HEAD/POST → 405 PGRST101', async () => {
    const res = await app.inject({ method: 'PUT', url: '/rpc/add', payload: '{}', headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(405);
    expect(res.json().code).toBe('PGRST101');
  });
});

describe('errors in PostgREST form', () => {
  it('42501 → 401 for the anonymous role, 403 for an authenticated one', async () => {
    const anon = await post('/rpc/secret_thing', {});
    expect(anon.statusCode).toBe(401);
    expect(anon.json()).toMatchObject({ code: '42501' });
    const authed = await post('/rpc/secret_thing', {}, bearer(userToken));
    expect(authed.statusCode).toBe(403);
  });

  it('P0001 → 400 with the hint; PTxyz → status xyz', async () => {
    const p = await post('/rpc/fail_p0001', {});
    expect(p.statusCode).toBe(400);
    expect(p.json()).toEqual({ code: 'P0001', message: 'custom failure', details: null, hint: 'try again' });
    expect((await post('/rpc/fail_pt402', {})).statusCode).toBe(402);
  });

  it("RAISE SQLSTATE 'PGRST' controls body, status and headers; invalid JSON → 500 PGRST121", async () => {
    const res = await post('/rpc/fail_pgrst', {});
    expect(res.statusCode).toBe(402);
    expect(res.headers['x-powered-by']).toBe('Nerd Rage');
    expect(res.json()).toEqual({ code: '123', message: 'Payment Required', details: 'Quota exceeded', hint: 'Upgrade your plan' });
    const bad = await post('/rpc/fail_pgrst_bad', {});
    expect(bad.statusCode).toBe(500);
    expect(bad.json().code).toBe('PGRST121');
  });

  it('wrong argument types → 400 22P02', async () => {
    const res = await post('/rpc/add', { a: 'x', b: 1 });
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe('22P02');
  });

  it('57014 (statement timeout) → 500', async () => {
    await db.admin.unsafe(`alter role authenticated set statement_timeout = '150ms'`);
    try {
      await app.gateway.reloadSchema();
      const res = await post('/rpc/slow', { seconds: 2 }, bearer(userToken));
      expect(res.statusCode).toBe(500);
      expect(res.json().code).toBe('57014');
    } finally {
      await db.admin.unsafe(`alter role authenticated reset statement_timeout`);
      await app.gateway.reloadSchema();
    }
  });

  it('malformed JSON → 400 PGRST102', async () => {
    const res = await app.inject({ method: 'POST', url: '/rpc/add', payload: '{"a": 1,', headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe('PGRST102');
  });

  it('a JSON body that is not an object for named arguments → 400', async () => {
    const res = await post('/rpc/add', [1, 2]);
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe('PGRST102');
  });

  it('unsupported Content-Type → 415 PGRST107', async () => {
    const res = await app.inject({ method: 'POST', url: '/rpc/add', payload: '<a/>', headers: { 'content-type': 'image/png' } });
    expect(res.statusCode).toBe(415);
    expect(res.json().code).toBe('PGRST107');
  });

  it('bodies over the configured limit → 413', async () => {
    const small = await startGateway(db, { PGML_MAX_BODY_BYTES: '2048' });
    try {
      const res = await small.inject({ method: 'POST', url: '/rpc/echo', payload: JSON.stringify({ x: 'y'.repeat(5000) }), headers: { 'content-type': 'application/json' } });
      expect(res.statusCode).toBe(413);
      expect(res.json()).toMatchObject({ message: 'Request body too large' });
    } finally {
      await small.close();
    }
  });

  it('unknown Accept-Profile schema → 406 PGRST106', async () => {
    const res = await app.inject({ url: '/rpc/add?a=1&b=1', headers: { 'accept-profile': 'pgml' } });
    expect(res.statusCode).toBe(406);
    expect(res.json().code).toBe('PGRST106');
  });

  it('an unknown path → 404 in the error body shape', async () => {
    const res = await app.inject('/no/such/path');
    expect(res.statusCode).toBe(404);
    expect(Object.keys(res.json()).sort()).toEqual(['code', 'details', 'hint', 'message']);
  });
});

describe('injection attempts never execute', () => {
  const canary = async () => (await db.admin`select count(*)::int as n from canary`)[0].n;

  it('in the function name', async () => {
    for (const name of ['add";drop table canary;--', "add'); drop table canary; --", 'add%22%3Bdrop%20table%20canary', '../add', 'pg_sleep']) {
      const res = await post(`/rpc/${encodeURIComponent(name)}`, { a: 1, b: 2 });
      expect(res.statusCode, name).toBe(404);
    }
    expect(await canary()).toBe(1);
  });

  it('in argument names', async () => {
    const res = await post('/rpc/add', { a: 1, 'b" int); drop table canary; --': 2 });
    expect(res.statusCode).toBe(404);
    const get = await app.inject(`/rpc/add?a=1&${encodeURIComponent('b"=1;drop table canary')}=2`);
    expect([400, 404]).toContain(get.statusCode);
    expect(await canary()).toBe(1);
  });

  it('in argument values and filter values (always bind parameters)', async () => {
    const res = await post('/rpc/greet', { name: "x'); drop table canary; --" });
    expect(res.json()).toBe("hello x'); drop table canary; --");
    const f = await app.inject(`/rpc/items?label=eq.${encodeURIComponent("item1' or '1'='1")}`);
    expect(f.json()).toEqual([]);
    expect(await canary()).toBe(1);
  });

  it('in filter columns, select, order and casts', async () => {
    for (const q of ['id";drop table canary;--=eq.1', 'select=id;drop table canary', 'order=id;drop table canary', 'select=id::int;drop table canary', 'select=nosuch', 'order=nosuch.desc']) {
      const res = await app.inject(`/rpc/items?${q.split('=').map(encodeURIComponent).join('=')}`);
      expect(res.statusCode, q).toBe(400);
      expect(['PGRST100', '42703']).toContain(res.json().code);
    }
    expect(await canary()).toBe(1);
  });
});

describe('the caller inside SQL', () => {
  it('sets role, claims, method, path, lower-cased headers and cookies transaction-locally', async () => {
    const t = await token({ role: 'authenticated', sub: 'user-7', email: 'a@b.c' });
    const res = await app.inject({ method: 'POST', url: '/rpc/request_info', payload: '{}', headers: { 'content-type': 'application/json', 'X-Custom-Header': 'Value', cookie: 'session=abc; theme=dark', ...bearer(t) } });
    const info = res.json();
    expect(info.role).toBe('authenticated');
    expect(info.method).toBe('POST');
    expect(info.path).toBe('/rpc/request_info');
    expect(info.headers['x-custom-header']).toBe('Value');
    expect(info.cookies).toEqual({ session: 'abc', theme: 'dark' });
    expect(info.claims).toMatchObject({ role: 'authenticated', sub: 'user-7', email: 'a@b.c' });
    const { rows } = { rows: await db.admin`select current_setting('request.jwt.claims', true) as c` };
    expect(rows[0].c ?? '').toBe('');
  });

  it('RLS policies reading request.jwt.claims hold', async () => {
    await db.admin.unsafe(`
      create table diary (id serial primary key, owner text not null default current_setting('request.jwt.claims', true)::json->>'sub', entry text);
      alter table diary enable row level security;
      create policy own on diary using (owner = current_setting('request.jwt.claims', true)::json->>'sub');
      grant select, insert on diary to authenticated;
      grant usage on sequence diary_id_seq to authenticated;
      insert into diary(owner, entry) values ('alice', 'a1'), ('bob', 'b1');
      create function my_diary() returns setof diary language sql stable as $$ select * from diary $$;
      grant execute on function my_diary() to authenticated;
      notify pgrst, 'reload schema';`).simple();
    await app.gateway.reloadSchema();
    const alice = await app.inject({ url: '/rpc/my_diary', headers: bearer(await token({ role: 'authenticated', sub: 'alice' })) });
    expect(alice.json().map((r: { entry: string }) => r.entry)).toEqual(['a1']);
    const bob = await app.inject({ url: '/rpc/my_diary', headers: bearer(await token({ role: 'authenticated', sub: 'bob' })) });
    expect(bob.json().map((r: { entry: string }) => r.entry)).toEqual(['b1']);
  });

  it('runs the pre-request function, which can reject a request', async () => {
    await db.admin.unsafe(`
      create function check_request() returns void language plpgsql as $$ begin
        if current_setting('request.headers', true)::json->>'x-block' = 'yes' then
          raise sqlstate 'PT403' using message = 'blocked by pre-request';
        end if; end $$;
      grant execute on function check_request() to anon, authenticated;`).simple();
    const gw = await startGateway(db, { PGRST_DB_PRE_REQUEST: 'check_request' });
    try {
      expect((await gw.inject('/rpc/add?a=1&b=1')).json()).toBe(2);
      const blocked = await gw.inject({ url: '/rpc/add?a=1&b=1', headers: { 'x-block': 'yes' } });
      expect(blocked.statusCode).toBe(403);
      expect(blocked.json().message).toBe('blocked by pre-request');
    } finally {
      await gw.close();
    }
  });
});
