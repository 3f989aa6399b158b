/**
 * Train/test split as PostgresML: test_size is a fraction in (0, 1) or a row count > 1
 * (rounded like PostgresML: round(n · fraction)); test_sampling random | first | last |
 * stratified (default), seeded.
 */
import type { Dataset, Matrix } from './model-types.ts';
import { MLInputError } from './hyperparams.ts';
import { Rng } from './algorithms/rng.ts';

export type TestSampling = 'random' | 'first' | 'last' | 'stratified';
export const TEST_SAMPLINGS: readonly TestSampling[] = ['random', 'first', 'last', 'stratified'];

export interface SplitOptions {
  testSize?: number;
  testSampling?: string;
  seed?: number;
  /** class index per row; needed for stratified (without it stratified behaves as random) */
  y?: Float64Array;
}

export interface Split {
  train: Int32Array;
  test: Int32Array;
}

export function testCount(n: number, testSize: number): number {
  if (!(testSize > 0) || !Number.isFinite(testSize) || testSize === 1) {
    throw new MLInputError(`invalid test_size ${testSize}`, 'use a fraction in (0, 1) or a row count > 1');
  }
  const k = testSize > 1 ? Math.floor(testSize) : Math.round(n * testSize);
  if (k >= n) {
    throw new MLInputError(`test_size = ${testSize} leaves no training rows`, `there are only ${n} rows`, 'lower test_size');
  }
  return k;
}

export function splitRows(n: number, opts: SplitOptions = {}): Split {
  const sampling = (opts.testSampling ?? 'stratified') as TestSampling;
  if (!TEST_SAMPLINGS.includes(sampling)) {
    throw new MLInputError(`unknown test_sampling "${opts.testSampling}"`, `valid: ${TEST_SAMPLINGS.join(', ')}`);
  }
  const k = testCount(n, opts.testSize ?? 0.25);
  const all = Int32Array.from({ length: n }, (_, i) => i);
  const rng = new Rng(opts.seed ?? 0);
  switch (sampling) {
    case 'first':
      return { test: all.slice(0, k), train: all.slice(k) };
    case 'last':
      return { train: all.slice(0, n - k), test: all.slice(n - k) };
    case 'random': {
      rng.shuffle(all);
      return { train: all.slice(0, n - k), test: all.slice(n - k) };
    }
    case 'stratified':
      if (!opts.y) {
        rng.shuffle(all);
        return { train: all.slice(0, n - k), test: all.slice(n - k) };
      }
      return stratified(opts.y, k, rng);
  }
}

/** Per class, a share of the test rows proportional to the class size (largest remainders). */
function stratified(y: Float64Array, k: number, rng: Rng): Split {
  const n = y.length;
  const groups = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    let g = groups.get(y[i]);
    if (!g) groups.set(y[i], (g = []));
    g.push(i);
  }
  const keys = [...groups.keys()].sort((a, b) => a - b);
  const quota = keys.map((c) => (groups.get(c)!.length * k) / n);
  const take = quota.map(Math.floor);
  let left = k - take.reduce((a, b) => a + b, 0);
  const order = keys.map((_, i) => i).sort((a, b) => quota[b] - take[b] - (quota[a] - take[a]) || a - b);
  for (const i of order) {
    if (left === 0) break;
    if (take[i] < groups.get(keys[i])!.length) {
      take[i]++;
      left--;
    }
  }
  const train: number[] = [];
  const test: number[] = [];
  keys.forEach((c, i) => {
    const rows = rng.shuffle(Int32Array.from(groups.get(c)!));
    for (let j = 0; j < rows.length; j++) (j < take[i] ? test : train).push(rows[j]);
  });
  // interleave classes so that k-fold CV on the training split sees every class in each fold
  const tr = rng.shuffle(Int32Array.from(train));
  const te = rng.shuffle(Int32Array.from(test));
  return { train: tr, test: te };
}

export function takeRows(m: Matrix, rows: Int32Array): Matrix {
  const d = m.cols;
  const data = new Float64Array(rows.length * d);
  for (let i = 0; i < rows.length; i++) data.set(m.data.subarray(rows[i] * d, rows[i] * d + d), i * d);
  return { data, rows: rows.length, cols: d };
}

export function takeValues(y: Float64Array, rows: Int32Array): Float64Array {
  if (y.length === 0) return new Float64Array(0);
  const out = new Float64Array(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = y[rows[i]];
  return out;
}

export function takeDataset(ds: Dataset, rows: Int32Array): Dataset {
  return { x: takeRows(ds.x, rows), y: takeValues(ds.y, rows), featureNames: ds.featureNames };
}
