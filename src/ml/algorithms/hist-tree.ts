/**
 * Histogram tree builder shared by xgboost-style boosting, random forests and decision trees.
 *
 * Every row carries K gradient channels and one hessian (stride S = K + 1) in `gh`. A split's
 * score is xgboost's: sum_c T(G_c)^2 / (H + lambda) with T the L1 soft threshold; the gain is
 * left + right - parent. With lambda = 0, g = -y and h = 1 that is exactly squared-error
 * reduction, and with one-hot class channels it is Gini reduction, so forests reuse it.
 *
 * Nodes grow depth first. Only the smaller child's histogram is built from rows; the larger
 * one is parent - smaller, computed in place in the parent's buffer, so at most depth + 2
 * histograms are alive. Children that cannot be split (at max depth, too light, one row) get
 * no histogram at all. Rows of a node are a contiguous, ascending range of `rows`.
 *
 * Histograms are built by a generated kernel over the row-major Uint8 bins, large nodes as two
 * row halves, and large partitions as two halves, that a helper thread may share (see
 * hist-pool.ts); results do not depend on it.
 */
import type { BinnedMatrix } from './binning.ts';
import type { Rng } from './rng.ts';
import { makeTeam, type HistTeam } from './hist-pool.ts';

export interface BuilderOptions {
  /** 1 = build histograms on this thread only; 2 = share them with the helper thread */
  threads: number;
  /** the largest max_depth that grow() will be called with (sizes the shared histograms) */
  maxDepth: number;
}

export interface GrowParams {
  lambda: number;
  alpha: number;
  /** minimum hessian sum in each child (xgboost min_child_weight; forests: min_samples_leaf) */
  minChildWeight: number;
  /** minimum hessian sum in a node to try splitting it (forests: min_samples_split) */
  minSplitHess: number;
  maxDepth: number;
  /** splits need a gain above this (xgboost kRtEps) */
  minGain: number;
  /** features tried per node (forests' max_features); >= number of active features means all */
  maxFeatures: number;
  rng: Rng | null;
}

export interface GrownTree {
  size: number;
  /** -1 for leaves */
  feature: Int32Array;
  splitBin: Int32Array;
  threshold: Float64Array;
  left: Int32Array;
  right: Int32Array;
  missingLeft: Uint8Array;
  /** raw leaf weights -T(G)/(H + lambda), size × K, also set on internal nodes */
  weight: Float64Array;
  gain: Float64Array;
  hess: Float64Array;
  /** rows[start, end) are the training rows that reached the node */
  start: Int32Array;
  end: Int32Array;
}

export class HistTreeBuilder {
  readonly K: number;
  readonly S: number;
  readonly n: number;
  readonly d: number;
  /** per row: K gradient channels then the hessian; filled by the caller */
  readonly gh: Float64Array;
  /** the caller writes the participating rows (ascending) into rows[0..count) */
  readonly rows: Int32Array;
  private readonly tmp: Int32Array;
  private readonly bm: BinnedMatrix;
  private readonly histLen: number;
  private readonly team: HistTeam;
  private readonly hists: Float64Array[];
  /** free histogram slots (indices into hists) */
  private readonly freeHists: number[] = [];
  private readonly activeFeatures: Int32Array;
  private nActive = 0;
  private readonly nodeFeatures: Int32Array;
  private readonly scratchL: Float64Array;
  private readonly bestL: Float64Array;
  private readonly sums: Float64Array[] = [];
  private p!: GrowParams;

  // growing node storage
  private cap = 0;
  private size = 0;
  private feature = new Int32Array(0);
  private splitBin = new Int32Array(0);
  private threshold = new Float64Array(0);
  private left = new Int32Array(0);
  private right = new Int32Array(0);
  private missingLeft = new Uint8Array(0);
  private weight = new Float64Array(0);
  private gain = new Float64Array(0);
  private hess = new Float64Array(0);
  private start = new Int32Array(0);
  private end = new Int32Array(0);

  constructor(bm: BinnedMatrix, K: number, opts: BuilderOptions = { threads: 1, maxDepth: 0 }) {
    this.bm = bm;
    this.K = K;
    this.S = K + 1;
    this.n = bm.rows;
    this.d = bm.cols;
    const threads = opts.threads > 1 && opts.maxDepth <= 64 ? opts.threads : 1;
    const shared = (bytes: number) => (threads > 1 ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
    this.gh = new Float64Array(shared(this.n * this.S * 8));
    this.rows = new Int32Array(shared(this.n * 4));
    this.tmp = new Int32Array(shared(this.n * 4));
    this.histLen = bm.totalSlots * this.S;
    this.team = makeTeam({
      rows: this.rows,
      gh: this.gh,
      rb: bm.rowBins,
      featOffset: bm.featOffset,
      colBins: bm.colBins,
      tmp: this.tmp,
      nRows: this.n,
      d: this.d,
      S: this.S,
      histLen: this.histLen,
      nHists: opts.maxDepth + 3,
      threads,
    });
    this.hists = this.team.hists;
    for (let i = this.hists.length - 1; i >= 0; i--) this.freeHists.push(i);
    this.activeFeatures = new Int32Array(this.d);
    this.nodeFeatures = new Int32Array(this.d);
    this.scratchL = new Float64Array(this.S);
    this.bestL = new Float64Array(this.S);
    this.ensureCapacity(64);
  }

  /**
   * Grows one tree over rows[0..count). featureMask (length d, 1 = usable) may be null.
   * rootSum, when given, is the S channel sums of gh over rows[0..count) added in row order
   * (the caller computed them while filling gh); otherwise they are summed here.
   */
  grow(count: number, featureMask: Uint8Array | null, params: GrowParams, rootSum?: Float64Array): GrownTree {
    this.p = params;
    this.size = 0;
    this.nActive = 0;
    for (let f = 0; f < this.d; f++) {
      if (!featureMask || featureMask[f]) this.activeFeatures[this.nActive++] = f;
    }
    const root = this.newNode(0, count);
    const sum = this.sumBuffer(0);
    if (rootSum) sum.set(rootSum.subarray(0, this.S));
    else {
      sum.fill(0);
      const { gh, rows, S } = this;
      for (let i = 0; i < count; i++) {
        const o = rows[i] * S;
        for (let c = 0; c < S; c++) sum[c] += gh[o + c];
      }
    }
    let hist = -1;
    if (this.canSplit(0, sum[this.K], count)) {
      hist = this.allocHist();
      this.team.run(hist, -1, 0, count);
    }
    this.growNode(root, 0, hist, sum);
    return this.snapshot();
  }

  /** Stops sharing work with the helper thread; call when done growing trees. */
  release(): void {
    this.team.release();
  }

  /** histogram chunks the helper thread built (statistics, tests) */
  get helperChunks(): number {
    return this.team.helperChunks;
  }

  private canSplit(depth: number, H: number, rows: number): boolean {
    return depth < this.p.maxDepth && H >= this.p.minSplitHess && rows >= 2;
  }

  /** xgboost's prune: turn splits whose children are leaves and whose gain < gamma into leaves. */
  static prune(t: GrownTree, gamma: number): void {
    if (gamma <= 0 || t.size === 0) return;
    const visit = (i: number): boolean => {
      if (t.feature[i] < 0) return true;
      const l = visit(t.left[i]);
      const r = visit(t.right[i]);
      if (l && r && t.gain[i] < gamma) {
        t.feature[i] = -1;
        return true;
      }
      return false;
    };
    visit(0);
  }

  private sumBuffer(depth: number): Float64Array {
    while (this.sums.length <= depth * 2 + 1) this.sums.push(new Float64Array(this.S));
    return this.sums[depth * 2];
  }

  /** a histogram slot; its content is garbage until a kernel run zeroes and fills it */
  private allocHist(): number {
    const h = this.freeHists.pop();
    return h === undefined ? this.team.addLocal() : h;
  }

  private freeHist(h: number): void {
    if (h >= 0) this.freeHists.push(h);
  }

  private ensureCapacity(c: number): void {
    if (c <= this.cap) return;
    const cap = Math.max(c, this.cap * 2);
    const grow = <T extends Int32Array | Float64Array | Uint8Array>(a: T, len: number): T => {
      const b = new (a.constructor as new (n: number) => T)(len);
      b.set(a);
      return b;
    };
    this.feature = grow(this.feature, cap);
    this.splitBin = grow(this.splitBin, cap);
    this.threshold = grow(this.threshold, cap);
    this.left = grow(this.left, cap);
    this.right = grow(this.right, cap);
    this.missingLeft = grow(this.missingLeft, cap);
    this.weight = grow(this.weight, cap * this.K);
    this.gain = grow(this.gain, cap);
    this.hess = grow(this.hess, cap);
    this.start = grow(this.start, cap);
    this.end = grow(this.end, cap);
    this.cap = cap;
  }

  private newNode(start: number, end: number): number {
    this.ensureCapacity(this.size + 1);
    const i = this.size++;
    this.feature[i] = -1;
    this.splitBin[i] = 0;
    this.threshold[i] = 0;
    this.left[i] = -1;
    this.right[i] = -1;
    this.missingLeft[i] = 0;
    this.gain[i] = 0;
    this.start[i] = start;
    this.end[i] = end;
    return i;
  }

  private snapshot(): GrownTree {
    const s = this.size;
    return {
      size: s,
      feature: this.feature.slice(0, s),
      splitBin: this.splitBin.slice(0, s),
      threshold: this.threshold.slice(0, s),
      left: this.left.slice(0, s),
      right: this.right.slice(0, s),
      missingLeft: this.missingLeft.slice(0, s),
      weight: this.weight.slice(0, s * this.K),
      gain: this.gain.slice(0, s),
      hess: this.hess.slice(0, s),
      start: this.start.slice(0, s),
      end: this.end.slice(0, s),
    };
  }

  /** hist is the node's histogram slot, or -1 when the node cannot be split */
  private growNode(node: number, depth: number, hist: number, sum: Float64Array): void {
    const { K, p } = this;
    const H = sum[K];
    this.hess[node] = H;
    for (let c = 0; c < K; c++) this.weight[node * K + c] = -softThreshold(sum[c], p.alpha) / (H + p.lambda);

    const s = this.start[node];
    const e = this.end[node];
    if (hist < 0 || !this.canSplit(depth, H, e - s)) {
      this.freeHist(hist);
      return;
    }
    const split = this.findSplit(this.hists[hist], sum);
    if (split < 0) {
      this.freeHist(hist);
      return;
    }
    const f = this.bestFeature;
    const bin = this.bestBin;
    const ml = this.bestMissingLeft;
    const mid = this.partition(s, e, f, bin, ml);
    if (mid === s || mid === e) {
      // can happen only through float noise in the subtracted histograms
      this.freeHist(hist);
      return;
    }
    this.feature[node] = f;
    this.splitBin[node] = bin;
    this.threshold[node] = this.bm.cuts[f][bin];
    this.missingLeft[node] = ml ? 1 : 0;
    this.gain[node] = this.bestGain;

    const leftSum = this.sumBuffer(depth + 1);
    const rightSum = this.sums[(depth + 1) * 2 + 1];
    for (let c = 0; c < this.S; c++) {
      leftSum[c] = this.bestL[c];
      rightSum[c] = sum[c] - this.bestL[c];
    }
    const l = this.newNode(s, mid);
    const r = this.newNode(mid, e);
    this.left[node] = l;
    this.right[node] = r;

    const leftSmaller = mid - s <= e - mid;
    const splitL = this.canSplit(depth + 1, leftSum[this.K], mid - s);
    const splitR = this.canSplit(depth + 1, rightSum[this.K], e - mid);
    const needSmall = leftSmaller ? splitL : splitR;
    const needLarge = leftSmaller ? splitR : splitL;
    let small = -1;
    let large = -1;
    if (needSmall || needLarge) {
      small = this.allocHist();
      // the larger child's histogram is parent - smaller, in the parent's slot
      if (needLarge) large = hist;
      else this.freeHist(hist);
      if (leftSmaller) this.team.run(small, large, s, mid);
      else this.team.run(small, large, mid, e);
      if (!needSmall) {
        this.freeHist(small);
        small = -1;
      }
    } else {
      this.freeHist(hist);
    }
    // children's sums live in per-depth buffers that deeper recursion reuses: copy them first
    const ls = leftSum.slice();
    const rs = rightSum.slice();
    if (leftSmaller) {
      this.growNode(l, depth + 1, small, ls);
      this.growNode(r, depth + 1, large, rs);
    } else {
      this.growNode(r, depth + 1, small, rs);
      this.growNode(l, depth + 1, large, ls);
    }
  }

  /** Stable partition of rows[s..e) by the split (shared with the helper on large ranges). */
  private partition(s: number, e: number, f: number, bin: number, missingLeft: boolean): number {
    return this.team.partition(s, e, f, bin, this.bm.nBins[f], missingLeft);
  }

  private bestFeature = -1;
  private bestBin = 0;
  private bestMissingLeft = false;
  private bestGain = 0;

  /** Fills best*; returns the feature or -1 when no split beats minGain. */
  private findSplit(hist: Float64Array, sum: Float64Array): number {
    const { K, S, p } = this;
    const { nBins, featOffset } = this.bm;
    const lambda = p.lambda;
    const alpha = p.alpha;
    const mcw = p.minChildWeight;
    const H = sum[K];
    let parent = 0;
    for (let c = 0; c < K; c++) {
      const t = softThreshold(sum[c], alpha);
      parent += (t * t) / (H + lambda);
    }
    let best = p.minGain;
    this.bestFeature = -1;
    const nf = this.sampleFeatures();
    const feats = this.nodeFeatures;
    const L = this.scratchL;
    for (let j = 0; j < nf; j++) {
      const f = feats[j];
      const nb = nBins[f];
      if (nb < 2) continue;
      const off = featOffset[f] * S;
      const mo = off + nb * S;
      const Hm = hist[mo + K];
      if (K === 1) {
        const G = sum[0];
        const Gm = hist[mo];
        let GL = 0;
        let HL = 0;
        for (let b = 0; b < nb - 1; b++) {
          GL += hist[off + 2 * b];
          HL += hist[off + 2 * b + 1];
          // missing goes right
          let HR = H - HL;
          if (HL >= mcw && HR >= mcw) {
            const tl = softThreshold(GL, alpha);
            const tr = softThreshold(G - GL, alpha);
            const gain = (tl * tl) / (HL + lambda) + (tr * tr) / (HR + lambda) - parent;
            if (gain > best) {
              best = gain;
              this.setBest(f, b, false, gain);
              this.bestL[0] = GL;
              this.bestL[1] = HL;
            }
          }
          if (Hm > 0) {
            const HL2 = HL + Hm;
            HR = H - HL2;
            if (HL2 >= mcw && HR >= mcw) {
              const GL2 = GL + Gm;
              const tl = softThreshold(GL2, alpha);
              const tr = softThreshold(G - GL2, alpha);
              const gain = (tl * tl) / (HL2 + lambda) + (tr * tr) / (HR + lambda) - parent;
              if (gain > best) {
                best = gain;
                this.setBest(f, b, true, gain);
                this.bestL[0] = GL2;
                this.bestL[1] = HL2;
              }
            }
          }
        }
        continue;
      }
      L.fill(0);
      for (let b = 0; b < nb - 1; b++) {
        const o = off + b * S;
        for (let c = 0; c < S; c++) L[c] += hist[o + c];
        for (let pass = 0; pass < 2; pass++) {
          if (pass === 1 && !(Hm > 0)) break;
          const extra = pass === 1 ? 1 : 0;
          const HL = L[K] + extra * Hm;
          const HR = H - HL;
          if (HL < mcw || HR < mcw) continue;
          let gain = -parent;
          for (let c = 0; c < K; c++) {
            const gl = L[c] + extra * hist[mo + c];
            const tl = softThreshold(gl, alpha);
            const tr = softThreshold(sum[c] - gl, alpha);
            gain += (tl * tl) / (HL + lambda) + (tr * tr) / (HR + lambda);
          }
          if (gain > best) {
            best = gain;
            this.setBest(f, b, pass === 1, gain);
            for (let c = 0; c < K; c++) this.bestL[c] = L[c] + extra * hist[mo + c];
            this.bestL[K] = HL;
          }
        }
      }
    }
    return this.bestFeature;
  }

  private setBest(f: number, b: number, ml: boolean, gain: number): void {
    this.bestFeature = f;
    this.bestBin = b;
    this.bestMissingLeft = ml;
    this.bestGain = gain;
  }

  private sampleFeatures(): number {
    const m = this.nActive;
    const out = this.nodeFeatures;
    out.set(this.activeFeatures.subarray(0, m));
    const k = Math.min(m, this.p.maxFeatures);
    if (k >= m || !this.p.rng) return m;
    const rng = this.p.rng;
    for (let i = 0; i < k; i++) {
      const j = i + rng.int(m - i);
      const t = out[i];
      out[i] = out[j];
      out[j] = t;
    }
    return k;
  }
}

export function softThreshold(g: number, alpha: number): number {
  if (alpha === 0) return g;
  if (g > alpha) return g - alpha;
  if (g < -alpha) return g + alpha;
  return 0;
}

/** Routes one binned row (column-major codes) down a grown tree; returns the leaf index. */
export function leafOfBinnedRow(t: GrownTree, bm: BinnedMatrix, r: number): number {
  let i = 0;
  const n = bm.rows;
  while (t.feature[i] >= 0) {
    const f = t.feature[i];
    const b = bm.colBins[f * n + r];
    const goLeft = b === bm.nBins[f] ? t.missingLeft[i] === 1 : b <= t.splitBin[i];
    i = goLeft ? t.left[i] : t.right[i];
  }
  return i;
}
