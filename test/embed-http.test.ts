import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgEmbeddingCache } from '../src/embed/pg-cache.ts';
import { makeTinyModels, referenceEmbedder } from './embed/helpers.ts';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { bearer, startGateway, token } from './helpers/gateway.ts';

let db: TestDatabase;
let app: FastifyInstance;
let models: { dir: string; cleanup: () => void };
let alice: Record<string, string>;
let bob: Record<string, string>;

beforeAll(async () => {
  models = makeTinyModels(['tiny-a']);
  process.env.PGML_MODEL_DIR = models.dir;
  db = await createTestDatabase();
  await db.admin.unsafe(`
    do $$ begin
      if not exists (select from pg_roles where rolname = 'emb_alice') then create role emb_alice nologin; end if;
      if not exists (select from pg_roles where rolname = 'emb_bob') then create role emb_bob nologin; end if;
    end $$;
    grant emb_alice, emb_bob to authenticator;`).simple();
  app = await startGateway(db);
  alice = bearer(await token({ role: 'emb_alice' }));
  bob = bearer(await token({ role: 'emb_bob' }));
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
  models?.cleanup();
});

const embed = (body: unknown, headers: Record<string, string>) =>
  app.inject({ method: 'POST', url: '/models/embed', payload: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });

describe('POST /models/embed', () => {
  it('returns normalised mean-pooled embeddings equal to an independent reference', async () => {
    const res = await embed({ model: 'tiny-a', inputs: ['hello world', 'Once A Huge Star, Today He Lives Alone'] }, alice);
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(body.model).toBe('tiny-a');
    expect(body.embeddings).toHaveLength(2);
    expect(body.dimensions).toBe(body.embeddings[0].length);
    const ref = await referenceEmbedder(models.dir, 'tiny-a', 128);
    const expected = await ref.embed(['hello world', 'Once A Huge Star, Today He Lives Alone']);
    body.embeddings.forEach((e: number[], i: number) => e.forEach((v, j) => expect(v).toBeCloseTo(expected[i][j], 5)));
  });

  it('a second identical request is served from the caller’s cache', async () => {
    const text = `cache me ${Math.random()}`;
    const before = { ...PgEmbeddingCache };
    const first = (await embed({ model: 'tiny-a', inputs: [text] }, alice)).json();
    const hitsAfterFirst = PgEmbeddingCache.hits;
    expect(hitsAfterFirst).toBe(before.hits);
    const second = (await embed({ model: 'tiny-a', inputs: [text] }, alice)).json();
    expect(PgEmbeddingCache.hits).toBe(hitsAfterFirst + 1);
    expect(second.embeddings).toEqual(first.embeddings);
    const rows = await db.admin`select owner, variant from pgml.embeddings where owner = 'emb_alice'`;
    expect(rows.length).toBeGreaterThan(0);
    expect(rows[0].variant).toBe('mean/normalized');
  });

  it('tenant isolation: another role neither reads nor learns the cached inputs', async () => {
    const text = `alice secret ${Math.random()}`;
    await embed({ model: 'tiny-a', inputs: [text] }, alice);
    const hits = PgEmbeddingCache.hits;
    await embed({ model: 'tiny-a', inputs: [text] }, bob);
    expect(PgEmbeddingCache.hits).toBe(hits);
    const seen = await db.admin.begin(async (tx) => {
      await tx`set local role emb_bob`;
      return tx`select owner from pgml.embeddings`;
    });
    expect(seen.every((r) => r.owner === 'emb_bob')).toBe(true);
    expect(seen.length).toBeGreaterThan(0);
  });

  it('concurrent requests of one role share one cache read and one write; roles are never mixed', async () => {
    const texts = Array.from({ length: 8 }, (_, i) => `together ${i} ${Math.random()}`);
    const reads = PgEmbeddingCache.reads;
    const writes = PgEmbeddingCache.writes;
    // the same text twice, once in a request of its own, must not break the shared write
    const all = await Promise.all([...texts.map((t) => embed({ model: 'tiny-a', inputs: [t] }, alice)), embed({ model: 'tiny-a', inputs: [texts[0]] }, alice), embed({ model: 'tiny-a', inputs: [texts[1]] }, bob)]);
    expect(all.map((r) => r.statusCode)).toEqual(Array(10).fill(200));
    expect(all[8].json().embeddings).toEqual(all[0].json().embeddings);
    // alice's turn and bob's turn: at least one statement each, far fewer than one per request
    expect(PgEmbeddingCache.reads - reads).toBeGreaterThanOrEqual(2);
    expect(PgEmbeddingCache.reads - reads).toBeLessThan(6);
    expect(PgEmbeddingCache.writes - writes).toBeLessThan(6);
    const rows = await db.admin`select owner, count(*)::int as n from pgml.embeddings where input_hash = any(${texts.map((t) => createHash('sha256').update(t).digest('hex'))}) group by owner order by owner`;
    expect(rows).toEqual([{ owner: 'emb_alice', n: 8 }, { owner: 'emb_bob', n: 1 }]);
    const hits = PgEmbeddingCache.hits;
    const again = await Promise.all(texts.map((t) => embed({ model: 'tiny-a', inputs: [t] }, alice)));
    expect(PgEmbeddingCache.hits - hits).toBe(8);
    again.forEach((r, i) => expect(r.json().embeddings).toEqual(all[i].json().embeddings));
  });

  it('long inputs are truncated and say so; empty strings and a single string work', async () => {
    const res = await embed({ model: 'tiny-a', inputs: ['word '.repeat(2000), ''] }, alice);
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-truncated-inputs']).toBe('1');
    const one = await embed({ model: 'tiny-a', inputs: 'just one' }, alice);
    expect(one.json().embeddings).toHaveLength(1);
  });

  it('pooling cls and normalize false change the result', async () => {
    const mean = (await embed({ model: 'tiny-a', inputs: ['abc'] }, alice)).json().embeddings[0] as number[];
    const cls = (await embed({ model: 'tiny-a', inputs: ['abc'], pooling: 'cls' }, alice)).json().embeddings[0] as number[];
    const raw = (await embed({ model: 'tiny-a', inputs: ['abc'], normalize: false }, alice)).json().embeddings[0] as number[];
    expect(cls).not.toEqual(mean);
    const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    expect(norm(mean)).toBeCloseTo(1, 5);
    expect(norm(raw)).not.toBeCloseTo(1, 3);
  });

  it('bad inputs: unknown model → 404 naming the models; non-string input → 400', async () => {
    const unknown = await embed({ model: 'nope', inputs: ['x'] }, alice);
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().hint).toContain('tiny-a');
    expect((await embed({ model: 'tiny-a', inputs: [1, 2] }, alice)).statusCode).toBe(400);
    expect((await embed({ model: 'tiny-a' }, alice)).statusCode).toBe(400);
    expect((await embed({ model: 'tiny-a', inputs: ['x'], pooling: 'max' }, alice)).statusCode).toBe(400);
  });
});

describe('SQL vector helpers', () => {
  it('compute as PostgresML names them', async () => {
    const [r] = await db.admin`select
      pgml.dot_product('{1,2,3}', '{4,5,6}') as dot, pgml.norm_l2('{3,4}') as norm,
      pgml.cosine_similarity('{1,0}', '{0,1}') as cos0, pgml.cosine_similarity('{1,1}', '{2,2}') as cos1,
      pgml.distance_l1('{1,2}', '{3,5}') as l1, pgml.distance_l2('{0,0}', '{3,4}') as l2,
      pgml.normalize_l2('{3,4}') as n, pgml.add('{1,2}'::real[], '{3,4}'::real[]) as a, pgml.subtract('{5,5}'::real[], '{1,2}'::real[]) as s,
      pgml.multiply('{1,2}'::real[], 3::real) as m, pgml.divide('{2,4}'::real[], 2::real) as d`;
    expect(r).toMatchObject({ dot: 32, norm: 5, cos0: 0, l1: 5, l2: 5, n: [0.6, 0.8], a: [4, 6], s: [4, 3], m: [3, 6], d: [1, 2] });
    expect(r.cos1).toBeCloseTo(1, 6);
    await expect(db.admin`select pgml.dot_product('{1,2}', '{1,2,3}')`).rejects.toThrow(/different dimensions/);
  });
});
