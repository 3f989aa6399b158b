/**
 * Splits large flat-ensemble batches over two threads: the calling thread evaluates the first
 * half while one worker thread evaluates the second, both reading the feature matrix from and
 * writing the results to SharedArrayBuffers. The worker is started on the first large batch
 * (that batch runs on the calling thread alone), is unreferenced while idle so it never keeps
 * the process alive, and a worker that fails or dies leaves its half to the calling thread.
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { spawnWorker } from '../worker-thread.ts';
import { evaluateFlat, type FlatEnsemble } from './predict-flat.ts';

/**
 * Below this a batch stays on one thread. Measured (100 trees, depth 6, 20 features, 2 idle
 * cores), one thread vs split: 500 rows 0.66 vs 0.45 ms, 1000 rows 1.33 vs 0.67 ms, 10k rows
 * 12.9 vs 6.7 ms.
 */
export const SPLIT_MIN_ROWS = 512;

/** After this many worker failures batches stay on the calling thread. */
const MAX_WORKER_FAILURES = 3;

export function defaultPredictThreads(): number {
  return Math.min(2, availableParallelism());
}

export interface SplitRequest {
  id: number;
  flat: FlatEnsemble;
  x: Float64Array;
  cols: number;
  from: number;
  to: number;
  out: Float64Array;
}

/** id 0 without error: the worker is ready */
export interface SplitReply {
  id: number;
  error?: string;
}

export class PredictThreads {
  private worker: Worker | undefined;
  private ready = false;
  private failures = 0;
  private closed = false;
  private nextId = 1;
  private readonly pending = new Map<number, (ok: boolean) => void>();
  private readonly startWaiters: ((ready: boolean) => void)[] = [];

  /** threads: 1 = everything on the calling thread, 2 = calling thread + one worker */
  constructor(readonly threads: number) {}

  /**
   * Whether a batch of `rows` rows is split (its matrix and results must then be in
   * SharedArrayBuffers). Starts the worker when it would be wanted but is not running.
   */
  splits(rows: number): boolean {
    if (!(this.threads >= 2) || rows < SPLIT_MIN_ROWS || this.closed || this.failures >= MAX_WORKER_FAILURES) return false;
    if (!this.worker) this.start();
    return this.ready;
  }

  /** Starts the worker if needed; resolves true once it takes batches, false if it cannot. */
  whenReady(): Promise<boolean> {
    if (this.splits(Number.MAX_SAFE_INTEGER)) return Promise.resolve(true);
    // no worker even after splits() asked for one: one thread, closed, or failed too often
    if (!this.worker) return Promise.resolve(false);
    return new Promise((resolve) => this.startWaiters.push(resolve));
  }

  /** Evaluates rows [0, rows) of x into out, half here and half in the worker. Never rejects. */
  async evaluate(flat: FlatEnsemble, x: Float64Array, cols: number, rows: number, out: Float64Array): Promise<void> {
    const mid = rows >> 1;
    const remote = this.send({ id: 0, flat, x, cols, from: mid, to: rows, out });
    evaluateFlat(flat, x, cols, 0, mid, out);
    if (!(await remote)) evaluateFlat(flat, x, cols, mid, rows, out);
  }

  /** Stops the worker; later batches run on the calling thread. */
  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.stopped();
    if (worker) await worker.terminate();
  }

  /** Resolves true when the worker did its share, false when it could not. */
  private send(req: SplitRequest): Promise<boolean> {
    const worker = this.worker;
    if (!worker || !this.ready) return Promise.resolve(false);
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      if (this.pending.size === 1) worker.ref();
      try {
        worker.postMessage({ ...req, id });
      } catch {
        this.settle(worker, id, false);
      }
    });
  }

  private settle(worker: Worker, id: number, ok: boolean): void {
    const resolve = this.pending.get(id);
    if (!resolve) return;
    this.pending.delete(id);
    if (this.pending.size === 0 && this.worker === worker) worker.unref();
    resolve(ok);
  }

  private start(): void {
    const url = new URL(import.meta.url.endsWith('.ts') ? './predict-worker.ts' : './predict-worker.js', import.meta.url);
    const worker = spawnWorker(url);
    worker.unref();
    worker.on('message', (reply: SplitReply) => {
      if (this.worker !== worker) return;
      if (reply.id === 0) {
        this.ready = true;
        this.notifyStart(true);
        return;
      }
      if (reply.error !== undefined) this.failures++;
      this.settle(worker, reply.id, reply.error === undefined);
    });
    const fail = () => {
      if (this.worker !== worker) return;
      this.failures++;
      this.stopped();
    };
    worker.on('error', fail);
    worker.on('exit', fail);
    this.worker = worker;
    this.ready = false;
  }

  private notifyStart(ready: boolean): void {
    for (const resolve of this.startWaiters.splice(0)) resolve(ready);
  }

  /** Forgets the worker; its unfinished shares fall back to the calling thread. */
  private stopped(): void {
    this.worker = undefined;
    this.ready = false;
    this.notifyStart(false);
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const resolve of waiting) resolve(false);
  }
}
