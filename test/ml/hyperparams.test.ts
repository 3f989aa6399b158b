import { describe, expect, it } from 'vitest';
import { MLInputError, resolveHyperparams, checkAlgorithm, checkTask } from '../../src/ml/hyperparams.ts';

describe('hyperparameters', () => {
  it('fills defaults and maps xgboost aliases', () => {
    const p = resolveHyperparams('classification', 'xgboost', { eta: 0.1, lambda: 2, alpha: 0.5 });
    expect(p.learning_rate).toBe(0.1);
    expect(p.reg_lambda).toBe(2);
    expect(p.reg_alpha).toBe(0.5);
    expect(p.max_depth).toBe(6);
    expect(p.n_estimators).toBe(100);
  });

  it('unknown names throw MLInputError naming the valid ones', () => {
    let err: unknown;
    try {
      resolveHyperparams('regression', 'ridge', { alpha: 1, depth: 3 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MLInputError);
    const e = err as MLInputError;
    expect(e.message).toContain('depth');
    expect(e.details).toContain('alpha');
    expect(e.details).toContain('fit_intercept');
    expect(e.hint.length).toBeGreaterThan(0);
  });

  it('rejects duplicates through aliases, wrong types and out-of-range values', () => {
    expect(() => resolveHyperparams('regression', 'xgboost', { eta: 0.1, learning_rate: 0.2 })).toThrow(MLInputError);
    expect(() => resolveHyperparams('regression', 'xgboost', { max_depth: 'deep' })).toThrow(/wrong type/);
    expect(() => resolveHyperparams('regression', 'xgboost', { max_depth: 2.5 })).toThrow(MLInputError);
    expect(() => resolveHyperparams('regression', 'lasso', { alpha: -1 })).toThrow(/>= 0/);
  });

  it('unknown tasks and algorithms name the valid ones', () => {
    expect(() => checkTask('forecasting')).toThrow(MLInputError);
    try {
      checkAlgorithm('clustering', 'xgboost');
      expect.unreachable();
    } catch (e) {
      expect((e as MLInputError).details).toContain('kmeans');
    }
  });
});
