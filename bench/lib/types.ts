/** What every bench/*.ts `run()` returns, and how it says it cannot run here. */
export type MetricValue = number | string | null;
export type Metrics = Record<string, MetricValue>;

export interface BenchResult {
  name: string;
  metrics: Metrics;
}

/**
 * Throw this (or call `skip(reason)`) from `run()` when the benchmark cannot run on this machine
 * (a missing Python package, no GPU, ...). bench/run.ts reports it as skipped, not failed.
 */
export class BenchSkipped extends Error {
  override readonly name = 'BenchSkipped';
  constructor(readonly reason: string) {
    super(reason);
  }
}

export function skip(reason: string): never {
  throw new BenchSkipped(reason);
}

/** Duck-typed, so a benchmark may throw its own error with `name === 'BenchSkipped'` or `skipped: true`. */
export function isSkip(e: unknown): e is { message: string; reason?: string } {
  if (!e || typeof e !== 'object') return false;
  const o = e as { name?: unknown; skipped?: unknown };
  return o.name === 'BenchSkipped' || o.skipped === true;
}
