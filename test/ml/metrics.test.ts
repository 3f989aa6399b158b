import { describe, expect, it } from 'vitest';
import { classificationMetrics, labelMetrics, logLoss, regressionMetrics, rocAuc, silhouette } from '../../src/ml/metrics.ts';

const f = (a: number[]) => Float64Array.from(a);

describe('regression metrics', () => {
  it('match hand-computed values', () => {
    // y = [1,2,3,4], pred = [1,2,2,6]; errors 0,0,1,-2; mean 2.5; SStot = 5; SSres = 5
    const m = regressionMetrics(f([1, 2, 3, 4]), f([1, 2, 2, 6]));
    expect(m.mean_squared_error).toBeCloseTo(5 / 4, 12);
    expect(m.mean_absolute_error).toBeCloseTo(3 / 4, 12);
    expect(m.r2).toBeCloseTo(0, 12);
    expect(regressionMetrics(f([1, 2, 3]), f([1, 2, 3])).r2).toBe(1);
  });
});

describe('classification metrics', () => {
  it('binary: confusion matrix by hand', () => {
    // y    = 1 1 1 0 0 0 0 1
    // pred = 1 1 0 0 0 1 0 1  -> TP=3 FN=1 FP=1 TN=3
    const y = f([1, 1, 1, 0, 0, 0, 0, 1]);
    const pred = f([1, 1, 0, 0, 0, 1, 0, 1]);
    const m = labelMetrics(y, pred, 2);
    expect(m.accuracy).toBeCloseTo(6 / 8, 12);
    // class 1: P = 3/4, R = 3/4; class 0: P = 3/4, R = 3/4
    expect(m.precision).toBeCloseTo(0.75, 12);
    expect(m.recall).toBeCloseTo(0.75, 12);
    expect(m.f1).toBeCloseTo(0.75, 12);
    // mcc = (TP·TN − FP·FN)/sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (9 − 1)/sqrt(4·4·4·4) = 0.5
    expect(m.mcc).toBeCloseTo(0.5, 12);
  });

  it('multiclass macro averages', () => {
    // y = 0 0 1 1 2 2 ; pred = 0 1 1 1 2 0
    // class0: tp1 p2 t2 -> P .5 R .5 ; class1: tp2 p3 t2 -> P 2/3 R 1 ; class2: tp1 p1 t2 -> P 1 R .5
    const m = labelMetrics(f([0, 0, 1, 1, 2, 2]), f([0, 1, 1, 1, 2, 0]), 3);
    expect(m.precision).toBeCloseTo((0.5 + 2 / 3 + 1) / 3, 12);
    expect(m.recall).toBeCloseTo((0.5 + 1 + 0.5) / 3, 12);
    const f1 = (p: number, r: number) => (2 * p * r) / (p + r);
    expect(m.f1).toBeCloseTo((f1(0.5, 0.5) + f1(2 / 3, 1) + f1(1, 0.5)) / 3, 12);
    expect(m.accuracy).toBeCloseTo(4 / 6, 12);
  });

  it('roc_auc counts ordered pairs, ties count half', () => {
    // positives scores 0.8, 0.4 ; negatives 0.5, 0.1 -> pairs: (.8>.5)(.8>.1)(.4<.5)(.4>.1) = 3/4
    expect(rocAuc(f([1, 1, 0, 0]), f([0.8, 0.4, 0.5, 0.1]))).toBeCloseTo(0.75, 12);
    expect(rocAuc(f([1, 0]), f([0.3, 0.3]))).toBeCloseTo(0.5, 12);
  });

  it('log_loss and the probability entry point', () => {
    const y = f([1, 0]);
    expect(logLoss(y, f([0.8, 0.4]))).toBeCloseTo(-(Math.log(0.8) + Math.log(0.6)) / 2, 12);
    const m = classificationMetrics(y, f([0.2, 0.8, 0.6, 0.4]), 2);
    expect(m.accuracy).toBe(1);
    expect(m.roc_auc).toBe(1);
    expect(m.log_loss).toBeCloseTo(-(Math.log(0.8) + Math.log(0.6)) / 2, 12);
    expect(Object.keys(m).sort()).toEqual(['accuracy', 'f1', 'log_loss', 'mcc', 'precision', 'recall', 'roc_auc']);
  });
});

describe('silhouette', () => {
  it('matches a hand computation in one dimension', () => {
    // points 0, 1 (cluster 0) and 4, 5 (cluster 1)
    // s(0): a=1, b=(4+5)/2=4.5 -> 3.5/4.5 ; s(1): a=1, b=3.5 -> 2.5/3.5 ; symmetric for the others
    const x = { data: f([0, 1, 4, 5]), rows: 4, cols: 1 };
    const expected = (3.5 / 4.5 + 2.5 / 3.5) / 2;
    expect(silhouette(x, f([0, 0, 1, 1]))).toBeCloseTo(expected, 12);
  });
});
