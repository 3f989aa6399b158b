/**
 * L2 logistic regression as sklearn's LogisticRegression(solver='lbfgs'): minimises
 * mean log loss + ||W||² / (2·C·n), intercepts unpenalised; binary = one logistic output,
 * multiclass = multinomial softmax over k outputs.
 *
 * The optimiser runs on standardised features (far better conditioning, so L-BFGS converges
 * in few passes even on raw, unscaled columns) with the penalty expressed on the original
 * coefficients, so the optimum is exactly the unstandardised problem's.
 */
import type { Dataset, LinearModel } from '../model-types.ts';
import { numberParam, type Hyperparams } from '../hyperparams.ts';
import { checkCancelled, numClassesOf, type FitContext } from './context.ts';
import { lbfgs } from './lbfgs.ts';

export function fitLogistic(ds: Dataset, p: Hyperparams, ctx?: FitContext): LinearModel {
  const { data, rows: n, cols: d } = ds.x;
  const y = ds.y;
  const k = numClassesOf(y, ctx);
  const outputs = k === 2 ? 1 : k;
  const C = numberParam(p, 'C');
  const penalised = p.penalty !== 'none';
  const fitIntercept = p.fit_intercept !== false;
  const maxIter = numberParam(p, 'max_iter');
  const tol = numberParam(p, 'tol');

  const mean = new Float64Array(d);
  const scale = new Float64Array(d).fill(1);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += data[i * d + j];
  for (let j = 0; j < d; j++) mean[j] /= Math.max(1, n);
  const vars = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const t = data[i * d + j] - mean[j];
      vars[j] += t * t;
    }
  }
  for (let j = 0; j < d; j++) {
    const sd = Math.sqrt(vars[j] / Math.max(1, n));
    scale[j] = sd > 1e-12 ? sd : 1;
    if (!fitIntercept) {
      // without an intercept, centring would change the model family
      mean[j] = 0;
    }
  }
  const z = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) z[i * d + j] = (data[i * d + j] - mean[j]) / scale[j];

  // parameters: per output o, d weights then the intercept
  const P = outputs * (d + 1);
  const reg = penalised ? 1 / (C * Math.max(1, n)) : 0;
  const regW = new Float64Array(d);
  for (let j = 0; j < d; j++) regW[j] = reg / (scale[j] * scale[j]);
  const margins = new Float64Array(outputs);
  const invN = 1 / Math.max(1, n);

  const evaluate = (w: Float64Array, grad: Float64Array): number => {
    grad.fill(0);
    let loss = 0;
    for (let i = 0; i < n; i++) {
      const zo = i * d;
      for (let o = 0; o < outputs; o++) {
        const wo = o * (d + 1);
        let s = fitIntercept ? w[wo + d] : 0;
        for (let j = 0; j < d; j++) s += w[wo + j] * z[zo + j];
        margins[o] = s;
      }
      const yi = y[i];
      if (outputs === 1) {
        const m = margins[0];
        // log(1 + e^m) - y·m, computed stably
        loss += (m > 0 ? m + Math.log1p(Math.exp(-m)) : Math.log1p(Math.exp(m))) - yi * m;
        const r = 1 / (1 + Math.exp(-m)) - yi;
        for (let j = 0; j < d; j++) grad[j] += r * z[zo + j];
        grad[d] += r;
      } else {
        let mx = -Infinity;
        for (let o = 0; o < outputs; o++) if (margins[o] > mx) mx = margins[o];
        let s = 0;
        for (let o = 0; o < outputs; o++) s += Math.exp(margins[o] - mx);
        const lse = mx + Math.log(s);
        loss += lse - margins[yi];
        for (let o = 0; o < outputs; o++) {
          const r = Math.exp(margins[o] - lse) - (o === yi ? 1 : 0);
          const wo = o * (d + 1);
          for (let j = 0; j < d; j++) grad[wo + j] += r * z[zo + j];
          grad[wo + d] += r;
        }
      }
    }
    loss *= invN;
    for (let q = 0; q < P; q++) grad[q] *= invN;
    for (let o = 0; o < outputs; o++) {
      const wo = o * (d + 1);
      for (let j = 0; j < d; j++) {
        loss += 0.5 * regW[j] * w[wo + j] * w[wo + j];
        grad[wo + j] += regW[j] * w[wo + j];
      }
      if (!fitIntercept) grad[wo + d] = 0;
    }
    return loss;
  };

  const w = lbfgs(evaluate, new Float64Array(P), {
    maxIter,
    gtol: tol,
    onIteration: (it) => {
      checkCancelled(ctx);
      ctx?.progress?.(Math.min(1, it / maxIter));
    },
  });

  // back to the original feature space
  const coefficients = new Float64Array(outputs * d);
  const intercepts = new Float64Array(outputs);
  for (let o = 0; o < outputs; o++) {
    const wo = o * (d + 1);
    let b = fitIntercept ? w[wo + d] : 0;
    for (let j = 0; j < d; j++) {
      const c = w[wo + j] / scale[j];
      coefficients[o * d + j] = c;
      b -= c * mean[j];
    }
    intercepts[o] = b;
  }
  return {
    kind: 'linear',
    task: 'classification',
    coefficients,
    intercepts,
    outputs,
    post: outputs === 1 ? 'logistic' : 'softmax',
  };
}
