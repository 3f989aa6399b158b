/**
 * decision_tree and random_forest on the histogram builder: gradients g = -w·target,
 * hessian = w (bootstrap multiplicity), lambda = 0, so the split score is squared-error
 * (regression) or Gini (classification, one channel per class) reduction and leaf weights are
 * means / class frequencies. Regression targets are standardised while growing so the gain
 * threshold does not depend on the target's units.
 */
import type { Dataset, Task, Tree, TreeEnsembleModel } from '../model-types.ts';
import { numberParam, type Hyperparams } from '../hyperparams.ts';
import { binMatrix, computeCuts } from './binning.ts';
import { HistTreeBuilder, type GrowParams } from './hist-tree.ts';
import { addImportance, normaliseImportance, toTree } from './tree-convert.ts';
import { checkCancelled, numClassesOf, type FitContext } from './context.ts';
import { Rng } from './rng.ts';
import { MLInputError } from '../hyperparams.ts';

/** sklearn's max_features: 'sqrt' | 'log2' | int count | float fraction | null (all). */
export function maxFeaturesCount(v: unknown, d: number): number {
  if (v === null || v === undefined) return d;
  if (v === 'sqrt') return Math.max(1, Math.floor(Math.sqrt(d)));
  if (v === 'log2') return Math.max(1, Math.floor(Math.log2(d)));
  if (typeof v === 'number') {
    if (Number.isInteger(v) && v > 1) return Math.min(d, v);
    return Math.max(1, Math.floor(v * d));
  }
  throw new MLInputError(`invalid max_features ${JSON.stringify(v)}`);
}

export function fitForest(
  task: Task,
  ds: Dataset,
  p: Hyperparams,
  ctx: FitContext | undefined,
  single: boolean,
): TreeEnsembleModel {
  if (task === 'clustering') throw new MLInputError('tree models do not support clustering');
  const { x, y } = ds;
  const n = x.rows;
  const d = x.cols;
  if (n === 0) throw new MLInputError('no training rows');
  const classification = task === 'classification';
  const K = classification ? numClassesOf(y, ctx) : 1;
  const nTrees = single ? 1 : numberParam(p, 'n_estimators');
  const bootstrap = !single && p.bootstrap !== false;
  const rng = new Rng(numberParam(p, 'random_state'));
  const maxDepth = typeof p.max_depth === 'number' ? p.max_depth : 512;
  const grow: GrowParams = {
    lambda: 0,
    alpha: 0,
    minChildWeight: numberParam(p, 'min_samples_leaf'),
    minSplitHess: numberParam(p, 'min_samples_split'),
    maxDepth,
    minGain: 1e-9,
    maxFeatures: maxFeaturesCount(p.max_features, d),
    rng,
  };

  let yMean = 0;
  let yScale = 1;
  if (!classification) {
    for (let i = 0; i < n; i++) yMean += y[i];
    yMean /= n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (y[i] - yMean) ** 2;
    const sd = Math.sqrt(v / n);
    yScale = sd > 0 ? sd : 1;
  }

  const bm = binMatrix(x, computeCuts(x, numberParam(p, 'max_bin'), numberParam(p, 'random_state')));
  const builder = new HistTreeBuilder(bm, K);
  const { gh, rows } = builder;
  const S = K + 1;
  const weight = new Float64Array(n);
  const importance = new Float64Array(d);
  const trees: Tree[] = [];

  for (let t = 0; t < nTrees; t++) {
    checkCancelled(ctx);
    if (bootstrap) {
      weight.fill(0);
      for (let i = 0; i < n; i++) weight[rng.int(n)]++;
    } else {
      weight.fill(1);
    }
    let m = 0;
    gh.fill(0);
    for (let r = 0; r < n; r++) {
      const w = weight[r];
      if (w === 0) continue;
      rows[m++] = r;
      const o = r * S;
      if (classification) gh[o + y[r]] = -w;
      else gh[o] = (-w * (y[r] - yMean)) / yScale;
      gh[o + K] = w;
    }
    const grown = builder.grow(m, null, grow);
    addImportance(grown, importance);
    trees.push(
      toTree(grown, K, (node, out, at) => {
        for (let c = 0; c < K; c++) {
          const v = grown.weight[node * K + c];
          out[at + c] = classification ? v : v * yScale + yMean;
        }
      }),
    );
    ctx?.progress?.((t + 1) / nTrees);
  }
  return {
    kind: 'trees',
    task,
    trees,
    outputs: K,
    baseScore: new Float64Array(K),
    aggregate: 'average',
    post: 'none',
    featureImportance: normaliseImportance(importance),
  };
}
