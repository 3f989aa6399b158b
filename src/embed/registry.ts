/**
 * Loaded models: each loads lazily once (concurrent callers share the load), can be
 * preloaded, unloaded on request, and least-recently-used idle models are unloaded when
 * loading another would exceed the memory cap. Each model has its own dynamic batcher.
 */
import { DynamicBatcher, type BatcherStats } from './batcher.ts';
import type { EmbedConfig } from './config.ts';
import type { EncodeItem, EncoderInfo } from './encoder.ts';
import { ModelLoadError } from './errors.ts';
import { listAvailableModels, resolveModel, type ModelSpec } from './model-dir.ts';
import { runnerFactory, type ModelRunner, type RunnerFactory } from './runner.ts';

let useCounter = 0;

export interface EmbeddingRow {
  embedding: Float32Array;
  truncated: boolean;
}

export interface LoadedModelInfo extends EncoderInfo {
  estimatedBytes: number;
  lastUsed: number;
  batches: BatcherStats;
}

class ModelHandle {
  lastUsed = Date.now();
  /** recency order for eviction: several uses can fall in the same millisecond */
  useSeq = ++useCounter;
  private active = 0;
  private idleWaiters: (() => void)[] = [];
  readonly batcher: DynamicBatcher<EncodeItem, EmbeddingRow>;
  private readonly maxBatchSize: number;

  constructor(
    readonly spec: ModelSpec,
    readonly runner: ModelRunner,
    config: EmbedConfig,
  ) {
    this.maxBatchSize = Math.max(1, config.maxBatchSize);
    this.batcher = new DynamicBatcher((items) => this.run(items), {
      windowMs: config.batchWindowMs,
      maxBatchSize: config.maxBatchSize,
      // inline runs are synchronous: a second batch in flight would only wait behind the first
      maxInFlight: config.runtime === 'worker' ? config.maxInFlight : 1,
    });
  }

  get dimensions(): number {
    return this.runner.info.dimensions;
  }

  get idle(): boolean {
    return this.active === 0;
  }

  /**
   * With a signal, a request larger than one batch goes in batch-sized parts, so that when the
   * signal aborts (the client left) the parts not yet running are dropped instead of computed.
   */
  async embed(items: EncodeItem[], signal?: AbortSignal): Promise<EmbeddingRow[]> {
    this.active++;
    this.lastUsed = Date.now();
    this.useSeq = ++useCounter;
    try {
      const size = this.maxBatchSize;
      if (!signal || items.length <= size) return await this.batcher.submit(items, signal);
      const parts: Promise<EmbeddingRow[]>[] = [];
      for (let i = 0; i < items.length; i += size) parts.push(this.batcher.submit(items.slice(i, i + size), signal));
      // every part settles before the request does (no rejection left unobserved)
      const settled = await Promise.allSettled(parts);
      const failed = settled.find((s) => s.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
      return settled.flatMap((s) => (s as PromiseFulfilledResult<EmbeddingRow[]>).value);
    } finally {
      if (--this.active === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  waitIdle(): Promise<void> {
    return this.active === 0 ? Promise.resolve() : new Promise((r) => this.idleWaiters.push(r));
  }

  private async run(items: EncodeItem[]): Promise<EmbeddingRow[]> {
    const out = await this.runner.encode(items);
    const dim = out.dimensions;
    return items.map((_, i) => ({ embedding: out.data.subarray(i * dim, (i + 1) * dim), truncated: out.truncated[i] === 1 }));
  }
}

export class ModelRegistry {
  private readonly models = new Map<string, Promise<ModelHandle>>();
  private readonly ready = new Map<string, ModelHandle>();
  /** requested name -> model id (several names can reach one directory) */
  private readonly aliases = new Map<string, string>();

  private readonly runners: RunnerFactory;

  constructor(readonly config: EmbedConfig) {
    this.runners = runnerFactory(config.runtime);
  }

  available(): string[] {
    return listAvailableModels(this.config);
  }

  /** Throws UnknownModelError (listing available names) for names that cannot be loaded. */
  get(name: string): Promise<ModelHandle> {
    let key = this.aliases.get(name);
    const existing = key === undefined ? undefined : this.ready.get(key);
    if (existing && !existing.runner.failed) return Promise.resolve(existing);
    if (key !== undefined && existing) this.forget(key);
    const loading = key === undefined ? undefined : this.models.get(key);
    if (loading) return loading;
    const spec = resolveModel(this.config, name);
    key = spec.id;
    this.aliases.set(name, key);
    const already = this.models.get(key);
    if (already) return already;
    const promise = this.load(spec, key);
    this.models.set(key, promise);
    promise.catch(() => this.models.get(key) === promise && this.models.delete(key));
    return promise;
  }

  async preload(names: string[] = this.config.preload): Promise<void> {
    await Promise.all(names.map((n) => this.get(n)));
  }

  /** Unloads after in-flight requests finish; returns false when the model was not loaded. */
  async unload(name: string): Promise<boolean> {
    const key = this.aliases.get(name) ?? name;
    const promise = this.models.get(key);
    if (!promise) return false;
    this.forget(key);
    const handle = await promise.catch(() => undefined);
    if (!handle) return false;
    await handle.waitIdle();
    await handle.runner.close();
    return true;
  }

  async close(): Promise<void> {
    await Promise.all([...this.models.keys()].map((key) => this.unload(key)));
    await this.runners.close();
  }

  loaded(): LoadedModelInfo[] {
    return [...this.ready.values()].map((h) => ({
      ...h.runner.info,
      estimatedBytes: h.spec.estimatedBytes,
      lastUsed: h.lastUsed,
      batches: { ...h.batcher.stats },
    }));
  }

  private forget(key: string): void {
    this.models.delete(key);
    this.ready.delete(key);
  }

  private async load(spec: ModelSpec, key: string): Promise<ModelHandle> {
    await this.makeRoom(spec);
    let runner: ModelRunner;
    try {
      runner = await this.runners.start(key, spec, this.config.threads);
    } catch (err) {
      throw new ModelLoadError(spec.name, err instanceof Error ? err.message : String(err));
    }
    const handle = new ModelHandle(spec, runner, this.config);
    if (this.models.has(key)) this.ready.set(key, handle);
    else await runner.close(); // unloaded while loading
    return handle;
  }

  private async makeRoom(spec: ModelSpec): Promise<void> {
    const cap = this.config.memoryLimitBytes;
    if (cap <= 0) return;
    if (spec.estimatedBytes > cap) {
      throw new ModelLoadError(spec.name, `needs ~${mb(spec.estimatedBytes)} MB, above the memory limit of ${mb(cap)} MB`);
    }
    const used = () => [...this.ready.values()].reduce((sum, h) => sum + h.spec.estimatedBytes, 0);
    while (used() + spec.estimatedBytes > cap) {
      const victim = [...this.ready.values()].filter((h) => h.idle).sort((a, b) => a.useSeq - b.useSeq)[0];
      if (!victim) break; // everything is busy: go over the cap until the next load
      await this.unload(victim.spec.id);
    }
  }
}

const mb = (bytes: number) => Math.round(bytes / (1024 * 1024));

export type { ModelHandle };
