/**
 * The embeddings API the HTTP route and the SQL bridge call:
 *   embed(model, inputs, { normalize = true, pooling = 'mean' })
 *     -> { model, dimensions, embeddings: Float32Array[], truncated }
 */
import { defaultEmbedConfig, type EmbedConfig } from './config.ts';
import { EmbedInputError } from './errors.ts';
import { POOLINGS, type Pooling } from './pooling.ts';
import { ModelRegistry, type LoadedModelInfo } from './registry.ts';

export interface EmbedOptions {
  /** L2-normalise each embedding (default true) */
  normalize?: boolean;
  /** 'mean' (attention-masked, default) or 'cls' */
  pooling?: Pooling;
  /** the request is gone when it aborts: inputs not yet computing are dropped (RequestAborted) */
  signal?: AbortSignal;
}

export interface EmbedResult {
  model: string;
  dimensions: number;
  /** one per input, in input order */
  embeddings: Float32Array[];
  /** how many inputs were truncated to the model's max sequence length */
  truncated: number;
  /** per input: was it truncated */
  truncatedInputs: boolean[];
}

export interface Embedder {
  /**
   * Throws EmbedInputError for bad inputs or options, UnknownModelError (with the list of
   * available names) for unknown models, ModelLoadError when a model fails to load.
   */
  embed(model: string, inputs: string | string[], options?: EmbedOptions): Promise<EmbedResult>;
  /** names embed() accepts (local models, plus the remote allow-list when remote models are on) */
  models(): string[];
  /** loaded models with size estimates and batching statistics */
  loaded(): LoadedModelInfo[];
  /** loads models now (default: the configured preload list) */
  preload(models?: string[]): Promise<void>;
  unload(model: string): Promise<boolean>;
  close(): Promise<void>;
}

export interface ValidatedRequest {
  inputs: string[];
  normalize: boolean;
  pooling: Pooling;
}

/** Checks a request against the configured limits; exported for the HTTP layer's own early checks. */
export function validateRequest(config: EmbedConfig, model: unknown, inputs: unknown, options: unknown = {}): ValidatedRequest {
  if (typeof model !== 'string' || model.length === 0) throw new EmbedInputError('model must be a non-empty string');
  const list = typeof inputs === 'string' ? [inputs] : inputs;
  if (!Array.isArray(list)) throw new EmbedInputError('inputs must be a string or an array of strings');
  if (list.length > config.maxInputs) throw new EmbedInputError(`too many inputs: ${list.length} (at most ${config.maxInputs})`);
  let total = 0;
  for (let i = 0; i < list.length; i++) {
    const s: unknown = list[i];
    if (typeof s !== 'string') throw new EmbedInputError(`inputs[${i}] must be a string, got ${s === null ? 'null' : typeof s}`);
    if (s.length > config.maxInputChars) {
      throw new EmbedInputError(`inputs[${i}] is too long: ${s.length} characters (at most ${config.maxInputChars})`);
    }
    total += s.length;
  }
  if (total > config.maxRequestChars) throw new EmbedInputError(`request too long: ${total} characters in total (at most ${config.maxRequestChars})`);

  if (options === null || typeof options !== 'object') throw new EmbedInputError('options must be an object');
  const { normalize = true, pooling = 'mean' } = options as Record<string, unknown>;
  if (typeof normalize !== 'boolean') throw new EmbedInputError('normalize must be a boolean');
  if (typeof pooling !== 'string' || !POOLINGS.includes(pooling as Pooling)) {
    throw new EmbedInputError(`pooling must be one of ${POOLINGS.join(', ')}`);
  }
  return { inputs: list as string[], normalize, pooling: pooling as Pooling };
}

export class LocalEmbedder implements Embedder {
  readonly config: EmbedConfig;
  readonly registry: ModelRegistry;

  constructor(config: Partial<EmbedConfig> = {}) {
    this.config = defaultEmbedConfig(config);
    this.registry = new ModelRegistry(this.config);
  }

  async embed(model: string, inputs: string | string[], options: EmbedOptions = {}): Promise<EmbedResult> {
    const req = validateRequest(this.config, model, inputs, options);
    const handle = await this.registry.get(model);
    const rows = await handle.embed(req.inputs.map((text) => ({ text, pooling: req.pooling, normalize: req.normalize })), options.signal);
    const truncatedInputs = rows.map((r) => r.truncated);
    return {
      model,
      dimensions: handle.dimensions,
      embeddings: rows.map((r) => r.embedding),
      truncated: truncatedInputs.filter(Boolean).length,
      truncatedInputs,
    };
  }

  models(): string[] {
    return this.registry.available();
  }

  loaded(): LoadedModelInfo[] {
    return this.registry.loaded();
  }

  preload(models?: string[]): Promise<void> {
    return this.registry.preload(models);
  }

  unload(model: string): Promise<boolean> {
    return this.registry.unload(model);
  }

  close(): Promise<void> {
    return this.registry.close();
  }
}

export function createEmbedder(config: Partial<EmbedConfig> = {}): Embedder {
  return new LocalEmbedder(config);
}
