/**
 * Straightforward reference semantics of the model contract (model-types.ts) on the raw input
 * contract (raw-input.ts), in float64, used as the oracle for exported ONNX models.
 */
import type { ColumnPreprocessor, ModelMetadata, TrainedModel, Tree } from '../../src/ml/model-types.ts';

export function refFeatures(meta: ModelMetadata, raw: ArrayLike<number>): number[] {
  if (meta.columns.length === 0) return Array.from(raw);
  const out: number[] = [];
  let p = 0;
  const scale = (c: ColumnPreprocessor, e: number, v: number) => (v - (c.offset[e] ?? 0)) * (c.factor[e] ?? 1);
  for (const c of meta.columns) {
    if (c.kind !== 'text') {
      for (let e = 0; e < c.width; e++) {
        const r = raw[p++];
        const v = Number.isNaN(r) ? (c.imputeValue[e] ?? NaN) : r;
        out.push(scale(c, e, v));
      }
      continue;
    }
    const r = raw[p++];
    const unknownIsNull = c.encode === 'native' || c.encode === 'ordinal';
    const code = Number.isNaN(r) || (unknownIsNull && r === -1) ? (c.imputeValue[0] ?? NaN) : r;
    const k = c.categories?.length ?? 0;
    if (c.encode === 'one_hot') {
      for (let j = 0; j < k; j++) out.push(scale(c, j, code === j ? 1 : 0));
    } else if (c.encode === 'target') {
      const m = Number.isInteger(code) && code >= 0 && code < k ? c.targetMeans![code] : c.targetPrior!;
      out.push(scale(c, 0, m));
    } else {
      out.push(scale(c, 0, code));
    }
  }
  return out;
}

function walk(tree: Tree, x: number[]): number {
  let i = 0;
  while (tree.feature[i] >= 0) {
    const v = x[tree.feature[i]];
    const goLeft = Number.isNaN(v) ? tree.missingLeft[i] === 1 : v < tree.threshold[i];
    i = goLeft ? tree.left[i] : tree.right[i];
  }
  return i;
}

export interface RefPrediction {
  values: number[];
  probabilities?: number[];
  label?: number;
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
function softmax(z: number[]): number[] {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}
function argmax(v: number[]): number {
  let b = 0;
  for (let j = 1; j < v.length; j++) if (v[j] > v[b]) b = j;
  return b;
}

export function refPredict(model: TrainedModel, x: number[]): RefPrediction {
  if (model.kind === 'kmeans') {
    const d = x.length;
    const dist: number[] = [];
    for (let c = 0; c < model.k; c++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += (x[j] - model.centroids[c * d + j]) ** 2;
      dist.push(s);
    }
    let best = 0;
    for (let c = 1; c < model.k; c++) if (dist[c] < dist[best]) best = c;
    return { values: [best], probabilities: dist, label: best };
  }
  let scores: number[];
  if (model.kind === 'linear') {
    const d = x.length;
    scores = Array.from({ length: model.outputs }, (_, o) => {
      let s = model.intercepts[o];
      for (let j = 0; j < d; j++) s += model.coefficients[o * d + j] * x[j];
      return s;
    });
  } else {
    scores = new Array(model.outputs).fill(0);
    model.trees.forEach((tree, t) => {
      const leaf = walk(tree, x);
      const width = tree.value.length / tree.feature.length;
      if (model.treeOutput) {
        const o = model.treeOutput[t];
        scores[o] += width === 1 ? tree.value[leaf] : tree.value[leaf * model.outputs + o];
      } else {
        for (let o = 0; o < model.outputs; o++) scores[o] += tree.value[leaf * model.outputs + o];
      }
    });
    // a treeOutput ensemble averages each output over the trees.length / outputs trees feeding it
    const perOutput = model.treeOutput ? model.trees.length / model.outputs : model.trees.length;
    if (model.aggregate === 'average') scores = scores.map((s) => s / perOutput);
    scores = scores.map((s, o) => s + (model.baseScore[o] ?? 0));
  }
  if (model.task !== 'classification') {
    const v = model.post === 'logistic' ? scores.map(sigmoid) : model.post === 'softmax' ? softmax(scores) : scores;
    return { values: v };
  }
  let probs: number[];
  if (scores.length === 1) {
    const s = scores[0];
    if (model.kind === 'linear') probs = model.post === 'logistic' ? [sigmoid(-s), sigmoid(s)] : [-s, s];
    else { const p = model.post === 'logistic' ? sigmoid(s) : s; probs = [1 - p, p]; }
  } else {
    probs = model.post === 'softmax' ? softmax(scores) : model.post === 'logistic' ? scores.map(sigmoid) : scores;
  }
  const label = argmax(probs);
  return { values: [label], probabilities: probs, label };
}

export function refPredictRaw(model: TrainedModel, meta: ModelMetadata, raw: ArrayLike<number>): RefPrediction {
  return refPredict(model, refFeatures(meta, raw));
}
