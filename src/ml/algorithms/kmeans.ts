/** k-means (Lloyd) with greedy k-means++ seeding as sklearn, seeded, best of n_init runs by inertia. */
import type { Dataset, KMeansModel } from '../model-types.ts';
import { MLInputError, numberParam, type Hyperparams } from '../hyperparams.ts';
import { checkCancelled, type FitContext } from './context.ts';
import { Rng } from './rng.ts';

export function fitKMeans(ds: Dataset, p: Hyperparams, ctx?: FitContext): KMeansModel {
  const { data, rows: n, cols: d } = ds.x;
  const k = numberParam(p, 'n_clusters');
  if (n < k) {
    throw new MLInputError(`n_clusters = ${k} is larger than the ${n} training rows`, '', 'lower n_clusters');
  }
  const maxIter = numberParam(p, 'max_iter');
  const nInit = numberParam(p, 'n_init');
  const rng = new Rng(numberParam(p, 'random_state'));
  // sklearn: tol is relative to the mean per-feature variance
  let meanVar = 0;
  for (let j = 0; j < d; j++) {
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const v = data[i * d + j];
      s += v;
      s2 += v * v;
    }
    meanVar += s2 / n - (s / n) ** 2;
  }
  const tol = numberParam(p, 'tol') * (d > 0 ? meanVar / d : 0);

  let best: Float64Array | null = null;
  let bestInertia = Infinity;
  const labels = new Int32Array(n);
  for (let run = 0; run < nInit; run++) {
    const c = p.init === 'random' ? randomInit(data, n, d, k, rng) : kmeansPlusPlus(data, n, d, k, rng);
    const sums = new Float64Array(k * d);
    const counts = new Float64Array(k);
    let inertia = Infinity;
    for (let iter = 0; iter < maxIter; iter++) {
      checkCancelled(ctx);
      inertia = assign(data, n, d, c, k, labels);
      sums.fill(0);
      counts.fill(0);
      for (let i = 0; i < n; i++) {
        const l = labels[i];
        counts[l]++;
        for (let j = 0; j < d; j++) sums[l * d + j] += data[i * d + j];
      }
      let shift = 0;
      for (let l = 0; l < k; l++) {
        if (counts[l] === 0) {
          // empty cluster: restart it at the point farthest from its centroid
          const far = farthest(data, n, d, c, labels);
          for (let j = 0; j < d; j++) c[l * d + j] = data[far * d + j];
          shift = Infinity;
          continue;
        }
        for (let j = 0; j < d; j++) {
          const v = sums[l * d + j] / counts[l];
          shift += (v - c[l * d + j]) ** 2;
          c[l * d + j] = v;
        }
      }
      ctx?.progress?.((run + (iter + 1) / maxIter) / nInit);
      if (shift <= tol) break;
    }
    inertia = assign(data, n, d, c, k, labels);
    if (inertia < bestInertia) {
      bestInertia = inertia;
      best = c;
    }
  }
  return { kind: 'kmeans', task: 'clustering', centroids: best!, k };
}

function assign(data: Float64Array, n: number, d: number, c: Float64Array, k: number, labels: Int32Array): number {
  let inertia = 0;
  for (let i = 0; i < n; i++) {
    let bi = 0;
    let bd = Infinity;
    for (let l = 0; l < k; l++) {
      let s = 0;
      for (let j = 0; j < d; j++) {
        const t = data[i * d + j] - c[l * d + j];
        s += t * t;
      }
      if (s < bd) {
        bd = s;
        bi = l;
      }
    }
    labels[i] = bi;
    inertia += bd;
  }
  return inertia;
}

function farthest(data: Float64Array, n: number, d: number, c: Float64Array, labels: Int32Array): number {
  let best = 0;
  let bd = -1;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += (data[i * d + j] - c[labels[i] * d + j]) ** 2;
    if (s > bd) {
      bd = s;
      best = i;
    }
  }
  return best;
}

function randomInit(data: Float64Array, n: number, d: number, k: number, rng: Rng): Float64Array {
  const idx = rng.shuffle(Int32Array.from({ length: n }, (_, i) => i));
  const c = new Float64Array(k * d);
  for (let l = 0; l < k; l++) c.set(data.subarray(idx[l] * d, idx[l] * d + d), l * d);
  return c;
}

function kmeansPlusPlus(data: Float64Array, n: number, d: number, k: number, rng: Rng): Float64Array {
  const c = new Float64Array(k * d);
  const closest = new Float64Array(n);
  const trial = new Float64Array(n);
  const tries = 2 + Math.floor(Math.log(k));
  const first = rng.int(n);
  c.set(data.subarray(first * d, first * d + d), 0);
  let pot = 0;
  for (let i = 0; i < n; i++) {
    closest[i] = dist2(data, i, c, 0, d);
    pot += closest[i];
  }
  for (let l = 1; l < k; l++) {
    let bestCand = -1;
    let bestPot = Infinity;
    let bestDist: Float64Array | null = null;
    for (let t = 0; t < tries; t++) {
      // sample proportionally to the squared distance to the nearest chosen centre
      let r = rng.next() * pot;
      let cand = n - 1;
      for (let i = 0; i < n; i++) {
        r -= closest[i];
        if (r <= 0) {
          cand = i;
          break;
        }
      }
      let candPot = 0;
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += (data[i * d + j] - data[cand * d + j]) ** 2;
        trial[i] = Math.min(closest[i], s);
        candPot += trial[i];
      }
      if (candPot < bestPot) {
        bestPot = candPot;
        bestCand = cand;
        bestDist = trial.slice();
      }
    }
    c.set(data.subarray(bestCand * d, bestCand * d + d), l * d);
    closest.set(bestDist!);
    pot = bestPot;
  }
  return c;
}

function dist2(data: Float64Array, i: number, c: Float64Array, l: number, d: number): number {
  let s = 0;
  for (let j = 0; j < d; j++) s += (data[i * d + j] - c[l * d + j]) ** 2;
  return s;
}
