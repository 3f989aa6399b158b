/**
 * Hyperparameter search as PostgresML: search grid | random over search_params, k-fold CV on
 * the training split (contiguous folds, like PostgresML's Dataset::fold), the candidate with
 * the best mean key metric wins and is refit on the whole training split by the caller.
 */
import type { Dataset, Task } from './model-types.ts';
import { KEY_METRIC, MLInputError, resolveHyperparams, type HyperValue } from './hyperparams.ts';
import { fitAlgorithm } from './algorithms/index.ts';
import type { FitContext } from './algorithms/context.ts';
import { evaluateModel } from './metrics.ts';
import { Rng } from './algorithms/rng.ts';

export type SearchKind = 'grid' | 'random';

export interface SearchRequest {
  task: Task;
  algorithm: string;
  /** the user's fixed hyperparameters (raw, unresolved) */
  hyperparams: Record<string, unknown>;
  search: SearchKind;
  search_params: Record<string, unknown>;
  search_args?: Record<string, unknown>;
  train: Dataset;
  seed?: number;
  ctx?: FitContext;
}

/** PostgresML's metrics.search_results layout. */
export interface SearchResults {
  params: Record<string, HyperValue>[];
  n_splits: number;
  best_index: number;
  mean_fit_time: number[];
  std_fit_time: number[];
  mean_score_time: number[];
  std_score_time: number[];
  mean_test_score: number[];
  std_test_score: number[];
  [key: `split${number}_test_score` | `param_${string}`]: unknown;
}

export interface SearchOutcome {
  /** winning hyperparameters as the user would write them (fixed + searched) */
  best: Record<string, HyperValue>;
  results: SearchResults;
}

const MAX_GRID = 10_000;

export function parseSearchArgs(args: Record<string, unknown> | undefined, search: SearchKind | null): { nIter: number; cv: number } {
  let nIter = 10;
  let cv = search ? 5 : 1;
  for (const [k, v] of Object.entries(args ?? {})) {
    if (k !== 'n_iter' && k !== 'cv') {
      throw new MLInputError(`unknown search_args key "${k}"`, 'valid search_args: n_iter, cv');
    }
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
      throw new MLInputError(`search_args ${k} must be a positive integer`, `got ${JSON.stringify(v)}`);
    }
    if (k === 'n_iter') nIter = v;
    else cv = v;
  }
  return { nIter, cv };
}

/** All candidates: fixed hyperparams merged with each combination of the searched values. */
export function candidates(
  hyperparams: Record<string, unknown>,
  searchParams: Record<string, unknown>,
  search: SearchKind,
  nIter: number,
  seed: number,
): Record<string, HyperValue>[] {
  const names = Object.keys(searchParams);
  const values: HyperValue[][] = names.map((name) => {
    if (name in hyperparams) {
      throw new MLInputError(`"${name}" cannot be in both hyperparams and search_params`, '', 'choose one or the other');
    }
    const v = searchParams[name];
    if (!Array.isArray(v) || v.length === 0) {
      throw new MLInputError(`search_params "${name}" must be a non-empty array of values`, `got ${JSON.stringify(v)}`);
    }
    return v as HyperValue[];
  });
  const total = values.reduce((a, v) => a * v.length, 1);
  let picks: number[];
  if (search === 'random') {
    const k = Math.min(nIter, total);
    const chosen = new Set<number>();
    const rng = new Rng(seed);
    if (total <= 4 * k) {
      const all = rng.shuffle(Int32Array.from({ length: total }, (_, i) => i));
      picks = Array.from(all.subarray(0, k));
    } else {
      while (chosen.size < k) chosen.add(rng.int(total));
      picks = [...chosen];
    }
  } else {
    if (total > MAX_GRID) {
      throw new MLInputError(`the search grid has ${total} combinations`, `the limit is ${MAX_GRID}`, 'use search => random with search_args n_iter');
    }
    picks = Array.from({ length: total }, (_, i) => i);
  }
  return picks.map((code) => {
    const c: Record<string, HyperValue> = { ...(hyperparams as Record<string, HyperValue>) };
    // mixed-radix decode: the last name varies fastest, like itertools.product
    for (let j = names.length - 1; j >= 0; j--) {
      const len = values[j].length;
      c[names[j]] = values[j][code % len];
      code = Math.floor(code / len);
    }
    return c;
  });
}

function mean(v: number[]): number {
  return v.reduce((a, b) => a + b, 0) / v.length;
}

function std(v: number[]): number {
  const m = mean(v);
  return Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length);
}

/** k contiguous folds: returns, for fold f, the [start, end) of its validation rows. */
export function foldBounds(n: number, k: number, f: number): [number, number] {
  return [Math.floor((f * n) / k), Math.floor(((f + 1) * n) / k)];
}

export function runSearch(req: SearchRequest): SearchOutcome {
  const { task, algorithm, train } = req;
  const { nIter, cv } = parseSearchArgs(req.search_args, req.search);
  const cands = candidates(req.hyperparams, req.search_params, req.search, nIter, req.seed ?? 0);
  const resolved = cands.map((c) => resolveHyperparams(task, algorithm, c));
  const n = train.x.rows;
  const folds = Math.max(1, cv);
  if (folds > 1 && n < folds) throw new MLInputError(`cv = ${folds} needs at least ${folds} training rows`, `there are ${n}`);
  const metric = KEY_METRIC[task];
  const fitTimes = cands.map(() => [] as number[]);
  const scoreTimes = cands.map(() => [] as number[]);
  const scores = cands.map(() => [] as number[]);
  const totalFits = cands.length * folds;
  let done = 0;
  const d = train.x.cols;
  for (let f = 0; f < folds; f++) {
    let fitSet: Dataset;
    let valSet: Dataset;
    if (folds === 1) {
      fitSet = valSet = train;
    } else {
      const [s, e] = foldBounds(n, folds, f);
      const y = train.y;
      const fitX = new Float64Array((n - (e - s)) * d);
      fitX.set(train.x.data.subarray(0, s * d), 0);
      fitX.set(train.x.data.subarray(e * d), s * d);
      const hasY = y.length > 0;
      const fitY = hasY ? new Float64Array(n - (e - s)) : new Float64Array(0);
      if (hasY) {
        fitY.set(y.subarray(0, s), 0);
        fitY.set(y.subarray(e), s);
      }
      fitSet = { x: { data: fitX, rows: n - (e - s), cols: d }, y: fitY, featureNames: train.featureNames };
      valSet = {
        x: { data: train.x.data.subarray(s * d, e * d), rows: e - s, cols: d },
        y: hasY ? y.subarray(s, e) : y,
        featureNames: train.featureNames,
      };
    }
    for (let i = 0; i < cands.length; i++) {
      const ctx: FitContext = {
        ...req.ctx,
        progress: (p) => req.ctx?.progress?.((done + p) / totalFits),
      };
      const t0 = performance.now();
      const model = fitAlgorithm(task, algorithm, fitSet, resolved[i], ctx);
      const t1 = performance.now();
      const m = evaluateModel(task, model, valSet.x, valSet.y);
      const t2 = performance.now();
      fitTimes[i].push((t1 - t0) / 1000);
      scoreTimes[i].push((t2 - t1) / 1000);
      const score = m[metric];
      scores[i].push(Number.isFinite(score) ? score : -Infinity);
      done++;
    }
  }
  const meanScores = scores.map(mean);
  let best = 0;
  for (let i = 1; i < cands.length; i++) if (meanScores[i] > meanScores[best]) best = i;
  const results: SearchResults = {
    params: cands,
    n_splits: folds,
    best_index: best,
    mean_fit_time: fitTimes.map(mean),
    std_fit_time: fitTimes.map(std),
    mean_score_time: scoreTimes.map(mean),
    std_score_time: scoreTimes.map(std),
    mean_test_score: meanScores.map(finiteOrNull) as number[],
    std_test_score: scores.map(std).map(finiteOrNull) as number[],
  };
  for (let f = 0; f < folds; f++) results[`split${f}_test_score`] = scores.map((s) => finiteOrNull(s[f]));
  for (const name of Object.keys(cands[best])) results[`param_${name}`] = cands.map((c) => c[name] ?? null);
  return { best: cands[best], results };
}

/** JSON has no Infinity/NaN: failed scores are stored as null. */
function finiteOrNull(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}
