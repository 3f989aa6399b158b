/** Configuration of the local embeddings core, read from env by `embedConfigFromEnv`. */
import { resolve } from 'node:path';

export interface EmbedConfig {
  /** directory of local models in the transformers.js layout: <modelDir>/<name>/{config.json, onnx/model.onnx, ...} */
  modelDir: string;
  /** allow hub downloads (transformers.js default host) for names on `remoteAllowList` */
  allowRemoteModels: boolean;
  remoteAllowList: string[];
  /** hub base URL (a mirror); default transformers.js's https://huggingface.co/ */
  remoteHost?: string;
  /** where downloaded hub files are cached; default <modelDir>/.cache */
  cacheDir: string;
  /** model names to load at start */
  preload: string[];
  /** prefer fp32 (onnx/model.onnx) or 8-bit (onnx/model_quantized.onnx) weights when both exist */
  dtype: 'fp32' | 'q8';
  /** dynamic batching: wait at most this long for more requests */
  batchWindowMs: number;
  /** dynamic batching: at most this many inputs per model run */
  maxBatchSize: number;
  /** batches handed to the model at once: 2 queues the next batch while one computes (worker runtime only) */
  maxInFlight: number;
  /** request limits */
  maxInputs: number;
  maxInputChars: number;
  maxRequestChars: number;
  /** sum of estimated model sizes kept loaded; least recently used idle models are unloaded past it. 0 = no cap */
  memoryLimitBytes: number;
  /** ORT intra-op threads per model (0 = ORT default: one per physical core) */
  threads: number;
  /** 'worker' (default) runs tokenisation and inference in a worker thread; 'inline' on the calling thread */
  runtime: 'worker' | 'inline';
}

export const DEFAULT_REMOTE_ALLOW_LIST = [
  'Xenova/all-MiniLM-L6-v2',
  'Xenova/all-MiniLM-L12-v2',
  'Xenova/all-mpnet-base-v2',
  'Xenova/bge-small-en-v1.5',
  'Xenova/bge-base-en-v1.5',
  'Xenova/e5-small-v2',
  'Xenova/gte-small',
  'Xenova/paraphrase-multilingual-MiniLM-L12-v2',
];

export function defaultEmbedConfig(overrides: Partial<EmbedConfig> = {}): EmbedConfig {
  const modelDir = resolve(overrides.modelDir ?? 'models');
  return {
    allowRemoteModels: false,
    remoteAllowList: DEFAULT_REMOTE_ALLOW_LIST,
    preload: [],
    dtype: 'fp32',
    batchWindowMs: 2,
    maxBatchSize: 64,
    maxInFlight: 2,
    maxInputs: 1024,
    maxInputChars: 100_000,
    maxRequestChars: 2_000_000,
    memoryLimitBytes: 0,
    threads: 0,
    runtime: 'worker',
    ...overrides,
    modelDir,
    cacheDir: resolve(overrides.cacheDir ?? resolve(modelDir, '.cache')),
  };
}

const list = (v: string | undefined) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined);

function num(env: NodeJS.ProcessEnv, key: string): number | undefined {
  const v = env[key];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${key} must be a non-negative number, got '${v}'`);
  return n;
}

/**
 * PGML_MODEL_DIR, PGML_ALLOW_REMOTE_MODELS, PGML_REMOTE_MODELS (allow-list, comma separated),
 * PGML_REMOTE_HOST (or HF_ENDPOINT),
 * PGML_MODEL_CACHE_DIR, PGML_PRELOAD_MODELS, PGML_EMBED_DTYPE, PGML_EMBED_BATCH_WINDOW_MS,
 * PGML_EMBED_MAX_BATCH, PGML_EMBED_IN_FLIGHT, PGML_EMBED_MAX_INPUTS, PGML_EMBED_MAX_INPUT_CHARS,
 * PGML_EMBED_MAX_REQUEST_CHARS, PGML_EMBED_MEMORY_LIMIT_MB, PGML_EMBED_THREADS, PGML_EMBED_RUNTIME.
 */
export function embedConfigFromEnv(env: NodeJS.ProcessEnv = process.env): EmbedConfig {
  const o: Partial<EmbedConfig> = {};
  if (env.PGML_MODEL_DIR) o.modelDir = env.PGML_MODEL_DIR;
  if (env.PGML_ALLOW_REMOTE_MODELS) o.allowRemoteModels = /^(1|true|yes|on)$/i.test(env.PGML_ALLOW_REMOTE_MODELS);
  if (list(env.PGML_REMOTE_MODELS)) o.remoteAllowList = list(env.PGML_REMOTE_MODELS);
  const host = env.PGML_REMOTE_HOST || env.HF_ENDPOINT;
  if (host) o.remoteHost = host.endsWith('/') ? host : `${host}/`;
  if (list(env.PGML_PRELOAD_MODELS)) o.preload = list(env.PGML_PRELOAD_MODELS);
  const dtype = env.PGML_EMBED_DTYPE;
  if (dtype) {
    if (dtype !== 'fp32' && dtype !== 'q8') throw new Error(`PGML_EMBED_DTYPE must be fp32 or q8, got '${dtype}'`);
    o.dtype = dtype;
  }
  const runtime = env.PGML_EMBED_RUNTIME;
  if (runtime) {
    if (runtime !== 'worker' && runtime !== 'inline') throw new Error(`PGML_EMBED_RUNTIME must be worker or inline, got '${runtime}'`);
    o.runtime = runtime;
  }
  const set = <K extends keyof EmbedConfig>(key: K, envKey: string, scale = 1) => {
    const n = num(env, envKey);
    if (n !== undefined) (o[key] as number) = n * scale;
  };
  set('batchWindowMs', 'PGML_EMBED_BATCH_WINDOW_MS');
  set('maxBatchSize', 'PGML_EMBED_MAX_BATCH');
  set('maxInFlight', 'PGML_EMBED_IN_FLIGHT');
  set('maxInputs', 'PGML_EMBED_MAX_INPUTS');
  set('maxInputChars', 'PGML_EMBED_MAX_INPUT_CHARS');
  set('maxRequestChars', 'PGML_EMBED_MAX_REQUEST_CHARS');
  set('memoryLimitBytes', 'PGML_EMBED_MEMORY_LIMIT_MB', 1024 * 1024);
  set('threads', 'PGML_EMBED_THREADS');
  if (env.PGML_MODEL_CACHE_DIR) o.cacheDir = env.PGML_MODEL_CACHE_DIR;
  const config = defaultEmbedConfig(o);
  if (config.maxBatchSize < 1) config.maxBatchSize = 1;
  if (config.maxInFlight < 1) config.maxInFlight = 1;
  return config;
}
