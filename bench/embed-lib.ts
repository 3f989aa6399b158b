/**
 * Helpers of bench/embed.ts: the sentence pool, the model, a raw onnxruntime-node baseline and
 * an HTTP load generator that sends a different sentence in every request.
 *
 * The load generator runs autocannon in a forked child process (like bench/lib/load.ts), but
 * bench/lib's worker can only send one fixed body; this file is also that child's entry point
 * (forked with the argument LOAD_WORKER_FLAG).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { onCleanup } from './lib/cleanup.ts';
import { runInChild, type LoadSummary } from './lib/load.ts';
import type { Autocannon } from './lib/load-worker.ts';
import { REPO_ROOT } from './lib/proc.ts';

export const MODEL_NAME = 'all-MiniLM-L6-v2';
export const MODEL_ARCH = 'minilm-l6';
const LOAD_WORKER_FLAG = '--embed-load-worker';

// ---------------------------------------------------------------------------------------------
// sentences

/** ../shared/data/clickbait relative to the repository root (not to the current directory). */
export const CLICKBAIT_DIR = resolve(REPO_ROOT, '..', 'shared', 'data', 'clickbait');

/**
 * Every distinct headline of clickbait_data and non_clickbait_data (one per line, blank lines
 * skipped), in a fixed interleaved order so consecutive sentences mix both files.
 */
export function loadSentences(dir = CLICKBAIT_DIR): string[] {
  const files = ['clickbait_data', 'non_clickbait_data'].map((f) => join(dir, f));
  const missing = files.filter((f) => !existsSync(f));
  if (missing.length) throw new Error(`sentence data not found: ${missing.join(', ')}`);
  const seen = new Set<string>();
  for (const f of files) {
    for (const line of readFileSync(f, 'utf8').split('\n')) {
      const s = line.trim();
      if (s) seen.add(s);
    }
  }
  const all = [...seen];
  // a fixed permutation (multiplier coprime with the length) instead of file order
  let step = 7919;
  while (gcd(step, all.length) !== 1) step += 2;
  return all.map((_, i) => all[(i * step) % all.length]);
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

// ---------------------------------------------------------------------------------------------
// model

export interface BenchModel {
  /** PGML_MODEL_DIR: the parent directory of <name>/ */
  modelDir: string;
  name: string;
  generated: boolean;
}

function isMinilmL6(dir: string): boolean {
  try {
    const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    return (
      c.hidden_size === 384 &&
      c.num_hidden_layers === 6 &&
      c.num_attention_heads === 12 &&
      c.intermediate_size === 1536 &&
      existsSync(join(dir, 'onnx', 'model.onnx')) &&
      existsSync(join(dir, 'tokenizer.json'))
    );
  } catch {
    return false;
  }
}

/**
 * <repo>/models/all-MiniLM-L6-v2 when it is a minilm-l6 model (`npm run make-model -- --arch
 * minilm-l6 ...` or the real one); otherwise one is generated (random weights, real architecture
 * and tokenizer) into a temp dir that the cleanup registry removes.
 */
export async function ensureModel(): Promise<BenchModel> {
  const local = resolve(REPO_ROOT, 'models');
  if (isMinilmL6(join(local, MODEL_NAME))) return { modelDir: local, name: MODEL_NAME, generated: false };
  const dir = mkdtempSync(join(tmpdir(), 'pgml-bench-embed-model-'));
  onCleanup('generated model dir', () => rmSync(dir, { recursive: true, force: true }), () => rmSync(dir, { recursive: true, force: true }));
  const { makeModel } = await import('../src/embed/make-model.ts');
  makeModel({ arch: MODEL_ARCH, name: MODEL_NAME, out: dir });
  return { modelDir: dir, name: MODEL_NAME, generated: true };
}

// ---------------------------------------------------------------------------------------------
// raw onnxruntime-node

export interface RawTimings {
  sentences: number;
  batches: number;
  seconds: number;
  tokenizeSeconds: number;
  runSeconds: number;
  poolSeconds: number;
}

/**
 * The limit: one InferenceSession in this process (graph optimisation 'all', the given intra-op
 * threads, like src/embed/encoder.ts), fed with the gateway's own tokenisation (TruncatingTokenizer
 * with the model's max_seq_length, right padding to the longest row, token_type_ids 0) and pooled
 * the same way (masked mean, L2 normalisation). No worker thread, no batching queue, no HTTP,
 * no cache.
 */
export class RawOrt {
  private constructor(
    private readonly session: import('onnxruntime-node').InferenceSession,
    private readonly ort: typeof import('onnxruntime-node'),
    private readonly tokenizer: import('../src/embed/tokenize.ts').TruncatingTokenizer,
    private readonly padId: number,
    private readonly lib: {
      padBatch: typeof import('../src/embed/tokenize.ts').padBatch;
      poolRow: typeof import('../src/embed/pooling.ts').poolRow;
      l2Normalize: typeof import('../src/embed/pooling.ts').l2Normalize;
    },
    readonly maxLength: number,
  ) {}

  /** `extra`: ORT session config entries (e.g. src/embed/encoder.ts's ORT_SESSION_CONFIG); none = ORT's defaults */
  static async create(model: BenchModel, threads: number, extra?: Record<string, unknown>): Promise<RawOrt> {
    const ort = await import('onnxruntime-node');
    const { AutoTokenizer, env } = await import('@huggingface/transformers');
    const { TruncatingTokenizer, padBatch } = await import('../src/embed/tokenize.ts');
    const { poolRow, l2Normalize } = await import('../src/embed/pooling.ts');
    const dir = join(model.modelDir, model.name);
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.localModelPath = model.modelDir.endsWith('/') ? model.modelDir : `${model.modelDir}/`;
    const tok = await AutoTokenizer.from_pretrained(model.name, { local_files_only: true });
    const sbert = JSON.parse(readFileSync(join(dir, 'sentence_bert_config.json'), 'utf8')) as { max_seq_length?: number };
    const maxLength = sbert.max_seq_length ?? 256;
    const session = await ort.InferenceSession.create(join(dir, 'onnx', 'model.onnx'), {
      graphOptimizationLevel: 'all',
      executionProviders: ['cpu'],
      ...(threads > 0 ? { intraOpNumThreads: threads } : {}),
      ...(extra ? { extra } : {}),
    });
    const padId = typeof tok.pad_token_id === 'number' ? tok.pad_token_id : 0;
    return new RawOrt(session, ort, new TruncatingTokenizer(tok as never, maxLength), padId, { padBatch, poolRow, l2Normalize }, maxLength);
  }

  /** Embeddings of `texts` as one batch; `t` accumulates where the time went. */
  async embed(texts: string[], t?: RawTimings): Promise<Float32Array[]> {
    const t0 = performance.now();
    const padded = this.lib.padBatch(texts.map((s) => this.tokenizer.tokenize(s).ids), this.padId);
    const { batch, seq } = padded;
    const feeds: Record<string, import('onnxruntime-node').Tensor> = {};
    const names = this.session.inputNames;
    const T = this.ort.Tensor;
    if (names.includes('input_ids')) feeds.input_ids = new T('int64', padded.inputIds, [batch, seq]);
    if (names.includes('attention_mask')) feeds.attention_mask = new T('int64', padded.attentionMask, [batch, seq]);
    if (names.includes('token_type_ids')) feeds.token_type_ids = new T('int64', padded.tokenTypeIds, [batch, seq]);
    const t1 = performance.now();
    const results = await this.session.run(feeds);
    const out = results.last_hidden_state ?? results[this.session.outputNames[0]];
    const t2 = performance.now();
    const hidden = out.data as Float32Array;
    const dim = Number(out.dims[out.dims.length - 1]);
    const rows = texts.map((_, b) => {
      const row = new Float32Array(dim);
      this.lib.poolRow(hidden, b, seq, dim, padded.mask.subarray(b * seq, (b + 1) * seq), 'mean', row);
      return this.lib.l2Normalize(row);
    });
    const t3 = performance.now();
    if (t) {
      t.sentences += texts.length;
      t.batches++;
      t.tokenizeSeconds += (t1 - t0) / 1000;
      t.runSeconds += (t2 - t1) / 1000;
      t.poolSeconds += (t3 - t2) / 1000;
    }
    return rows;
  }

  /**
   * Consecutive batches of `batchSize` from `sentences` (from the start) until `seconds` have
   * passed or the sentences run out; one batch of warm-up first.
   */
  async throughput(sentences: string[], batchSize: number, seconds: number): Promise<RawTimings> {
    await this.embed(sentences.slice(0, batchSize));
    const t: RawTimings = { sentences: 0, batches: 0, seconds: 0, tokenizeSeconds: 0, runSeconds: 0, poolSeconds: 0 };
    const start = performance.now();
    for (let i = 0; i + batchSize <= sentences.length; i += batchSize) {
      await this.embed(sentences.slice(i, i + batchSize), t);
      if (performance.now() - start >= seconds * 1000) break;
    }
    t.seconds = (performance.now() - start) / 1000;
    return t;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP load with a distinct sentence per request

export interface EmbedLoadOptions {
  url: string;
  headers: Record<string, string>;
  model: string;
  connections: number;
  /** one request per sentence, in order; the run sends exactly this many requests */
  sentences: string[];
  /** every 2xx body must start with this (checked cheaply; a full parse would load the generator) */
  expectPrefix: string;
}

export interface EmbedLoadSummary extends LoadSummary {
  /** bodies built (≥ requests sent: autocannon builds each connection's first request up front) */
  bodiesBuilt: number;
}

/** Runs one load in a forked child (this file) so the generator has its own event loop and CPU account. */
export function runEmbedLoad(o: EmbedLoadOptions): Promise<EmbedLoadSummary> {
  return runInChild<EmbedLoadSummary>(fileURLToPath(import.meta.url), [LOAD_WORKER_FLAG], 'embed load generator', o);
}


function latencySummary(samples: number[]): LoadSummary['latencyMs'] {
  const sorted = Float64Array.from(samples).sort();
  const n = sorted.length;
  const at = (q: number) => (n ? sorted[Math.min(n - 1, Math.ceil(q * n) - 1)] : NaN);
  let sum = 0;
  for (const v of sorted) sum += v;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), mean: n ? sum / n : NaN, max: n ? sorted[n - 1] : NaN };
}

function measure(o: EmbedLoadOptions): Promise<EmbedLoadSummary> {
  const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
  return new Promise((resolvePromise, reject) => {
    const cpu = process.cpuUsage();
    const started = process.hrtime.bigint();
    const samples: number[] = [];
    const errorKinds: Record<string, number> = {};
    let lastAnswer = 0;
    let next = 0;
    let mismatches = 0;
    const bodies = o.sentences.map((s) => JSON.stringify({ model: o.model, inputs: s }));
    const path = new URL(o.url).pathname;
    const instance = autocannon(
      {
        url: o.url,
        connections: o.connections,
        amount: o.sentences.length,
        pipelining: 1,
        timeout: 30,
        requests: [
          {
            method: 'POST',
            path,
            headers: o.headers,
            setupRequest: (req: Record<string, unknown>) => {
              // past the end (only the up-front builds of idle connections can get here): an empty
              // body would be a 400 and show as non-2xx, never a silently repeated sentence
              req.body = next < bodies.length ? bodies[next] : '{}';
              next++;
              return req;
            },
            onResponse: (status: number, body: string) => {
              if (status >= 200 && status < 300 && !(body.startsWith(o.expectPrefix) && body.endsWith(']]}'))) mismatches++;
            },
          },
        ],
      },
      (err, r) => {
        if (err) return reject(err);
        const used = process.cpuUsage(cpu);
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        const active = lastAnswer ? (lastAnswer - Number(started)) / 1e9 : r.duration;
        resolvePromise({
          durationSeconds: active,
          ok: r['2xx'],
          rps: r['2xx'] / active,
          latencyMs: latencySummary(samples),
          errors: r.errors,
          errorKinds,
          timeouts: r.timeouts,
          non2xx: r.non2xx,
          mismatches,
          loadCpuSeconds: (used.user + used.system) / 1e6,
          wallSeconds: seconds,
          bodiesBuilt: next,
        });
      },
    );
    instance.on('reqError', (err) => {
      const kind = err.code ?? err.message;
      errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
    });
    instance.on('response', (_client, status, _bytes, ms) => {
      lastAnswer = Number(process.hrtime.bigint());
      if (status >= 200 && status < 300) samples.push(ms);
    });
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href && process.argv.includes(LOAD_WORKER_FLAG) && process.send) {
  process.once('message', (o: EmbedLoadOptions) => {
    measure(o).then(
      (summary) => process.send!({ summary }, () => process.exit(0)),
      (e: unknown) => process.send!({ error: String((e as Error)?.stack ?? e) }, () => process.exit(1)),
    );
  });
}

// ---------------------------------------------------------------------------------------------
// other people's CPU use (the machine may be shared)

/** busy and total CPU jiffies of the whole machine, from /proc/stat */
function machineJiffies(): { busy: number; total: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = v[3] + (v[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

const HZ = 100;

/**
 * CPU seconds the whole machine was busy between start and stop, so a benchmark can tell how much
 * of it was not its own (other jobs on a shared machine).
 */
export function machineMeter(): { stop(): { busySeconds: number; wallSeconds: number } } {
  const a = machineJiffies();
  const t0 = performance.now();
  return {
    stop() {
      const b = machineJiffies();
      return { busySeconds: a && b ? (b.busy - a.busy) / HZ : 0, wallSeconds: (performance.now() - t0) / 1000 };
    },
  };
}

/**
 * Waits (at most `maxSeconds`) until the machine has been nearly idle for one second: fewer than
 * `cores` busy cores, measured while this benchmark itself is idle. Returns the seconds waited and
 * the busy cores of the last sample.
 */
export async function waitForQuiet(maxSeconds: number, cores = 0.3): Promise<{ waited: number; busyCores: number }> {
  const start = performance.now();
  for (;;) {
    const m = machineMeter();
    await new Promise((r) => setTimeout(r, 1000));
    const { busySeconds, wallSeconds } = m.stop();
    const busyCores = busySeconds / wallSeconds;
    const waited = (performance.now() - start) / 1000;
    if (busyCores < cores || waited >= maxSeconds) return { waited, busyCores };
  }
}
