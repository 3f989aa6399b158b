/**
 * Test metrics under PostgresML's keys. Classification averages are macro over the labels
 * present in y_true or y_pred (scikit-learn's behaviour, zero_division = 0).
 */
import type { Matrix, Task, TrainedModel } from './model-types.ts';
import { outputWidth, predictMatrix } from './predict-native.ts';
import { Rng } from './algorithms/rng.ts';

export function regressionMetrics(yTrue: Float64Array, yPred: Float64Array): Record<string, number> {
  const n = yTrue.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += yTrue[i];
  mean /= n;
  let ssRes = 0;
  let ssTot = 0;
  let abs = 0;
  for (let i = 0; i < n; i++) {
    const e = yTrue[i] - yPred[i];
    ssRes += e * e;
    abs += Math.abs(e);
    ssTot += (yTrue[i] - mean) ** 2;
  }
  // sklearn: constant y_true gives 1 for a perfect fit, else 0
  const r2 = ssTot === 0 ? (ssRes === 0 ? 1 : 0) : 1 - ssRes / ssTot;
  return { r2, mean_absolute_error: abs / n, mean_squared_error: ssRes / n };
}

/**
 * yTrue: class indices; proba: n × k class probabilities (row-major). roc_auc and log_loss are
 * reported for binary problems (k = 2) only, like PostgresML.
 */
export function classificationMetrics(yTrue: Float64Array, proba: Float64Array, k: number): Record<string, number> {
  const n = yTrue.length;
  const yPred = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (proba[i * k + c] > proba[i * k + best]) best = c;
    yPred[i] = best;
  }
  const out = labelMetrics(yTrue, yPred, k);
  if (k === 2) {
    const p1 = new Float64Array(n);
    for (let i = 0; i < n; i++) p1[i] = proba[i * 2 + 1];
    out.roc_auc = rocAuc(yTrue, p1);
    out.log_loss = logLoss(yTrue, p1);
  }
  return out;
}

/** accuracy, f1, precision, recall (macro) and mcc from hard labels. */
export function labelMetrics(yTrue: Float64Array, yPred: Float64Array, k: number): Record<string, number> {
  const n = yTrue.length;
  const cm = new Float64Array(k * k);
  for (let i = 0; i < n; i++) cm[yTrue[i] * k + yPred[i]]++;
  let correct = 0;
  for (let c = 0; c < k; c++) correct += cm[c * k + c];
  const t = new Float64Array(k);
  const p = new Float64Array(k);
  for (let a = 0; a < k; a++) {
    for (let b = 0; b < k; b++) {
      t[a] += cm[a * k + b];
      p[b] += cm[a * k + b];
    }
  }
  let precision = 0;
  let recall = 0;
  let f1 = 0;
  let labels = 0;
  for (let c = 0; c < k; c++) {
    if (t[c] === 0 && p[c] === 0) continue;
    labels++;
    const tp = cm[c * k + c];
    const pc = p[c] > 0 ? tp / p[c] : 0;
    const rc = t[c] > 0 ? tp / t[c] : 0;
    precision += pc;
    recall += rc;
    f1 += pc + rc > 0 ? (2 * pc * rc) / (pc + rc) : 0;
  }
  // multiclass Matthews correlation (Gorodkin's R_k), as sklearn
  let tk = 0;
  let pk = 0;
  let tt = 0;
  for (let c = 0; c < k; c++) {
    tk += t[c] * p[c];
    pk += p[c] * p[c];
    tt += t[c] * t[c];
  }
  const denom = Math.sqrt((n * n - pk) * (n * n - tt));
  const mcc = denom === 0 ? 0 : (correct * n - tk) / denom;
  const L = Math.max(1, labels);
  return { accuracy: correct / n, f1: f1 / L, precision: precision / L, recall: recall / L, mcc };
}

/** Area under the ROC curve (Mann-Whitney U with average ranks for ties). */
export function rocAuc(yTrue: Float64Array, score: Float64Array): number {
  const n = yTrue.length;
  const idx = Int32Array.from({ length: n }, (_, i) => i).sort((a, b) => score[a] - score[b]);
  let pos = 0;
  let rankSum = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && score[idx[j + 1]] === score[idx[i]]) j++;
    const rank = (i + j) / 2 + 1;
    for (let q = i; q <= j; q++) {
      if (yTrue[idx[q]] === 1) {
        pos++;
        rankSum += rank;
      }
    }
    i = j + 1;
  }
  const neg = n - pos;
  if (pos === 0 || neg === 0) return NaN;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

export function logLoss(yTrue: Float64Array, p1: Float64Array): number {
  const eps = 1e-15;
  let s = 0;
  for (let i = 0; i < yTrue.length; i++) {
    const p = Math.min(1 - eps, Math.max(eps, p1[i]));
    s -= yTrue[i] === 1 ? Math.log(p) : Math.log(1 - p);
  }
  return s / yTrue.length;
}

/**
 * Mean silhouette coefficient (euclidean). For more than sampleSize rows a seeded random
 * sample is scored, as sklearn's silhouette_score(sample_size=...).
 */
export function silhouette(x: Matrix, labels: Float64Array, sampleSize = 3000, seed = 0): number {
  const { rows: n, cols: d, data } = x;
  let idx = Int32Array.from({ length: n }, (_, i) => i);
  if (n > sampleSize) idx = new Rng(seed).shuffle(idx).slice(0, sampleSize);
  const m = idx.length;
  let k = 0;
  for (let i = 0; i < m; i++) k = Math.max(k, labels[idx[i]] + 1);
  const size = new Float64Array(k);
  for (let i = 0; i < m; i++) size[labels[idx[i]]]++;
  let present = 0;
  for (let c = 0; c < k; c++) if (size[c] > 0) present++;
  if (present < 2 || present >= m) return NaN;
  const sums = new Float64Array(k);
  let total = 0;
  for (let a = 0; a < m; a++) {
    sums.fill(0);
    const ia = idx[a];
    for (let b = 0; b < m; b++) {
      if (a === b) continue;
      const ib = idx[b];
      let s = 0;
      for (let j = 0; j < d; j++) {
        const t = data[ia * d + j] - data[ib * d + j];
        s += t * t;
      }
      sums[labels[ib]] += Math.sqrt(s);
    }
    const own = labels[ia];
    if (size[own] <= 1) continue; // silhouette of a singleton is 0
    const aDist = sums[own] / (size[own] - 1);
    let bDist = Infinity;
    for (let c = 0; c < k; c++) if (c !== own && size[c] > 0) bDist = Math.min(bDist, sums[c] / size[c]);
    const den = Math.max(aDist, bDist);
    total += den > 0 ? (bDist - aDist) / den : 0;
  }
  return total / m;
}

/** Test metrics for a model on (x, y), by task (train with FitContext.numClasses so widths match). */
export function evaluateModel(task: Task, model: TrainedModel, x: Matrix, y: Float64Array): Record<string, number> {
  if (task === 'regression') return regressionMetrics(y, predictMatrix(model, x));
  if (task === 'classification') return classificationMetrics(y, predictMatrix(model, x), outputWidth(model));
  return { silhouette: silhouette(x, predictMatrix(model, x)) };
}
