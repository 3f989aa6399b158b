/**
 * Histogram kernels and the helper thread that shares histogram building with the trainer.
 *
 * Kernels are generated per feature chunk: the inner loop over a chunk's features is unrolled
 * with each feature's histogram offset as a constant, reading one Uint8 bin per feature from
 * the row-major bin matrix. A histogram is split by features into chunks; both the training
 * thread and one helper worker claim chunks of a task with a compare-and-swap on a shared
 * counter (work stealing). Every histogram cell receives exactly the same additions in the
 * same row order whichever thread builds its chunk, so the threaded and single-threaded
 * results are bit-identical. If the helper is slow to start, busy or absent, the training
 * thread simply builds all chunks itself.
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
const N_CHUNKS = 2;
const SMALL = 3; // hist slot to build
const PARENT = 4; // hist slot to subtract the built one from, or -1
const START = 5;
const END = 6;
const HELPER_CHUNKS = 7; // statistics: chunks built by the helper
const CTRL_WORDS = 8;
const RELEASE = -1;
/** histogram updates (rows × features) below which a node is not worth a hand-off */
const PARALLEL_MIN_UPDATES = 48_000;

/** A shared histogram task runner for one fit. */
export class HistTeam {
  readonly ctrl: Int32Array;
  /** histogram slots: the first `shared` live in shared memory, later ones are thread-local */
  readonly hists: Float64Array[];
  readonly shared: number;
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
    this.kernels = kernelBodies.map(compileKernel);
    this.chunkStart = chunkStart;
    this.ctrl[N_CHUNKS] = kernelBodies.length;
    this.ctrl[TASK] = kernelBodies.length; // seq 0, nothing to claim
    if (histSab) helper?.post({
      ctrl: this.ctrl.buffer,
      hist: histSab,
      histLen,
      nHists,
      rows: rows.buffer,
      gh: gh.buffer,
      rb: rb.buffer,
      off: off.buffer,
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
    const c = this.ctrl;
    const n = c[N_CHUNKS];
    if (n === 1 || this.released || small >= this.shared || parent >= this.shared || (e - s) * this.d < PARALLEL_MIN_UPDATES) {
      for (let k = 0; k < n; k++) this.chunk(k, small, parent, s, e);
      return;
    }
    Atomics.store(c, SMALL, small);
    Atomics.store(c, PARENT, parent);
    Atomics.store(c, START, s);
    Atomics.store(c, END, e);
    Atomics.store(c, DONE, 0);
    this.seq = (this.seq + 1) & 0x7fffff;
    const base = this.seq << 8;
    Atomics.store(c, TASK, base);
    Atomics.notify(c, TASK, 1);
    for (;;) {
      const v = Atomics.load(c, TASK);
      const k = v & 0xff;
      if (k >= n) break;
      if (Atomics.compareExchange(c, TASK, v, v + 1) !== v) continue;
      this.chunk(k, small, parent, s, e);
      Atomics.add(c, DONE, 1);
    }
    // the helper may still be finishing one chunk
    let spins = 0;
    while (Atomics.load(c, DONE) < n) {
      if (++spins > 20000) Atomics.wait(c, DONE, Atomics.load(c, DONE), 1);
    }
  }

  /** single-threaded equivalent of run with all chunks built here */
  chunk(k: number, small: number, parent: number, s: number, e: number): void {
    const h = this.hists[small];
    const a = this.chunkStart[k];
    const b = this.chunkStart[k + 1];
    h.fill(0, a, b);
    this.kernels[k](this.rows, s, e, this.gh, this.rb, h, this.off);
    if (parent >= 0) {
      const p = this.hists[parent];
      for (let i = a; i < b; i++) p[i] -= h[i];
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
parentPort.on('message', (m) => {
  const c = new Int32Array(m.ctrl);
  const hists = [];
  for (let i = 0; i < m.nHists; i++) hists.push(new Float64Array(m.hist, i * m.histLen * 8, m.histLen));
  const rows = new Int32Array(m.rows);
  const gh = new Float64Array(m.gh);
  const rb = new Uint8Array(m.rb);
  const off = new Int32Array(m.off);
  const kernels = m.kernels.map((b) => new Function('rows', 's', 'e', 'gh', 'rb', 'hist', 'off', b));
  const cs = m.chunkStart;
  const n = c[N_CHUNKS];
  let spins = 0;
  for (;;) {
    const v = Atomics.load(c, TASK);
    if (v === RELEASE) break;
    const k = v & 0xff;
    if (k >= n) {
      if (++spins < 4000) continue;
      spins = 0;
      Atomics.wait(c, TASK, v, 1000);
      continue;
    }
    if (Atomics.compareExchange(c, TASK, v, v + 1) !== v) continue;
    spins = 0;
    // parameters are stable while a claimed chunk of this task is unfinished
    const small = c[SMALL], parent = c[PARENT], s = c[START], e = c[END];
    const h = hists[small];
    const a = cs[k], b = cs[k + 1];
    h.fill(0, a, b);
    kernels[k](rows, s, e, gh, rb, h, off);
    if (parent >= 0) {
      const p = hists[parent];
      for (let i = a; i < b; i++) p[i] -= h[i];
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
    this.worker = new Worker(HELPER_SOURCE, { eval: true, execArgv: [], stdout: false, stderr: false });
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
  d: number;
  S: number;
  histLen: number;
  /** most histograms alive at once (shared slots); more become thread-local */
  nHists: number;
  threads: number;
}

/** chunk size: small enough that a descheduled helper holds back little work */
const FEATURES_PER_CHUNK = 5;

/** shared histogram memory above which a fit stays single-threaded */
const MAX_SHARED_BYTES = 256 * 1024 * 1024;

/** parts + 1 feature bounds splitting d features into nearly equal chunks */
export function chunkBounds(d: number, parts: number): Int32Array {
  const b = new Int32Array(parts + 1);
  for (let c = 0; c <= parts; c++) b[c] = Math.round((c * d) / parts);
  return b;
}

export function makeTeam(o: TeamOptions): HistTeam {
  const threaded = o.threads > 1 && o.d >= 2 && o.histLen * o.nHists * 8 <= MAX_SHARED_BYTES;
  const parts = threaded ? Math.max(2, Math.min(32, Math.round(o.d / FEATURES_PER_CHUNK))) : 1;
  const fb = chunkBounds(o.d, parts);
  const bodies: string[] = [];
  const chunkStart = new Int32Array(parts + 1);
  for (let c = 0; c < parts; c++) {
    bodies.push(kernelSource(fb[c], fb[c + 1], o.d, o.S, o.featOffset));
    chunkStart[c] = o.featOffset[fb[c]] * o.S;
  }
  chunkStart[parts] = o.histLen;
  const sab = threaded ? new SharedArrayBuffer(o.histLen * o.nHists * 8) : null;
  const h = threaded ? getHelper() : null;
  return new HistTeam(o.rows, o.gh, o.rb, o.featOffset, o.d, sab, o.histLen, o.nHists, bodies, chunkStart, h);
}
