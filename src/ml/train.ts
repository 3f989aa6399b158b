/**
 * The one training entry point: validate task / algorithm / hyperparameters, optionally search,
 * fit (the search winner is refit on the whole training split), then score on the test split.
 * Pure computation: no database, no HTTP. Run it in a worker thread; it blocks while it works.
 */
import type { ColumnPreprocessor, Dataset, Matrix, Task, TrainedModel } from './model-types.ts';
import { checkAlgorithm, checkTask, MLInputError, resolveHyperparams, type HyperValue, type Hyperparams } from './hyperparams.ts';
import { fitAlgorithm } from './algorithms/index.ts';
import { numClassesOf, type FitContext } from './algorithms/context.ts';
import { evaluateModel } from './metrics.ts';
import { runSearch, type SearchKind, type SearchResults } from './search.ts';
import {
  encodeLabels,
  featureNames,
  fitPreprocessors,
  transformColumns,
  type ClassLabel,
  type PreprocessSpec,
  type RawColumn,
} from './preprocess.ts';
import { splitRows, takeValues, type Split } from './split.ts';

export { TrainingCancelledError } from './algorithms/context.ts';

export interface TrainOptions {
  task: string;
  algorithm: string;
  hyperparams?: Record<string, unknown> | null;
  search?: SearchKind | null;
  search_params?: Record<string, unknown> | null;
  search_args?: Record<string, unknown> | null;
  /** the training split */
  data: Dataset;
  /** the test split; without it metrics only hold fit_time and score_time */
  testX?: Matrix;
  testY?: Float64Array;
  /** classification: number of classes over both splits (default: from the labels seen) */
  numClasses?: number;
  seed?: number;
  /** fraction of the whole job done, 0..1 */
  onProgress?: (fraction: number) => void;
  /** AbortSignal or anything with `aborted`; checked between trees / iterations */
  signal?: { readonly aborted: boolean } | null;
}

export interface TrainResult {
  model: TrainedModel;
  /** PostgresML's metrics: task metrics + fit_time + score_time (seconds) */
  metrics: Record<string, number>;
  /** canonical hyperparameters of the final model, defaults filled in */
  hyperparams: Hyperparams;
  /** the winning hyperparameters as given (fixed + searched), PostgresML's models.hyperparams */
  chosenHyperparams: Record<string, HyperValue>;
  searchResults?: SearchResults;
  /** seconds */
  fitTime: number;
  scoreTime: number;
}

export async function trainModel(opts: TrainOptions): Promise<TrainResult> {
  return trainModelSync(opts);
}

export function trainModelSync(opts: TrainOptions): TrainResult {
  const task: Task = checkTask(opts.task);
  const algorithm = checkAlgorithm(task, opts.algorithm);
  const given = opts.hyperparams ?? {};
  if (typeof given !== 'object' || Array.isArray(given)) throw new MLInputError('hyperparams must be a JSON object');
  if (opts.search && opts.search !== 'grid' && opts.search !== 'random') {
    throw new MLInputError(`unknown search "${String(opts.search)}"`, 'valid: grid, random');
  }
  const data = opts.data;
  if (data.x.rows === 0) throw new MLInputError('there are no training rows');
  if (task !== 'clustering' && data.y.length !== data.x.rows) {
    throw new MLInputError('internal: labels and rows differ in length', `${data.y.length} vs ${data.x.rows}`);
  }
  let numClasses: number | undefined;
  if (task === 'classification') {
    numClasses = numClassesOf(data.y, { numClasses: opts.numClasses });
    if (opts.testY) numClasses = numClassesOf(opts.testY, { numClasses });
  }
  const cancelled = () => opts.signal?.aborted === true;
  const searching = !!opts.search && Object.keys(opts.search_params ?? {}).length > 0;
  // search takes this share of the progress bar, the refit the rest
  const searchShare = searching ? 0.8 : 0;
  const progress = (f: number) => opts.onProgress?.(Math.min(1, Math.max(0, f)));

  let chosen = given as Record<string, HyperValue>;
  let searchResults: SearchResults | undefined;
  let hyperparams = resolveHyperparams(task, algorithm, given);
  if (searching) {
    const outcome = runSearch({
      task,
      algorithm,
      hyperparams: given,
      search: opts.search!,
      search_params: opts.search_params!,
      search_args: opts.search_args ?? {},
      train: data,
      seed: opts.seed,
      ctx: { numClasses, cancelled, progress: (f) => progress(f * searchShare) },
    });
    chosen = outcome.best;
    searchResults = outcome.results;
    hyperparams = resolveHyperparams(task, algorithm, chosen);
  }

  const ctx: FitContext = {
    numClasses,
    cancelled,
    progress: (f) => progress(searchShare + f * (1 - searchShare)),
  };
  const t0 = performance.now();
  const model = fitAlgorithm(task, algorithm, data, hyperparams, ctx);
  const fitTime = (performance.now() - t0) / 1000;

  const t1 = performance.now();
  let metrics: Record<string, number> = {};
  const testX = opts.testX;
  if (testX && testX.rows > 0) {
    if (testX.cols !== data.x.cols) {
      throw new MLInputError('internal: test and training feature counts differ', `${testX.cols} vs ${data.x.cols}`);
    }
    metrics = evaluateModel(task, model, testX, opts.testY ?? new Float64Array(0));
  }
  const scoreTime = (performance.now() - t1) / 1000;
  metrics.fit_time = fitTime;
  metrics.score_time = scoreTime;
  progress(1);
  return { model, metrics, hyperparams, chosenHyperparams: chosen, searchResults, fitTime, scoreTime };
}

export interface PrepareOptions {
  task: string;
  /** feature columns (the label column may be included; it is skipped) */
  columns: RawColumn[];
  /** null for clustering */
  label: RawColumn | null;
  preprocess?: Record<string, PreprocessSpec> | null;
  testSize?: number;
  testSampling?: string;
  seed?: number;
}

export interface Prepared {
  train: Dataset;
  testX: Matrix;
  testY: Float64Array;
  /** fitted on the training split only; replay with transformRows at predict time */
  preprocessors: ColumnPreprocessor[];
  classes?: ClassLabel[];
  split: Split;
}

/** Raw columns → split → preprocessors fitted on the training rows → train and test matrices. */
export function prepareData(opts: PrepareOptions): Prepared {
  const task = checkTask(opts.task);
  const labelName = opts.label?.name;
  const features = opts.columns.filter((c) => c.name !== labelName);
  if (features.length === 0) throw new MLInputError('there are no feature columns');
  const first = features[0];
  const n = first.kind === 'array' ? first.values.length / Math.max(1, first.width) : first.values.length;
  if (task !== 'clustering' && !opts.label) throw new MLInputError(`${task} needs a label column (y_column_name)`);
  const { y, classes } = opts.label ? encodeLabels(opts.label, task) : { y: new Float64Array(0), classes: undefined };
  const split = splitRows(n, {
    testSize: opts.testSize,
    testSampling: opts.testSampling,
    seed: opts.seed,
    y: task === 'classification' ? y : undefined,
  });
  const preprocessors = fitPreprocessors(features, opts.preprocess ?? {}, { rows: split.train, target: y.length ? y : undefined });
  const names = featureNames(preprocessors);
  return {
    train: { x: transformColumns(preprocessors, features, split.train), y: takeValues(y, split.train), featureNames: names },
    testX: transformColumns(preprocessors, features, split.test),
    testY: takeValues(y, split.test),
    preprocessors,
    classes,
    split,
  };
}
