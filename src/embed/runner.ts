/**
 * A loaded model behind a uniform async interface. By default all models live in one
 * worker thread (so tokenisation and ORT runs, which are synchronous, never block the
 * event loop, and the worker's ~150 MB of runtime is paid once); `inline` runs them on
 * the calling thread.
 */
import type { Worker } from 'node:worker_threads';
import { spawnWorker } from '../worker-thread.ts';
import { Encoder, type EncodeItem, type EncodeOutput, type EncoderInfo } from './encoder.ts';
import type { ModelSpec } from './model-dir.ts';
import type { WorkerReply, WorkerRequest } from './worker-protocol.ts';

export interface ModelRunner {
  readonly info: EncoderInfo;
  encode(items: EncodeItem[]): Promise<EncodeOutput>;
  close(): Promise<void>;
  /** set when the runner can no longer serve (unloaded, or its worker died) */
  readonly failed: Error | undefined;
}

export interface RunnerFactory {
  start(key: string, spec: ModelSpec, threads: number): Promise<ModelRunner>;
  close(): Promise<void>;
}

export function runnerFactory(mode: 'worker' | 'inline'): RunnerFactory {
  return mode === 'worker' ? new WorkerHost() : { start: (_key, spec, threads) => InlineRunner.start(spec, threads), close: async () => {} };
}

class InlineRunner implements ModelRunner {
  failed: Error | undefined;
  private constructor(private readonly encoder: Encoder) {}
  static async start(spec: ModelSpec, threads: number): Promise<InlineRunner> {
    return new InlineRunner(await Encoder.load(spec, threads));
  }
  get info(): EncoderInfo {
    return this.encoder.info;
  }
  encode(items: EncodeItem[]): Promise<EncodeOutput> {
    return this.failed ? Promise.reject(this.failed) : this.encoder.encode(items);
  }
  close(): Promise<void> {
    this.failed ??= new Error(`model '${this.info.name}' was unloaded`);
    return this.encoder.dispose();
  }
}

type Pending = { resolve: (reply: WorkerReply) => void; reject: (err: Error) => void };

/** The one worker thread hosting every loaded model; started on first load, restarted after a crash. */
class WorkerHost implements RunnerFactory {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly runners = new Set<WorkerRunner>();

  async start(key: string, spec: ModelSpec, threads: number): Promise<ModelRunner> {
    const reply = await this.request({ type: 'load', id: 0, key, spec, threads });
    if (reply.type !== 'loaded') throw new Error(`unexpected worker reply ${reply.type}`);
    const runner = new WorkerRunner(this, key, reply.info);
    this.runners.add(runner);
    return runner;
  }

  async encode(key: string, items: EncodeItem[]): Promise<EncodeOutput> {
    const reply = await this.request({ type: 'encode', id: 0, key, items });
    if (reply.type !== 'result') throw new Error(`unexpected worker reply ${reply.type}`);
    return { dimensions: reply.dimensions, data: reply.data, truncated: reply.truncated };
  }

  async unload(runner: WorkerRunner): Promise<void> {
    this.runners.delete(runner);
    if (this.worker) await this.request({ type: 'unload', id: 0, key: runner.key });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await worker.terminate();
  }

  private request(req: WorkerRequest): Promise<WorkerReply> {
    const worker = this.ensureWorker();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, {
        resolve: (reply) => (reply.type === 'error' ? reject(new Error(reply.message)) : resolve(reply)),
        reject,
      });
      if (this.pending.size === 1) worker.ref();
      worker.postMessage({ ...req, id });
    });
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const url = new URL(import.meta.url.endsWith('.ts') ? './model-worker.ts' : './model-worker.js', import.meta.url);
    const worker = spawnWorker(url);
    worker.unref(); // referenced only while requests are in flight: an idle worker must not keep the process alive
    worker.on('message', (reply: WorkerReply) => {
      const p = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      p?.resolve(reply);
    });
    const crash = (err: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      for (const r of this.runners) r.failed ??= err;
      this.runners.clear();
    };
    worker.on('error', crash);
    worker.on('exit', (code) => crash(new Error(`embedding worker exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }
}

class WorkerRunner implements ModelRunner {
  failed: Error | undefined;
  constructor(
    private readonly host: WorkerHost,
    readonly key: string,
    readonly info: EncoderInfo,
  ) {}

  encode(items: EncodeItem[]): Promise<EncodeOutput> {
    return this.failed ? Promise.reject(this.failed) : this.host.encode(this.key, items);
  }

  async close(): Promise<void> {
    if (this.failed) return;
    this.failed = new Error(`model '${this.info.name}' was unloaded`);
    await this.host.unload(this);
  }
}
