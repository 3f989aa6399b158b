/**
 * Linear regression family on centred data (the intercept is never penalised, as in sklearn):
 * linear = OLS by Cholesky on the Gram matrix (tiny ridge if singular), ridge = (XᵀX + αI)w = Xᵀy,
 * lasso / elastic_net = coordinate descent on sklearn's objective
 * 1/(2n)·||y − Xw||² + α·l1_ratio·||w||₁ + α·(1 − l1_ratio)/2·||w||², with Gram-matrix updates.
 */
import type { Dataset, LinearModel } from '../model-types.ts';
import { numberParam, type Hyperparams } from '../hyperparams.ts';
import { checkCancelled, type FitContext } from './context.ts';

interface Moments {
  n: number;
  d: number;
  xMean: Float64Array;
  yMean: number;
  /** centred XᵀX, d × d, full symmetric */
  gram: Float64Array;
  /** centred Xᵀy */
  xty: Float64Array;
}

function moments(ds: Dataset, center: boolean): Moments {
  const { data, rows: n, cols: d } = ds.x;
  const y = ds.y;
  const xMean = new Float64Array(d);
  let yMean = 0;
  if (center && n > 0) {
    for (let i = 0; i < n; i++) {
      const o = i * d;
      for (let j = 0; j < d; j++) xMean[j] += data[o + j];
      yMean += y[i];
    }
    for (let j = 0; j < d; j++) xMean[j] /= n;
    yMean /= n;
  }
  const gram = new Float64Array(d * d);
  const xty = new Float64Array(d);
  const row = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const o = i * d;
    for (let j = 0; j < d; j++) row[j] = data[o + j] - xMean[j];
    const yi = y[i] - yMean;
    for (let j = 0; j < d; j++) {
      const v = row[j];
      xty[j] += v * yi;
      const gj = j * d;
      for (let k = 0; k <= j; k++) gram[gj + k] += v * row[k];
    }
  }
  for (let j = 0; j < d; j++) for (let k = 0; k < j; k++) gram[k * d + j] = gram[j * d + k];
  return { n, d, xMean, yMean, gram, xty };
}

/** Solves A w = b for symmetric positive definite A (d × d); null if not positive definite. */
export function choleskySolve(A: Float64Array, b: Float64Array, d: number): Float64Array | null {
  const L = new Float64Array(d * d);
  for (let j = 0; j < d; j++) {
    let s = A[j * d + j];
    for (let k = 0; k < j; k++) s -= L[j * d + k] * L[j * d + k];
    if (!(s > 0)) return null;
    const ljj = Math.sqrt(s);
    L[j * d + j] = ljj;
    for (let i = j + 1; i < d; i++) {
      let t = A[i * d + j];
      for (let k = 0; k < j; k++) t -= L[i * d + k] * L[j * d + k];
      L[i * d + j] = t / ljj;
    }
  }
  const z = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    let s = b[i];
    for (let k = 0; k < i; k++) s -= L[i * d + k] * z[k];
    z[i] = s / L[i * d + i];
  }
  const w = new Float64Array(d);
  for (let i = d - 1; i >= 0; i--) {
    let s = z[i];
    for (let k = i + 1; k < d; k++) s -= L[k * d + i] * w[k];
    w[i] = s / L[i * d + i];
  }
  return w;
}

function solveRidge(m: Moments, alpha: number): Float64Array {
  const { d, gram, xty } = m;
  if (d === 0) return new Float64Array(0);
  let trace = 0;
  for (let j = 0; j < d; j++) trace += gram[j * d + j];
  let extra = 0;
  for (let attempt = 0; attempt < 12; attempt++) {
    const A = gram.slice();
    for (let j = 0; j < d; j++) A[j * d + j] += alpha + extra;
    const w = choleskySolve(A, xty, d);
    if (w && w.every(Number.isFinite)) return w;
    // singular (collinear or constant features): fall back to a tiny, growing ridge
    extra = extra === 0 ? 1e-10 * (trace / d + 1) : extra * 100;
  }
  return new Float64Array(d);
}

function model(m: Moments, w: Float64Array): LinearModel {
  let b = m.yMean;
  for (let j = 0; j < m.d; j++) b -= w[j] * m.xMean[j];
  return {
    kind: 'linear',
    task: 'regression',
    coefficients: w,
    intercepts: Float64Array.of(b),
    outputs: 1,
    post: 'none',
  };
}

export function fitLinear(ds: Dataset, p: Hyperparams): LinearModel {
  const m = moments(ds, p.fit_intercept !== false);
  return model(m, solveRidge(m, 0));
}

export function fitRidge(ds: Dataset, p: Hyperparams): LinearModel {
  const m = moments(ds, p.fit_intercept !== false);
  return model(m, solveRidge(m, numberParam(p, 'alpha')));
}

export function fitElasticNet(ds: Dataset, p: Hyperparams, ctx?: FitContext, l1Ratio?: number): LinearModel {
  const m = moments(ds, p.fit_intercept !== false);
  const { n, d, gram, xty } = m;
  const alpha = numberParam(p, 'alpha');
  const l1 = l1Ratio ?? numberParam(p, 'l1_ratio');
  const maxIter = numberParam(p, 'max_iter');
  const tol = numberParam(p, 'tol');
  const w = new Float64Array(d);
  // q = (Gram / n) · w, kept up to date as coordinates move
  const q = new Float64Array(d);
  const l1Pen = alpha * l1;
  const l2Pen = alpha * (1 - l1);
  const inv = n > 0 ? 1 / n : 0;
  for (let iter = 0; iter < maxIter; iter++) {
    if ((iter & 63) === 0) checkCancelled(ctx);
    let maxDelta = 0;
    let maxW = 0;
    for (let j = 0; j < d; j++) {
      const gjj = gram[j * d + j] * inv;
      if (gjj === 0 && l2Pen === 0) continue;
      const old = w[j];
      const rho = xty[j] * inv - q[j] + gjj * old;
      const nw = softThreshold(rho, l1Pen) / (gjj + l2Pen);
      const delta = nw - old;
      if (delta !== 0) {
        w[j] = nw;
        for (let k = 0; k < d; k++) q[k] += delta * gram[k * d + j] * inv;
      }
      maxDelta = Math.max(maxDelta, Math.abs(delta));
      maxW = Math.max(maxW, Math.abs(nw));
    }
    ctx?.progress?.((iter + 1) / maxIter);
    if (maxW === 0 || maxDelta / maxW < tol) break;
  }
  return model(m, w);
}

export function fitLasso(ds: Dataset, p: Hyperparams, ctx?: FitContext): LinearModel {
  return fitElasticNet(ds, p, ctx, 1);
}

function softThreshold(x: number, t: number): number {
  return x > t ? x - t : x < -t ? x + t : 0;
}
