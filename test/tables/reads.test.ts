/** Reads through @supabase/postgrest-js against the gateway on a real socket. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, startTablesEnv, type TablesEnv } from './setup.ts';

let env: TablesEnv;
beforeAll(async () => {
  env = await startTablesEnv();
});
afterAll(async () => env?.close());

describe('select', () => {
  it('columns, aliases, casts and JSON paths', async () => {
    const { data, error, status } = await env.anon.from('books').select('id, name:title, price::text, series:meta->series->>name, n:meta->series->n').lte('id', 2).order('id');
    expect(error).toBeNull();
    expect(status).toBe(200);
    expect(data).toEqual([
      { id: 1, name: 'A Wizard of Earthsea', price: '9.99', series: 'Earthsea', n: 1 },
      { id: 2, name: 'The Left Hand of Darkness', price: '12.50', series: 'Hainish', n: 4 },
    ]);
  });

  it('* returns every column in table order', async () => {
    const { data } = await env.anon.from('authors').select().eq('id', 2);
    expect(data).toEqual([{ id: 2, name: 'Stanislaw Lem', country: 'PL', born: '1921-09-12' }]);
  });

  it('views are served like tables', async () => {
    const { data } = await env.anon.from('books_view').select('title').eq('author_id', 3);
    expect(data).toEqual([{ title: 'Kindred' }]);
  });

  it('Accept-Profile picks an exposed schema; others are 406 PGRST106', async () => {
    const { error, status } = await env.anon.schema('other').from('books').select();
    expect(status).toBe(406);
    expect(error?.code).toBe('PGRST106');
  });
});

describe('filters', () => {
  const ids = async (q: PromiseLike<{ data: unknown; error: unknown }>) => {
    const { data, error } = await q;
    expect(error).toBeNull();
    return (data as { id: number }[]).map((r) => r.id);
  };
  const books = () => env.anon.from('books').select('id').order('id');
  it.each([
    ['eq', () => books().eq('pages', 304), [2]],
    ['neq', () => books().neq('author_id', 1), [3, 4, 5]],
    ['gt/gte/lt/lte', () => books().gt('pages', 200).lte('pages', 295), [3, 4, 5]],
    ['like', () => books().like('title', '%Dark%'), [2]],
    ['ilike', () => books().ilike('title', '*the*'), [2, 4]],
    ['match() / regexMatch / regexIMatch', () => books().match({ author_id: 2 }).regexIMatch('title', '^the'), [4]],
    ['regexMatch', () => books().regexMatch('title', '^The'), [2, 4]],
    ['in with quoted values', () => books().in('title', ['Solaris', 'Kindred', 'a,b']), [3, 5]],
    ['not.in', () => books().not('id', 'in', '(1,2,3)'), [4, 5, 6]],
    ['is null / not is null', () => books().is('author_id', null), [6]],
    ['is true', () => books().is('in_print', false), [3, 6]],
    ['isdistinct', () => books().isDistinct('in_print', true), [3, 6]],
    ['cs on arrays', () => books().contains('labels', ['scifi', 'classic']), [2]],
    ['cd on arrays', () => books().containedBy('labels', ['scifi', 'humor', 'classic']), [2, 3, 4, 6]],
    ['ov on arrays', () => books().overlaps('labels', ['humor', 'fantasy']), [1, 4]],
    ['cs on jsonb', () => books().contains('meta', { translated: true }), [3]],
    ['JSON path filter', () => books().eq('meta->series->>name', 'Hainish'), [2]],
    ['or with nested and', () => books().or('pages.gt.290,and(id.eq.1,in_print.is.true)'), [1, 2, 4]],
    ['not.or', () => env.anon.from('books').select('id').not('id', 'gt', 2).not('id', 'eq', 1), [2]],
    ['like(any)', () => books().likeAnyOf('title', ['*Dark*', '*Sol*']), [2, 3]],
    ['ilike(all)', () => books().ilikeAllOf('title', ['*the*', '*hand*']), [2]],
    ['eq(any) through filter()', () => books().filter('id', 'eq(any)', '{1,3}'), [1, 3]],
    ['gt(all)', () => books().filter('id', 'gt(all)', '{1,3}'), [4, 5, 6]],
  ] as const)('%s', async (_name, q, expected) => {
    expect(await ids(q())).toEqual(expected);
  });

  it('range operators', async () => {
    const rooms = () => env.anon.from('rooms').select('id').order('id');
    expect(await ids(rooms().rangeLt('booked', '[6,7)'))).toEqual([1]);
    expect(await ids(rooms().rangeGt('booked', '[6,7)'))).toEqual([2]);
    expect(await ids(rooms().rangeLte('booked', '[1,5)'))).toEqual([1]);
    expect(await ids(rooms().rangeGte('booked', '[10,20)'))).toEqual([2]);
    expect(await ids(rooms().rangeAdjacent('booked', '[5,10)'))).toEqual([1, 2]);
    expect(await ids(rooms().overlaps('booked', '[3,12)'))).toEqual([1, 2]);
  });

  it('full-text search: fts, plfts, phfts, wfts, with and without a configuration', async () => {
    const docs = () => env.anon.from('docs').select('id').order('id');
    expect(await ids(docs().textSearch('tsv', 'fox', { config: 'english' }))).toEqual([1, 3]);
    expect(await ids(docs().textSearch('tsv', 'lazy dog', { type: 'plain' }))).toEqual([2]);
    expect(await ids(docs().textSearch('tsv', 'quick brown', { type: 'phrase', config: 'english' }))).toEqual([1]);
    expect(await ids(docs().textSearch('body', 'fox', { type: 'websearch' }))).toEqual([1, 3]);
  });

  it('boolean and jsonb values keep their meaning on repeated (prepared) executions', async () => {
    for (let i = 0; i < 3; i++) {
      expect(await ids(env.anon.from('books').select('id').eq('in_print', true).order('id'))).toEqual([1, 2, 4, 5]);
      expect(await ids(env.anon.from('books').select('id').contains('meta', { translated: true }))).toEqual([3]);
    }
  });
});

describe('order, paging and counts', () => {
  it('order with nulls first / last and several keys', async () => {
    const { data } = await env.anon.from('books').select('id').order('author_id', { ascending: false, nullsFirst: true }).order('id', { ascending: false });
    expect((data as { id: number }[]).map((r) => r.id)).toEqual([6, 5, 4, 3, 2, 1]);
  });

  it('range() and count=exact: Content-Range and 206', async () => {
    const res = await env.anon.from('books').select('id', { count: 'exact' }).order('id').range(1, 2);
    expect(res.status).toBe(206);
    expect(res.count).toBe(6);
    expect(res.data).toEqual([{ id: 2 }, { id: 3 }]);
  });

  it('head with count', async () => {
    const res = await env.anon.from('books').select('*', { count: 'exact', head: true }).gt('pages', 250);
    expect(res.status).toBe(200);
    expect(res.count).toBe(3);
    expect(res.data).toBeNull();
  });

  it('planned and estimated counts answer a number', async () => {
    for (const count of ['planned', 'estimated'] as const) {
      const res = await env.anon.from('books').select('id', { count }).limit(1);
      expect(typeof res.count).toBe('number');
    }
  });

  it('Range header and an offset past the end (416 PGRST103 with a count)', async () => {
    const r = await fetch(`${env.url}/books?select=id&order=id`, { headers: { range: '4-10' } });
    expect(r.headers.get('content-range')).toBe('4-5/*');
    const past = await fetch(`${env.url}/books?select=id&offset=20`, { headers: { prefer: 'count=exact' } });
    expect(past.status).toBe(416);
    expect((await json(past)).code).toBe('PGRST103');
  });

  it('PGRST_DB_MAX_ROWS caps a read', async () => {
    const capped = await startTablesEnv({ dbMaxRows: 2 });
    try {
      const { data } = await capped.anon.from('books').select('id').order('id');
      expect(data).toEqual([{ id: 1 }, { id: 2 }]);
    } finally {
      await capped.close();
    }
  });
});

describe('media types', () => {
  it('single() → object; 406 PGRST116 otherwise', async () => {
    const one = await env.anon.from('authors').select('name').eq('id', 1).single();
    expect(one.data).toEqual({ name: 'Ursula K. Le Guin' });
    const many = await env.anon.from('authors').select('name').single();
    expect(many.status).toBe(406);
    expect(many.error?.code).toBe('PGRST116');
  });

  it('maybeSingle() with no row', async () => {
    const none = await env.anon.from('authors').select('name').eq('id', 99).maybeSingle();
    expect(none.error).toBeNull();
    expect(none.data).toBeNull();
  });

  it('csv()', async () => {
    const { data } = await env.anon.from('books').select('id,title').lte('id', 2).order('id').csv();
    expect(data).toBe('id,title\n1,"A Wizard of Earthsea"\n2,"The Left Hand of Darkness"');
  });

  it('stripNulls()', async () => {
    const { data } = await env.anon.from('books').select('id,meta,price').in('id', [4, 6]).order('id').stripNulls();
    expect(data).toEqual([{ id: 4 }, { id: 6, meta: {} }]);
  });

  it('an unsupported Accept is 415 PGRST107 (as PostgREST 12)', async () => {
    const r = await fetch(`${env.url}/books`, { headers: { accept: 'application/xml' } });
    expect(r.status).toBe(415);
    expect((await json(r)).code).toBe('PGRST107');
  });
});

describe('embedding', () => {
  it('many-to-one, one-to-many (with embedded order and limit), one-to-one', async () => {
    const { data } = await env.anon
      .from('authors')
      .select('name, books(title), profiles(bio)')
      .lte('id', 2)
      .order('id')
      .order('pages', { referencedTable: 'books', ascending: false })
      .limit(1, { referencedTable: 'books' });
    expect(data).toEqual([
      { name: 'Ursula K. Le Guin', books: [{ title: 'The Left Hand of Darkness' }], profiles: { bio: 'Wrote Earthsea' } },
      { name: 'Stanislaw Lem', books: [{ title: 'The Cyberiad' }], profiles: { bio: 'Polish author' } },
    ]);
    const m2o = await env.anon.from('books').select('title, authors(name)').eq('id', 6);
    expect(m2o.data).toEqual([{ title: 'Untitled draft', authors: null }]);
  });

  it('many-to-many through a junction table', async () => {
    const { data } = await env.anon.from('books').select('title, genres(name)').eq('id', 4).order('id', { referencedTable: 'genres' });
    expect(data).toEqual([{ title: 'The Cyberiad', genres: [{ name: 'science fiction' }, { name: 'satire' }] }]);
  });

  it('filters on embedded resources, and !inner', async () => {
    const all = await env.anon.from('authors').select('name, books(title)').gt('books.pages', 290).order('id');
    expect(all.data).toHaveLength(4);
    const inner = await env.anon.from('authors').select('name, books!inner(title)').gt('books.pages', 290).order('id');
    expect(inner.data).toEqual([
      { name: 'Ursula K. Le Guin', books: [{ title: 'The Left Hand of Darkness' }] },
      { name: 'Stanislaw Lem', books: [{ title: 'The Cyberiad' }] },
    ]);
  });

  it('spread of a to-one relationship, and ordering by an embedded column', async () => {
    const { data } = await env.anon.from('books').select('title, ...authors(author:name, country)').not('author_id', 'is', null).order('authors(name)', { ascending: true }).order('id').limit(2);
    expect(data).toEqual([
      { title: 'Kindred', author: 'Octavia E. Butler', country: 'US' },
      { title: 'Solaris', author: 'Stanislaw Lem', country: 'PL' },
    ]);
  });

  it('disambiguation by constraint or column, and the 300 PGRST201 ambiguity', async () => {
    const ok = await env.anon.from('messages').select('id, sender:people!messages_sender_id_fkey(name), receiver:people!receiver_id(name)').eq('id', 1);
    expect(ok.data).toEqual([{ id: 1, sender: { name: 'alice' }, receiver: { name: 'bob' } }]);
    const amb = await env.anon.from('messages').select('*, people(*)');
    expect(amb.status).toBe(300);
    expect(amb.error?.code).toBe('PGRST201');
    expect(amb.error?.hint).toContain("'people!messages_receiver_id_fkey'");
  });

  it('embedding through views', async () => {
    const { data } = await env.anon.from('authors_view').select('name, books_view(title)').eq('id', 3);
    expect(data).toEqual([{ name: 'Octavia E. Butler', books_view: [{ title: 'Kindred' }] }]);
    const up = await env.anon.from('books_view').select('title, authors(name)').eq('id', 1);
    expect(up.data).toEqual([{ title: 'A Wizard of Earthsea', authors: { name: 'Ursula K. Le Guin' } }]);
  });

  it('nested embeds', async () => {
    const { data } = await env.anon.from('genres').select('name, books(title, authors(name))').eq('id', 3);
    expect(data).toEqual([{ name: 'satire', books: [{ title: 'The Cyberiad', authors: { name: 'Stanislaw Lem' } }] }]);
  });

  it('no relationship → 400 PGRST200; filter on a non-embedded resource → 400 PGRST108', async () => {
    const none = await env.anon.from('books').select('id, people(*)');
    expect(none.status).toBe(400);
    expect(none.error?.code).toBe('PGRST200');
    const notEmbedded = await env.anon.from('books').select('id').eq('authors.id', 1);
    expect(notEmbedded.error?.code).toBe('PGRST108');
  });
});

describe('aggregates', () => {
  it('count() and sum/max with grouping', async () => {
    const { data } = await env.anon.from('books').select('author_id, count(), pages.sum(), pages.max()').order('author_id');
    expect(data).toEqual([
      { author_id: 1, count: 2, sum: 487, max: 304 },
      { author_id: 2, count: 2, sum: 499, max: 295 },
      { author_id: 3, count: 1, sum: 264, max: 264 },
      { author_id: null, count: 1, sum: null, max: null },
    ]);
  });

  it('aggregates in an embed', async () => {
    const { data } = await env.anon.from('authors').select('name, books(count())').eq('id', 1);
    expect(data).toEqual([{ name: 'Ursula K. Le Guin', books: [{ count: 2 }] }]);
  });

  it('are refused unless enabled (400 PGRST123)', async () => {
    const off = await startTablesEnv({ dbAggregatesEnabled: false });
    try {
      const res = await off.anon.from('books').select('count()');
      expect(res.status).toBe(400);
      expect(res.error?.code).toBe('PGRST123');
    } finally {
      await off.close();
    }
  });
});

describe('errors', () => {
  it('unknown table → 404 PGRST205 naming the closest table', async () => {
    const res = await env.anon.from('bookz').select();
    expect(res.status).toBe(404);
    expect(res.error).toMatchObject({ code: 'PGRST205', message: "Could not find the table 'public.bookz' in the schema cache", hint: "Perhaps you meant the table 'public.books'" });
  });

  it('unknown column → 400 42703', async () => {
    const res = await env.anon.from('books').select('nope');
    expect(res.status).toBe(400);
    expect(res.error).toMatchObject({ code: '42703', message: 'column books.nope does not exist' });
  });

  it('malformed filter / order / select → 400 PGRST100 with details', async () => {
    for (const q of ['id=foo.1', 'order=id.sideways', 'select=id,(', 'and=(id.gt.1', 'id=in.1,2', 'id=is.maybe', 'select=id::int%20from%20pg_authid']) {
      const r = await fetch(`${env.url}/books?${q}`);
      const body = await json(r);
      expect([r.status, body.code], q).toEqual([400, 'PGRST100']);
      expect(body.details, q).toBeTruthy();
    }
  });

  it('no privilege → 401 anonymous / 403 authenticated', async () => {
    const anon = await env.anon.from('private_notes').select();
    expect(anon.status).toBe(401);
    expect(anon.error?.code).toBe('42501');
    await env.db.admin.unsafe('revoke all on private_notes from authenticated');
    const user = await env.user.from('private_notes').select();
    expect(user.status).toBe(403);
  });

  it('/rpc, /live, /ready and / keep their routes', async () => {
    expect((await fetch(`${env.url}/live`)).status).toBe(200);
    expect((await fetch(`${env.url}/ready`)).status).toBe(200);
    expect((await fetch(`${env.url}/`)).headers.get('content-type')).toContain('json');
    expect((await json(await fetch(`${env.url}/rpc/nope`))).code).toBe('PGRST202');
    expect((await json(await fetch(`${env.url}/a/b/c`))).code).toBe('PGRST125');
  });
});
