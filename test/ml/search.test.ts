import { describe, expect, it } from 'vitest';
import { trainModel, prepareData } from '../../src/ml/train.ts';
import { candidates } from '../../src/ml/search.ts';
import { MLInputError } from '../../src/ml/hyperparams.ts';
import { column, loadCsv, without } from './data.ts';

const boston = loadCsv('boston_housing/boston.csv');

describe('search', () => {
  it('grid enumerates the product; random samples n_iter distinct candidates', () => {
    const grid = candidates({ max_depth: 3 }, { eta: [0.1, 0.3], n_estimators: [10, 20, 30] }, 'grid', 10, 0);
    expect(grid).toHaveLength(6);
    expect(grid[0]).toEqual({ max_depth: 3, eta: 0.1, n_estimators: 10 });
    expect(grid[5]).toEqual({ max_depth: 3, eta: 0.3, n_estimators: 30 });
    const random = candidates({}, { a: [1, 2, 3, 4], b: [1, 2, 3, 4] }, 'random', 5, 1);
    expect(random).toHaveLength(5);
    expect(new Set(random.map((c) => JSON.stringify(c))).size).toBe(5);
    expect(() => candidates({ a: 1 }, { a: [1, 2] }, 'grid', 1, 0)).toThrow(MLInputError);
  });

  it('cross-validates, picks the best mean r2 and refits it on the whole training split', async () => {
    const d = prepareData({ task: 'regression', columns: without(boston, 'medv'), label: column(boston, 'medv'), testSize: 0.2, testSampling: 'random', seed: 3 });
    const r = await trainModel({
      task: 'regression',
      algorithm: 'ridge',
      search: 'grid',
      search_params: { alpha: [1e5, 1e3, 0.1] },
      search_args: { cv: 3 },
      data: d.train,
      testX: d.testX,
      testY: d.testY,
    });
    const s = r.searchResults!;
    expect(s.n_splits).toBe(3);
    expect(s.params).toHaveLength(3);
    expect(s.mean_test_score).toHaveLength(3);
    expect(s.split0_test_score).toHaveLength(3);
    expect(s.param_alpha).toEqual([1e5, 1e3, 0.1]);
    const best = s.mean_test_score.indexOf(Math.max(...s.mean_test_score));
    expect(s.best_index).toBe(best);
    expect(r.chosenHyperparams).toEqual({ alpha: 0.1 });
    expect(r.hyperparams.alpha).toBe(0.1);
    // the refit model is trained on all training rows: same as a direct fit with the winner
    const direct = await trainModel({ task: 'regression', algorithm: 'ridge', hyperparams: { alpha: 0.1 }, data: d.train, testX: d.testX, testY: d.testY });
    expect(r.metrics.r2).toBeCloseTo(direct.metrics.r2, 12);
  });

  it('rejects unknown search_args and unknown searched names', async () => {
    const d = prepareData({ task: 'regression', columns: without(boston, 'medv'), label: column(boston, 'medv'), seed: 3 });
    await expect(trainModel({ task: 'regression', algorithm: 'ridge', search: 'grid', search_params: { alpha: [1] }, search_args: { folds: 3 }, data: d.train })).rejects.toThrow(/search_args/);
    await expect(trainModel({ task: 'regression', algorithm: 'ridge', search: 'grid', search_params: { depth: [1] }, data: d.train })).rejects.toThrow(/unknown hyperparameter/);
  });
});
