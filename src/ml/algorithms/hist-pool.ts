/**
 * Histogram kernels and the helper thread that shares histogram building and row
 * partitioning with the trainer.
 *
 * One kernel is generated per fit: the loop over features is unrolled with each feature's
 * histogram offset as a constant, reading one Uint8 bin per feature from the row-major bin
 * matrix. A large node's histogram is built as two row halves (the first into the node's slot,
 * the second into a scratch slot, then summed); a large partition as two halves whose lefts
 * and rights are concatenated. The training thread and one helper worker claim the halves of
 * a task with a compare-and-swap on a shared counter (work stealing). Whether a node is split
 * into halves depends only on its size, and every number is added in the same order whichever
 * thread builds a half, so threaded and single-threaded results are bit-identical. If the
 * helper is slow to start, busy or absent, the training thread simply builds both halves.
 *
 * The helper is one persistent worker per thread (module singleton, unref'd): it lives across
 * trees and fits, runs a synchronous serve loop on Atomics for the duration of one fit and
 * goes back to its event loop between fits. Its code is a self-contained string (eval worker)
 * so it needs no TypeScript loader.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';

/** (rows, s, e, gh, rb, hist, off): adds rows[s..e) into hist for one chunk of features */
export type HistKernel = (
  rows: Int32Array,
  s: number,
  e: number,
  gh: Float64Array,
  rb: Uint8Array,
  hist: Float64Array,
  off: Int32Array,
) => void;

/** beyond this many features in one chunk the kernel loops instead of unrolling */
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
const TASK = 0; // (seq << 8) | next chunk to claim; RELEASE ends the serve loop
const DONE = 1; // chunks finished in the current task
const N_CHUNKS = 2; // chunks (halves) per task
const SMALL = 3; // hist slot to build
const PARENT = 4; // hist slot to subtract the built one from, or -1
const START = 5;
const END = 6;
const HELPER_CHUNKS = 7; // statistics: chunks built by the helper
const KIND = 8; // 0: histogram task; 1: partition task (two halves)
const P_FEATURE = 9;
const P_BIN = 10;
const P_MISS = 11; // missing bin code of the feature
const P_ML = 12; // 1 = missing goes left
const P_MID = 13; // first row position of the second half
const P_LEFT0 = 14; // rows that went left in each half (results)
const P_LEFT1 = 15;
const CTRL_WORDS = 16;
const RELEASE = -1;
/**
 * histogram updates (rows × features) from which a node's histogram is built as two row
 * halves (summed afterwards), shared with the helper when there is one; below, in one pass.
 * Depends on the node only, so threaded and single-threaded fits add the same numbers.
 */
const SPLIT_MIN_UPDATES = 40_000;
/** rows below which a partition is not worth a hand-off */
const PARALLEL_MIN_PARTITION = 8_000;

/**
 * Stable partition of rows[a..b) of one half: rows going left are written in place from a,
 * rows going right into tmp from a. Returns the number that went left.
 */
function partitionHalf(
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
  return l - a;
}

/** A shared histogram task runner for one fit. */
export class HistTeam {
  readonly ctrl: Int32Array;
  /** histogram slots: the first `shared` live in shared memory, later ones are thread-local */
  readonly hists: Float64Array[];
  readonly shared: number;
  private readonly scratch: Float64Array;
  readonly kernels: HistKernel[];
  /** slot ranges [chunkStart[c], chunkStart[c + 1]) of each chunk, in doubles */
  readonly chunkStart: Int32Array;
  private seq = 0;
  private released = false;

  constructor(
    private readonly rows: Int32Array,
    private readonly gh: Float64Array,
    private readonly rb: Uint8Array,
    private readonly off: Int32Array,
    private readonly d: number,
    private readonly col: Uint8Array,
    private readonly tmp: Int32Array,
    private readonly nRows: number,
    histSab: SharedArrayBuffer | null,
    private readonly histLen: number,
    nHists: number,
    kernelBodies: string[],
    chunkStart: Int32Array,
    helper: Helper | null,
  ) {
    this.ctrl = new Int32Array(new SharedArrayBuffer(CTRL_WORDS * 4));
    this.hists = [];
    this.shared = histSab ? nHists : 0;
    for (let i = 0; i < this.shared; i++) this.hists.push(new Float64Array(histSab!, i * histLen * 8, histLen));
    // the second row half of split histogram builds goes here (shared slot nHists)
    this.scratch = histSab ? new Float64Array(histSab, nHists * histLen * 8, histLen) : new Float64Array(histLen);
    this.kernels = kernelBodies.map(compileKernel);
    this.chunkStart = chunkStart;
    this.ctrl[N_CHUNKS] = 2;
    this.ctrl[TASK] = 2; // seq 0, nothing to claim
    if (histSab) helper?.post({
      ctrl: this.ctrl.buffer,
      hist: histSab,
      histLen,
      nHists,
      rows: rows.buffer,
      gh: gh.buffer,
      rb: rb.buffer,
      off: off.buffer,
      col: col.buffer,
      tmp: tmp.buffer,
      nRows,
      kernels: kernelBodies,
      chunkStart: Array.from(chunkStart),
    });
  }

  /** a new thread-local histogram slot */
  addLocal(): number {
    this.hists.push(new Float64Array(this.histLen));
    return this.hists.length - 1;
  }

  /** chunks the helper thread built so far */
  get helperChunks(): number {
    return Atomics.load(this.ctrl, HELPER_CHUNKS);
  }

  /**
   * Zeroes hist slot `small`, adds rows[s..e) into it and, when parent >= 0, subtracts it from
   * slot `parent`; chunks are shared with the helper.
   */
  run(small: number, parent: number, s: number, e: number): void {
    const kernel = this.kernels[0];
    const { rows, gh, rb, off } = this;
    const h = this.hists[small];
    if ((e - s) * this.d < SPLIT_MIN_UPDATES) {
      h.fill(0);
      kernel(rows, s, e, gh, rb, h, off);
      if (parent >= 0) {
        const p = this.hists[parent];
        for (let i = 0; i < p.length; i++) p[i] -= h[i];
      }
      return;
    }
    // two row halves into `small` and the scratch slot, whichever thread builds them
    const mid = (s + e) >>> 1;
    const sc = this.scratch;
    const c = this.ctrl;
    if (this.shared > 0 && !this.released && small < this.shared) {
      Atomics.store(c, KIND, 0);
      Atomics.store(c, SMALL, small);
      Atomics.store(c, START, s);
      Atomics.store(c, END, e);
      Atomics.store(c, P_MID, mid);
      this.post();
      for (;;) {
        const v = Atomics.load(c, TASK);
        const k = v & 0xff;
        if (k >= 2) break;
        if (Atomics.compareExchange(c, TASK, v, v + 1) !== v) continue;
        const t = k === 0 ? h : sc;
        t.fill(0);
        kernel(rows, k === 0 ? s : mid, k === 0 ? mid : e, gh, rb, t, off);
        Atomics.add(c, DONE, 1);
      }
      this.waitDone(2);
    } else {
      h.fill(0);
      kernel(rows, s, mid, gh, rb, h, off);
      sc.fill(0);
      kernel(rows, mid, e, gh, rb, sc, off);
    }
    if (parent >= 0) {
      const p = this.hists[parent];
      for (let i = 0; i < h.length; i++) {
        const v = h[i] + sc[i];
        h[i] = v;
        p[i] -= v;
      }
    } else {
      for (let i = 0; i < h.length; i++) h[i] += sc[i];
    }
  }

  private post(): void {
    const c = this.ctrl;
    Atomics.store(c, DONE, 0);
    this.seq = (this.seq + 1) & 0x7fffff;
    Atomics.store(c, TASK, this.seq << 8);
    Atomics.notify(c, TASK, 1);
  }

  private readonly goLeft = new Uint8Array(256);

  /**
   * Stable partition of rows[s..e) by "bin of feature f <= bin goes left" (the missing code
   * miss goes left when ml); returns the first position of the right part. Large ranges are
   * split in two halves that the helper may take one of; the result is the same either way.
   */
  partition(s: number, e: number, f: number, bin: number, miss: number, ml: boolean): number {
    const { rows, tmp, col, goLeft } = this;
    const base = f * this.nRows;
    const mlv = ml ? 1 : 0;
    if (this.shared === 0 || this.released || e - s < PARALLEL_MIN_PARTITION) {
      const l = s + partitionHalf(rows, tmp, col, goLeft, s, e, base, bin, miss, mlv);
      rows.set(tmp.subarray(s, s + (e - l)), l);
      return l;
    }
    const c = this.ctrl;
    const h = (s + e) >>> 1;
    Atomics.store(c, KIND, 1);
    Atomics.store(c, START, s);
    Atomics.store(c, END, e);
    Atomics.store(c, P_MID, h);
    Atomics.store(c, P_FEATURE, f);
    Atomics.store(c, P_BIN, bin);
    Atomics.store(c, P_MISS, miss);
    Atomics.store(c, P_ML, mlv);
    this.post();
    // the task has N_CHUNKS chunks like every task; those past the two halves are empty
    const n = c[N_CHUNKS];
    for (;;) {
      const v = Atomics.load(c, TASK);
      const k = v & 0xff;
      if (k >= n) break;
      if (Atomics.compareExchange(c, TASK, v, v + 1) !== v) continue;
      if (k >= 2) {
        Atomics.add(c, DONE, 1);
        continue;
      }
      const a = k === 0 ? s : h;
      const b = k === 0 ? h : e;
      Atomics.store(c, P_LEFT0 + k, partitionHalf(rows, tmp, col, goLeft, a, b, base, bin, miss, mlv));
      Atomics.add(c, DONE, 1);
    }
    this.waitDone(n);
    const l0 = Atomics.load(c, P_LEFT0);
    const l1 = Atomics.load(c, P_LEFT1);
    // [lefts of half 0][lefts of half 1][rights of half 0][rights of half 1]
    rows.copyWithin(s + l0, h, h + l1);
    let at = s + l0 + l1;
    rows.set(tmp.subarray(s, h - l0), at);
    at += h - s - l0;
    rows.set(tmp.subarray(h, e - l1), at);
    return s + l0 + l1;
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
const TASK = 0, DONE = 1, N_CHUNKS = 2, SMALL = 3, PARENT = 4, START = 5, END = 6, HELPER_CHUNKS = 7, RELEASE = -1;
const KIND = 8, P_FEATURE = 9, P_BIN = 10, P_MISS = 11, P_ML = 12, P_MID = 13, P_LEFT0 = 14;
const partitionHalf = PARTITION_HALF;
parentPort.on('message', (m) => {
  const c = new Int32Array(m.ctrl);
  const hists = [];
  for (let i = 0; i <= m.nHists; i++) hists.push(new Float64Array(m.hist, i * m.histLen * 8, m.histLen));
  const rows = new Int32Array(m.rows);
  const gh = new Float64Array(m.gh);
  const rb = new Uint8Array(m.rb);
  const off = new Int32Array(m.off);
  const col = new Uint8Array(m.col);
  const tmp = new Int32Array(m.tmp);
  const goLeft = new Uint8Array(256);
  const kernels = m.kernels.map((b) => new Function('rows', 's', 'e', 'gh', 'rb', 'hist', 'off', b));
  const cs = m.chunkStart;
  const n = c[N_CHUNKS];
  let spins = 0;
  for (;;) {
    const v = Atomics.load(c, TASK);
    if (v === RELEASE) break;
    const k = v & 0xff;
    if (k >= n) {
      if (++spins < 100_000) continue;
      spins = 0;
      Atomics.wait(c, TASK, v, 1000);
      continue;
    }
    if (Atomics.compareExchange(c, TASK, v, v + 1) !== v) continue;
    spins = 0;
    // parameters are stable while a claimed chunk of this task is unfinished
    if (c[KIND] === 1) {
      if (k >= 2) {
        Atomics.add(c, DONE, 1);
        continue;
      }
      const s = c[START], e = c[END], h = c[P_MID];
      const a = k === 0 ? s : h;
      const b = k === 0 ? h : e;
      Atomics.store(c, P_LEFT0 + k, partitionHalf(rows, tmp, col, goLeft, a, b, c[P_FEATURE] * m.nRows, c[P_BIN], c[P_MISS], c[P_ML]));
      Atomics.add(c, DONE, 1);
      Atomics.notify(c, DONE);
      continue;
    }
    const s = c[START], e = c[END], mid = c[P_MID];
    const t = k === 0 ? hists[c[SMALL]] : hists[m.nHists];
    t.fill(0);
    kernels[0](rows, k === 0 ? s : mid, k === 0 ? mid : e, gh, rb, t, off);
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
    this.worker = new Worker(HELPER_SOURCE.replace('PARTITION_HALF', partitionHalf.toString()), { eval: true, execArgv: [], stdout: false, stderr: false });
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

/** histogram chunks built by this thread's helper over all released fits (statistics, tests) */
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
}


/** shared histogram memory above which a fit stays single-threaded */
const MAX_SHARED_BYTES = 256 * 1024 * 1024;

/** parts + 1 feature bounds splitting d features into nearly equal chunks */
export function chunkBounds(d: number, parts: number): Int32Array {
  const b = new Int32Array(parts + 1);
  for (let c = 0; c <= parts; c++) b[c] = Math.round((c * d) / parts);
  return b;
}

export function makeTeam(o: TeamOptions): HistTeam {
  const threaded = o.threads > 1 && o.histLen * (o.nHists + 1) * 8 <= MAX_SHARED_BYTES;
  const parts = 1;
  const fb = chunkBounds(o.d, parts);
  const bodies: string[] = [];
  const chunkStart = new Int32Array(parts + 1);
  for (let c = 0; c < parts; c++) {
    bodies.push(kernelSource(fb[c], fb[c + 1], o.d, o.S, o.featOffset));
    chunkStart[c] = o.featOffset[fb[c]] * o.S;
  }
  chunkStart[parts] = o.histLen;
  const sab = threaded ? new SharedArrayBuffer(o.histLen * (o.nHists + 1) * 8) : null;
  const h = threaded ? getHelper() : null;
  return new HistTeam(o.rows, o.gh, o.rb, o.featOffset, o.d, o.colBins, o.tmp, o.nRows, sab, o.histLen, o.nHists, bodies, chunkStart, h);
}
