import { describe, expect, it } from 'vitest';
import { fitPreprocessors, transformColumns, transformRows, featureNames, type RawColumn } from '../../src/ml/preprocess.ts';
import { MLInputError } from '../../src/ml/hyperparams.ts';
import { prepareData, trainModel } from '../../src/ml/train.ts';
import { predictMatrix } from '../../src/ml/predict-native.ts';
import { column, loadCsv, without } from './data.ts';

const num = (name: string, v: number[]): RawColumn => ({ name, kind: 'numeric', values: Float64Array.from(v) });
const text = (name: string, v: (string | null)[]): RawColumn => ({ name, kind: 'text', values: v });

describe('preprocess on small columns', () => {
  it('imputes and scales with statistics from the training rows only', () => {
    const cols = [num('a', [1, NaN, 3, 100])];
    const rows = Int32Array.of(0, 1, 2); // row 3 is the test row
    const [p] = fitPreprocessors(cols, { a: { impute: 'mean', scale: 'standard' } }, { rows });
    expect(p.imputeValue[0]).toBe(2);
    expect(p.stats.nulls).toBe(1);
    expect(p.offset[0]).toBe(2);
    expect(p.factor[0]).toBeCloseTo(1, 12); // population std of [1, 3] is 1
    const m = transformColumns([p], cols);
    expect(Array.from(m.data)).toEqual([-1, 0, 1, 98]);
  });

  it('min_max, max_abs, robust and median', () => {
    const cols = [num('a', [1, 2, 3, 4, 5])];
    const mm = fitPreprocessors(cols, { a: { scale: 'min_max' } })[0];
    expect(transformRows([mm], [[3]]).data[0]).toBeCloseTo(0.5, 12);
    const ma = fitPreprocessors([num('a', [-8, 2, 4])], { a: { scale: 'max_abs' } })[0];
    expect(transformRows([ma], [[4]]).data[0]).toBeCloseTo(0.5, 12);
    const rb = fitPreprocessors(cols, { a: { scale: 'robust' } })[0];
    // median 3, q25 2, q75 4
    expect(transformRows([rb], [[5]]).data[0]).toBeCloseTo(1, 12);
    const md = fitPreprocessors([num('a', [1, NaN, 10, 4])], { a: { impute: 'median' } })[0];
    expect(md.imputeValue[0]).toBe(4);
  });

  it('NULL with impute error names the column and the fix', () => {
    try {
      fitPreprocessors([num('income', [1, NaN])]);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(MLInputError);
      expect((e as MLInputError).message).toContain('income');
      expect((e as MLInputError).hint).toContain('impute');
    }
  });

  it('one_hot: one feature per category, unknown → all zeros; ordinal unknown → imputed', () => {
    const c = text('color', ['red', 'blue', 'red', null]);
    const [oh] = fitPreprocessors([c], { color: { encode: 'one_hot', impute: 'mode' } });
    expect(oh.categories).toEqual(['blue', 'red']);
    expect(featureNames([oh])).toEqual(['color_blue', 'color_red']);
    const m = transformRows([oh], [{ color: 'blue' }, { color: 'green' }, { color: null }]);
    expect(Array.from(m.data)).toEqual([1, 0, 0, 0, 0, 1]);
    const [ord] = fitPreprocessors([c], { color: { encode: { ordinal: ['red', 'blue'] }, impute: 'mode' } });
    expect(Array.from(transformRows([ord], [['blue'], ['green']]).data)).toEqual([1, 0]);
    const [strict] = fitPreprocessors([text('c', ['x', 'y'])]);
    expect(() => transformRows([strict], [['z']])).toThrow(MLInputError);
  });

  it('target encoding uses training means, unknown → prior', () => {
    const c = text('city', ['a', 'a', 'b', 'b']);
    const y = Float64Array.of(1, 3, 10, 20);
    const [p] = fitPreprocessors([c], { city: { encode: 'target' } }, { target: y });
    expect(p.targetMeans).toEqual([2, 15]);
    expect(Array.from(transformRows([p], [['b'], ['zzz']]).data)).toEqual([15, 8.5]);
  });

  it('array columns expand per element', () => {
    const arr: RawColumn = { name: 'emb', kind: 'array', width: 2, values: Float64Array.of(1, 2, NaN, 4, 3, 6) };
    const [p] = fitPreprocessors([arr], { emb: { impute: 'mean' } });
    expect(p.imputeValue).toEqual([2, 4]);
    expect(Array.from(transformColumns([p], [arr]).data)).toEqual([1, 2, 2, 4, 3, 6]);
    expect(Array.from(transformRows([p], [{ emb: [5, null] }]).data)).toEqual([5, 4]);
  });

  it('rejects bad specs', () => {
    expect(() => fitPreprocessors([num('a', [1])], { a: { impute: 'average' as never } })).toThrow(/invalid preprocess impute/);
    expect(() => fitPreprocessors([num('a', [1])], { b: { impute: 'mean' } })).toThrow(/not a feature/);
    expect(() => fitPreprocessors([num('a', [1])], { a: { encode: 'one_hot' } })).toThrow(MLInputError);
  });
});

describe('adult income through the whole pipeline', () => {
  const cols = loadCsv('adult_income/adult_income.csv');
  const label = column(cols, 'income >50K');
  const features = without(cols, 'income >50K');
  const textCols = features.filter((c) => c.kind === 'text').map((c) => c.name);

  it('refuses NULL text without imputation', () => {
    expect(() => prepareData({ task: 'classification', columns: features, label, seed: 1 })).toThrow(/"workclass" has \d+ NULL/);
  });

  it('trains xgboost with one-hot text and mode imputation', async () => {
    const preprocess = Object.fromEntries(textCols.map((c) => [c, { encode: 'one_hot' as const, impute: 'mode' as const }]));
    const d = prepareData({ task: 'classification', columns: features, label, preprocess, testSize: 0.25, seed: 1 });
    expect(textCols).toContain('workclass');
    expect(d.preprocessors.find((p) => p.name === 'workclass')!.stats.nulls).toBeGreaterThan(0);
    expect(d.train.x.cols).toBeGreaterThan(50);
    const r = await trainModel({ task: 'classification', algorithm: 'xgboost', hyperparams: { n_estimators: 60, max_depth: 5, eta: 0.2 }, data: d.train, testX: d.testX, testY: d.testY });
    expect(r.metrics.roc_auc).toBeGreaterThan(0.9);
    expect(r.metrics.accuracy).toBeGreaterThan(0.84);
    // predict-time objects with a NULL and an unseen category go through the same preprocessors
    const x = transformRows(d.preprocessors, [
      { age: 45, workclass: null, education: 'Masters', 'education-num': 14, 'marital-status': 'Married-civ-spouse', occupation: 'Exec-managerial', relationship: 'Husband', race: 'White', sex: 'Male', 'capital-gain': 15000, 'capital-loss': 0, 'hours-per-week': 50, 'native-country': 'Atlantis' },
      { age: 19, workclass: 'Private', education: 'HS-grad', 'education-num': 9, 'marital-status': 'Never-married', occupation: 'Handlers-cleaners', relationship: 'Own-child', race: 'White', sex: 'Female', 'capital-gain': 0, 'capital-loss': 0, 'hours-per-week': 20, 'native-country': 'United-States' },
    ]);
    const p = predictMatrix(r.model, x);
    expect(p[1]).toBeGreaterThan(0.5);
    expect(p[3]).toBeLessThan(0.1);
  });

  it('logistic with target encoding and standard scaling', async () => {
    const preprocess: Record<string, object> = Object.fromEntries(textCols.map((c) => [c, { encode: 'target', impute: 'mean' }]));
    for (const c of features) if (c.kind === 'numeric') preprocess[c.name] = { scale: 'standard' };
    const d = prepareData({ task: 'classification', columns: features, label, preprocess, testSize: 0.25, seed: 2 });
    const r = await trainModel({ task: 'classification', algorithm: 'logistic', data: d.train, testX: d.testX, testY: d.testY });
    expect(r.metrics.roc_auc).toBeGreaterThan(0.85);
  });
});
