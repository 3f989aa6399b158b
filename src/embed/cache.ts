/**
 * The seam for a persistent embeddings cache (the Postgres one lives elsewhere):
 * `withCache(embedder, cache)` looks inputs up first and computes only the misses.
 */
import { validateRequest, type Embedder, type EmbedOptions, type EmbedResult } from './embedder.ts';
import type { EmbedConfig } from './config.ts';
import type { Pooling } from './pooling.ts';

export interface CacheVariant {
  model: string;
  pooling: Pooling;
  normalize: boolean;
}

export interface CachedEmbedding {
  embedding: Float32Array;
  truncated: boolean;
}

export interface EmbeddingCache {
  /** one entry per text, undefined for a miss */
  get(variant: CacheVariant, texts: string[]): Promise<(CachedEmbedding | undefined)[]>;
  put(variant: CacheVariant, texts: string[], rows: CachedEmbedding[]): Promise<void>;
  /**
   * True for a get() failure that refuses the caller rather than the cache being unavailable
   * (the database would not let the caller's role in): the request fails with it, before any
   * embedding is computed, instead of being served as all misses.
   */
  refuses?(err: unknown): boolean;
}

export function withCache(
  inner: Embedder,
  cache: EmbeddingCache,
  config: EmbedConfig,
  onCacheError: (err: unknown) => void = () => {},
): Embedder {
  const embed = async (model: string, inputs: string | string[], options: EmbedOptions = {}): Promise<EmbedResult> => {
    const req = validateRequest(config, model, inputs, options);
    const variant: CacheVariant = { model, pooling: req.pooling, normalize: req.normalize };
    // a failing cache must not fail the request: treat it as all misses; a refused caller must
    const hits = await cache.get(variant, req.inputs).catch((err) => {
      if (cache.refuses?.(err)) throw err;
      onCacheError(err);
      return req.inputs.map(() => undefined);
    });
    const missIdx = req.inputs.flatMap((_, i) => (hits[i] ? [] : [i]));
    if (missIdx.length === req.inputs.length) {
      const res = await inner.embed(model, req.inputs, options);
      const rows = res.embeddings.map((embedding, i) => ({ embedding, truncated: res.truncatedInputs[i] }));
      await cache.put(variant, req.inputs, rows).catch(onCacheError);
      return res;
    }
    const rows = hits.slice();
    if (missIdx.length > 0) {
      const missTexts = missIdx.map((i) => req.inputs[i]);
      const res = await inner.embed(model, missTexts, options);
      const computed = res.embeddings.map((embedding, j) => ({ embedding, truncated: res.truncatedInputs[j] }));
      missIdx.forEach((i, j) => (rows[i] = computed[j]));
      await cache.put(variant, missTexts, computed).catch(onCacheError);
    }
    const full = rows as CachedEmbedding[];
    const truncatedInputs = full.map((r) => r.truncated);
    return {
      model,
      dimensions: full[0].embedding.length,
      embeddings: full.map((r) => r.embedding),
      truncated: truncatedInputs.filter(Boolean).length,
      truncatedInputs,
    };
  };
  return {
    embed,
    models: () => inner.models(),
    loaded: () => inner.loaded(),
    preload: (m) => inner.preload(m),
    unload: (m) => inner.unload(m),
    close: () => inner.close(),
  };
}
