import { createHash } from 'node:crypto';
import { withCaller, type CallerContext } from '../db/as-caller.ts';
import type { Pool } from '../db/pool.ts';
import type { CacheVariant, CachedEmbedding, EmbeddingCache } from './cache.ts';

const variantKey = (v: CacheVariant) => `${v.pooling}/${v.normalize ? 'normalized' : 'raw'}`;
const hash = (text: string) => createHash('sha256').update(text).digest('hex');

interface PendingWrite {
  entries: { h: string; e: Float32Array; t: boolean }[];
  done: Promise<void>;
}
/** per pool, per caller+variant key: the write collecting this event loop turn's rows */
const pendingWrites = new WeakMap<Pool, Map<string, PendingWrite>>();

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

  /**
   * Writes of the same caller (role, claims, settings) and variant that are made in the same event
   * loop turn go out as one INSERT in one transaction: a dynamic batch finishes all its requests
   * at once, so at concurrency 32 this is one write per batch instead of one per request. Each
   * caller still waits for its rows to be written (a later request of the same caller finds them).
   */
  put(variant: CacheVariant, texts: string[], rows: CachedEmbedding[]): Promise<void> {
    let byKey = pendingWrites.get(this.pool);
    if (!byKey) pendingWrites.set(this.pool, (byKey = new Map()));
    const key = JSON.stringify([this.ctx.role, this.ctx.claims, this.ctx.settings, variant.model, variantKey(variant)]);
    let write = byKey.get(key);
    if (!write) {
      const w: PendingWrite = { entries: [], done: undefined! };
      write = w;
      byKey.set(key, w);
      w.done = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        if (byKey.get(key) === w) byKey.delete(key);
        return this.write(variant, w.entries);
      });
    }
    for (let i = 0; i < texts.length; i++) write.entries.push({ h: hash(texts[i]), e: rows[i].embedding, t: rows[i].truncated });
    return write.done;
  }

  private async write(variant: CacheVariant, entries: PendingWrite['entries']): Promise<void> {
    const payload = JSON.stringify(entries.map((x) => ({ h: x.h, e: Array.from(x.e), t: x.t })));
    // the cache is an optimisation: a read-only caller (or one without INSERT) just does not cache
    await withCaller(this.pool, this.ctx, { readOnly: false }, (tx) => tx`
      insert into pgml.embeddings (model, variant, input_hash, embedding, truncated)
      select ${variant.model}, ${variantKey(variant)}, x.h, x.e, x.t from json_to_recordset(${payload}::text::json) as x(h text, e real[], t boolean)
      on conflict do nothing`);
  }
}
