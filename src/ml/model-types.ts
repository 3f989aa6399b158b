/**
 * The contract between trainers (src/ml/algorithms), the ONNX exporter/importer
 * (src/ml/onnx), the native evaluator and the registry. Everything numeric is a typed
 * array; matrices are row-major.
 */

export type Task = 'regression' | 'classification' | 'clustering';

/** A dense feature matrix after preprocessing: n rows of d float64 features, row-major. */
export interface Matrix {
  data: Float64Array;
  rows: number;
  cols: number;
}

/** Training data: features plus the numeric target (class index for classification). */
export interface Dataset {
  x: Matrix;
  /** regression: the value; classification: class index 0..k-1; clustering: unused (length 0) */
  y: Float64Array;
  featureNames: string[];
}

/** y = post(x · W + b). For classification, one coefficient row per output. */
export interface LinearModel {
  kind: 'linear';
  task: Task;
  /** outputs × d, row-major */
  coefficients: Float64Array;
  intercepts: Float64Array;
  outputs: number;
  /** 'logistic' for binary classification (1 output = P(class 1)), 'softmax' for multiclass */
  post: 'none' | 'logistic' | 'softmax';
}

/**
 * One binary tree in flat arrays. Internal node i: go left when x[feature[i]] < threshold[i]
 * (missing values, NaN, go to `missingLeft[i] ? left : right`). Leaf: feature[i] = -1 and its
 * outputs are value[i*outputs .. i*outputs+outputs).
 */
export interface Tree {
  feature: Int32Array;
  threshold: Float64Array;
  left: Int32Array;
  right: Int32Array;
  missingLeft: Uint8Array;
  value: Float64Array;
}

export interface TreeEnsembleModel {
  kind: 'trees';
  task: Task;
  trees: Tree[];
  /** outputs per leaf: 1 for regression and binary boosting, k for multiclass */
  outputs: number;
  /** for multiclass boosting, tree t contributes to output treeOutput[t]; undefined = all outputs */
  treeOutput?: Int32Array;
  baseScore: Float64Array;
  /** 'sum' for boosting, 'average' for random forests / single trees */
  aggregate: 'sum' | 'average';
  post: 'none' | 'logistic' | 'softmax';
  /** gain-based importance per feature, normalised to sum 1 */
  featureImportance?: Float64Array;
}

export interface KMeansModel {
  kind: 'kmeans';
  task: 'clustering';
  /** k × d, row-major */
  centroids: Float64Array;
  k: number;
}

export type TrainedModel = LinearModel | TreeEnsembleModel | KMeansModel;

/**
 * Per source-column preprocessing, replayed at predict time. A source column expands to one
 * or more model features in order: numeric → 1, array column of width w → w, one_hot → one per
 * category (+0 for unknown), ordinal/target/native-categorical → 1.
 */
export interface ColumnPreprocessor {
  name: string;
  /** 'numeric' includes boolean (0/1); 'array' is real[]/float8[]; 'text' is categorical */
  kind: 'numeric' | 'array' | 'text';
  /** width for arrays, else 1 */
  width: number;
  impute: 'error' | 'mean' | 'median' | 'mode' | 'min' | 'max' | 'zero';
  /** the value used for NULL (per element for arrays); NaN when impute = 'error' */
  imputeValue: number[];
  scale: 'preserve' | 'standard' | 'min_max' | 'max_abs' | 'robust';
  /** x' = (x - offset) * factor, per element */
  offset: number[];
  factor: number[];
  encode: 'native' | 'one_hot' | 'target' | 'ordinal';
  /** text categories in encoding order (ordinal: index = code; one_hot: one feature each) */
  categories?: string[];
  /** target encoding: mean target per category, in `categories` order; unknown → targetPrior */
  targetMeans?: number[];
  targetPrior?: number;
  /** training-split statistics, stored in pgml.snapshots.columns */
  stats: { count: number; nulls: number; mean?: number; std?: number; min?: number; max?: number; median?: number; mode?: number | string; distinct?: number };
}

/** Everything needed to serve a model besides the model itself. */
export interface ModelMetadata {
  task: Task;
  algorithm: string;
  columns: ColumnPreprocessor[];
  /** number of model features after preprocessing */
  featureCount: number;
  featureNames: string[];
  /** classification: class labels as they appear in the training data, index = class id */
  classes?: (string | number | boolean)[];
  yColumn?: string;
  /** imported models: the label output's values in probability-column order */
  labelValues?: (string | number)[];
}
