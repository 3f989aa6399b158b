/**
 * Histogram kernels and the helper thread that shares the row and histogram work of growing
 * a tree with the trainer.
 *
 * The rows of a tree are dealt to two shards (see SHARD_BLOCK); every node keeps one ascending
 * row range per shard. A node task has two phases: one chunk per shard partitions that
 * shard's range of the node being split and adds the rows of one child into a histogram
 * (shard 0 into the child's slot, shard 1 into a scratch slot); then one chunk per feature
 * range sums the two, derives the sibling as parent - child in the parent's slot and (K = 1)
 * searches both children's best splits over its features. A boosting update task applies a
 * tree's leaves and computes the next gradients per shard (boost-update.ts). The kernel is
 * generated per fit: the loop over the features is unrolled with each feature's histogram
 * offset as a constant, reading one Uint8 bin per feature from the row-major bin matrix.
 *
 * The training thread and one helper worker claim the chunks of a task with a compare-and-swap
 * on a shared counter (work stealing); second-phase chunks wait for the first phase. No number
 * depends on which thread runs a chunk or on how the features are chunked, so threaded and
 * single-threaded results are bit-identical, and a thread mostly touches the rows of its own
 * shard. If the helper is slow to start, busy or absent, the training thread runs every chunk.
 *
 * The helper is one persistent worker per thread (module singleton, unref'd): it lives across
 * trees and fits, runs a synchronous serve loop on Atomics for the duration of one fit and
 * goes back to its event loop between fits. Its code is a self-contained string (eval worker,
 * with the chunk functions' sources) so it needs no TypeScript loader.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { searchSplits, SPLIT_WORDS } from './split-search.ts';
import { SHARD_BLOCK, updateShard, type UpdateBuffers } from './boost-update.ts';

/** (rows, s, e, gh, rb, hist, off): adds rows[s..e) into hist */
export type HistKernel = (
  rows: Int32Array,
  s: number,
  e: number,
  gh: Float64Array,
  rb: Uint8Array,
  hist: Float64Array,
  off: Int32Array,
) => void;

/** beyond this many features the kernel loops instead of unrolling */
const MAX_UNROLL = 48;

/**
 * Source of a kernel body for features [f0, f1) of a d-column row-major bin matrix with S
 * channels per slot (S = K + 1, gradients then hessian in gh).
 */
export function kernelSource(f0: number, f1: number, d: number, S: number, featOffset: Int32Array): string {
  const lines: string[] = [];
  lines.push('for (let i = s; i < e; i++) {');
  lines.push('  const r = rows[i];');
  lines.push(`  const b = r * ${d};`);
  if (S === 2) {
    lines.push('  const g = gh[2 * r];');
    lines.push('  const h = gh[2 * r + 1];');
    if (f1 - f0 <= MAX_UNROLL) {
      for (let f = f0; f < f1; f++) {
        const o = featOffset[f];
        lines.push(`  { const k = (rb[b${f ? ` + ${f}` : ''}]${o ? ` + ${o}` : ''}) << 1; hist[k] += g; hist[k + 1] += h; }`);
      }
    } else {
      lines.push(`  for (let f = ${f0}; f < ${f1}; f++) { const k = (rb[b + f] + off[f]) << 1; hist[k] += g; hist[k + 1] += h; }`);
    }
  } else {
    lines.push(`  const o = r * ${S};`);
    lines.push(`  for (let f = ${f0}; f < ${f1}; f++) {`);
    lines.push(`    const k = (rb[b + f] + off[f]) * ${S};`);
    lines.push(`    for (let c = 0; c < ${S}; c++) hist[k + c] += gh[o + c];`);
    lines.push('  }');
  }
  lines.push('}');
  return lines.join('\n');
}

export function compileKernel(body: string): HistKernel {
  return new Function('rows', 's', 'e', 'gh', 'rb', 'hist', 'off', body) as HistKernel;
}

/** control words (Int32Array over a SharedArrayBuffer) */
// (seq << 10) | (chunks << 5) | next chunk to claim, one word so that a claim sees its task's
// chunk count; RELEASE ends the serve loop
const TASK = 0;
const DONE = 1; // chunks finished in the current task
const HELPER_CHUNKS = 2; // statistics: chunks run by the helper
const FAILED = 3; // set by a helper whose chunk threw (a bug): the fit must not go on
const KIND = 4; // KIND_NODE or KIND_UPDATE
const SMALL = 5; // hist slot to build
const PARENT = 6; // hist slot to subtract the built one from, or -1
const P_FEATURE = 7; // split to partition by, or -1 (root: no partition)
const P_BIN = 8;
const P_MISS = 9; // missing bin code of the feature
const P_ML = 10; // 1 = missing goes left
const SIDE = 11; // child whose histogram is built: 0 left, 1 right, -1 none (partition only)
const WANT = 12; // bit 0 = search the built child's split, bit 1 = the sibling's
const SEG = 13; // 4 words: s0, e0, s1, e1, the node's row ranges in both shards
const MID = 17; // 2 words (results): first right row in each shard
const N_LEAVES = 19;
const NO_SCRATCH = 20; // 1 = the built child has no rows in shard 1, its scratch slot is stale
// 1 = a small node: chunk 0 does both shards' first phase into the child's slot, chunk 1 nothing
const MERGED = 21;
const CTRL_WORDS = 22;
const RELEASE = -1;
const KIND_NODE = 0;
const KIND_UPDATE = 1;

/** search parameters (Float64Array over a SharedArrayBuffer) */
export const FP_LAMBDA = 0;
export const FP_ALPHA = 1;
export const FP_MCW = 2;
export const FP_MIN_GAIN = 3;
/** G and H of the built child, then of its sibling */
export const FP_SUMS = 4;
/** update task results: G and H of shard 0, then of shard 1 */
const FP_UPDATE = 8;
const FP_WORDS = 12;

/** node rows × features plus bins searched below which a node task is not worth a hand-off */
const PARALLEL_MIN_NODE_WORK = 6_000;

/**
 * Stable partition of rows[a..b) by the goLeft table of bin codes; returns the first
 * position of the right part. tmp[a..) is scratch.
 */
function partitionRange(
  rows: Int32Array, tmp: Int32Array, col: Uint8Array, goLeft: Uint8Array, a: number, b: number,
  base: number, bin: number, miss: number, ml: number,
): number {
  for (let v = 0; v <= miss; v++) goLeft[v] = v === miss ? ml : v <= bin ? 1 : 0;
  let l = a;
  let k = a;
  for (let i = a; i < b; i++) {
    const r = rows[i];
    const t = goLeft[col[base + r]];
    rows[l] = r;
    tmp[k] = r;
    l += t;
    k += 1 - t;
  }
  for (let i = l; i < b; i++) rows[i] = tmp[a + i - l];
  return l;
}

/** what a thread needs to run chunks; the helper builds the same from the shared buffers */
interface ChunkState {
  ctrl: Int32Array;
  rows: Int32Array;
  tmp: Int32Array;
  gh: Float64Array;
  rb: Uint8Array;
  col: Uint8Array;
  nRows: number;
  off: Int32Array;
  nBins: Int32Array;
  active: Uint8Array;
  /** slots; the last one is the scratch slot of shard 1 */
  hists: Float64Array[];
  kernel: HistKernel;
  /** doubles [chunkStart[c], chunkStart[c + 1]) of a histogram belong to feature chunk c */
  chunkStart: Int32Array;
  /** features [chunkFeat[c], chunkFeat[c + 1]) */
  chunkFeat: Int32Array;
  fp: Float64Array;
  /** SPLIT_WORDS per (feature chunk, child): the built child at 2c, its sibling at 2c + 1 */
  res: Float64Array;
  goLeft: Uint8Array;
  update: UpdateBuffers | null;
  block: number;
  partition: typeof partitionRange;
  search: typeof searchSplits;
  updateShard: typeof updateShard;
}

/**
 * Chunk k of a task: shard k (k < 2) or feature chunk k - 2 of a node task, shard k of an
 * update task. Self-contained: the helper runs its source too.
 */
function runChunk(st: ChunkState, k: number): void {
  const c = st.ctrl;
  const w = st.res.length / (2 * (st.chunkFeat.length - 1));
  if (c[KIND] === KIND_UPDATE) {
    st.updateShard(st.rows, st.gh, st.update!, c[N_LEAVES], k, c[SEG + 2 * k], c[SEG + 2 * k + 1], st.fp, FP_UPDATE + 2 * k, st.block);
    return;
  }
  const small = c[SMALL];
  const parent = c[PARENT];
  if (k < 2) {
    const merged = c[MERGED] === 1;
    if (merged && k === 1) {
      c[NO_SCRATCH] = 1;
      return;
    }
    let h: Float64Array | null = null;
    for (let sh = k; sh <= (merged ? 1 : k); sh++) {
      let a = c[SEG + 2 * sh];
      let b = c[SEG + 2 * sh + 1];
      const f = c[P_FEATURE];
      if (f >= 0) {
        const mid = st.partition(st.rows, st.tmp, st.col, st.goLeft, a, b, f * st.nRows, c[P_BIN], c[P_MISS], c[P_ML]);
        c[MID + sh] = mid;
        if (c[SIDE] < 0) continue;
        if (c[SIDE] === 0) b = mid;
        else a = mid;
      }
      // nodes often have no rows in shard 1: then its scratch slot stays out of it
      if (sh === 1 && !merged) c[NO_SCRATCH] = a < b ? 0 : 1;
      if (sh === 1 && !merged && a >= b) continue;
      if (!h) {
        h = st.hists[sh === 0 ? small : st.hists.length - 1];
        h.fill(0);
      }
      st.kernel(st.rows, a, b, st.gh, st.rb, h, st.off);
    }
    return;
  }
  const j = k - 2;
  const h = st.hists[small];
  const sc = st.hists[st.hists.length - 1];
  const a = st.chunkStart[j];
  const b = st.chunkStart[j + 1];
  const p = parent >= 0 ? st.hists[parent] : null;
  if (c[NO_SCRATCH] === 1) {
    if (p) for (let i = a; i < b; i++) p[i] -= h[i];
  } else if (p) {
    for (let i = a; i < b; i++) {
      const v = h[i] + sc[i];
      h[i] = v;
      p[i] -= v;
    }
  } else {
    for (let i = a; i < b; i++) h[i] += sc[i];
  }
  const fp = st.fp;
  const want = c[WANT];
  const f0 = st.chunkFeat[j];
  const f1 = st.chunkFeat[j + 1];
  const lambda = fp[FP_LAMBDA];
  const alpha = fp[FP_ALPHA];
  const mcw = fp[FP_MCW];
  const minGain = fp[FP_MIN_GAIN];
  const { nBins, off, active, res } = st;
  if (want & 1) st.search(h, nBins, off, active, f0, f1, fp[FP_SUMS], fp[FP_SUMS + 1], lambda, alpha, mcw, minGain, res, 2 * j * w);
  if (want & 2) {
    st.search(st.hists[parent], nBins, off, active, f0, f1, fp[FP_SUMS + 2], fp[FP_SUMS + 3], lambda, alpha, mcw, minGain, res, (2 * j + 1) * w);
  }
}

/** the constants the helper's code uses */
const HELPER_CONSTANTS = {
  TASK, DONE, HELPER_CHUNKS, FAILED, RELEASE, NO_SCRATCH, MERGED, KIND, KIND_UPDATE, N_LEAVES, SEG, SMALL, PARENT,
  P_FEATURE, P_BIN, P_MISS, P_ML, MID, SIDE, WANT, FP_LAMBDA, FP_ALPHA, FP_MCW, FP_MIN_GAIN, FP_SUMS, FP_UPDATE,
};

/** A node in a node task: its row ranges per shard, and the split to partition it by. */
export interface NodeTask {
  /** hist slot to build, or -1 (partition only) */
  small: number;
  /** slot holding the parent's histogram, turned into the sibling's, or -1 */
  parent: number;
  /** s0, e0, s1, e1 */
  seg: Int32Array;
  /** split feature, or -1 to build the whole node (root) */
  feature: number;
  bin: number;
  missingLeft: boolean;
  /** child built: 0 left, 1 right */
  side: number;
  /** bit 0: search the built child, bit 1: the sibling (sums at FP_SUMS) */
  want: number;
}

/** A shared task runner for one fit. */
export class HistTeam {
  readonly ctrl: Int32Array;
  /** histogram slots: the first `shared` live in shared memory, later ones are thread-local */
  readonly hists: Float64Array[];
  readonly shared: number;
  /** search parameters (FP_*), set by the tree builder */
  readonly fp: Float64Array;
  /** active features (1 = usable), set by the tree builder */
  readonly active: Uint8Array;
  /** node task results, see ChunkState.res */
  readonly res: Float64Array;
  private readonly parts: number;
  private readonly scratch: Float64Array;
  private readonly st: ChunkState;
  private seq = 0;
  private released = false;

  constructor(
    private readonly o: TeamOptions,
    histSab: SharedArrayBuffer | null,
    kernelBody: string,
    chunkStart: Int32Array,
    chunkFeat: Int32Array,
    helper: Helper | null,
  ) {
    const shared = (bytes: number) => (histSab ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
    this.ctrl = new Int32Array(new SharedArrayBuffer(CTRL_WORDS * 4));
    this.fp = new Float64Array(shared(FP_WORDS * 8));
    this.active = new Uint8Array(shared(o.d)).fill(1);
    this.parts = chunkFeat.length - 1;
    this.res = new Float64Array(shared(this.parts * 2 * SPLIT_WORDS * 8));
    this.hists = [];
    this.shared = histSab ? o.nHists : 0;
    for (let i = 0; i < this.shared; i++) this.hists.push(new Float64Array(histSab!, i * o.histLen * 8, o.histLen));
    this.scratch = histSab ? new Float64Array(histSab, o.nHists * o.histLen * 8, o.histLen) : new Float64Array(o.histLen);
    this.st = {
      ctrl: this.ctrl, rows: o.rows, tmp: o.tmp, gh: o.gh, rb: o.rb, col: o.colBins, nRows: o.nRows, off: o.featOffset,
      nBins: o.nBins, active: this.active, hists: [...this.hists, this.scratch], kernel: compileKernel(kernelBody), chunkStart, chunkFeat,
      fp: this.fp, res: this.res, goLeft: new Uint8Array(256), update: o.update ?? null, block: SHARD_BLOCK,
      partition: partitionRange, search: searchSplits, updateShard,
    };
    this.ctrl[TASK] = 0; // seq 0, nothing to claim
    const u = o.update;
    if (histSab) helper?.post({
      ctrl: this.ctrl.buffer,
      hist: histSab,
      histLen: o.histLen,
      nHists: o.nHists,
      rows: o.rows.buffer,
      tmp: o.tmp.buffer,
      gh: o.gh.buffer,
      rb: o.rb.buffer,
      col: o.colBins.buffer,
      nRows: o.nRows,
      off: o.featOffset.buffer,
      nBins: o.nBins.buffer,
      active: this.active.buffer,
      fp: this.fp.buffer,
      res: this.res.buffer,
      kernel: kernelBody,
      chunkStart: chunkStart.buffer,
      chunkFeat: chunkFeat.buffer,
      update: u ? { margin: u.margin.buffer, expNeg: u.expNeg.buffer, y: u.y.buffer, leaves: u.leaves.buffer } : null,
    });
  }

  /** a new thread-local histogram slot */
  addLocal(): number {
    this.hists.push(new Float64Array(this.o.histLen));
    this.st.hists = [...this.hists, this.scratch];
    return this.hists.length - 1;
  }

  /** chunks the helper thread ran so far */
  get helperChunks(): number {
    return Atomics.load(this.ctrl, HELPER_CHUNKS);
  }

  /**
   * Runs a node task (see the file comment); afterwards the first right row of each shard is
   * in mid (when partitioning) and the best splits can be read with bestOf().
   */
  node(t: NodeTask, mid: Int32Array): void {
    const c = this.ctrl;
    c[SMALL] = t.small;
    c[PARENT] = t.parent;
    c[P_FEATURE] = t.feature;
    c[P_BIN] = t.bin;
    c[P_MISS] = t.feature >= 0 ? this.o.nBins[t.feature] : 0;
    c[P_ML] = t.missingLeft ? 1 : 0;
    c[SIDE] = t.small >= 0 ? t.side : -1;
    c[WANT] = t.want;
    for (let i = 0; i < 4; i++) c[SEG + i] = t.seg[i];
    const rows = t.seg[1] - t.seg[0] + t.seg[3] - t.seg[2];
    // small nodes skip the scratch slot, which costs more than their rows; this depends on the
    // node only, so no number depends on the threads
    c[MERGED] = rows * this.o.d < this.o.histLen ? 1 : 0;
    const n = t.small >= 0 ? 2 + this.parts : 2;
    const searched = (t.want & 1 ? 1 : 0) + (t.want & 2 ? 1 : 0);
    const work = rows * (t.small >= 0 ? this.o.d : 1) + searched * this.o.histLen;
    const slotsShared = t.small < this.shared && t.parent < this.shared;
    this.run(KIND_NODE, n, slotsShared && work >= PARALLEL_MIN_NODE_WORK);
    if (t.feature >= 0) {
      mid[0] = c[MID];
      mid[1] = c[MID + 1];
    }
  }

  /**
   * Runs an update task over the leaves (LEAF_WORDS each) in the update buffers; root is the
   * tree's row ranges per shard. Returns the gradient and hessian totals in sums[0..2).
   */
  update(nLeaves: number, root: Int32Array, sums: Float64Array): void {
    const c = this.ctrl;
    c[N_LEAVES] = nLeaves;
    for (let i = 0; i < 4; i++) c[SEG + i] = root[i];
    this.run(KIND_UPDATE, 2, root[1] - root[0] + root[3] - root[2] >= PARALLEL_MIN_NODE_WORK);
    const fp = this.fp;
    sums[0] = fp[FP_UPDATE] + fp[FP_UPDATE + 2];
    sums[1] = fp[FP_UPDATE + 1] + fp[FP_UPDATE + 3];
  }

  private run(kind: number, n: number, share: boolean): void {
    const c = this.ctrl;
    c[KIND] = kind;
    const st = this.st;
    if (!share || this.shared === 0 || this.released) {
      for (let k = 0; k < n; k++) runChunk(st, k);
      return;
    }
    Atomics.store(c, DONE, 0);
    this.seq = (this.seq + 1) & 0x1fffff;
    Atomics.store(c, TASK, (this.seq << 10) | (n << 5));
    Atomics.notify(c, TASK, 1);
    for (;;) {
      const v = Atomics.load(c, TASK);
      const k = v & 31;
      if (k >= n) break;
      if (Atomics.compareExchange(c, TASK, v, v + 1) !== v) continue;
      // the second phase needs both shards
      if (k >= 2) this.waitDone(2);
      runChunk(st, k);
      Atomics.add(c, DONE, 1);
    }
    this.waitDone(n);
    if (c[FAILED]) {
      this.released = true;
      throw new Error('the histogram helper thread failed');
    }
  }

  /**
   * Offset in res of the best split found for child (0: built, 1: sibling) by the last node
   * task, or -1 when no chunk found one: the first chunk with the highest gain, as one search
   * over all features would pick.
   */
  bestOf(child: number): number {
    let at = -1;
    for (let k = 0; k < this.parts; k++) {
      const o = (2 * k + child) * SPLIT_WORDS;
      if (this.res[o + 1] >= 0 && (at < 0 || this.res[o] > this.res[at])) at = o;
    }
    return at;
  }

  private waitDone(n: number): void {
    const c = this.ctrl;
    // the helper may still be finishing one chunk
    let spins = 0;
    while (Atomics.load(c, DONE) < n) {
      if (++spins > 20000) Atomics.wait(c, DONE, Atomics.load(c, DONE), 1);
    }
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    helperChunksTotal += this.helperChunks;
    Atomics.store(this.ctrl, TASK, RELEASE);
    Atomics.notify(this.ctrl, TASK);
  }
}

const HELPER_SOURCE = String.raw`
const { parentPort } = require('node:worker_threads');
HELPER_CONSTANTS
const runChunk = RUN_CHUNK;
parentPort.on('message', (m) => {
  const c = new Int32Array(m.ctrl);
  const hists = [];
  for (let i = 0; i <= m.nHists; i++) hists.push(new Float64Array(m.hist, i * m.histLen * 8, m.histLen));
  const u = m.update;
  const st = {
    ctrl: c, rows: new Int32Array(m.rows), tmp: new Int32Array(m.tmp), gh: new Float64Array(m.gh), rb: new Uint8Array(m.rb),
    col: new Uint8Array(m.col), nRows: m.nRows, off: new Int32Array(m.off), nBins: new Int32Array(m.nBins),
    active: new Uint8Array(m.active), hists, kernel: new Function('rows', 's', 'e', 'gh', 'rb', 'hist', 'off', m.kernel),
    chunkStart: new Int32Array(m.chunkStart), chunkFeat: new Int32Array(m.chunkFeat), fp: new Float64Array(m.fp),
    res: new Float64Array(m.res), goLeft: new Uint8Array(256),
    update: u ? { margin: new Float64Array(u.margin), expNeg: new Float64Array(u.expNeg), y: new Float64Array(u.y), leaves: new Float64Array(u.leaves) } : null,
    block: SHARD_BLOCK, partition: PARTITION_RANGE, search: SEARCH_SPLITS, updateShard: UPDATE_SHARD,
  };
  let spins = 0;
  for (;;) {
    const v = Atomics.load(c, TASK);
    if (v === RELEASE) break;
    const k = v & 31;
    const n = (v >> 5) & 31;
    if (k >= n) {
      if (++spins < 100_000) continue;
      spins = 0;
      Atomics.wait(c, TASK, v, 1000);
      continue;
    }
    if (Atomics.compareExchange(c, TASK, v, v + 1) !== v) continue;
    spins = 0;
    // parameters are stable while a claimed chunk of this task is unfinished; the second
    // phase of a node task waits for both shards
    if (k >= 2) while (Atomics.load(c, DONE) < 2);
    try {
      runChunk(st, k);
    } catch (err) {
      // count the chunk so that the training thread stops waiting, and report instead
      Atomics.store(c, FAILED, 1);
      Atomics.add(c, DONE, 1);
      Atomics.notify(c, DONE);
      throw err;
    }
    Atomics.add(c, HELPER_CHUNKS, 1);
    Atomics.add(c, DONE, 1);
    Atomics.notify(c, DONE);
  }
});
`;

class Helper {
  private worker: Worker | null;
  ready: Promise<boolean>;

  constructor() {
    const parts: Record<string, string> = {
      HELPER_CONSTANTS: `const { ${Object.keys(HELPER_CONSTANTS).join(', ')} } = ${JSON.stringify(HELPER_CONSTANTS)};`,
      SHARD_BLOCK: String(SHARD_BLOCK),
      RUN_CHUNK: runChunk.toString(),
      PARTITION_RANGE: partitionRange.toString(),
      SEARCH_SPLITS: searchSplits.toString(),
      UPDATE_SHARD: updateShard.toString(),
    };
    const source = HELPER_SOURCE.replace(/\b(HELPER_CONSTANTS|SHARD_BLOCK|RUN_CHUNK|PARTITION_RANGE|SEARCH_SPLITS|UPDATE_SHARD)\b/g, (w) => parts[w]);
    this.worker = new Worker(source, { eval: true, execArgv: [], stdout: false, stderr: false });
    this.worker.unref();
    this.ready = new Promise((resolve) => {
      this.worker!.once('online', () => resolve(true));
      this.worker!.once('error', () => resolve(false));
    });
    this.worker.on('error', () => {
      this.worker = null;
      helper = null;
    });
  }

  post(msg: unknown): void {
    this.worker?.postMessage(msg);
  }
}

let helper: Helper | null = null;
let helperChunksTotal = 0;

/** chunks run by this thread's helper over all released fits (statistics, tests) */
export function histHelperChunks(): number {
  return helperChunksTotal;
}

function getHelper(): Helper | null {
  if (helper) return helper;
  try {
    helper = new Helper();
  } catch {
    helper = null;
  }
  return helper;
}

/** Threads to use for histogram building: env PGML_TRAIN_THREADS overrides the core count. */
export function defaultThreads(): number {
  const env = Number(process.env.PGML_TRAIN_THREADS);
  if (Number.isInteger(env) && env >= 1) return Math.min(env, 2);
  return Math.min(2, availableParallelism());
}

/** Starts the helper worker now (optional; fits start it on demand). Resolves to whether it runs. */
export async function warmHistHelper(): Promise<boolean> {
  const h = getHelper();
  return h ? h.ready : false;
}

export interface TeamOptions {
  rows: Int32Array;
  gh: Float64Array;
  rb: Uint8Array;
  featOffset: Int32Array;
  nBins: Int32Array;
  /** column-major bins (d × nRows) and a rows-sized scratch for partitions, both shared */
  colBins: Uint8Array;
  tmp: Int32Array;
  nRows: number;
  d: number;
  S: number;
  histLen: number;
  /** most histograms alive at once (shared slots); more become thread-local */
  nHists: number;
  threads: number;
  /** boosting state for update tasks (shared when threaded) */
  update?: UpdateBuffers;
}

/** shared histogram memory above which a fit stays single-threaded */
const MAX_SHARED_BYTES = 256 * 1024 * 1024;

/**
 * parts + 1 feature bounds splitting the features into chunks of nearly equal work: a feature
 * costs one step per bin in a split search and in summing and subtracting histograms.
 */
export function chunkBounds(nBins: Int32Array, parts: number): Int32Array {
  const d = nBins.length;
  let total = 0;
  for (let f = 0; f < d; f++) total += nBins[f] + 1;
  const b = new Int32Array(parts + 1);
  let acc = 0;
  let f = 0;
  for (let c = 1; c < parts; c++) {
    while (f < d && acc + (nBins[f] + 1) / 2 <= (c * total) / parts) acc += nBins[f++] + 1;
    b[c] = f;
  }
  b[parts] = d;
  return b;
}

export function makeTeam(o: TeamOptions): HistTeam {
  const threaded = o.threads > 1 && o.histLen * (o.nHists + 1) * 8 <= MAX_SHARED_BYTES;
  // one feature chunk on a single thread: chunking changes no number
  const parts = threaded && o.d > 1 ? 2 : 1;
  const fb = chunkBounds(o.nBins, parts);
  const chunkStart = new Int32Array(new SharedArrayBuffer((parts + 1) * 4));
  const chunkFeat = new Int32Array(new SharedArrayBuffer((parts + 1) * 4));
  chunkFeat.set(fb);
  for (let c = 0; c < parts; c++) chunkStart[c] = o.featOffset[fb[c]] * o.S;
  chunkStart[parts] = o.histLen;
  const sab = threaded ? new SharedArrayBuffer(o.histLen * (o.nHists + 1) * 8) : null;
  const h = threaded ? getHelper() : null;
  return new HistTeam(o, sab, kernelSource(0, o.d, o.d, o.S, o.featOffset), chunkStart, chunkFeat, h);
}
