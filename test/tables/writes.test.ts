/** Writes through @supabase/postgrest-js (and fetch for PUT) against the gateway on a real socket. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, startTablesEnv, type TablesEnv } from './setup.ts';

let env: TablesEnv;
beforeAll(async () => {
  env = await startTablesEnv();
});
afterAll(async () => env?.close());

const JSON_CT = { 'content-type': 'application/json' };
/** postgrest-js types maxAffected() for PostgREST 13 clients only; the gateway supports it */
const maxAffected = (q: unknown, n: number) => (q as { maxAffected(n: number): PromiseLike<{ status: number; error: { code: string; details: string } | null }> }).maxAffected(n);

describe('insert', () => {
  it('one row: 201, minimal by default', async () => {
    const res = await env.anon.from('counters').insert({ label: 'one', n: 1 });
    expect(res.status).toBe(201);
    expect(res.data).toBeNull();
    const [row] = await env.db.admin`select n from counters where label = 'one'`;
    expect(row.n).toBe(1);
  });

  it('many rows with select(): representation, columns= from the keys, absent keys are NULL', async () => {
    const res = await env.anon.from('events').insert([{ kind: 'a', payload: { x: 1 } }, { kind: 'b' }]).select('kind, payload');
    expect(res.status).toBe(201);
    expect(res.data).toEqual([{ kind: 'a', payload: { x: 1 } }, { kind: 'b', payload: null }]);
  });

  it('defaultToNull: false → missing=default uses column defaults (identity, default expressions)', async () => {
    const res = await env.anon.from('events').insert([{ payload: { y: 2 } }, { kind: 'explicit' }], { defaultToNull: false }).select('id, kind, payload, at');
    expect(res.error).toBeNull();
    const rows = res.data as { id: number; kind: string; payload: unknown; at: string }[];
    expect(rows.map((r) => [r.kind, r.payload, r.at])).toEqual([
      ['note', { y: 2 }, '2024-01-01T00:00:00+00:00'],
      ['explicit', null, '2024-01-01T00:00:00+00:00'],
    ]);
    expect(rows[1].id).toBe(rows[0].id + 1);
  });

  it('single() on insert returns the object; embeds on the representation', async () => {
    const one = await env.anon.from('counters').insert({ label: 'single', n: 7 }).select('label, n').single();
    expect(one.data).toEqual({ label: 'single', n: 7 });
    const embedded = await env.anon.from('books').insert({ title: 'Fiasco', author_id: 2 }).select('title, authors(name)');
    expect(embedded.data).toEqual([{ title: 'Fiasco', authors: { name: 'Stanislaw Lem' } }]);
  });

  it('return=headers-only gives Location', async () => {
    const r = await fetch(`${env.url}/counters`, { method: 'POST', headers: { ...JSON_CT, prefer: 'return=headers-only' }, body: JSON.stringify({ id: 900, label: 'loc' }) });
    expect(r.status).toBe(201);
    expect(r.headers.get('location')).toBe('/counters?id=eq.900');
  });

  it('409 on a duplicate key; 400 PGRST204 on an unknown column; 400 PGRST102 on mismatched keys', async () => {
    const dup = await env.anon.from('counters').insert({ label: 'a' });
    expect(dup.status).toBe(409);
    expect(dup.error?.code).toBe('23505');
    const unknown = await env.anon.from('counters').insert({ label: 'x', nope: 1 });
    expect(unknown.status).toBe(400);
    expect(unknown.error).toMatchObject({ code: 'PGRST204', message: "Column 'nope' of relation 'counters' does not exist" });
    const r = await fetch(`${env.url}/counters`, { method: 'POST', headers: JSON_CT, body: JSON.stringify([{ label: 'p' }, { n: 1 }]) });
    expect((await json(r)).message).toBe('All object keys must match');
  });

  it('count=exact on insert', async () => {
    const res = await env.anon.from('counters').insert([{ label: 'c1' }, { label: 'c2' }], { count: 'exact' });
    expect(res.count).toBe(2);
  });
});

describe('upsert', () => {
  it('merge-duplicates on on_conflict: 200 when every row existed, 201 when one was new', async () => {
    const merged = await env.anon.from('counters').upsert({ label: 'b', n: 42 }, { onConflict: 'label' }).select('label, n');
    expect(merged.status).toBe(200);
    expect(merged.data).toEqual([{ label: 'b', n: 42 }]);
    const mixed = await env.anon.from('counters').upsert([{ label: 'b', n: 43 }, { label: 'fresh', n: 1 }], { onConflict: 'label' });
    expect(mixed.status).toBe(201);
  });

  it('ignore-duplicates keeps the existing row', async () => {
    const res = await env.anon.from('counters').upsert({ label: 'b', n: 0 }, { onConflict: 'label', ignoreDuplicates: true }).select();
    expect(res.status).toBe(201);
    expect(res.data).toEqual([]);
    const [row] = await env.db.admin`select n from counters where label = 'b'`;
    expect(row.n).toBe(43);
  });

  it('by primary key without on_conflict', async () => {
    const res = await env.anon.from('people').upsert({ id: 3, name: 'caroline' }).select('name');
    expect(res.error).toBeNull();
    expect(res.data).toEqual([{ name: 'caroline' }]);
  });
});

describe('update and delete', () => {
  it('PATCH with filters: 204 minimal, 200 with representation', async () => {
    const minimal = await env.anon.from('counters').update({ n: 5 }).eq('label', 'a');
    expect(minimal.status).toBe(204);
    const rep = await env.anon.from('counters').update({ n: 6 }).in('label', ['a', 'nothing']).select('label, n');
    expect(rep.data).toEqual([{ label: 'a', n: 6 }]);
  });

  it('DELETE with filters and representation', async () => {
    await env.anon.from('counters').insert({ label: 'doomed' });
    const res = await env.anon.from('counters').delete().eq('label', 'doomed').select('label');
    expect(res.status).toBe(200);
    expect(res.data).toEqual([{ label: 'doomed' }]);
  });

  it('max-affected with handling=strict rolls back and answers 400 PGRST124', async () => {
    const before = await env.db.admin`select id, n from counters order by id`;
    const res = await maxAffected(env.anon.from('counters').update({ n: 99 }).gt('n', -1), 1);
    expect(res.status).toBe(400);
    expect(res.error).toMatchObject({ code: 'PGRST124', details: `The query affects ${before.length} rows` });
    expect(await env.db.admin`select id, n from counters order by id`).toEqual(before);
    const ok = await maxAffected(env.anon.from('counters').update({ n: 7 }).eq('label', 'a'), 1);
    expect(ok.status).toBe(204);
  });

  it('Prefer: tx=rollback answers as usual but keeps nothing', async () => {
    const res = await env.anon.from('counters').insert({ label: 'ghost' }).select('label').rollback();
    expect(res.data).toEqual([{ label: 'ghost' }]);
    const rows = await env.db.admin`select 1 from counters where label = 'ghost'`;
    expect(rows).toHaveLength(0);
  });

  it('unfiltered PATCH/DELETE are refused when safe updates are configured (as pg-safeupdate)', async () => {
    const safe = await startTablesEnv({ dbSafeUpdate: true });
    try {
      const upd = await safe.anon.from('counters').update({ n: 1 });
      expect(upd.status).toBe(400);
      expect(upd.error).toMatchObject({ code: '21000', message: 'UPDATE requires a WHERE clause' });
      const del = await safe.anon.from('counters').delete();
      expect(del.error?.message).toBe('DELETE requires a WHERE clause');
      expect((await safe.anon.from('counters').delete().eq('label', 'zzz')).status).toBe(204);
    } finally {
      await safe.close();
    }
  });
});

describe('PUT', () => {
  const put = (path: string, body: unknown, prefer = 'return=representation') => fetch(`${env.url}${path}`, { method: 'PUT', headers: { ...JSON_CT, prefer }, body: JSON.stringify(body) });

  it('inserts, then replaces, the row named by its primary key', async () => {
    const a = await put('/counters?id=eq.500', { id: 500, label: 'put', n: 1 });
    expect(a.status).toBe(200);
    expect(await json(a)).toEqual([{ id: 500, label: 'put', n: 1 }]);
    const b = await put('/counters?id=eq.500', { id: 500, label: 'put', n: 2 }, 'return=minimal');
    expect(b.status).toBe(204);
    const [row] = await env.db.admin`select n from counters where id = 500`;
    expect(row.n).toBe(2);
  });

  it('405 PGRST105 without exactly the key filters; 400 PGRST115 when the body disagrees', async () => {
    expect((await json(await put('/counters?label=eq.x', { id: 1 }))).code).toBe('PGRST105');
    expect((await json(await put('/counters?id=eq.1', { id: 2, label: 'x' }))).code).toBe('PGRST115');
  });
});

describe('as the caller: RLS and grants', () => {
  it('RLS policies decide what a role sees and writes', async () => {
    const mine = await env.user.from('secrets').select('body');
    expect(mine.data).toEqual([{ body: 'mine' }]);
    const ins = await env.user.from('secrets').insert({ body: 'new' }).select('owner, body');
    expect(ins.data).toEqual([{ owner: 'u1', body: 'new' }]);
    const forged = await env.user.from('secrets').insert({ owner: 'u2', body: 'forged' });
    expect(forged.status).toBe(403);
    expect(forged.error?.code).toBe('42501');
    const upd = await env.user.from('secrets').update({ body: 'hacked' }).eq('owner', 'u2').select();
    expect(upd.data).toEqual([]);
  });

  it('missing grants: 401 for anonymous writes', async () => {
    const res = await env.anon.from('private_notes').insert({ id: 1, note: 'x' });
    expect(res.status).toBe(401);
  });

  it('a failed write leaves nothing behind and the connection usable', async () => {
    const bad = await env.anon.from('counters').insert([{ label: 'ok1' }, { label: 'a' }]);
    expect(bad.status).toBe(409);
    expect(await env.db.admin`select 1 from counters where label = 'ok1'`).toHaveLength(0);
    expect((await env.anon.from('counters').select('id').limit(1)).status).toBe(200);
  });
});
