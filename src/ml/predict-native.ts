/**
 * Native evaluation of any TrainedModel. Output per row: regression 1 value; classification
 * k class probabilities (binary models with one logistic output give [1 - p, p]); clustering
 * the cluster index.
 */
import type { KMeansModel, LinearModel, Matrix, TrainedModel, Tree, TreeEnsembleModel } from './model-types.ts';

/** Number of output columns per row. */
export function outputWidth(model: TrainedModel): number {
  if (model.kind === 'kmeans' || model.task !== 'classification') return 1;
  if (model.post === 'logistic' && model.outputs === 1) return 2;
  return model.outputs;
}

/** Evaluates all rows: a Float64Array of rows × outputWidth(model), row-major. */
export function predictMatrix(model: TrainedModel, x: Matrix): Float64Array {
  const w = outputWidth(model);
  const out = new Float64Array(x.rows * w);
  for (let i = 0; i < x.rows; i++) {
    const view = x.data.subarray(i * x.cols, (i + 1) * x.cols);
    predictRowInto(model, view, out.subarray(i * w, (i + 1) * w));
  }
  return out;
}

/** One row; allocates only the result. */
export function predictRow(model: TrainedModel, row: ArrayLike<number>): Float64Array {
  const out = new Float64Array(outputWidth(model));
  predictRowInto(model, row, out);
  return out;
}

/** One row into a caller-owned buffer of length outputWidth(model); allocates nothing. */
export function predictRowInto(model: TrainedModel, row: ArrayLike<number>, out: Float64Array): void {
  switch (model.kind) {
    case 'linear':
      return linearRow(model, row, out);
    case 'trees':
      return treesRow(model, row, out);
    case 'kmeans':
      out[0] = nearestCentroid(model, row);
      return;
  }
}

/** Class index (argmax of probabilities) per row, for classification models. */
export function predictClasses(model: TrainedModel, x: Matrix): Float64Array {
  const w = outputWidth(model);
  const p = predictMatrix(model, x);
  if (model.task !== 'classification') return p;
  const out = new Float64Array(x.rows);
  for (let i = 0; i < x.rows; i++) {
    let best = 0;
    for (let c = 1; c < w; c++) if (p[i * w + c] > p[i * w + best]) best = c;
    out[i] = best;
  }
  return out;
}

function linearRow(m: LinearModel, row: ArrayLike<number>, out: Float64Array): void {
  const d = m.coefficients.length / m.outputs;
  const binary = m.post === 'logistic' && m.outputs === 1 && m.task === 'classification';
  // binary: compute the margin into out[1], then turn it into [1 - p, p]
  const base = binary ? 1 : 0;
  for (let o = 0; o < m.outputs; o++) {
    let s = m.intercepts[o];
    const off = o * d;
    for (let j = 0; j < d; j++) s += m.coefficients[off + j] * row[j];
    out[base + o] = s;
  }
  finish(m.post, m.outputs, binary, out);
}

function treesRow(m: TreeEnsembleModel, row: ArrayLike<number>, out: Float64Array): void {
  const K = m.outputs;
  const binary = m.post === 'logistic' && K === 1 && m.task === 'classification';
  const base = binary ? 1 : 0;
  for (let o = 0; o < K; o++) out[base + o] = 0;
  const trees = m.trees;
  const to = m.treeOutput;
  for (let t = 0; t < trees.length; t++) {
    const tree = trees[t];
    const leaf = leafOf(tree, row);
    if (to) {
      out[base + to[t]] += tree.value[leaf];
    } else {
      const v = leaf * K;
      for (let o = 0; o < K; o++) out[base + o] += tree.value[v + o];
    }
  }
  finishEnsembleRow(m, trees.length, out, 0);
}

/** What turns an ensemble's tree sums into its outputs (plain data: it is posted to workers). */
export type EnsembleFinish = Pick<TreeEnsembleModel, 'task' | 'outputs' | 'post' | 'aggregate' | 'baseScore' | 'treeOutput'>;

/** A row's tree sums (from `at`, after the [1 - p] slot of binary models) → its outputs. */
export function finishEnsembleRow(m: EnsembleFinish, trees: number, out: Float64Array, at: number): void {
  const K = m.outputs;
  const binary = m.post === 'logistic' && K === 1 && m.task === 'classification';
  const base = at + (binary ? 1 : 0);
  if (m.aggregate === 'average' && trees > 0) {
    // each output is averaged over the trees that contribute to it
    const perOutput = m.treeOutput ? trees / K : trees;
    for (let o = 0; o < K; o++) out[base + o] /= perOutput;
  }
  for (let o = 0; o < K; o++) out[base + o] += m.baseScore[o] ?? 0;
  finish(m.post, K, binary, out, at);
}

/**
 * The leaf a row reaches. Loaded artifacts are validated as trees (artifact-limits.ts); the step
 * bound is the backstop that keeps a looping tree from spinning the thread forever.
 */
export function leafOf(tree: Tree, row: ArrayLike<number>): number {
  const { feature, threshold, left, right, missingLeft } = tree;
  let i = 0;
  let f = feature[0];
  let steps = feature.length;
  while (f >= 0) {
    if (--steps < 0) throw new Error('tree walk longer than the tree: the model artifact is corrupt');
    const v = row[f];
    if (v < threshold[i]) i = left[i];
    else if (v === v) i = right[i];
    else i = missingLeft[i] ? left[i] : right[i];
    f = feature[i];
  }
  return i;
}

function finish(post: 'none' | 'logistic' | 'softmax', K: number, binary: boolean, out: Float64Array, at = 0): void {
  if (post === 'logistic') {
    if (binary) {
      const p = sigmoid(out[at + 1]);
      out[at] = 1 - p;
      out[at + 1] = p;
    } else {
      for (let o = at; o < at + K; o++) out[o] = sigmoid(out[o]);
    }
  } else if (post === 'softmax') {
    let mx = -Infinity;
    for (let o = at; o < at + K; o++) if (out[o] > mx) mx = out[o];
    let s = 0;
    for (let o = at; o < at + K; o++) {
      out[o] = Math.exp(out[o] - mx);
      s += out[o];
    }
    for (let o = at; o < at + K; o++) out[o] /= s;
  }
}

function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

export function nearestCentroid(m: KMeansModel, row: ArrayLike<number>): number {
  const d = m.centroids.length / m.k;
  let best = 0;
  let bestD = Infinity;
  for (let c = 0; c < m.k; c++) {
    let s = 0;
    const off = c * d;
    for (let j = 0; j < d; j++) {
      const t = row[j] - m.centroids[off + j];
      s += t * t;
    }
    if (s < bestD) {
      bestD = s;
      best = c;
    }
  }
  return best;
}
