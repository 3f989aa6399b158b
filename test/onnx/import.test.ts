import { describe, expect, it } from 'vitest';
import type { ModelMetadata, TrainedModel } from '../../src/ml/model-types.ts';
import { exportOnnx } from '../../src/ml/onnx/export.ts';
import { type ImportedModel, importOnnx, OnnxImportError } from '../../src/ml/onnx/import.ts';
import { attr, DataType, encodeModel, floatTensor, node, valueInfo } from '../../src/ml/onnx/proto.ts';
import { OrtModel } from '../../src/ml/onnx/runtime.ts';
import { gauss, metaFor, randomForest, randomLinear, randomRaw, rng } from './gen.ts';
import { close } from './helpers.ts';
import { refFeatures, refPredict, type RefPrediction } from './reference.ts';
import { classifierTail, float32Trees, floatInput, linearClassifierNode, modelBytes, treeAttrs } from './sklearn-shapes.ts';

const ML = 'ai.onnx.ml';
const ROWS = 300;

/** Serves the import with ORT and (if converted) with the reference evaluator; both must match `expected`. */
async function checkServing(imp: ImportedModel, x: Float32Array, expected: (row: Float32Array) => RefPrediction, wantNative: boolean): Promise<void> {
  expect(imp.native !== undefined, imp.warnings.join('; ')).toBe(wantNative);
  const ort = await OrtModel.create(imp.onnx, { labelValues: imp.labelValues });
  const p = await ort.run(x, ROWS);
  await ort.release();
  const w = imp.inputWidth;
  for (let i = 0; i < ROWS; i++) {
    const row = x.subarray(i * w, (i + 1) * w);
    const exp = expected(row);
    const nat = imp.native ? refPredict(imp.native, refFeatures(imp.meta, row)) : undefined;
    if (imp.meta.task === 'regression') {
      close(p.values[i], exp.values[0], `ort row ${i}`);
      if (nat) close(nat.values[0], exp.values[0], `native row ${i}`);
    } else {
      const k = exp.probabilities!.length;
      exp.probabilities!.forEach((v, j) => close(p.probabilities![i * k + j], v, `ort row ${i} p${j}`));
      expect(p.label![i], `ort label row ${i}`).toBe(exp.label);
      if (nat) {
        exp.probabilities!.forEach((v, j) => close(nat.probabilities![j], v, `native row ${i} p${j}`));
        expect(nat.label).toBe(exp.label);
      }
    }
  }
}

describe('importOnnx: sklearn-onnx shaped models', () => {
  it('LinearRegression', async () => {
    const r = rng(1);
    const m = randomLinear('regression', 4, 1, 'none', r);
    const bytes = modelBytes(
      [node('LinearRegressor', ['float_input'], ['variable'], [attr.floats('coefficients', m.coefficients), attr.floats('intercepts', m.intercepts)], ML)],
      [floatInput('float_input', 4)], [valueInfo('variable', DataType.FLOAT, ['N', 1])],
    );
    const imp = await importOnnx(bytes, { task: 'regression', feature_names: ['a', 'b', 'c', 'd'] });
    expect(imp.meta.featureNames).toEqual(['a', 'b', 'c', 'd']);
    expect(imp.meta.algorithm).toBe('onnx:LinearRegressor');
    const x = randomRaw(metaFor('regression', [], 4), ROWS, r).map((v) => (Number.isNaN(v) ? 0 : v));
    await checkServing(imp, x, (row) => refPredict(m, Array.from(row)), true);
  });

  it('Pipeline(SimpleImputer, StandardScaler, LinearRegression) folds into columns', async () => {
    const r = rng(2);
    const m = randomLinear('regression', 3, 1, 'none', r);
    const imputed = [0.5, -1, 2], offset = [1, 2, 3], scale = [0.5, 0.25, 2];
    const bytes = modelBytes([
      node('Imputer', ['input'], ['imputed'], [attr.floats('imputed_value_floats', imputed), attr.float('replaced_value_float', NaN)], ML),
      node('Scaler', ['imputed'], ['scaled'], [attr.floats('offset', offset), attr.floats('scale', scale)], ML),
      node('LinearRegressor', ['scaled'], ['variable'], [attr.floats('coefficients', m.coefficients), attr.floats('intercepts', m.intercepts)], ML),
    ], [floatInput('input', 3)], [valueInfo('variable', DataType.FLOAT, ['N', 1])]);
    const imp = await importOnnx(bytes, { task: 'regression' });
    expect(imp.meta.columns.map((c) => c.imputeValue[0])).toEqual(imputed);
    const x = randomRaw(metaFor('regression', [], 3), ROWS, r);
    const expected = (row: Float32Array) => refPredict(m, Array.from(row, (v, j) => ((Number.isNaN(v) ? imputed[j] : v) - offset[j]) * scale[j]));
    await checkServing(imp, x, expected, true);
  });

  it('double input is cast from the float32 serving input', async () => {
    const r = rng(3);
    const m = randomLinear('regression', 2, 1, 'none', r);
    const bytes = modelBytes([
      node('Cast', ['X'], ['xf'], [attr.int('to', DataType.FLOAT)]),
      node('LinearRegressor', ['xf'], ['variable'], [attr.floats('coefficients', m.coefficients), attr.floats('intercepts', m.intercepts)], ML),
    ], [floatInput('X', 2, DataType.DOUBLE)], [valueInfo('variable', DataType.FLOAT, ['N', 1])]);
    const imp = await importOnnx(bytes, { task: 'regression' });
    const x = randomRaw(metaFor('regression', [], 2), ROWS, r).map((v) => (Number.isNaN(v) ? 1 : v));
    await checkServing(imp, x, (row) => refPredict(m, Array.from(row)), true);
  });

  it('binary LogisticRegression with Normalizer, Cast and ZipMap', async () => {
    const r = rng(4);
    const m = randomLinear('classification', 5, 1, 'logistic', r);
    const tail = classifierTail('label', 'probabilities', [0, 1]);
    const bytes = modelBytes([
      { ...linearClassifierNode(m, 5, [0, 1], ['label', 'probability_tensor']), input: ['float_input'] },
      node('Normalizer', ['probability_tensor'], ['probabilities'], [attr.string('norm', 'L1')], ML),
      ...tail.nodes,
    ], [floatInput('float_input', 5)], tail.outputs);
    const imp = await importOnnx(bytes, { task: 'classification', classes: ['no', 'yes'] });
    expect(imp.meta.classes).toEqual(['no', 'yes']);
    expect(imp.labelValues).toEqual([0, 1]);
    const x = randomRaw(metaFor('regression', [], 5), ROWS, r).map((v) => (Number.isNaN(v) ? 0 : v));
    await checkServing(imp, x, (row) => refPredict(m, Array.from(row)), true);
  });

  it('multinomial LogisticRegression with string labels', async () => {
    const r = rng(5);
    const m = randomLinear('classification', 4, 3, 'softmax', r);
    const labels = ['setosa', 'versicolor', 'virginica'];
    const tail = classifierTail('label', 'probabilities', labels);
    const bytes = modelBytes([
      { ...linearClassifierNode(m, 4, labels, ['label', 'probabilities']), input: ['float_input'] },
      ...tail.nodes,
    ], [floatInput('float_input', 4)], tail.outputs);
    const imp = await importOnnx(bytes, { task: 'classification' });
    expect(imp.meta.classes).toEqual(labels);
    const x = randomRaw(metaFor('regression', [], 4), ROWS, r).map((v) => (Number.isNaN(v) ? 0 : v));
    await checkServing(imp, x, (row) => refPredict(m, Array.from(row)), true);
  });

  it('DecisionTreeClassifier with labels [3, 5, 7] (BRANCH_LEQ)', async () => {
    const r = rng(6);
    const m = float32Trees(randomForest('classification', 4, 1, 7, 3, r, { baseScore: new Float64Array(3) }));
    for (let i = 0; i < m.trees[0].value.length; i++) m.trees[0].value[i] = Math.fround(r());
    const tail = classifierTail('label', 'probabilities', [3, 5, 7]);
    const bytes = modelBytes([
      node('TreeEnsembleClassifier', ['input'], ['label', 'probabilities'], [...treeAttrs(m, 'class', { leq: true, divide: false }), attr.ints('classlabels_int64s', [3, 5, 7])], ML),
      ...tail.nodes,
    ], [floatInput('input', 4)], tail.outputs);
    const imp = await importOnnx(bytes, { task: 'classification' });
    expect(imp.labelValues).toEqual([3, 5, 7]);
    expect(imp.meta.classes).toEqual([3, 5, 7]);
    const x = randomRaw(metaFor('regression', [], 4), ROWS, r).map((v) => (Number.isNaN(v) ? 0 : v));
    await checkServing(imp, x, (row) => refPredict(m, Array.from(row)), true);
  });

  it('RandomForestRegressor (SUM over pre-divided weights)', async () => {
    const r = rng(7);
    const m = float32Trees(randomForest('regression', 6, 20, 6, 1, r, { aggregate: 'average', baseScore: Float64Array.of(0) }));
    const bytes = modelBytes([
      node('TreeEnsembleRegressor', ['input'], ['variable'], [...treeAttrs(m, 'target', { leq: true, divide: true }), attr.int('n_targets', 1)], ML),
    ], [floatInput('input', 6)], [valueInfo('variable', DataType.FLOAT, ['N', 1])], [], { mlOpset: 3 });
    const imp = await importOnnx(bytes, { task: 'regression' });
    const x = randomRaw(metaFor('regression', [], 6), ROWS, r).map((v) => (Number.isNaN(v) ? 0 : v));
    await checkServing(imp, x, (row) => refPredict(m, Array.from(row)), true);
  });
});

describe('importOnnx: onnxmltools xgboost shaped models', () => {
  it('binary classifier: one score per leaf, LOGISTIC, base value, missing values', async () => {
    const r = rng(8);
    const m = float32Trees(randomForest('classification', 5, 30, 4, 1, r, { post: 'logistic', baseScore: Float64Array.of(0.25) }));
    const bytes = modelBytes([
      node('TreeEnsembleClassifier', ['input'], ['label', 'probabilities'], [...treeAttrs(m, 'class', { leq: false, divide: false }), attr.ints('classlabels_int64s', [0, 1])], ML),
    ], [floatInput('input', 5)], [valueInfo('label', DataType.INT64, ['N']), valueInfo('probabilities', DataType.FLOAT, ['N', 2])], [], { producer: 'OnnxMLTools' });
    const imp = await importOnnx(bytes, { task: 'classification' });
    const x = randomRaw(metaFor('regression', [], 5), ROWS, r);
    await checkServing(imp, x, (row) => refPredict(m, Array.from(row)), true);
  });

  it('multiclass classifier: tree t scores class t % 3, SOFTMAX, ZipMap', async () => {
    const r = rng(9);
    const treeOutput = Int32Array.from({ length: 30 }, (_, t) => t % 3);
    const m = float32Trees(randomForest('classification', 5, 30, 4, 3, r, { post: 'softmax', treeOutput, leafWidth: 1, baseScore: Float64Array.of(0.5, 0.5, 0.5) }));
    const tail = classifierTail('label', 'probabilities', [0, 1, 2]);
    const bytes = modelBytes([
      node('TreeEnsembleClassifier', ['input'], ['label', 'probabilities'], [...treeAttrs(m, 'class', { leq: false, divide: false }), attr.ints('classlabels_int64s', [0, 1, 2])], ML),
      ...tail.nodes,
    ], [floatInput('input', 5)], tail.outputs);
    const imp = await importOnnx(bytes, { task: 'classification', classes: ['a', 'b', 'c'] });
    const x = randomRaw(metaFor('regression', [], 5), ROWS, r);
    await checkServing(imp, x, (row) => refPredict(m, Array.from(row)), true);
  });

  it('regressor with base_score', async () => {
    const r = rng(10);
    const m = float32Trees(randomForest('regression', 5, 25, 5, 1, r, { baseScore: Float64Array.of(0.5) }));
    const bytes = modelBytes([
      node('TreeEnsembleRegressor', ['input'], ['variable'], [...treeAttrs(m, 'target', { leq: false, divide: false }), attr.int('n_targets', 1)], ML),
    ], [floatInput('input', 5)], [valueInfo('variable', DataType.FLOAT, ['N', 1])]);
    const imp = await importOnnx(bytes, { task: 'regression' });
    const x = randomRaw(metaFor('regression', [], 5), ROWS, r);
    await checkServing(imp, x, (row) => refPredict(m, Array.from(row)), true);
  });
});

describe('importOnnx: graphs served by onnxruntime only', () => {
  it('MatMul + Add linear model', async () => {
    const r = rng(11);
    const w = Array.from({ length: 3 }, () => gauss(r));
    const bytes = modelBytes([
      node('MatMul', ['X', 'W'], ['xw']),
      node('Add', ['xw', 'B'], ['out']),
    ], [floatInput('X', 3)], [valueInfo('out', DataType.FLOAT, ['N', 1])], [floatTensor('W', [3, 1], w), floatTensor('B', [1], [0.5])]);
    const imp = await importOnnx(bytes, { task: 'regression' });
    expect(imp.warnings.join(' ')).toMatch(/onnxruntime only: operator MatMul/);
    const lin: TrainedModel = { kind: 'linear', task: 'regression', coefficients: Float64Array.from(w), intercepts: Float64Array.of(0.5), outputs: 1, post: 'none' };
    const x = randomRaw(metaFor('regression', [], 3), ROWS, r).map((v) => (Number.isNaN(v) ? 0 : v));
    await checkServing(imp, x, (row) => refPredict(lin, Array.from(row)), false);
  });

  it('our own classifier export re-imports (trees + Softmax: onnxruntime only)', async () => {
    const r = rng(12);
    const meta: ModelMetadata = metaFor('classification', [], 4, 3);
    const m = randomForest('classification', 4, 10, 4, 3, r, { post: 'softmax' });
    const imp = await importOnnx(exportOnnx(m, meta), { task: 'classification' });
    const x = randomRaw(meta, ROWS, r);
    await checkServing(imp, x, (row) => refPredict(m, Array.from(row)), false);
  });

  it('our own regression export re-imports and converts back', async () => {
    const r = rng(15);
    const meta: ModelMetadata = metaFor('regression', [], 4);
    const m = randomForest('regression', 4, 10, 4, 1, r);
    const imp = await importOnnx(exportOnnx(m, meta), { task: 'regression' });
    const x = randomRaw(meta, ROWS, r);
    await checkServing(imp, x, (row) => refPredict(m, Array.from(row)), true);
  });
});

describe('importOnnx: bad uploads', () => {
  async function rejects(bytes: Uint8Array, message: RegExp, opts = { task: 'regression' as const }): Promise<OnnxImportError> {
    const err = await importOnnx(bytes, opts).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(OnnxImportError);
    expect((err as OnnxImportError).message).toMatch(message);
    return err as OnnxImportError;
  }
  const lr = node('LinearRegressor', ['X'], ['variable'], [attr.floats('coefficients', [1, 2]), attr.floats('intercepts', [0])], ML);

  it('garbage bytes', async () => {
    const err = await rejects(new TextEncoder().encode('this is definitely not a protobuf model \u0000\u00ff'), /not an ONNX model/);
    expect(err.hint).toMatch(/onnx/);
    const r = rng(13);
    await rejects(Uint8Array.from({ length: 256 }, () => Math.floor(r() * 256)), /not an ONNX model|no graph/);
  });

  it('empty upload', async () => {
    await rejects(new Uint8Array(0), /empty/);
  });

  it('model without a graph', async () => {
    await rejects(encodeModel({ ir_version: 8, producer_name: 'x' }), /no graph/);
  });

  it('string input', async () => {
    const err = await rejects(modelBytes([lr], [floatInput('X', 2, DataType.STRING)], [valueInfo('variable', DataType.FLOAT, ['N', 1])]), /element type string/);
    expect(err.hint).toBeTruthy();
  });

  it('two inputs', async () => {
    await rejects(modelBytes([lr], [floatInput('X', 2), floatInput('Y', 2)], [valueInfo('variable', DataType.FLOAT, ['N', 1])]), /2 inputs/);
  });

  it('unknown width without feature_names', async () => {
    await rejects(modelBytes([lr], [floatInput('X', null)], [valueInfo('variable', DataType.FLOAT, ['N', 1])]), /not fixed/);
  });

  it('a graph onnxruntime cannot load', async () => {
    const bad = node('Add', ['X'], ['variable']);
    const err = await rejects(modelBytes([bad], [floatInput('X', 2)], [valueInfo('variable', DataType.FLOAT, ['N', 1])]), /onnxruntime cannot load/);
    expect(err.details).toBeTruthy();
  });

  it('an operator outside the accepted set (custom domain) is refused before onnxruntime sees it', async () => {
    const bad = node('NoSuchOp', ['X'], ['variable'], [], 'com.example');
    const err = await rejects(modelBytes([bad], [floatInput('X', 2)], [valueInfo('variable', DataType.FLOAT, ['N', 1])]), /com\.example\.NoSuchOp is not accepted/);
    expect(err.details).toBeTruthy();
  });

  it('class count mismatch', async () => {
    const m = randomLinear('classification', 2, 3, 'softmax', rng(14));
    const bytes = modelBytes([{ ...linearClassifierNode(m, 2, [0, 1, 2], ['label', 'probabilities']), input: ['X'] }],
      [floatInput('X', 2)], [valueInfo('label', DataType.INT64, ['N']), valueInfo('probabilities', DataType.FLOAT, ['N', 3])]);
    await expect(importOnnx(bytes, { task: 'classification', classes: ['a', 'b'] })).rejects.toThrow(/3 classes but 2/);
  });

  it('classification task on a regression model', async () => {
    await rejects(modelBytes([lr], [floatInput('X', 2)], [valueInfo('variable', DataType.FLOAT, ['N', 1])]), /no classification output/, { task: 'classification' } as never);
  });
});
