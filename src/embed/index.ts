/** Public surface of the local embeddings core. */
export { createEmbedder, LocalEmbedder, validateRequest, type Embedder, type EmbedOptions, type EmbedResult } from './embedder.ts';
export { defaultEmbedConfig, embedConfigFromEnv, type EmbedConfig } from './config.ts';
export { EmbedError, EmbedInputError, ModelLoadError, UnknownModelError } from './errors.ts';
export type { Pooling } from './pooling.ts';
export type { LoadedModelInfo } from './registry.ts';
export { makeModel, ARCHS, type ArchName, type MakeModelOptions } from './make-model.ts';
export { withCache, type CacheVariant, type CachedEmbedding, type EmbeddingCache } from './cache.ts';
