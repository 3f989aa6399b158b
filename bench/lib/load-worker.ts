/**
 * Child process that runs one autocannon measurement (forked by load.ts), so the load generator
 * has its own event loop and its CPU time can be told apart from the orchestrator's.
 */
import { createRequire } from 'node:module';
import type { LoadOptions, LoadSummary } from './load.ts';

export interface Histogram {
  average: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}
/** The parts of autocannon's result and instance the load generators use. */
export interface AutocannonResult {
  duration: number;
  latency: Histogram;
  requests: Histogram & { total: number };
  errors: number;
  timeouts: number;
  mismatches: number;
  non2xx: number;
  '2xx': number;
}
export interface Instance {
  on(event: 'response', fn: (client: unknown, statusCode: number, bytes: number, ms: number) => void): void;
  on(event: 'reqError', fn: (err: Error & { code?: string }) => void): void;
}
export type Autocannon = (opts: Record<string, unknown>, cb: (err: Error | null, result: AutocannonResult) => void) => Instance;

/**
 * Latencies of 2xx responses at full resolution: autocannon's own histogram rounds to whole
 * milliseconds, too coarse for sub-millisecond answers at concurrency 1.
 */
class Samples {
  private data = new Float64Array(1 << 16);
  private n = 0;
  add(v: number): void {
    if (this.n === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.n++] = v;
  }
  summary(): LoadSummary['latencyMs'] {
    const sorted = this.data.subarray(0, this.n).sort();
    const at = (q: number) => (this.n ? sorted[Math.min(this.n - 1, Math.ceil(q * this.n) - 1)] : NaN);
    let sum = 0;
    for (const v of sorted) sum += v;
    return { p50: at(0.5), p90: at(0.9), p99: at(0.99), mean: this.n ? sum / this.n : NaN, max: this.n ? sorted[this.n - 1] : NaN };
  }
}

const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

function measure(o: LoadOptions): Promise<LoadSummary> {
  return new Promise((resolve, reject) => {
    const cpu = process.cpuUsage();
    const started = process.hrtime.bigint();
    const samples = new Samples();
    let lastAnswer = 0;
    const instance = autocannon(
      {
        url: o.url,
        method: o.method,
        headers: o.headers,
        body: o.body,
        connections: o.connections,
        amount: o.amount,
        pipelining: 1,
        timeout: 10,
        expectBody: o.expectBody,
      },
      (err, r) => {
        if (err) return reject(err);
        const used = process.cpuUsage(cpu);
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        // autocannon notices the end only at its next 1 s sampling tick: time the run to its last answer instead
        const active = lastAnswer ? Number(lastAnswer - Number(started)) / 1e9 : r.duration;
        resolve({
          durationSeconds: active,
          ok: r['2xx'],
          rps: r['2xx'] / active,
          latencyMs: samples.summary(),
          errors: r.errors,
          errorKinds,
          timeouts: r.timeouts,
          non2xx: r.non2xx,
          mismatches: r.mismatches,
          loadCpuSeconds: (used.user + used.system) / 1e6,
          wallSeconds: seconds,
        });
      },
    );
    const errorKinds: Record<string, number> = {};
    instance.on('reqError', (err) => {
      const kind = err.code ?? err.message;
      errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
    });
    instance.on('response', (_client, status, _bytes, ms) => {
      lastAnswer = Number(process.hrtime.bigint());
      if (status >= 200 && status < 300) samples.add(ms);
    });
  });
}

process.once('message', (o: LoadOptions) => {
  measure(o).then(
    (summary) => process.send!({ summary }, () => process.exit(0)),
    (e: unknown) => process.send!({ error: String((e as Error)?.stack ?? e) }, () => process.exit(1)),
  );
});
