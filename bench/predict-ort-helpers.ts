/**
 * ORT vs native JS tree-walk latency, used to pick the serving path per model.
 * Run: npx tsx bench/predict-ort-helpers.ts [trees=100] [depth=6] [features=20]
 */
import { pathToFileURL } from 'node:url';
import type { ModelMetadata, Tree, TreeEnsembleModel } from '../src/ml/model-types.ts';
import { exportOnnx } from '../src/ml/onnx/export.ts';
import { OrtModel } from '../src/ml/onnx/runtime.ts';

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function fullTree(d: number, depth: number, r: () => number): Tree {
  const n = 2 ** (depth + 1) - 1;
  const t: Tree = {
    feature: new Int32Array(n).fill(-1), threshold: new Float64Array(n), left: new Int32Array(n).fill(-1),
    right: new Int32Array(n).fill(-1), missingLeft: new Uint8Array(n), value: new Float64Array(n),
  };
  for (let i = 0; i < n; i++) {
    if (2 * i + 2 < n) {
      t.feature[i] = Math.floor(r() * d); t.threshold[i] = r() * 2 - 1;
      t.left[i] = 2 * i + 1; t.right[i] = 2 * i + 2; t.missingLeft[i] = r() < 0.5 ? 1 : 0;
    } else {
      t.value[i] = r() - 0.5;
    }
  }
  return t;
}

export function boostedRegressor(trees: number, depth: number, d: number, seed = 1): TreeEnsembleModel {
  const r = rng(seed);
  return {
    kind: 'trees', task: 'regression', outputs: 1, aggregate: 'sum', post: 'none', baseScore: Float64Array.of(0.5),
    trees: Array.from({ length: trees }, () => fullTree(d, depth, r)),
  };
}

/** The tight native walk used as the baseline (one output, x row-major): trees outer, rows inner. */
export function nativeTreeSum(m: TreeEnsembleModel, x: Float32Array | Float64Array, rows: number, d: number, out: Float64Array): void {
  out.fill(m.baseScore[0], 0, rows);
  for (const { feature, threshold, left, right, missingLeft, value } of m.trees) {
    for (let i = 0, o = 0; i < rows; i++, o += d) {
      let k = 0;
      let f = feature[0];
      while (f >= 0) {
        const v = x[o + f];
        k = v < threshold[k] || (v !== v && missingLeft[k] === 1) ? left[k] : right[k];
        f = feature[k];
      }
      out[i] += value[k];
    }
  }
}

export interface BenchFigures {
  singleRowOrtUs: number;
  singleRowNativeUs: number;
  batchOrtMs: Record<number, number>;
  batchNativeMs: number;
}

async function timeAsync(iters: number, fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < Math.min(200, iters); i++) await fn();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6 / iters;
}

function timeSync(iters: number, fn: () => void): number {
  for (let i = 0; i < Math.min(200, iters); i++) fn();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) fn();
  return Number(process.hrtime.bigint() - t0) / 1e6 / iters;
}

export async function benchTrees(trees = 100, depth = 6, d = 20, batch = 10_000): Promise<BenchFigures> {
  const model = boostedRegressor(trees, depth, d);
  const meta: ModelMetadata = { task: 'regression', algorithm: 'xgboost', columns: [], featureCount: d, featureNames: Array.from({ length: d }, (_, i) => `f${i}`) };
  const bytes = exportOnnx(model, meta);
  const r = rng(7);
  const x = Float32Array.from({ length: batch * d }, () => r() * 2.2 - 1.1);
  const out = new Float64Array(batch);

  const ort1 = await OrtModel.create(bytes, { intraOpThreads: 1 });
  const one = x.subarray(0, d);
  const singleRowOrtUs = 1000 * (await timeAsync(5000, () => ort1.run(one, 1)));
  const singleRowNativeUs = 1000 * timeSync(20000, () => nativeTreeSum(model, one, 1, d, out));

  const check = await ort1.run(x, batch);
  nativeTreeSum(model, x, batch, d, out);
  let maxDiff = 0;
  for (let i = 0; i < batch; i++) maxDiff = Math.max(maxDiff, Math.abs(check.values[i] - out[i]));
  if (maxDiff > 1e-4) throw new Error(`ORT and native disagree by ${maxDiff}`);

  const batchOrtMs: Record<number, number> = { 1: await timeAsync(20, () => ort1.run(x, batch)) };
  await ort1.release();
  const ort2 = await OrtModel.create(bytes, { intraOpThreads: 2 });
  batchOrtMs[2] = await timeAsync(20, () => ort2.run(x, batch));
  await ort2.release();
  const batchNativeMs = timeSync(20, () => nativeTreeSum(model, x, batch, d, out));
  return { singleRowOrtUs, singleRowNativeUs, batchOrtMs, batchNativeMs };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [trees, depth, d] = process.argv.slice(2).map(Number);
  const f = await benchTrees(trees || 100, depth || 6, d || 20);
  console.log(JSON.stringify(f, null, 2));
}
