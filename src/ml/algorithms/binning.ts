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
  /** column-major local bin codes (d × n), on shared memory; the missing code of feature f is nBins[f] */
  colBins: Uint8Array;
  /** row-major local bin codes (n × d), on shared memory so a helper thread can read them */
  rowBins: Uint8Array;
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
  // gather GROUP features per pass over the rows: x is row-major, one cache line holds 8 values
  const group = Math.min(GROUP, d);
  const bufs: Float64Array[] = [];
  for (let g = 0; g < group; g++) bufs.push(new Float64Array(m));
  const counts = new Int32Array(group);
  const scratch = new Float64Array(m);
  const cuts: Float64Array[] = [];
  for (let f0 = 0; f0 < d; f0 += group) {
    const w = Math.min(group, d - f0);
    counts.fill(0);
    for (let i = 0; i < m; i++) {
      const o = (sample ? sample[i] : i) * d + f0;
      for (let g = 0; g < w; g++) {
        const v = data[o + g];
        if (v === v) bufs[g][counts[g]++] = v;
      }
    }
    for (let g = 0; g < w; g++) {
      const sorted = bufs[g].subarray(0, counts[g]);
      sortFloat64(sorted, scratch);
      cuts.push(cutsFromSorted(sorted, valueBins));
    }
  }
  return cuts;
}

/** features gathered per pass over the rows in computeCuts */
const GROUP = 8;

const RADIX_BITS = 11;
const RADIX = 1 << RADIX_BITS;
const radixCounts = new Int32Array(3 * RADIX);

/**
 * Ascending in-place sort of NaN-free doubles, ordered as Float64Array.prototype.sort orders
 * them (-0 before +0). An LSD radix sort on the high 32 bits of the IEEE bits mapped to
 * unsigned order (11-bit digits, passes whose digit is constant skipped), then an insertion
 * pass that orders keys sharing their high word (rare: a relative spacing below 2^-20); if that
 * pass meets too many inversions the native sort finishes the job. scratch holds a.length doubles.
 */
export function sortFloat64(a: Float64Array, scratch: Float64Array): void {
  const m = a.length;
  if (m < 512) {
    a.sort();
    return;
  }
  let src = new Uint32Array(a.buffer, a.byteOffset, 2 * m);
  let dst = new Uint32Array(scratch.buffer, scratch.byteOffset, 2 * m);
  const counts = radixCounts;
  counts.fill(0);
  for (let i = 0; i < m; i++) {
    let lo = src[2 * i];
    let hi = src[2 * i + 1];
    if (hi & 0x80000000) {
      hi = ~hi >>> 0;
      lo = ~lo >>> 0;
    } else hi = (hi | 0x80000000) >>> 0;
    src[2 * i] = lo;
    src[2 * i + 1] = hi;
    counts[hi & 0x7ff]++;
    counts[RADIX + ((hi >>> 11) & 0x7ff)]++;
    counts[2 * RADIX + (hi >>> 22)]++;
  }
  for (let pass = 0; pass < 3; pass++) {
    const c0 = pass * RADIX;
    const shift = pass * RADIX_BITS;
    // a digit shared by every key leaves the order unchanged
    let skip = false;
    let sum = 0;
    for (let b = 0; b < RADIX; b++) {
      const c = counts[c0 + b];
      if (c === m) skip = true;
      counts[c0 + b] = sum;
      sum += c;
    }
    if (skip) continue;
    for (let i = 0; i < m; i++) {
      const lo = src[2 * i];
      const hi = src[2 * i + 1];
      const j = counts[c0 + ((hi >>> shift) & 0x7ff)]++;
      dst[2 * j] = lo;
      dst[2 * j + 1] = hi;
    }
    const t = src;
    src = dst;
    dst = t;
  }
  const out = new Uint32Array(a.buffer, a.byteOffset, 2 * m);
  for (let i = 0; i < m; i++) {
    let lo = src[2 * i];
    let hi = src[2 * i + 1];
    if (hi & 0x80000000) hi = (hi & 0x7fffffff) >>> 0;
    else {
      hi = ~hi >>> 0;
      lo = ~lo >>> 0;
    }
    out[2 * i] = lo;
    out[2 * i + 1] = hi;
  }
  // runs of equal high words are in arbitrary order by their low words
  let budget = 8 * m;
  for (let i = 1; i < m; i++) {
    const v = a[i];
    if (!(v < a[i - 1])) continue;
    let j = i - 1;
    while (j >= 0 && a[j] > v) {
      a[j + 1] = a[j];
      j--;
    }
    a[j + 1] = v;
    budget -= i - j;
    if (budget < 0) {
      a.sort();
      return;
    }
  }
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
  const colBins = new Uint8Array(new SharedArrayBuffer(n * d));
  const rowBins = new Uint8Array(new SharedArrayBuffer(n * d));
  // per feature a fixed-depth search over its cuts padded to 256 with +Infinity, written as
  // +(comparison) << k so V8 emits no data-dependent branches (5× faster on random data); one
  // sequential pass over the row-major x
  const pads = new Float64Array(d * 256).fill(Infinity);
  for (let f = 0; f < d; f++) pads.set(cuts[f], f * 256);
  for (let r = 0; r < n; r++) {
    const o = r * d;
    for (let f = 0; f < d; f++) {
      const v = data[o + f];
      let b = nBins[f];
      if (v === v) {
        const p = f << 8;
        b = p;
        b += +(pads[b + 127] <= v) << 7;
        b += +(pads[b + 63] <= v) << 6;
        b += +(pads[b + 31] <= v) << 5;
        b += +(pads[b + 15] <= v) << 4;
        b += +(pads[b + 7] <= v) << 3;
        b += +(pads[b + 3] <= v) << 2;
        b += +(pads[b + 1] <= v) << 1;
        b += +(pads[b] <= v);
        b -= p;
        // v = +Infinity also passes the padding
        if (b >= nBins[f]) b = nBins[f] - 1;
      }
      colBins[f * n + r] = b;
      rowBins[o + f] = b;
    }
  }
  return { rows: n, cols: d, colBins, rowBins, nBins, featOffset, totalSlots: total, cuts };
}
