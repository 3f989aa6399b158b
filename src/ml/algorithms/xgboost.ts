/**
 * xgboost-compatible histogram gradient boosting (tree_method = hist, grow_policy = depthwise):
 * reg:squarederror, binary:logistic and multi:softmax (one tree per class and round).
 */
import type { Dataset, Task, TreeEnsembleModel } from '../model-types.ts';
import { MLInputError, numberParam, type Hyperparams } from '../hyperparams.ts';
import { binMatrix, computeCuts } from './binning.ts';
import { HistTreeBuilder, leafOfBinnedRow, type GrowParams, type GrownTree } from './hist-tree.ts';
import { addImportance, normaliseImportance, toTree } from './tree-convert.ts';
import { checkCancelled, numClassesOf, type FitContext } from './context.ts';
import { Rng } from './rng.ts';
import type { Tree } from '../model-types.ts';
import { defaultThreads } from './hist-pool.ts';
import { LEAF_WORDS, type UpdateBuffers } from './boost-update.ts';

/** n × d below which tree growth stays on the training thread (a helper would cost more) */
export const THREADED_MIN_CELLS = 400_000;

type Objective = 'reg:squarederror' | 'binary:logistic' | 'multi:softmax';

function objectiveFor(task: Task, k: number, requested: unknown): Objective {
  const natural: Objective = task === 'regression' ? 'reg:squarederror' : k > 2 ? 'multi:softmax' : 'binary:logistic';
  if (requested === null || requested === undefined) return natural;
  const r = requested === 'multi:softprob' ? 'multi:softmax' : requested;
  if (r !== natural) {
    throw new MLInputError(
      `objective "${String(requested)}" does not fit a ${task} task with ${k} classes`,
      `this training needs objective "${natural}"`,
      'leave objective out; it is chosen from the task',
    );
  }
  return natural;
}

export function fitXGBoost(task: Task, ds: Dataset, p: Hyperparams, ctx?: FitContext): TreeEnsembleModel {
  if (task === 'clustering') throw new MLInputError('xgboost does not support clustering');
  const { x, y } = ds;
  const n = x.rows;
  const d = x.cols;
  if (n === 0) throw new MLInputError('no training rows');
  const k = task === 'classification' ? numClassesOf(y, ctx) : 1;
  const objective = objectiveFor(task, k, p.objective);
  const outputs = objective === 'multi:softmax' ? k : 1;
  const grow: GrowParams = {
    lambda: numberParam(p, 'reg_lambda'),
    alpha: numberParam(p, 'reg_alpha'),
    minChildWeight: numberParam(p, 'min_child_weight'),
    minSplitHess: 0,
    maxDepth: numberParam(p, 'max_depth'),
    minGain: 1e-6,
    maxFeatures: d,
    rng: null,
  };

  const bm = binMatrix(x, computeCuts(x, numberParam(p, 'max_bin'), numberParam(p, 'random_state')));
  const threads = ctx?.threads ?? (n * d >= THREADED_MIN_CELLS ? defaultThreads() : 1);
  // one output over all rows: the tree builder's tasks apply each tree and compute gradients
  const fused = objective !== 'multi:softmax' && numberParam(p, 'subsample') >= 1;
  const update = fused ? updateBuffers(ds.y, objective === 'binary:logistic', grow.maxDepth, threads > 1) : undefined;
  const builder = new HistTreeBuilder(bm, 1, { threads, maxDepth: grow.maxDepth, update });
  try {
    return boost(task, ds, p, ctx, builder, bm, grow, objective, outputs, k, update);
  } finally {
    builder.release();
  }
}

function updateBuffers(y: Float64Array, logistic: boolean, maxDepth: number, shared: boolean): UpdateBuffers {
  const n = y.length;
  const alloc = (len: number) => new Float64Array(shared ? new SharedArrayBuffer(len * 8) : new ArrayBuffer(len * 8));
  const yy = alloc(n);
  yy.set(y);
  const nodes = Math.min(2 * n, 2 ** (Math.min(maxDepth, 16) + 1));
  return { margin: alloc(n), expNeg: alloc(logistic ? n : 0), y: yy, leaves: alloc(nodes * LEAF_WORDS) };
}

function boost(
  task: Task,
  ds: Dataset,
  p: Hyperparams,
  ctx: FitContext | undefined,
  builder: HistTreeBuilder,
  bm: ReturnType<typeof binMatrix>,
  grow: GrowParams,
  objective: Objective,
  outputs: number,
  k: number,
  update: UpdateBuffers | undefined,
): TreeEnsembleModel {
  const { x, y } = ds;
  const n = x.rows;
  const d = x.cols;
  const nEst = numberParam(p, 'n_estimators');
  const eta = numberParam(p, 'learning_rate');
  const subsample = numberParam(p, 'subsample');
  const colsample = numberParam(p, 'colsample_bytree');
  const rng = new Rng(numberParam(p, 'random_state'));
  const gamma = numberParam(p, 'gamma');
  const { gh, rows } = builder;

  const baseScore = new Float64Array(outputs);
  const userBase = p.base_score;
  if (objective === 'reg:squarederror') {
    let s = 0;
    for (let i = 0; i < n; i++) s += y[i];
    baseScore[0] = typeof userBase === 'number' ? userBase : s / n;
  } else if (objective === 'binary:logistic') {
    let s = 0;
    for (let i = 0; i < n; i++) s += y[i];
    const prior = typeof userBase === 'number' ? userBase : Math.min(1 - 1e-6, Math.max(1e-6, s / n));
    if (!(prior > 0 && prior < 1)) {
      throw new MLInputError('base_score must be in (0, 1) for binary:logistic', `got ${prior}`);
    }
    baseScore[0] = Math.log(prior / (1 - prior));
  } else if (typeof userBase === 'number') {
    baseScore.fill(userBase);
  }

  const margin = update ? update.margin : new Float64Array(n * outputs);
  for (let i = 0; i < n; i++) for (let o = 0; o < outputs; o++) margin[i * outputs + o] = baseScore[o];
  const prob = objective === 'multi:softmax' ? new Float64Array(n * k) : null;
  // binary:logistic keeps exp(-margin) per row, updated by one exp per leaf instead of per row
  const expNeg = objective !== 'binary:logistic' ? null : update ? update.expNeg : new Float64Array(n);
  expNeg?.fill(Math.exp(-baseScore[0]));
  // set when the last tree's update task already left the next gradients in gh and rows
  let gradientsReady = false;
  const inSample = new Uint8Array(n);
  const mask = new Uint8Array(d);
  const featIdx = new Int32Array(d);
  const importance = new Float64Array(d);
  const trees: Tree[] = [];
  const treeOutput: number[] = [];
  const rootSum = new Float64Array(2);

  for (let round = 0; round < nEst; round++) {
    checkCancelled(ctx);
    // rows of this round
    let m = 0;
    if (subsample < 1) {
      for (let i = 0; i < n; i++) {
        const take = rng.next() < subsample;
        inSample[i] = take ? 1 : 0;
        if (take) rows[m++] = i;
      }
      if (m === 0) {
        rows[m++] = rng.int(n);
        inSample[rows[0]] = 1;
      }
    }
    let featureMask: Uint8Array | null = null;
    if (colsample < 1) {
      const want = Math.max(1, Math.floor(colsample * d));
      for (let f = 0; f < d; f++) featIdx[f] = f;
      mask.fill(0);
      for (let i = 0; i < want; i++) {
        const j = i + rng.int(d - i);
        const t = featIdx[i];
        featIdx[i] = featIdx[j];
        featIdx[j] = t;
        mask[featIdx[i]] = 1;
      }
      featureMask = mask;
    }
    if (prob) softmaxRows(margin, prob, n, k);

    for (let o = 0; o < outputs; o++) {
      if (subsample >= 1) {
        m = n;
        if (!gradientsReady) for (let i = 0; i < n; i++) rows[i] = i;
      } else if (o > 0) {
        // partitioning permuted rows; restore the ascending sample
        let j = 0;
        for (let i = 0; i < n; i++) if (inSample[i]) rows[j++] = i;
      }
      if (!gradientsReady) fillGradients(objective, gh, rows, m, margin, prob, expNeg, y, o, outputs, rootSum);
      const t = builder.grow(m, featureMask, grow, rootSum);
      HistTreeBuilder.prune(t, gamma);
      gradientsReady = update !== undefined && builder.applyLeaves(t, eta, rootSum);
      if (!gradientsReady) applyTree(t, bm, rows, margin, expNeg, outputs, o, eta, subsample < 1 ? inSample : null);
      addImportance(t, importance);
      trees.push(toTree(t, 1, (node, out, at) => (out[at] = eta * t.weight[node])));
      treeOutput.push(o);
    }
    ctx?.progress?.((round + 1) / nEst);
  }

  return {
    kind: 'trees',
    task,
    trees,
    outputs,
    treeOutput: outputs > 1 ? Int32Array.from(treeOutput) : undefined,
    baseScore,
    aggregate: 'sum',
    post: objective === 'reg:squarederror' ? 'none' : objective === 'binary:logistic' ? 'logistic' : 'softmax',
    featureImportance: normaliseImportance(importance),
  };
}

function softmaxRows(margin: Float64Array, prob: Float64Array, n: number, k: number): void {
  for (let i = 0; i < n; i++) {
    const o = i * k;
    let mx = -Infinity;
    for (let c = 0; c < k; c++) if (margin[o + c] > mx) mx = margin[o + c];
    let s = 0;
    for (let c = 0; c < k; c++) {
      const e = Math.exp(margin[o + c] - mx);
      prob[o + c] = e;
      s += e;
    }
    for (let c = 0; c < k; c++) prob[o + c] /= s;
  }
}

function fillGradients(
  objective: Objective,
  gh: Float64Array,
  rows: Int32Array,
  m: number,
  margin: Float64Array,
  prob: Float64Array | null,
  expNeg: Float64Array | null,
  y: Float64Array,
  o: number,
  outputs: number,
  sum: Float64Array,
): void {
  // sum: gradient and hessian totals in row order (the tree builder's root sums)
  let sg = 0;
  let sh = 0;
  if (objective === 'reg:squarederror') {
    for (let i = 0; i < m; i++) {
      const r = rows[i];
      const g = margin[r] - y[r];
      gh[2 * r] = g;
      gh[2 * r + 1] = 1;
      sg += g;
      sh += 1;
    }
  } else if (objective === 'binary:logistic') {
    for (let i = 0; i < m; i++) {
      const r = rows[i];
      const pr = 1 / (1 + expNeg![r]);
      const g = pr - y[r];
      const h = Math.max(pr * (1 - pr), 1e-16);
      gh[2 * r] = g;
      gh[2 * r + 1] = h;
      sg += g;
      sh += h;
    }
  } else {
    for (let i = 0; i < m; i++) {
      const r = rows[i];
      const pr = prob![r * outputs + o];
      const g = pr - (y[r] === o ? 1 : 0);
      const h = Math.max(2 * pr * (1 - pr), 1e-16);
      gh[2 * r] = g;
      gh[2 * r + 1] = h;
      sg += g;
      sh += h;
    }
  }
  sum[0] = sg;
  sum[1] = sh;
}

/** Adds the new tree's output to the margins: by leaf row ranges, or by routing unsampled rows. */
function applyTree(
  t: GrownTree,
  bm: ReturnType<typeof binMatrix>,
  rows: Int32Array,
  margin: Float64Array,
  expNeg: Float64Array | null,
  outputs: number,
  o: number,
  eta: number,
  inSample: Uint8Array | null,
): void {
  // walk from the root: pruned splits are leaves whose old children are unreachable
  const stack = [0];
  while (stack.length) {
    const i = stack.pop()!;
    if (t.feature[i] >= 0) {
      stack.push(t.left[i], t.right[i]);
      continue;
    }
    const v = eta * t.weight[i];
    // the node's rows in both shards
    for (let k = 2 * i; k <= 2 * i + 1; k++) {
      const s = t.start[k];
      const e = t.end[k];
      if (expNeg) {
        const ev = Math.exp(-v);
        for (let j = s; j < e; j++) {
          const r = rows[j];
          margin[r] += v;
          expNeg[r] = updateExpNeg(expNeg[r], ev, margin[r]);
        }
      } else {
        for (let j = s; j < e; j++) margin[rows[j] * outputs + o] += v;
      }
    }
  }
  if (inSample) {
    for (let r = 0; r < bm.rows; r++) {
      if (inSample[r]) continue;
      const v = eta * t.weight[leafOfBinnedRow(t, bm, r)];
      margin[r * outputs + o] += v;
      if (expNeg) expNeg[r] = updateExpNeg(expNeg[r], Math.exp(-v), margin[r]);
    }
  }
}

/** exp(-margin) from its previous value; recomputed where the product left the normal range */
function updateExpNeg(prev: number, factor: number, margin: number): number {
  const x = prev * factor;
  return x > 1e-300 && x < 1e300 ? x : Math.exp(-margin);
}
