/**
 * Histogram tree builder shared by xgboost-style boosting, random forests and decision trees.
 *
 * Every row carries K gradient channels and one hessian (stride S = K + 1) in `gh`. A split's
 * score is xgboost's: sum_c T(G_c)^2 / (H + lambda) with T the L1 soft threshold; the gain is
 * left + right - parent. With lambda = 0, g = -y and h = 1 that is exactly squared-error
 * reduction, and with one-hot class channels it is Gini reduction, so forests reuse it.
 *
 * Nodes grow depth first. Only the lighter child's histogram (smaller hessian sum) is built
 * from rows; the other one is parent - lighter, computed in place in the parent's buffer, so
 * at most depth + 2 histograms are alive. Children that cannot be split (at max depth, too
 * light) get no histogram at all. The rows of a tree are dealt to two shards in blocks (see
 * SHARD_BLOCK); a node's rows are one contiguous, ascending range of `rows` in each shard.
 *
 * Partitions and histograms run as node tasks that a helper thread may share (see
 * hist-pool.ts): per shard, partition a node and build a child's histogram; per feature chunk,
 * finish both children's histograms and, with one gradient channel and every active feature
 * tried (xgboost), search their best splits, so a node's split is known when it is grown.
 * Otherwise (forests) the training thread searches. Results do not depend on the helper.
 */
import type { BinnedMatrix } from './binning.ts';
import type { Rng } from './rng.ts';
import { FP_ALPHA, FP_LAMBDA, FP_MCW, FP_MIN_GAIN, FP_SUMS, makeTeam, type HistTeam } from './hist-pool.ts';
import { searchSplits, SPLIT_WORDS } from './split-search.ts';
import { LEAF_WORDS, SHARD_BLOCK, shard0Size, type UpdateBuffers } from './boost-update.ts';

export interface BuilderOptions {
  /** 1 = build histograms on this thread only; 2 = share them with the helper thread */
  threads: number;
  /** the largest max_depth that grow() will be called with (sizes the shared histograms) */
  maxDepth: number;
  /** boosting state for applyLeaves(), on shared memory when threads > 1 */
  update?: UpdateBuffers;
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
  /** rows[start[2i + k], end[2i + k]) are the training rows of shard k that reached node i */
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
  /** the caller writes the participating rows (ascending) into rows[0..count) before grow() */
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
  /** left child sums of the split being applied */
  private readonly bestL: Float64Array;
  private readonly sums: Float64Array[] = [];
  /** per depth two split results (SPLIT_WORDS each), like sums */
  private readonly splits: Float64Array[] = [];
  private readonly one = new Float64Array(SPLIT_WORDS);
  /** splits are searched by the node tasks (see the file comment) */
  private searchInTasks = false;
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
    this.update = opts.update;
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
      nBins: bm.nBins,
      colBins: bm.colBins,
      tmp: this.tmp,
      nRows: this.n,
      d: this.d,
      S: this.S,
      histLen: this.histLen,
      nHists: opts.maxDepth + 3,
      threads,
      update: opts.update,
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
    const active = this.team.active;
    for (let f = 0; f < this.d; f++) {
      active[f] = !featureMask || featureMask[f] ? 1 : 0;
      if (active[f]) this.activeFeatures[this.nActive++] = f;
    }
    this.searchInTasks = this.K === 1 && (!params.rng || params.maxFeatures >= this.nActive);
    const fp = this.team.fp;
    fp[FP_LAMBDA] = params.lambda;
    fp[FP_ALPHA] = params.alpha;
    fp[FP_MCW] = params.minChildWeight;
    fp[FP_MIN_GAIN] = params.minGain;
    const q = shard0Size(count);
    if (this.laidOut !== count) this.layOut(count, q);
    this.laidOut = -1;
    const root = this.newNode(0, q, q, count);
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
    const split = this.splitBuffer(0, 0);
    if (this.canSplit(0, sum[this.K], count)) {
      hist = this.allocHist();
      if (this.searchInTasks) {
        fp[FP_SUMS] = sum[0];
        fp[FP_SUMS + 1] = sum[1];
      }
      this.task(hist, -1, root, -1, 0, false, 0, this.searchInTasks ? 1 : 0);
      if (this.searchInTasks) this.takeSplit(0, split);
    }
    this.growNode(root, 0, hist, sum, split);
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

  private splitBuffer(depth: number, side: number): Float64Array {
    while (this.splits.length <= depth * 2 + 1) this.splits.push(new Float64Array(SPLIT_WORDS));
    return this.splits[depth * 2 + side];
  }

  /** copies the last node task's best split for child (0: built, 1: sibling) into out */
  private takeSplit(child: number, out: Float64Array): void {
    const at = this.team.bestOf(child);
    if (at < 0) out[1] = -1;
    else out.set(this.team.res.subarray(at, at + SPLIT_WORDS));
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
    this.start = grow(this.start, 2 * cap);
    this.end = grow(this.end, 2 * cap);
    this.cap = cap;
  }

  private newNode(s0: number, e0: number, s1: number, e1: number): number {
    this.ensureCapacity(this.size + 1);
    const i = this.size++;
    this.feature[i] = -1;
    this.splitBin[i] = 0;
    this.threshold[i] = 0;
    this.left[i] = -1;
    this.right[i] = -1;
    this.missingLeft[i] = 0;
    this.gain[i] = 0;
    this.start[2 * i] = s0;
    this.end[2 * i] = e0;
    this.start[2 * i + 1] = s1;
    this.end[2 * i + 1] = e1;
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
      start: this.start.slice(0, 2 * s),
      end: this.end.slice(0, 2 * s),
    };
  }

  /** row count whose shard layout applyLeaves() left in rows, else -1 */
  private laidOut = -1;

  /** deals rows[0..count) to the shards: blocks of SHARD_BLOCK positions, even ones first */
  private layOut(count: number, q: number): void {
    const { rows, tmp } = this;
    let a = 0;
    let b = q;
    for (let i = 0; i < count; i++) tmp[(i / SHARD_BLOCK) & 1 ? b++ : a++] = rows[i];
    rows.set(tmp.subarray(0, count));
  }

  private readonly mid = new Int32Array(2);
  private readonly seg = new Int32Array(4);

  private rowsOf(node: number): number {
    return this.end[2 * node] - this.start[2 * node] + this.end[2 * node + 1] - this.start[2 * node + 1];
  }

  /** a node task over node's rows (see hist-pool.ts); mid gets the partition points */
  private task(small: number, parent: number, node: number, feature: number, bin: number, ml: boolean, side: number, want: number): void {
    const seg = this.seg;
    seg[0] = this.start[2 * node];
    seg[1] = this.end[2 * node];
    seg[2] = this.start[2 * node + 1];
    seg[3] = this.end[2 * node + 1];
    this.team.node({ small, parent, seg, feature, bin, missingLeft: ml, side, want }, this.mid);
  }

  /**
   * hist is the node's histogram slot, or -1 when the node cannot be split; split is its best
   * split (SPLIT_WORDS) when the node tasks searched it, else scratch for findSplit
   */
  private growNode(node: number, depth: number, hist: number, sum: Float64Array, split: Float64Array): void {
    const { K, p } = this;
    const H = sum[K];
    this.hess[node] = H;
    for (let c = 0; c < K; c++) this.weight[node * K + c] = -softThreshold(sum[c], p.alpha) / (H + p.lambda);

    if (hist < 0 || !this.canSplit(depth, H, this.rowsOf(node))) {
      this.freeHist(hist);
      return;
    }
    if (this.searchInTasks) {
      this.bestL[0] = split[4];
      this.bestL[1] = split[5];
    } else this.findSplit(this.hists[hist], sum, split);
    const f = split[1];
    if (f < 0) {
      this.freeHist(hist);
      return;
    }
    const bin = split[2];
    const ml = split[3] === 1;
    const leftSum = this.sumBuffer(depth + 1);
    const rightSum = this.sums[(depth + 1) * 2 + 1];
    for (let c = 0; c < this.S; c++) {
      leftSum[c] = this.bestL[c];
      rightSum[c] = sum[c] - this.bestL[c];
    }
    // before partitioning only depth and weight tell which children get histograms; a child
    // with too few rows is found out when it is grown
    const leftLighter = leftSum[K] <= rightSum[K];
    const splitL = this.canSplit(depth + 1, leftSum[K], 2);
    const splitR = this.canSplit(depth + 1, rightSum[K], 2);
    const needSmall = leftLighter ? splitL : splitR;
    const needLarge = leftLighter ? splitR : splitL;
    let small = -1;
    let large = -1;
    if (needSmall || needLarge) {
      small = this.allocHist();
      // the heavier child's histogram is parent - lighter, in the parent's slot
      if (needLarge) large = hist;
      else this.freeHist(hist);
    } else {
      this.freeHist(hist);
    }
    let want = 0;
    if (this.searchInTasks && small >= 0) {
      const fp = this.team.fp;
      const smallSum = leftLighter ? leftSum : rightSum;
      const largeSum = leftLighter ? rightSum : leftSum;
      fp[FP_SUMS] = smallSum[0];
      fp[FP_SUMS + 1] = smallSum[1];
      fp[FP_SUMS + 2] = largeSum[0];
      fp[FP_SUMS + 3] = largeSum[1];
      want = (needSmall ? 1 : 0) | (needLarge ? 2 : 0);
    }
    this.task(small, large, node, f, bin, ml, leftLighter ? 0 : 1, want);
    const m0 = this.mid[0];
    const m1 = this.mid[1];
    const s0 = this.start[2 * node];
    const e0 = this.end[2 * node];
    const s1 = this.start[2 * node + 1];
    const e1 = this.end[2 * node + 1];
    if (m0 - s0 + m1 - s1 === 0 || e0 - m0 + e1 - m1 === 0) {
      // can happen only through float noise in the subtracted histograms
      this.freeHist(small);
      this.freeHist(large);
      return;
    }
    if (!needSmall) {
      this.freeHist(small);
      small = -1;
    }
    this.feature[node] = f;
    this.splitBin[node] = bin;
    this.threshold[node] = this.bm.cuts[f][bin];
    this.missingLeft[node] = ml ? 1 : 0;
    this.gain[node] = split[0];
    const l = this.newNode(s0, m0, s1, m1);
    const r = this.newNode(m0, e0, m1, e1);
    this.left[node] = l;
    this.right[node] = r;

    // children's splits live in per-depth buffers that only deeper recursion reuses
    const smallSplit = this.splitBuffer(depth + 1, leftLighter ? 0 : 1);
    const largeSplit = this.splits[(depth + 1) * 2 + (leftLighter ? 1 : 0)];
    if (want & 1) this.takeSplit(0, smallSplit);
    if (want & 2) this.takeSplit(1, largeSplit);
    // children's sums live in per-depth buffers that deeper recursion reuses: copy them first
    const ls = leftSum.slice();
    const rs = rightSum.slice();
    if (leftLighter) {
      this.growNode(l, depth + 1, small, ls, smallSplit);
      this.growNode(r, depth + 1, large, rs, largeSplit);
    } else {
      this.growNode(r, depth + 1, small, rs, smallSplit);
      this.growNode(l, depth + 1, large, ls, largeSplit);
    }
  }

  /**
   * Boosting step through the helper (update buffers given to the constructor): margin +=
   * eta * weight for the rows of every leaf of t, the next gradients into gh, their totals
   * into sums, and rows reset to all rows 0..count-1 as grow() lays them out (t must have grown
   * over all rows), so the next grow(count) can skip listing them.
   * False (nothing done) when t has more nodes than the update buffers have room for leaves.
   */
  applyLeaves(t: GrownTree, eta: number, sums: Float64Array): boolean {
    const u = this.update!;
    if (t.size * LEAF_WORDS > u.leaves.length) return false;
    let n = 0;
    const stack = this.leafStack;
    stack.length = 0;
    stack.push(0);
    while (stack.length) {
      const i = stack.pop()!;
      if (t.feature[i] >= 0) {
        stack.push(t.right[i], t.left[i]);
        continue;
      }
      const o = n++ * LEAF_WORDS;
      const v = eta * t.weight[i];
      u.leaves[o] = t.start[2 * i];
      u.leaves[o + 1] = t.end[2 * i];
      u.leaves[o + 2] = t.start[2 * i + 1];
      u.leaves[o + 3] = t.end[2 * i + 1];
      u.leaves[o + 4] = v;
      u.leaves[o + 5] = Math.exp(-v);
    }
    const root = this.seg;
    root[0] = t.start[0];
    root[1] = t.end[0];
    root[2] = t.start[1];
    root[3] = t.end[1];
    this.team.update(n, root, sums);
    this.laidOut = t.end[1];
    return true;
  }

  private readonly leafStack: number[] = [];
  private readonly update: UpdateBuffers | undefined;

  /** Searches on this thread: writes the best split to out (feature -1: none) and bestL. */
  private findSplit(hist: Float64Array, sum: Float64Array, out: Float64Array): void {
    const { K, S, p } = this;
    const { nBins, featOffset } = this.bm;
    const lambda = p.lambda;
    const alpha = p.alpha;
    const mcw = p.minChildWeight;
    const H = sum[K];
    let best = p.minGain;
    out[1] = -1;
    const nf = this.sampleFeatures();
    const feats = this.nodeFeatures;
    if (K === 1) {
      // one feature at a time, in the sampled order
      const one = this.one;
      for (let j = 0; j < nf; j++) {
        const f = feats[j];
        searchSplits(hist, nBins, featOffset, this.team.active, f, f + 1, sum[0], H, lambda, alpha, mcw, p.minGain, one, 0);
        if (one[1] >= 0 && one[0] > best) {
          best = one[0];
          out.set(one);
          this.bestL[0] = one[4];
          this.bestL[1] = one[5];
        }
      }
      return;
    }
    let parent = 0;
    for (let c = 0; c < K; c++) {
      const t = softThreshold(sum[c], alpha);
      parent += (t * t) / (H + lambda);
    }
    const L = this.scratchL;
    for (let j = 0; j < nf; j++) {
      const f = feats[j];
      const nb = nBins[f];
      if (nb < 2) continue;
      const off = featOffset[f] * S;
      const mo = off + nb * S;
      const Hm = hist[mo + K];
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
            out[0] = gain;
            out[1] = f;
            out[2] = b;
            out[3] = pass;
            for (let c = 0; c < K; c++) this.bestL[c] = L[c] + extra * hist[mo + c];
            this.bestL[K] = HL;
          }
        }
      }
    }
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
