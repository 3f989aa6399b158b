/**
 * Quantile binning for the histogram tree builder. Each feature f gets nBins[f] value bins
 * (<= 255) plus one missing bin with local code nBins[f]. Value v falls in bin b when
 * cuts[f][b-1] <= v < cuts[f][b], so a split "bins <= b go left" is the float test
 * x < cuts[f][b]. Cuts are midpoints between neighbouring distinct values, which keeps the
 * exported thresholds robust to float32 rounding in ONNX runtimes.
 */
import type { Matrix } from '../model-types.ts';
import { Rng } from './rng.ts';

export interface BinnedMatrix {
  rows: number;
  cols: number;
  /** column-major local bin codes (d × n); the missing code of feature f is nBins[f] */
  colBins: Uint8Array;
  /** row-major global histogram slot (n × d): featOffset[f] + local code */
  rowSlots: Int32Array;
  nBins: Int32Array;
  /** first histogram slot of each feature; a feature owns nBins[f] + 1 slots */
  featOffset: Int32Array;
  totalSlots: number;
  /** per feature, nBins[f] - 1 ascending cut points */
  cuts: Float64Array[];
}

/** rows used to find the cuts; more only makes binning slower, not the quantiles better */
const SKETCH_ROWS = 200_000;

export function computeCuts(x: Matrix, maxBin: number, seed = 0): Float64Array[] {
  const { rows: n, cols: d, data } = x;
  const valueBins = Math.max(2, Math.min(255, maxBin));
  let sample: Int32Array | null = null;
  if (n > SKETCH_ROWS) {
    sample = new Int32Array(SKETCH_ROWS);
    const rng = new Rng(seed);
    for (let i = 0; i < SKETCH_ROWS; i++) sample[i] = rng.int(n);
  }
  const m = sample ? sample.length : n;
  const buf = new Float64Array(m);
  const cuts: Float64Array[] = [];
  for (let f = 0; f < d; f++) {
    let k = 0;
    for (let i = 0; i < m; i++) {
      const v = data[(sample ? sample[i] : i) * d + f];
      if (v === v) buf[k++] = v;
    }
    const sorted = buf.subarray(0, k).sort();
    cuts.push(cutsFromSorted(sorted, valueBins));
  }
  return cuts;
}

function cutsFromSorted(sorted: Float64Array, valueBins: number): Float64Array {
  const k = sorted.length;
  if (k === 0) return new Float64Array(0);
  let distinct = 1;
  for (let i = 1; i < k; i++) if (sorted[i] !== sorted[i - 1]) distinct++;
  const out: number[] = [];
  if (distinct <= valueBins) {
    for (let i = 1; i < k; i++) {
      if (sorted[i] !== sorted[i - 1]) out.push(midpoint(sorted[i - 1], sorted[i]));
    }
  } else {
    let last = -Infinity;
    for (let b = 1; b < valueBins; b++) {
      const idx = Math.floor((b * k) / valueBins);
      const v = sorted[idx];
      // the cut goes just below v: between v and the largest value smaller than v
      let lo = 0;
      let hi = idx;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (sorted[mid] < v) lo = mid + 1;
        else hi = mid;
      }
      if (lo === 0) continue;
      const c = midpoint(sorted[lo - 1], v);
      if (c > last) {
        out.push(c);
        last = c;
      }
    }
  }
  return Float64Array.from(out);
}

function midpoint(a: number, b: number): number {
  const m = a + (b - a) / 2;
  // guard against midpoints that round onto a (adjacent doubles)
  return m > a ? m : b;
}

/** bin code of v for one feature: number of cuts <= v */
export function binOf(cuts: Float64Array, v: number): number {
  let lo = 0;
  let hi = cuts.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cuts[mid] <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function binMatrix(x: Matrix, cuts: Float64Array[]): BinnedMatrix {
  const { rows: n, cols: d, data } = x;
  const nBins = new Int32Array(d);
  const featOffset = new Int32Array(d);
  let total = 0;
  for (let f = 0; f < d; f++) {
    nBins[f] = cuts[f].length + 1;
    featOffset[f] = total;
    total += nBins[f] + 1;
  }
  const colBins = new Uint8Array(n * d);
  const rowSlots = new Int32Array(n * d);
  // row-major walk: reads x and writes rowSlots sequentially
  for (let r = 0; r < n; r++) {
    const o = r * d;
    for (let f = 0; f < d; f++) {
      const v = data[o + f];
      const b = v === v ? binOf(cuts[f], v) : nBins[f];
      colBins[f * n + r] = b;
      rowSlots[o + f] = featOffset[f] + b;
    }
  }
  return { rows: n, cols: d, colBins, rowSlots, nBins, featOffset, totalSlots: total, cuts };
}
