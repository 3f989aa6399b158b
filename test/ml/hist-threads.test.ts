import { describe, expect, it } from 'vitest';
import { fitXGBoost } from '../../src/ml/algorithms/xgboost.ts';
import { histHelperChunks, makeTeam, warmHistHelper } from '../../src/ml/algorithms/hist-pool.ts';
import { binMatrix, computeCuts, sortFloat64 } from '../../src/ml/algorithms/binning.ts';
import { resolveHyperparams } from '../../src/ml/hyperparams.ts';
import { predictMatrix } from '../../src/ml/predict-native.ts';
import { Rng } from '../../src/ml/algorithms/rng.ts';
import { SHARD_BLOCK, shard0Size, updateShard } from '../../src/ml/algorithms/boost-update.ts';
import type { Dataset, Task, TreeEnsembleModel } from '../../src/ml/model-types.ts';

function dataset(task: Task, n: number, d: number, seed: number): Dataset {
  const rng = new Rng(seed);
  const x = new Float64Array(n * d);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * d;
    for (let j = 0; j < d; j++) {
      // a discrete column, a column with missing values, the rest continuous
      x[o + j] = j % 4 === 3 ? Math.floor(rng.next() * 7) : j % 4 === 2 && rng.next() < 0.1 ? NaN : rng.normal();
    }
    const z = Math.sin(x[o]) + x[o + 1] * (x[o + 3] - 3) * 0.3 + (x[o + 2] === x[o + 2] ? x[o + 2] : 1) + 0.5 * rng.normal();
    y[i] = task === 'regression' ? z : task === 'classification' && seed % 2 ? (z > 0.5 ? 2 : z > -0.5 ? 1 : 0) : z > 0 ? 1 : 0;
  }
  return { x: { data: x, rows: n, cols: d }, y, featureNames: [] };
}

function expectSameTrees(a: TreeEnsembleModel, b: TreeEnsembleModel): void {
  expect(a.trees.length).toBe(b.trees.length);
  for (let t = 0; t < a.trees.length; t++) {
    const p = a.trees[t];
    const q = b.trees[t];
    expect(Array.from(q.feature)).toEqual(Array.from(p.feature));
    expect(Array.from(q.threshold)).toEqual(Array.from(p.threshold));
    expect(Array.from(q.missingLeft)).toEqual(Array.from(p.missingLeft));
    expect(Array.from(q.value)).toEqual(Array.from(p.value));
  }
}

describe('threaded histogram building', () => {
  it.each([
    ['classification', 2],
    ['classification', 3],
    ['regression', 4],
  ] as const)('%s (seed %i): the helper thread changes nothing', async (task, seed) => {
    expect(await warmHistHelper()).toBe(true);
    const ds = dataset(task, 24_000, 17, seed);
    // seed 4 also samples features per tree and regularises (the feature mask and L1 term are shared)
    const extra = seed === 4 ? { colsample_bytree: 0.6, alpha: 0.5, gamma: 0.2 } : {};
    const p = resolveHyperparams(task, 'xgboost', { n_estimators: 12, max_depth: 6, eta: 0.3, subsample: seed === 3 ? 0.8 : 1, ...extra });
    const single = fitXGBoost(task, ds, p, { threads: 1 });
    const before = histHelperChunks();
    const threaded = fitXGBoost(task, ds, p, { threads: 2 });
    // the helper really built part of the histograms
    expect(histHelperChunks()).toBeGreaterThan(before);
    expectSameTrees(single, threaded);
    const a = predictMatrix(single, ds.x);
    const b = predictMatrix(threaded, ds.x);
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(1e-9);
  });

  it('partitions (one range per shard) keep rows stable and match a plain filter', async () => {
    expect(await warmHistHelper()).toBe(true);
    const rng = new Rng(5);
    const n = 30_000;
    const d = 3;
    const data = new Float64Array(n * d);
    for (let i = 0; i < n * d; i++) data[i] = i % 13 === 0 ? NaN : rng.normal();
    const bm = binMatrix({ data, rows: n, cols: d }, computeCuts({ data, rows: n, cols: d }, 64));
    for (const threads of [1, 2]) {
      const sab = (bytes: number) => (threads > 1 ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
      const rows = new Int32Array(sab(n * 4));
      const team = makeTeam({
        rows, gh: new Float64Array(sab(n * 16)), rb: bm.rowBins, featOffset: bm.featOffset, nBins: bm.nBins, colBins: bm.colBins,
        tmp: new Int32Array(sab(n * 4)), nRows: n, d, S: 2, histLen: bm.totalSlots * 2, nHists: 4, threads,
      });
      try {
        for (const [f, bin, ml, s, e] of [[0, 20, true, 0, n], [1, 5, false, 1000, 29_000], [2, 40, true, 7, 9000]] as const) {
          for (let i = 0; i < n; i++) rows[i] = (i * 7919) % n; // a permutation, not ascending
          const h = (s + e) >> 1;
          const left = (r: number) => {
            const b = bm.colBins[f * n + r];
            return b === bm.nBins[f] ? ml : b <= bin;
          };
          const want: number[] = [];
          const wantMid: number[] = [];
          for (const [a, b] of [[s, h], [h, e]]) {
            const seg = Array.from(rows.subarray(a, b));
            want.push(...seg.filter(left), ...seg.filter((r) => !left(r)));
            wantMid.push(a + seg.filter(left).length);
          }
          const mid = new Int32Array(2);
          team.node({ small: -1, parent: -1, seg: Int32Array.of(s, h, h, e), feature: f, bin, missingLeft: ml, side: 0, want: 0 }, mid);
          expect(Array.from(mid)).toEqual(wantMid);
          expect(Array.from(rows.subarray(s, e))).toEqual(want);
        }
      } finally {
        team.release();
      }
    }
  });

  it('the boosting update leaves rows in the shard layout that grow() deals', () => {
    for (const n of [1, 63, 1024, 1025, 3000, 4096, 5000]) {
      const want: number[][] = [[], []];
      for (let i = 0; i < n; i++) want[Math.floor(i / SHARD_BLOCK) % 2].push(i);
      const q = shard0Size(n);
      expect(q).toBe(want[0].length);
      const rows = new Int32Array(n).fill(-1);
      const u = { margin: new Float64Array(n), expNeg: new Float64Array(0), y: new Float64Array(n), leaves: new Float64Array(0) };
      const sums = new Float64Array(4);
      updateShard(rows, new Float64Array(2 * n), u, 0, 0, 0, q, sums, 0, SHARD_BLOCK);
      updateShard(rows, new Float64Array(2 * n), u, 0, 1, q, n, sums, 2, SHARD_BLOCK);
      expect(Array.from(rows)).toEqual([...want[0], ...want[1]]);
    }
  });

  it('small data stays on the training thread', () => {
    const ds = dataset('classification', 150, 4, 2);
    const p = resolveHyperparams('classification', 'xgboost', {});
    const before = histHelperChunks();
    fitXGBoost('classification', ds, p);
    expect(histHelperChunks()).toBe(before);
  });
});

describe('binning', () => {
  it('radix sort orders like Float64Array#sort', () => {
    const rng = new Rng(9);
    const specials = [-0, 0, 5e-324, -5e-324, Infinity, -Infinity, 1, -1, 1e300, -1e300];
    for (const m of [10, 600, 5000]) {
      const a = new Float64Array(m);
      for (let i = 0; i < m; i++) a[i] = i % 3 === 0 ? specials[rng.int(specials.length)] : rng.normal() * 10 ** rng.int(8);
      const want = a.slice().sort();
      sortFloat64(a, new Float64Array(m));
      for (let i = 0; i < m; i++) expect(Object.is(a[i], want[i])).toBe(true);
    }
  });

  it('bins are the number of cuts <= v, NaN is the missing bin', () => {
    const rng = new Rng(11);
    const n = 3000;
    const data = new Float64Array(n * 2);
    for (let i = 0; i < 2 * n; i++) data[i] = i % 97 === 0 ? NaN : i % 101 === 0 ? Infinity : i % 2 ? Math.floor(rng.next() * 5) : rng.normal();
    const x = { data, rows: n, cols: 2 };
    const cuts = computeCuts(x, 256);
    const bm = binMatrix(x, cuts);
    for (let r = 0; r < n; r++) {
      for (let f = 0; f < 2; f++) {
        const v = data[r * 2 + f];
        let want = bm.nBins[f];
        if (v === v) want = cuts[f].filter((c) => c <= v).length;
        expect(bm.colBins[f * n + r]).toBe(want);
        expect(bm.rowBins[r * 2 + f]).toBe(want);
      }
    }
  });
});
