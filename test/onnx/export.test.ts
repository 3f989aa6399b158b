import { describe, expect, it } from 'vitest';
import type { ModelMetadata } from '../../src/ml/model-types.ts';
import { exportOnnx, INPUT_LAYOUT_KEY, METADATA_KEY } from '../../src/ml/onnx/export.ts';
import { decodeModel } from '../../src/ml/onnx/proto.ts';
import { encodeRawRows, rawLayout } from '../../src/ml/onnx/raw-input.ts';
import { OrtModel } from '../../src/ml/onnx/runtime.ts';
import {
  metaFor, mixedColumns, numericCol, randomForest, randomKMeans, randomLinear, randomRaw, rng,
} from './gen.ts';
import { exportAndCompare } from './helpers.ts';

const ROWS = 400;

describe('exportOnnx: linear', () => {
  it('regression with every preprocessing path', async () => {
    const r = rng(11);
    const meta = metaFor('regression', mixedColumns());
    for (let rep = 0; rep < 5; rep++) {
      await exportAndCompare(randomLinear('regression', meta.featureCount, 1, 'none', r), meta, randomRaw(meta, ROWS, r), ROWS);
    }
  });

  it('multi-output regression without preprocessing', async () => {
    const r = rng(12);
    const meta = metaFor('regression', [], 7);
    await exportAndCompare(randomLinear('regression', 7, 3, 'none', r), meta, randomRaw(meta, ROWS, r), ROWS);
  });

  it('binary logistic', async () => {
    const r = rng(13);
    const meta = metaFor('classification', mixedColumns(), undefined, 2);
    for (let rep = 0; rep < 3; rep++) {
      await exportAndCompare(randomLinear('classification', meta.featureCount, 1, 'logistic', r), meta, randomRaw(meta, ROWS, r), ROWS);
    }
  });

  it('multiclass softmax', async () => {
    const r = rng(14);
    const meta = metaFor('classification', mixedColumns(), undefined, 4);
    for (let rep = 0; rep < 3; rep++) {
      await exportAndCompare(randomLinear('classification', meta.featureCount, 4, 'softmax', r), meta, randomRaw(meta, ROWS, r), ROWS);
    }
  });
});

describe('exportOnnx: trees', () => {
  it('single decision tree with missing-value branches (average of one)', async () => {
    const r = rng(21);
    const meta = metaFor('regression', [], 6);
    for (let rep = 0; rep < 5; rep++) {
      const m = randomForest('regression', 6, 1, 8, 1, r, { aggregate: 'average', baseScore: Float64Array.of(0) });
      await exportAndCompare(m, meta, randomRaw(meta, ROWS, r), ROWS);
    }
  });

  it('missing values follow missingLeft when NULL is not imputed', async () => {
    const r = rng(22);
    const meta = metaFor('regression', [numericCol('a', { impute: 'error', imputeValue: [NaN] }), numericCol('b', { impute: 'error', imputeValue: [NaN], factor: [-2] })]);
    const m = randomForest('regression', 2, 20, 5, 1, r, { fullDepth: true });
    const x = randomRaw(meta, ROWS, r);
    for (let i = 0; i < x.length; i += 3) x[i] = NaN;
    await exportAndCompare(m, meta, x, ROWS);
  });

  it('random forest regression averaging, with folded scaling (positive, negative and zero factors)', async () => {
    const r = rng(23);
    const meta = metaFor('regression', mixedColumns());
    await exportAndCompare(randomForest('regression', meta.featureCount, 30, 6, 1, r, { aggregate: 'average' }), meta, randomRaw(meta, ROWS, r), ROWS);
  });

  it('gradient boosting regression: sum plus base score', async () => {
    const r = rng(24);
    const meta = metaFor('regression', mixedColumns());
    await exportAndCompare(randomForest('regression', meta.featureCount, 50, 4, 1, r, { aggregate: 'sum' }), meta, randomRaw(meta, ROWS, r), ROWS);
  });

  it('binary boosting with logistic post-transform', async () => {
    const r = rng(25);
    const meta = metaFor('classification', mixedColumns(), undefined, 2);
    await exportAndCompare(randomForest('classification', meta.featureCount, 40, 4, 1, r, { post: 'logistic' }), meta, randomRaw(meta, ROWS, r), ROWS);
  });

  it('multiclass boosting with treeOutput (one value per leaf) and softmax', async () => {
    const r = rng(26);
    const meta = metaFor('classification', mixedColumns(), undefined, 3);
    const treeOutput = Int32Array.from({ length: 45 }, (_, t) => t % 3);
    const m = randomForest('classification', meta.featureCount, 45, 4, 3, r, { post: 'softmax', treeOutput, leafWidth: 1 });
    await exportAndCompare(m, meta, randomRaw(meta, ROWS, r), ROWS);
  });

  it('per-output averaging of a treeOutput ensemble', async () => {
    const r = rng(30);
    const meta = metaFor('classification', [], 5, 3);
    const treeOutput = Int32Array.from({ length: 12 }, (_, t) => t % 3);
    const m = randomForest('classification', 5, 12, 4, 3, r, { post: 'softmax', treeOutput, leafWidth: 1, aggregate: 'average' });
    await exportAndCompare(m, meta, randomRaw(meta, ROWS, r), ROWS);
  });

  it('multiclass boosting with treeOutput and k-wide leaves', async () => {
    const r = rng(27);
    const meta = metaFor('classification', [], 5, 3);
    const treeOutput = Int32Array.from({ length: 30 }, (_, t) => t % 3);
    const m = randomForest('classification', 5, 30, 4, 3, r, { post: 'softmax', treeOutput });
    await exportAndCompare(m, meta, randomRaw(meta, ROWS, r), ROWS);
  });

  it('random forest classification: averaged class probabilities', async () => {
    const r = rng(28);
    const meta = metaFor('classification', mixedColumns(), undefined, 3);
    const m = randomForest('classification', meta.featureCount, 25, 5, 3, r, { aggregate: 'average', baseScore: new Float64Array(3) });
    for (const t of m.trees) {
      // leaves hold class distributions
      for (let i = 0; i < t.feature.length; i++) {
        if (t.feature[i] >= 0) continue;
        const v = [r(), r(), r()];
        const s = v[0] + v[1] + v[2];
        for (let o = 0; o < 3; o++) t.value[i * 3 + o] = v[o] / s;
      }
    }
    await exportAndCompare(m, meta, randomRaw(meta, ROWS, r), ROWS);
  });

  it('binary random forest with one probability per leaf', async () => {
    const r = rng(29);
    const meta = metaFor('classification', [], 4, 2);
    const m = randomForest('classification', 4, 15, 5, 1, r, { aggregate: 'average', baseScore: Float64Array.of(0) });
    for (const t of m.trees) for (let i = 0; i < t.value.length; i++) t.value[i] = r();
    await exportAndCompare(m, meta, randomRaw(meta, ROWS, r), ROWS);
  });

  it('thresholds decide exactly like float64 at float32 boundaries', async () => {
    // Split at 0.7 (not a float32): float32(0.7) < 0.7, so x = float32(0.7) must go left,
    // which a naively rounded float32 threshold gets wrong.
    const tree = {
      feature: Int32Array.of(0, -1, -1), threshold: Float64Array.of(0.7, 0, 0),
      left: Int32Array.of(1, -1, -1), right: Int32Array.of(2, -1, -1),
      missingLeft: Uint8Array.of(0, 0, 0), value: Float64Array.of(0, 1, 2),
    };
    const m = { kind: 'trees' as const, task: 'regression' as const, trees: [tree], outputs: 1, baseScore: Float64Array.of(0), aggregate: 'sum' as const, post: 'none' as const };
    const meta = metaFor('regression', [], 1);
    const x = Float32Array.of(Math.fround(0.7), 0.6999999, 0.7000001, NaN);
    const p = await exportAndCompare(m, meta, x, 4);
    expect(Array.from(p.values)).toEqual([1, 1, 2, 2]);
  });
});

describe('exportOnnx: kmeans', () => {
  it('assigns the nearest centroid and reports squared distances', async () => {
    const r = rng(31);
    const meta = metaFor('clustering', [numericCol('a'), numericCol('b'), numericCol('c', { factor: [2] })]);
    const m = randomKMeans(3, 5, r);
    const x = randomRaw(meta, ROWS, r);
    const ort = await OrtModel.create(exportOnnx(m, meta));
    const p = await ort.run(x, ROWS);
    const { refPredictRaw } = await import('./reference.ts');
    for (let i = 0; i < ROWS; i++) {
      const ref = refPredictRaw(m, meta, x.subarray(i * 3, i * 3 + 3));
      expect(p.label![i]).toBe(ref.label);
      ref.probabilities!.forEach((d, c) => expect(Math.abs(p.probabilities![i * 5 + c] - d)).toBeLessThan(1e-5 * Math.max(1, d)));
    }
    await ort.release();
  });
});

describe('exported model is self-describing', () => {
  it('carries metadata and input layout in metadata_props', () => {
    const meta: ModelMetadata = { ...metaFor('classification', mixedColumns(), undefined, 2), yColumn: 'target' };
    const proto = decodeModel(exportOnnx(randomLinear('classification', meta.featureCount, 1, 'logistic', rng(1)), meta));
    const props = Object.fromEntries((proto.metadata_props ?? []).map((p) => [p.key, p.value]));
    const back = JSON.parse(props[METADATA_KEY]!) as ModelMetadata;
    expect(back.featureCount).toBe(meta.featureCount);
    expect(back.classes).toEqual(meta.classes);
    const layout = JSON.parse(props[INPUT_LAYOUT_KEY]!) as { column: string; start: number; width: number }[];
    expect(layout.map((l) => l.column)).toEqual(meta.columns.map((c) => c.name));
    expect(proto.graph!.input![0].type!.tensor_type!.shape!.dim![1].dim_value).toBe(rawLayout(meta).rawWidth);
    expect(proto.graph!.node!.some((n) => n.op_type === 'ZipMap')).toBe(false);
  });

  it('encodeRawRows maps rows to the raw input contract', () => {
    const meta = metaFor('regression', mixedColumns());
    const x = encodeRawRows(meta, [
      { a: 1, b: null, c: '2.5', emb: [1, null, 3], color: 'blue', size: 'xl', city: null, flag: true },
    ]);
    expect(Array.from(x)).toEqual([1, NaN, 2.5, 1, NaN, 3, 2, -1, NaN, 1]);
  });

  it('rejects inconsistent metadata', () => {
    const meta = { ...metaFor('regression', mixedColumns()), featureCount: 3 };
    expect(() => exportOnnx(randomLinear('regression', 3, 1, 'none', rng(2)), meta)).toThrow(/featureCount/);
  });
});

describe('OrtModel', () => {
  it('reuses its input buffer and batches 10k rows', async () => {
    const r = rng(41);
    const meta = metaFor('regression', mixedColumns());
    const m = randomForest('regression', meta.featureCount, 10, 5, 1, r);
    const ort = await OrtModel.create(exportOnnx(m, meta), { intraOpThreads: 2 });
    const a = ort.inputBuffer(3);
    const b = ort.inputBuffer(3);
    expect(a.buffer).not.toBe(b.buffer);
    a.set(randomRaw(meta, 3, r));
    await ort.run(a, 3);
    expect(ort.inputBuffer(2).buffer).toBe(a.buffer);
    const x = randomRaw(meta, 10_000, r);
    const { compare } = await import('./helpers.ts');
    compare(m, meta, x, 10_000, await ort.run(x, 10_000));
    await ort.release();
  });
});
