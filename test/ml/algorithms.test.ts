import { describe, expect, it } from 'vitest';
import { prepareData, trainModel } from '../../src/ml/train.ts';
import { predictMatrix, predictRow, outputWidth } from '../../src/ml/predict-native.ts';
import { column, loadCsv, without } from './data.ts';
import { Rng } from '../../src/ml/algorithms/rng.ts';

const iris = loadCsv('iris/iris.csv');
const boston = loadCsv('boston_housing/boston.csv');

function irisData(seed = 1) {
  return prepareData({ task: 'classification', columns: without(iris, 'species'), label: column(iris, 'species'), testSize: 0.3, seed });
}

describe('classification on iris', () => {
  it('logistic reaches accuracy >= 0.9 and predicts probabilities', async () => {
    const d = irisData();
    expect(d.classes).toEqual(['Iris-setosa', 'Iris-versicolor', 'Iris-virginica']);
    const r = await trainModel({ task: 'classification', algorithm: 'logistic', data: d.train, testX: d.testX, testY: d.testY });
    expect(r.metrics.accuracy).toBeGreaterThanOrEqual(0.9);
    expect(r.metrics.f1).toBeGreaterThanOrEqual(0.85);
    expect(r.model.kind).toBe('linear');
    const p = predictMatrix(r.model, d.testX);
    expect(p.length).toBe(d.testX.rows * 3);
    for (let i = 0; i < d.testX.rows; i++) expect(p[i * 3] + p[i * 3 + 1] + p[i * 3 + 2]).toBeCloseTo(1, 9);
  });

  it('linear means logistic for classification', async () => {
    const d = irisData(2);
    const r = await trainModel({ task: 'classification', algorithm: 'linear', hyperparams: { C: 10 }, data: d.train, testX: d.testX, testY: d.testY });
    expect(r.model.kind === 'linear' && r.model.post).toBe('softmax');
    expect(r.metrics.accuracy).toBeGreaterThanOrEqual(0.9);
  });

  it.each(['decision_tree', 'random_forest', 'xgboost'])('%s classifies iris', async (algorithm) => {
    const d = irisData(3);
    const r = await trainModel({
      task: 'classification',
      algorithm,
      hyperparams: algorithm === 'random_forest' ? { n_estimators: 30 } : {},
      data: d.train,
      testX: d.testX,
      testY: d.testY,
    });
    expect(r.metrics.accuracy).toBeGreaterThanOrEqual(0.85);
    // the single-row path agrees with the matrix path
    const w = outputWidth(r.model);
    const all = predictMatrix(r.model, d.testX);
    const one = predictRow(r.model, d.testX.data.subarray(0, d.testX.cols));
    expect(Array.from(one)).toEqual(Array.from(all.subarray(0, w)));
  });

  it('binary logistic has one logistic output and reports roc_auc/log_loss', async () => {
    const rng = new Rng(5);
    const n = 400;
    const x = new Float64Array(n * 2);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      x[2 * i] = rng.normal();
      x[2 * i + 1] = rng.normal() * 100; // unscaled column must not slow convergence
      y[i] = x[2 * i] + x[2 * i + 1] / 100 + 0.3 * rng.normal() > 0 ? 1 : 0;
    }
    const r = await trainModel({
      task: 'classification',
      algorithm: 'logistic',
      data: { x: { data: x.subarray(0, 600), rows: 300, cols: 2 }, y: y.subarray(0, 300), featureNames: ['a', 'b'] },
      testX: { data: x.subarray(600), rows: 100, cols: 2 },
      testY: y.subarray(300),
    });
    expect(r.model.kind === 'linear' && r.model.outputs).toBe(1);
    expect(r.metrics.roc_auc).toBeGreaterThan(0.95);
    expect(r.metrics.log_loss).toBeLessThan(0.35);
    // both coefficients carry the same signal once the scale is undone
    if (r.model.kind === 'linear') expect(r.model.coefficients[0] / (r.model.coefficients[1] * 100)).toBeCloseTo(1, 0);
  });
});

describe('regression on boston housing', () => {
  const data = () => prepareData({ task: 'regression', columns: without(boston, 'medv'), label: column(boston, 'medv'), testSize: 0.2, testSampling: 'random', seed: 7 });

  it('linear regression recovers an exact linear target', async () => {
    const rng = new Rng(9);
    const n = 200;
    const x = new Float64Array(n * 3);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < 3; j++) x[i * 3 + j] = rng.normal();
      y[i] = 2 * x[i * 3] - 3 * x[i * 3 + 1] + 0.5 * x[i * 3 + 2] + 4;
    }
    const r = await trainModel({ task: 'regression', algorithm: 'linear', data: { x: { data: x, rows: n, cols: 3 }, y, featureNames: [] } });
    if (r.model.kind !== 'linear') throw new Error('expected linear');
    expect(Array.from(r.model.coefficients).map((v) => +v.toFixed(8))).toEqual([2, -3, 0.5]);
    expect(r.model.intercepts[0]).toBeCloseTo(4, 8);
  });

  it.each([
    ['linear', {}, 0.6],
    ['ridge', { alpha: 1 }, 0.6],
    ['lasso', { alpha: 0.01 }, 0.6],
    ['elastic_net', { alpha: 0.01, l1_ratio: 0.5 }, 0.6],
    ['decision_tree', { max_depth: 6 }, 0.6],
    ['random_forest', { n_estimators: 40 }, 0.75],
    ['xgboost', { n_estimators: 60, max_depth: 4 }, 0.75],
  ] as const)('%s', async (algorithm, hyperparams, minR2) => {
    const d = data();
    const r = await trainModel({ task: 'regression', algorithm, hyperparams, data: d.train, testX: d.testX, testY: d.testY });
    expect(r.metrics.r2).toBeGreaterThan(minR2);
    expect(Object.keys(r.metrics)).toEqual(expect.arrayContaining(['r2', 'mean_absolute_error', 'mean_squared_error', 'fit_time', 'score_time']));
  });

  it('lasso with a large alpha zeroes coefficients', async () => {
    const d = data();
    const r = await trainModel({ task: 'regression', algorithm: 'lasso', hyperparams: { alpha: 1e6 }, data: d.train });
    if (r.model.kind !== 'linear') throw new Error('expected linear');
    expect(Array.from(r.model.coefficients).every((c) => c === 0)).toBe(true);
  });
});

describe('california housing', () => {
  it('xgboost reaches r2 >= 0.8 with text categoricals and NULLs', async () => {
    const cols = loadCsv('california_housing/housing.csv');
    const d = prepareData({
      task: 'regression',
      columns: without(cols, 'median_house_value'),
      label: column(cols, 'median_house_value'),
      preprocess: { total_bedrooms: { impute: 'median' }, ocean_proximity: { encode: 'one_hot' } },
      testSize: 0.2,
      testSampling: 'random',
      seed: 42,
    });
    expect(d.preprocessors.find((p) => p.name === 'total_bedrooms')!.stats.nulls).toBeGreaterThan(100);
    const r = await trainModel({ task: 'regression', algorithm: 'xgboost', hyperparams: { n_estimators: 200, max_depth: 6, eta: 0.1 }, data: d.train, testX: d.testX, testY: d.testY });
    expect(r.metrics.r2).toBeGreaterThanOrEqual(0.8);
    if (r.model.kind !== 'trees') throw new Error('expected trees');
    const imp = r.model.featureImportance!;
    expect(imp.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
    // median_income is the strongest single predictor in this data set
    const best = d.train.featureNames[imp.indexOf(Math.max(...imp))];
    expect(['median_income', 'ocean_proximity_INLAND']).toContain(best);
  });
});

describe('xgboost details', () => {
  it('learns a default direction for missing values', async () => {
    // y depends only on whether x0 is missing; x1 is noise
    const rng = new Rng(3);
    const n = 2000;
    const x = new Float64Array(n * 2);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const miss = rng.next() < 0.3;
      x[2 * i] = miss ? NaN : rng.normal();
      x[2 * i + 1] = rng.normal();
      y[i] = miss ? 1 : 0;
    }
    const r = await trainModel({ task: 'classification', algorithm: 'xgboost', hyperparams: { n_estimators: 30 }, data: { x: { data: x, rows: n, cols: 2 }, y, featureNames: [] } });
    expect(predictRow(r.model, [NaN, 0])[1]).toBeGreaterThan(0.9);
    expect(predictRow(r.model, [0.5, 0])[1]).toBeLessThan(0.1);
  });

  it('subsample/colsample/gamma/alpha run and cancel stops training', async () => {
    const d = irisData(4);
    const r = await trainModel({
      task: 'classification',
      algorithm: 'xgboost',
      hyperparams: { subsample: 0.7, colsample_bytree: 0.5, gamma: 0.5, alpha: 0.1, min_child_weight: 2, n_estimators: 20 },
      data: d.train,
      testX: d.testX,
      testY: d.testY,
    });
    expect(r.metrics.accuracy).toBeGreaterThan(0.8);
    const fractions: number[] = [];
    const signal = { aborted: false };
    await expect(
      trainModel({
        task: 'classification',
        algorithm: 'xgboost',
        data: d.train,
        signal,
        onProgress: (f) => {
          fractions.push(f);
          if (f > 0.3) signal.aborted = true;
        },
      }),
    ).rejects.toThrow(/cancelled/);
    expect(fractions.length).toBeGreaterThan(3);
  });
});

describe('kmeans', () => {
  it('finds the iris clusters and reports silhouette', async () => {
    const d = prepareData({ task: 'clustering', columns: without(iris, 'species'), label: null, testSize: 0.2, seed: 1 });
    const r = await trainModel({ task: 'clustering', algorithm: 'kmeans', hyperparams: { n_clusters: 3 }, data: d.train, testX: d.testX });
    expect(r.metrics.silhouette).toBeGreaterThan(0.45);
    const again = await trainModel({ task: 'clustering', algorithm: 'kmeans', hyperparams: { n_clusters: 3 }, data: d.train });
    if (r.model.kind !== 'kmeans' || again.model.kind !== 'kmeans') throw new Error('expected kmeans');
    expect(Array.from(again.model.centroids)).toEqual(Array.from(r.model.centroids));
  });
});
