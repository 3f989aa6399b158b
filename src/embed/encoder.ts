/**
 * One loaded embedding model: a transformers.js tokenizer and the model's ONNX Runtime
 * session (loaded by transformers.js, so local directories and hub downloads take the
 * same path), run directly with our own padding, truncation and pooling.
 *
 * Everything here is synchronous CPU work or a synchronous ORT run (onnxruntime-node's
 * `session.run` only defers to setImmediate and then blocks its thread), so in the
 * server it runs inside a worker thread (see model-worker.ts).
 */
import { AutoModel, AutoTokenizer, env, type PreTrainedModel, type PreTrainedTokenizer } from '@huggingface/transformers';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import type { ModelSpec } from './model-dir.ts';
import { l2Normalize, poolRow, type Pooling } from './pooling.ts';
import { padBatch, TruncatingTokenizer, type TokenizerLike } from './tokenize.ts';

export interface EncodeItem {
  text: string;
  pooling: Pooling;
  normalize: boolean;
}

export interface EncodeOutput {
  dimensions: number;
  /** n × dimensions, row-major, in input order */
  data: Float32Array;
  /** 1 where the input was truncated to the model's max length */
  truncated: Uint8Array;
}

export interface EncoderInfo {
  name: string;
  dimensions: number;
  maxLength: number;
  dtype: string;
  source: 'local' | 'remote';
}

/**
 * Inputs are sorted by length and run in chunks of at most this many padded tokens,
 * which bounds the attention tensors (chunk × heads × seq² floats) and wastes little on padding.
 */
const TOKEN_BUDGET = 8192;
const MAX_CHUNK = 64;

env.allowRemoteModels = false; // transformers.js defaults to downloading

/**
 * ORT's intra-op threads spin-wait for work between and after runs by default. In the server they
 * share the CPUs with the HTTP thread and PostgreSQL, which need the CPU exactly while the model is
 * idle between batches: spinning takes it from them (bench/embed.ts). Without it ORT spends a few
 * per cent more wall time per run but less CPU.
 */
export const ORT_SESSION_CONFIG = { session: { intra_op: { allow_spinning: '0' } } };

type Session = Pick<InferenceSession, 'run' | 'inputNames' | 'outputNames' | 'release'>;

export class Encoder {
  private constructor(
    readonly info: EncoderInfo,
    private readonly tokenizer: TruncatingTokenizer,
    private readonly model: PreTrainedModel,
    private readonly session: Session,
    private readonly outputName: string,
    private readonly padId: number,
  ) {}

  static async load(spec: ModelSpec, threads = 0): Promise<Encoder> {
    // env is global to this thread; the per-call local_files_only keeps local models local
    // even after a remote load has switched downloads on.
    env.allowLocalModels = true;
    env.localModelPath = spec.localModelPath.endsWith('/') ? spec.localModelPath : `${spec.localModelPath}/`;
    env.cacheDir = spec.cacheDir;
    if (spec.allowRemote) env.allowRemoteModels = true;
    if (spec.remoteHost) env.remoteHost = spec.remoteHost;
    const common = { local_files_only: !spec.allowRemote, cache_dir: spec.cacheDir };
    const tokenizer: PreTrainedTokenizer = await AutoTokenizer.from_pretrained(spec.id, common);
    const model = await AutoModel.from_pretrained(spec.id, {
      ...common,
      dtype: spec.dtype,
      device: 'cpu',
      session_options: { graphOptimizationLevel: 'all', ...(threads > 0 ? { intraOpNumThreads: threads } : {}), extra: ORT_SESSION_CONFIG },
    });
    const session = (model.sessions.model ?? Object.values(model.sessions)[0]) as Session | undefined;
    if (!session) throw new Error('model has no ONNX session');
    const outputs = session.outputNames;
    const outputName = ['last_hidden_state', 'token_embeddings'].find((n) => outputs.includes(n)) ?? outputs[0];

    const config = model.config as unknown as Record<string, unknown>;
    const positions = typeof config.max_position_embeddings === 'number' ? config.max_position_embeddings : Infinity;
    const tokMax = Number(tokenizer.model_max_length);
    const declared = spec.maxSeqLength ?? (spec.source === 'remote' ? await remoteMaxSeqLength(spec.id) : undefined);
    const maxLength = declared ?? Math.min(Number.isFinite(tokMax) && tokMax > 0 ? tokMax : 512, positions);

    const enc = new Encoder(
      { name: spec.name, dimensions: 0, maxLength, dtype: spec.dtype, source: spec.source },
      new TruncatingTokenizer(tokenizer as unknown as TokenizerLike, maxLength),
      model,
      session,
      outputName,
      typeof tokenizer.pad_token_id === 'number' ? tokenizer.pad_token_id : 0,
    );
    // The first run also tells us the output width and warms ORT's allocations.
    const warm = await enc.encode([{ text: '', pooling: 'cls', normalize: false }]);
    enc.info.dimensions = warm.dimensions;
    return enc;
  }

  async encode(items: EncodeItem[]): Promise<EncodeOutput> {
    const n = items.length;
    const truncated = new Uint8Array(n);
    const rows = items.map((item, i) => {
      const t = this.tokenizer.tokenize(item.text);
      truncated[i] = t.truncated ? 1 : 0;
      return t.ids;
    });
    let data = new Float32Array(0);
    let dim = this.info.dimensions;
    for (const chunk of chunksByLength(rows)) {
      const padded = padBatch(chunk.map((i) => rows[i]), this.padId);
      const { batch, seq } = padded;
      const feeds: Record<string, Tensor> = {};
      const names = this.session.inputNames;
      if (names.includes('input_ids')) feeds.input_ids = new Tensor('int64', padded.inputIds, [batch, seq]);
      if (names.includes('attention_mask')) feeds.attention_mask = new Tensor('int64', padded.attentionMask, [batch, seq]);
      if (names.includes('token_type_ids')) feeds.token_type_ids = new Tensor('int64', padded.tokenTypeIds, [batch, seq]);
      const out = (await this.session.run(feeds))[this.outputName];
      const hidden = out.data as Float32Array;
      dim = Number(out.dims[out.dims.length - 1]);
      if (data.length === 0) data = new Float32Array(n * dim);
      chunk.forEach((itemIndex, b) => {
        const row = data.subarray(itemIndex * dim, (itemIndex + 1) * dim);
        poolRow(hidden, b, seq, dim, padded.mask.subarray(b * seq, (b + 1) * seq), items[itemIndex].pooling, row);
        if (items[itemIndex].normalize) l2Normalize(row);
      });
    }
    return { dimensions: dim, data, truncated };
  }

  async dispose(): Promise<void> {
    await this.model.dispose();
  }
}

/** sentence-transformers' max_seq_length from the hub (transformers.js does not download that file); best effort. */
async function remoteMaxSeqLength(id: string): Promise<number | undefined> {
  try {
    const path = env.remotePathTemplate.replaceAll('{model}', id).replaceAll('{revision}', 'main');
    const res = await env.fetch(new URL(path + 'sentence_bert_config.json', env.remoteHost).href, { signal: AbortSignal.timeout(10_000) });
    const v = res.ok ? (await res.json()).max_seq_length : undefined;
    return Number.isInteger(v) && v > 0 ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Groups item indices, shortest first, into chunks within TOKEN_BUDGET padded tokens. */
export function chunksByLength(rows: number[][]): number[][] {
  const order = rows.map((_, i) => i).sort((a, b) => rows[a].length - rows[b].length);
  const chunks: number[][] = [];
  let current: number[] = [];
  for (const i of order) {
    const padded = (current.length + 1) * Math.max(1, rows[i].length);
    if (current.length > 0 && (current.length >= MAX_CHUNK || padded > TOKEN_BUDGET)) {
      chunks.push(current);
      current = [];
    }
    current.push(i);
  }
  if (current.length) chunks.push(current);
  return chunks;
}
