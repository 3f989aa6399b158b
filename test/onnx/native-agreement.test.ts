/** Exported ONNX vs the gateway's own native path (preprocess.ts + predict-native.ts) on JS rows. */
import { describe, expect, it } from 'vitest';
import type { TrainedModel } from '../../src/ml/model-types.ts';
import { exportOnnx } from '../../src/ml/onnx/export.ts';
import { encodeRawRows } from '../../src/ml/onnx/raw-input.ts';
import { OrtModel } from '../../src/ml/onnx/runtime.ts';
import { outputWidth, predictMatrix } from '../../src/ml/predict-native.ts';
import { transformRows } from '../../src/ml/preprocess.ts';
import { gauss, metaFor, mixedColumns, randomForest, randomKMeans, randomLinear, rng } from './gen.ts';
import { close } from './helpers.ts';

const ROWS = 300;

function randomRows(r: () => number): Record<string, unknown>[] {
  const num = () => (r() < 0.1 ? null : Math.fround(1 + 3 * gauss(r)));
  const cat = (cats: string[]) => (r() < 0.1 ? null : r() < 0.1 ? 'never-seen' : cats[Math.floor(r() * cats.length)]);
  return Array.from({ length: ROWS }, () => ({
    a: num(), b: Math.fround(gauss(r)), c: num(), emb: r() < 0.1 ? null : [num(), num(), num()],
    color: cat(['red', 'green', 'blue', 'violet']), size: cat(['s', 'm', 'l']), city: cat(['x', 'y', 'z']), flag: r() < 0.5,
  }));
}

async function agree(model: TrainedModel, classes?: number): Promise<void> {
  const r = rng(99);
  const meta = metaFor(model.task, mixedColumns(), undefined, classes);
  const rows = randomRows(r);
  const native = predictMatrix(model, transformRows(meta.columns, rows));
  const w = outputWidth(model);
  const ort = await OrtModel.create(exportOnnx(model, meta));
  const p = await ort.run(encodeRawRows(meta, rows), ROWS);
  await ort.release();
  for (let i = 0; i < ROWS; i++) {
    if (model.task === 'regression') close(p.values[i], native[i], `row ${i}`);
    else if (model.task === 'clustering') expect(p.label![i]).toBe(native[i]);
    else for (let j = 0; j < w; j++) close(p.probabilities![i * w + j], native[i * w + j], `row ${i} p${j}`);
  }
}

describe('ONNX export agrees with preprocess.ts + predict-native.ts', () => {
  const d = metaFor('regression', mixedColumns()).featureCount;
  it('linear regression', () => agree(randomLinear('regression', d, 1, 'none', rng(1))));
  it('binary logistic', () => agree(randomLinear('classification', d, 1, 'logistic', rng(2)), 2));
  it('softmax', () => agree(randomLinear('classification', d, 3, 'softmax', rng(3)), 3));
  it('random forest classifier', () => agree(randomForest('classification', d, 20, 6, 3, rng(4), { aggregate: 'average', baseScore: new Float64Array(3) }), 3));
  it('boosting regressor', () => agree(randomForest('regression', d, 30, 5, 1, rng(5))));
  it('binary boosting', () => agree(randomForest('classification', d, 30, 4, 1, rng(6), { post: 'logistic' }), 2));
  it('multiclass boosting', () => agree(randomForest('classification', d, 30, 4, 3, rng(7), {
    post: 'softmax', leafWidth: 1, treeOutput: Int32Array.from({ length: 30 }, (_, t) => t % 3),
  }), 3));
  it('kmeans', () => agree(randomKMeans(d, 4, rng(8))));
});
