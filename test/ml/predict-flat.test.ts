/** The flat, branchless tree evaluator (predict-flat.ts) and its two-thread split agree exactly with predict-native.ts. */
import { afterEach, describe, expect, it } from 'vitest';
import type { Tree, TreeEnsembleModel } from '../../src/ml/model-types.ts';
import { evaluateFlat, flattenEnsemble, MAX_FLAT_DEPTH, predictNaNRowsExactly } from '../../src/ml/predict-flat.ts';
import { outputWidth, predictMatrix } from '../../src/ml/predict-native.ts';
import { PredictThreads, SPLIT_MIN_ROWS } from '../../src/ml/predict-threads.ts';
import { gauss, randomForest, rng } from '../onnx/gen.ts';

const D = 12;

function matrix(rows: number, r: () => number, nanShare = 0, shared = false): Float64Array {
  const x = new Float64Array(shared ? new SharedArrayBuffer(rows * D * 8) : new ArrayBuffer(rows * D * 8));
  for (let i = 0; i < x.length; i++) x[i] = r() < nanShare ? NaN : 1.5 * gauss(r);
  // values exactly on thresholds must go right (x >= t), as in predict-native.ts
  return x;
}

function flatPredict(m: TreeEnsembleModel, x: Float64Array, rows: number): Float64Array {
  const f = flattenEnsemble(m);
  if (!f) throw new Error('not flattenable');
  const out = new Float64Array(rows * f.width);
  evaluateFlat(f, x, D, 0, rows, out);
  predictNaNRowsExactly(m, x, D, rows, out, new Float64Array(D), new Float64Array(f.width));
  return out;
}

function mismatches(a: Float64Array, b: Float64Array): number {
  expect(a.length).toBe(b.length);
  let n = 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) n++;
  return n;
}

const cases: [string, (r: () => number) => TreeEnsembleModel][] = [
  ['regression, boosting', (r) => randomForest('regression', D, 40, 6, 1, r)],
  ['binary logistic boosting', (r) => randomForest('classification', D, 30, 5, 1, r, { post: 'logistic' })],
  ['multiclass softmax boosting (treeOutput)', (r) => randomForest('classification', D, 30, 4, 3, r, { post: 'softmax', leafWidth: 1, treeOutput: Int32Array.from({ length: 30 }, (_, t) => t % 3) })],
  ['random forest classifier (averaged k-wide leaves)', (r) => randomForest('classification', D, 25, 7, 3, r, { aggregate: 'average', baseScore: new Float64Array(3) })],
  ['random forest regressor (averaged)', (r) => randomForest('regression', D, 25, 8, 1, r, { aggregate: 'average' })],
  ['averaged treeOutput ensemble', (r) => randomForest('classification', D, 12, 3, 2, r, { aggregate: 'average', leafWidth: 1, treeOutput: Int32Array.from({ length: 12 }, (_, t) => t % 2) })],
  ['complete trees', (r) => randomForest('regression', D, 10, 6, 1, r, { fullDepth: true })],
];

describe('flat tree evaluator', () => {
  it.each(cases)('%s: bit-identical to predictMatrix (rows not a multiple of 8, several blocks)', (_name, make) => {
    const r = rng(7);
    const m = make(r);
    const rows = 1003;
    const x = matrix(rows, r);
    // some values exactly on a threshold
    for (let i = 0; i < 50; i++) x[i * D + m.trees[0].feature[0]] = m.trees[0].threshold[0];
    expect(mismatches(flatPredict(m, x, rows), predictMatrix(m, { data: x, rows, cols: D }))).toBe(0);
  });

  it('shallow leaves are padded: a single-leaf tree and a stump mixed with deep trees', () => {
    const r = rng(3);
    const m = randomForest('regression', D, 6, 7, 1, r);
    const leaf: Tree = { feature: Int32Array.of(-1), threshold: Float64Array.of(0), left: Int32Array.of(-1), right: Int32Array.of(-1), missingLeft: Uint8Array.of(0), value: Float64Array.of(0.25) };
    const stump: Tree = { feature: Int32Array.of(2, -1, -1), threshold: Float64Array.of(0.1, 0, 0), left: Int32Array.of(1, -1, -1), right: Int32Array.of(2, -1, -1), missingLeft: Uint8Array.of(1, 0, 0), value: Float64Array.of(0, -1, 1) };
    m.trees.push(leaf, stump);
    const x = matrix(500, r);
    expect(flattenEnsemble(m)!.depth).toBe(7);
    expect(mismatches(flatPredict(m, x, 500), predictMatrix(m, { data: x, rows: 500, cols: D }))).toBe(0);
    const onlyLeaves = { ...m, trees: [leaf, leaf] };
    expect(flattenEnsemble(onlyLeaves)!.depth).toBe(0);
    expect(mismatches(flatPredict(onlyLeaves, x, 500), predictMatrix(onlyLeaves, { data: x, rows: 500, cols: D }))).toBe(0);
  });

  it('rows with NaN follow the learnt missing direction through the exact path', () => {
    const r = rng(11);
    const m = randomForest('classification', D, 30, 6, 1, r, { post: 'logistic' });
    const rows = 800;
    const x = matrix(rows, r, 0.05);
    const exact = predictMatrix(m, { data: x, rows, cols: D });
    const f = flattenEnsemble(m)!;
    const raw = new Float64Array(rows * f.width);
    evaluateFlat(f, x, D, 0, rows, raw);
    // the branchless walk alone gets NaN rows wrong (else this test could not fail)
    expect(mismatches(raw, exact)).toBeGreaterThan(0);
    const fixed = predictNaNRowsExactly(m, x, D, rows, raw, new Float64Array(D), new Float64Array(f.width));
    expect(fixed).toBeGreaterThan(100);
    expect(mismatches(raw, exact)).toBe(0);
  });

  it(`ensembles deeper than ${MAX_FLAT_DEPTH} keep the pointer layout`, () => {
    const r = rng(5);
    const deep = randomForest('regression', D, 3, MAX_FLAT_DEPTH + 1, 1, r, { fullDepth: true });
    expect(flattenEnsemble(deep)).toBeNull();
    expect(flattenEnsemble(randomForest('regression', D, 3, MAX_FLAT_DEPTH, 1, r, { fullDepth: true }))).not.toBeNull();
  });
});

describe('two-thread split', () => {
  let threads: PredictThreads | undefined;
  afterEach(async () => {
    await threads?.close();
    threads = undefined;
  });

  async function readyThreads(): Promise<PredictThreads> {
    const t = new PredictThreads(2);
    expect(t.splits(SPLIT_MIN_ROWS)).toBe(false); // starts the worker; this batch stays here
    expect(t.splits(SPLIT_MIN_ROWS - 1)).toBe(false);
    expect(await t.whenReady()).toBe(true);
    expect(t.splits(SPLIT_MIN_ROWS)).toBe(true);
    return t;
  }

  it('halves evaluated in the worker and here give the single-thread result', async () => {
    threads = await readyThreads();
    const r = rng(21);
    const m = randomForest('classification', D, 30, 5, 3, r, { post: 'softmax', leafWidth: 1, treeOutput: Int32Array.from({ length: 30 }, (_, t) => t % 3) });
    const rows = 5001;
    const x = matrix(rows, r, 0, true);
    const f = flattenEnsemble(m)!;
    const out = new Float64Array(new SharedArrayBuffer(rows * f.width * 8));
    await threads.evaluate(f, x, D, rows, out);
    expect(mismatches(out, predictMatrix(m, { data: x, rows, cols: D }))).toBe(0);
  });

  it('a worker that dies with a batch in flight leaves its half to the calling thread', async () => {
    threads = await readyThreads();
    const r = rng(22);
    const m = randomForest('regression', D, 200, 8, 1, r);
    const rows = 20_000;
    const x = matrix(rows, r, 0, true);
    const f = flattenEnsemble(m)!;
    const out = new Float64Array(new SharedArrayBuffer(rows * outputWidth(m) * 8));
    // killed before it can answer: its exit, not its reply, settles the request
    const worker = (threads as unknown as { worker: { terminate(): Promise<number> } }).worker;
    void worker.terminate();
    await threads.evaluate(f, x, D, rows, out);
    expect(mismatches(out, predictMatrix(m, { data: x, rows, cols: D }))).toBe(0);
  });

  it('one thread never splits; a closed pool runs everything here', async () => {
    expect(new PredictThreads(1).splits(1_000_000)).toBe(false);
    expect(await new PredictThreads(1).whenReady()).toBe(false);
    threads = await readyThreads();
    await threads.close();
    expect(threads.splits(1_000_000)).toBe(false);
  });
});
