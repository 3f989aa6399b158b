import { createHash } from 'node:crypto';
import { withCaller, type CallerContext } from '../db/as-caller.ts';
import type { Pool } from '../db/pool.ts';
import type { CacheVariant, CachedEmbedding, EmbeddingCache } from './cache.ts';

const variantKey = (v: CacheVariant) => `${v.pooling}/${v.normalize ? 'normalized' : 'raw'}`;
const hash = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * pgml.embeddings as the embedder's cache, read and written as the caller: RLS keeps each role's
 * entries to itself. Counters let tests and metrics see hits and misses.
 */
export class PgEmbeddingCache implements EmbeddingCache {
  static hits = 0;
  static misses = 0;

  constructor(private readonly pool: Pool, private readonly ctx: CallerContext) {}

  async get(variant: CacheVariant, texts: string[]): Promise<(CachedEmbedding | undefined)[]> {
    const hashes = texts.map(hash);
    const rows = await withCaller(this.pool, this.ctx, { readOnly: true }, (tx) => tx`
      select input_hash, array_to_json(embedding)::text as e, truncated from pgml.embeddings
      where owner = current_user and model = ${variant.model} and variant = ${variantKey(variant)} and input_hash = any(${hashes}::text[])`);
    const found = new Map(rows.map((r) => [r.input_hash as string, { embedding: Float32Array.from(JSON.parse(r.e as string) as number[]), truncated: r.truncated as boolean }]));
    const out = hashes.map((h) => found.get(h));
    const hits = out.filter(Boolean).length;
    PgEmbeddingCache.hits += hits;
    PgEmbeddingCache.misses += out.length - hits;
    return out;
  }

  async put(variant: CacheVariant, texts: string[], rows: CachedEmbedding[]): Promise<void> {
    const payload = JSON.stringify(texts.map((t, i) => ({ h: hash(t), e: Array.from(rows[i].embedding), t: rows[i].truncated })));
    // the cache is an optimisation: a read-only caller (or one without INSERT) just does not cache
    await withCaller(this.pool, this.ctx, { readOnly: false }, (tx) => tx`
      insert into pgml.embeddings (model, variant, input_hash, embedding, truncated)
      select ${variant.model}, ${variantKey(variant)}, x.h, x.e, x.t from json_to_recordset(${payload}::text::json) as x(h text, e real[], t boolean)
      on conflict do nothing`);
  }
}
