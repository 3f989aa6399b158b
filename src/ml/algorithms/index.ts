/** Dispatch from (task, algorithm) to a trainer. Hyperparameters must already be resolved. */
import type { Dataset, Task, TrainedModel } from '../model-types.ts';
import { checkAlgorithm, MLInputError, type Hyperparams } from '../hyperparams.ts';
import type { FitContext } from './context.ts';
import { fitElasticNet, fitLasso, fitLinear, fitRidge } from './linear.ts';
import { fitLogistic } from './logistic.ts';
import { fitKMeans } from './kmeans.ts';
import { fitForest } from './forest.ts';
import { fitXGBoost } from './xgboost.ts';

export type { FitContext } from './context.ts';
export { TrainingCancelledError } from './context.ts';

export function fitAlgorithm(task: Task, algorithm: string, ds: Dataset, p: Hyperparams, ctx?: FitContext): TrainedModel {
  checkAlgorithm(task, algorithm);
  checkFinite(ds, task, algorithm);
  if (task === 'clustering') return fitKMeans(ds, p, ctx);
  switch (algorithm) {
    case 'linear':
      return task === 'classification' ? fitLogistic(ds, p, ctx) : fitLinear(ds, p);
    case 'logistic':
      return fitLogistic(ds, p, ctx);
    case 'ridge':
      return fitRidge(ds, p);
    case 'lasso':
      return fitLasso(ds, p, ctx);
    case 'elastic_net':
      return fitElasticNet(ds, p, ctx);
    case 'decision_tree':
      return fitForest(task, ds, p, ctx, true);
    case 'random_forest':
      return fitForest(task, ds, p, ctx, false);
    case 'xgboost':
      return fitXGBoost(task, ds, p, ctx);
  }
  throw new MLInputError(`algorithm ${algorithm} is not implemented`);
}

/** Trees handle NaN features natively; the other algorithms need imputed data. */
function checkFinite(ds: Dataset, task: Task, algorithm: string): void {
  const { y } = ds;
  if (algorithm !== 'xgboost' && algorithm !== 'decision_tree' && algorithm !== 'random_forest') {
    const x = ds.x.data;
    for (let i = 0; i < x.length; i++) {
      if (x[i] !== x[i]) {
        const col = ds.featureNames[i % ds.x.cols] ?? `#${i % ds.x.cols}`;
        throw new MLInputError(
          `feature "${col}" has missing values, which ${algorithm} cannot use`,
          `row ${Math.floor(i / ds.x.cols)}`,
          `set a preprocessor for it, e.g. preprocess => '{"${col}": {"impute": "mean"}}'`,
        );
      }
    }
  }
  for (let i = 0; i < y.length; i++) {
    if (!Number.isFinite(y[i])) {
      throw new MLInputError('the label column contains NULL or non-finite values', `row ${i}`, 'filter those rows out of the training relation');
    }
    if (task === 'classification' && (!Number.isInteger(y[i]) || y[i] < 0)) {
      throw new MLInputError('classification labels must be class indices 0..k-1', `row ${i} has ${y[i]}`);
    }
  }
}
