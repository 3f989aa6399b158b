/**
 * Dynamic batching: requests (each a list of items) submitted in the same event loop turn, or
 * within `windowMs` of the first queued one while a batch runs, or while `maxInFlight` batches
 * are already running, are run as one batch
 * of at most `maxBatchSize` items (a single larger request runs alone). Results are
 * split back per request in order.
 *
 * With `maxInFlight` 2 the next batch is handed to the runner while the current one computes, so a
 * runner with its own queue (the model worker) never idles between batches waiting for answers to
 * travel back, cache writes and the clients' next requests (bench/embed.ts).
 *
 * A request submitted with an AbortSignal leaves the queue when it aborts (its client is gone):
 * its items are never computed (counted in `dropped`). Once in a batch, it runs.
 */
import { RequestAborted } from '../db/as-caller.ts';

export interface BatcherOptions {
  windowMs: number;
  maxBatchSize: number;
  /** batches handed to `run` at once (default 1) */
  maxInFlight?: number;
}

export interface BatcherStats {
  batches: number;
  requests: number;
  items: number;
  maxBatchItems: number;
  maxBatchRequests: number;
  /** items of aborted requests taken off the queue before they ran */
  dropped: number;
}

interface Pending<I, O> {
  items: I[];
  resolve: (out: O[]) => void;
  reject: (err: unknown) => void;
  /** stops listening for the request's abort once it is in a batch */
  release?: () => void;
}

export class DynamicBatcher<I, O> {
  private queue: Pending<I, O>[] = [];
  private readonly watched = new WeakMap<AbortSignal, Set<Pending<I, O>>>();
  private queuedItems = 0;
  private running = 0;
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  readonly stats: BatcherStats = { batches: 0, requests: 0, items: 0, maxBatchItems: 0, maxBatchRequests: 0, dropped: 0 };

  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    private readonly opts: BatcherOptions,
  ) {}

  submit(items: I[], signal?: AbortSignal): Promise<O[]> {
    if (signal?.aborted) return Promise.reject(new RequestAborted());
    if (items.length === 0) return Promise.resolve([]);
    return new Promise<O[]>((resolve, reject) => {
      const p: Pending<I, O> = { items, resolve, reject };
      if (signal) this.watch(signal, p);
      this.queue.push(p);
      this.queuedItems += items.length;
      this.schedule();
    });
  }

  /** one abort listener per signal, however many parts of its request are queued */
  private watch(signal: AbortSignal, p: Pending<I, O>): void {
    let queued = this.watched.get(signal);
    if (!queued) {
      const set = (queued = new Set());
      this.watched.set(signal, set);
      signal.addEventListener('abort', () => {
        for (const q of set) this.drop(q);
        set.clear();
      }, { once: true });
    }
    queued.add(p);
    p.release = () => queued.delete(p);
  }

  private drop(p: Pending<I, O>): void {
    const i = this.queue.indexOf(p);
    if (i < 0) return;
    this.queue.splice(i, 1);
    this.queuedItems -= p.items.length;
    this.stats.dropped += p.items.length;
    p.reject(new RequestAborted());
  }

  private get maxInFlight(): number {
    return Math.max(1, this.opts.maxInFlight ?? 1);
  }

  /** number of requests waiting (not yet in a running batch) */
  get pending(): number {
    return this.queue.length;
  }

  private schedule(): void {
    if (this.running >= this.maxInFlight) return; // a running batch flushes the queue when it finishes
    if (this.queuedItems >= this.opts.maxBatchSize) {
      this.flush();
    } else if (this.timer === undefined) {
      // an idle runner starts at once (requests of this same turn still join): waiting only pays
      // while a batch is computing, when the next one would have to wait anyway
      const wait = this.running > 0 ? this.opts.windowMs : 0;
      this.timer = wait > 0 ? setTimeout(() => this.flush(), wait) : setImmediate(() => this.flush());
    }
  }

  private clearTimer(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer as NodeJS.Timeout);
    clearImmediate(this.timer as NodeJS.Immediate);
    this.timer = undefined;
  }

  private flush(): void {
    this.clearTimer();
    if (this.running >= this.maxInFlight || this.queue.length === 0) return;
    const batch: Pending<I, O>[] = [];
    let count = 0;
    while (this.queue.length > 0) {
      const next = this.queue[0];
      if (batch.length > 0 && count + next.items.length > this.opts.maxBatchSize) break;
      batch.push(this.queue.shift()!);
      count += next.items.length;
    }
    this.queuedItems -= count;
    this.running++;
    const s = this.stats;
    s.batches++;
    s.requests += batch.length;
    s.items += count;
    s.maxBatchItems = Math.max(s.maxBatchItems, count);
    s.maxBatchRequests = Math.max(s.maxBatchRequests, batch.length);

    for (const p of batch) p.release?.();
    const items = batch.flatMap((p) => p.items);
    this.run(items)
      .then((out) => {
        if (out.length !== items.length) throw new Error(`batch returned ${out.length} results for ${items.length} items`);
        let offset = 0;
        for (const p of batch) {
          p.resolve(out.slice(offset, offset + p.items.length));
          offset += p.items.length;
        }
      })
      .catch((err) => {
        for (const p of batch) p.reject(err);
      })
      .finally(() => {
        this.running--;
        // Whatever queued up meanwhile has already waited a whole run: go now.
        if (this.queue.length > 0) this.flush();
      });
  }
}
