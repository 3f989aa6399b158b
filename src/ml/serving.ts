/**
 * Deployed models in memory, keyed by model id. Artifacts never change after training, so an
 * entry is never stale; which model a project serves is looked up (as the caller) on every
 * request, so a deploy on any replica takes effect at once. Models with a native form are
 * evaluated natively: tree ensembles through their flat, branchless form (predict-flat.ts;
 * large batches split over PGML_PREDICT_THREADS threads), linear and k-means models directly.
 * onnxruntime serves only what the native path cannot do as fast: imported models without a
 * native form, and batches of BATCH_THRESHOLD rows or more of ensembles too deep to flatten.
 */
import type { TransactionSql } from 'postgres';
import { ApiError, apiError } from '../errors.ts';
import { type ArtifactLimits, ArtifactError, DEFAULT_ARTIFACT_LIMITS, trainedModelBytes, validateMetadata, validateTrainedModel } from './artifact-limits.ts';
import { MLInputError } from './hyperparams.ts';
import { decodeModel } from './model-codec.ts';
import type { ColumnPreprocessor, Matrix, ModelMetadata, TrainedModel } from './model-types.ts';
import { decodeModel as decodeOnnx } from './onnx/proto.ts';
import { OrtModel } from './onnx/runtime.ts';
import { encodeRawRows, rawLayout } from './onnx/raw-input.ts';
import { checkOnnxModel } from './onnx/validate.ts';
import { evaluateFlat, flattenEnsemble, predictNaNRowsExactly, type FlatEnsemble } from './predict-flat.ts';
import { predictMatrix, outputWidth } from './predict-native.ts';
import { defaultPredictThreads, PredictThreads } from './predict-threads.ts';
import { featureWidth, transformRowInto, type InputRow } from './preprocess.ts';

/**
 * From this many rows, ensembles too deep to flatten go to onnxruntime (pointer-walking trees
 * natively is ~2.5× slower than ORT on one thread for 10k rows). Linear and k-means models stay
 * native at every size: a dot product per row is far cheaper than ORT's per-call overhead.
 */
export const BATCH_THRESHOLD = 256;

/** An onnxruntime session is counted as this many times its model's bytes. */
const ORT_BYTES_FACTOR = 2;

export interface ModelCacheOptions {
  /** total estimated bytes of loaded models; least recently used ones are dropped above it (PGML_MODEL_CACHE_BYTES) */
  maxBytes?: number;
  limits?: ArtifactLimits;
}

export interface LoadedModel {
  id: string;
  meta: ModelMetadata;
  native: TrainedModel | null;
  onnx: Uint8Array;
  ort: Promise<OrtModel> | null;
  /** the branchless form of a tree ensemble; null for other models and too-deep ensembles */
  flat: FlatEnsemble | null;
  threads: PredictThreads;
  /** scratch buffers for the single-row native path */
  row: Float64Array;
  out: Float64Array;
  /** estimated memory held: artifact bytes, evaluator arrays, an onnxruntime session once created */
  bytes: number;
  limits: ArtifactLimits;
}

/** A stored artifact the gateway refuses to serve: PostgREST's body, 422, naming the limit. */
function unservable(modelId: string, e: ArtifactError): ApiError {
  return apiError(422, 'PGML422', `Model ${modelId} cannot be served: ${e.message}`, e.details ?? null,
    e.hint ?? 'Retrain or re-import the model; artifacts are validated every time they are loaded');
}

export class ModelCache {
  private entries = new Map<string, LoadedModel>();
  loads = 0;

  /** called with the seconds each artifact load took (metrics) */
  onLoad: ((seconds: number) => void) | null = null;

  private readonly threads: PredictThreads;

  private readonly maxBytes: number;
  private readonly limits: ArtifactLimits;

  /** predictThreads: threads large tree batches are split over (PGML_PREDICT_THREADS) */
  constructor(private readonly capacity = 64, predictThreads = defaultPredictThreads(), opts: ModelCacheOptions = {}) {
    this.threads = new PredictThreads(predictThreads);
    this.limits = opts.limits ?? DEFAULT_ARTIFACT_LIMITS;
    this.maxBytes = opts.maxBytes ?? 4 * this.limits.maxModelBytes;
  }

  /** Stops the predict worker thread, if one runs. */
  close(): Promise<void> {
    return this.threads.close();
  }

  get bytes(): number {
    let n = 0;
    for (const m of this.entries.values()) n += m.bytes;
    return n;
  }

  async get(tx: TransactionSql, modelId: string): Promise<LoadedModel> {
    const hit = this.entries.get(modelId);
    if (hit) {
      this.entries.delete(modelId);
      this.entries.set(modelId, hit);
      return hit;
    }
    const started = performance.now();
    const max = this.limits.maxModelBytes;
    // read as the caller: RLS on pgml.files still decides. Sizes first: nothing larger than the
    // per-model limit is fetched.
    const rows = await tx`select f.path, octet_length(f.data)::float8 as size, octet_length(m.metadata::text)::float8 as meta_size,
        case when octet_length(f.data) <= ${max} then f.data end as data,
        case when octet_length(m.metadata::text) <= ${max} then m.metadata end as metadata
      from pgml.models m join pgml.files f on f.model_id = m.id where m.id = ${modelId} and f.path in ('model.json', 'model.onnx')`;
    const onnx = rows.find((r) => r.path === 'model.onnx');
    if (!onnx) throw apiError(404, 'PGML404', `Model ${modelId} has no artifact`);
    const json = rows.find((r) => r.path === 'model.json');
    let loaded: LoadedModel;
    try {
      loaded = this.build(modelId, onnx, json);
    } catch (e) {
      if (e instanceof ArtifactError) throw unservable(modelId, e);
      if (e instanceof SyntaxError || e instanceof RangeError || e instanceof TypeError) {
        throw unservable(modelId, new ArtifactError('malformed model artifact', e.message));
      }
      throw e;
    }
    this.loads++;
    this.onLoad?.((performance.now() - started) / 1000);
    this.entries.set(modelId, loaded);
    this.trim(modelId);
    return loaded;
  }

  /** Validates everything read from the rows before building anything sized by it. */
  private build(modelId: string, onnxRow: Record<string, unknown>, jsonRow: Record<string, unknown> | undefined): LoadedModel {
    const limits = this.limits;
    const stored = Number(onnxRow.size) + Number(jsonRow?.size ?? 0) + Number(onnxRow.meta_size);
    if (stored > limits.maxModelBytes || onnxRow.data === null || jsonRow?.data === null || onnxRow.metadata === null) {
      throw tooLarge(stored, limits);
    }
    const meta = validateMetadata(onnxRow.metadata, limits);
    const onnx = onnxRow.data as Uint8Array;
    const native = jsonRow ? validateTrainedModel(decodeModel(jsonRow.data as Uint8Array), meta, limits) : null;
    let bytes = onnx.byteLength + Number(onnxRow.meta_size) + (native ? trainedModelBytes(native) : ORT_BYTES_FACTOR * onnx.byteLength);
    if (bytes > limits.maxModelBytes) throw tooLarge(bytes, limits);
    const flat = native?.kind === 'trees' ? flattenEnsemble(native, limits.maxModelBytes - bytes) : null;
    if (flat) bytes += flat.feature.byteLength + flat.threshold.byteLength + flat.leaf.byteLength;
    return {
      id: modelId,
      meta,
      native,
      onnx,
      ort: null,
      flat,
      threads: this.threads,
      row: new Float64Array(meta.featureCount),
      out: new Float64Array(native ? outputWidth(native) : 1),
      bytes,
      limits,
    };
  }

  /** Drops least recently used models (never `keep`) until count and bytes are within bounds. */
  private trim(keep: string): void {
    let total = this.bytes;
    for (const [id, m] of this.entries) {
      if (this.entries.size <= this.capacity && total <= this.maxBytes) break;
      if (id === keep) continue;
      this.entries.delete(id);
      total -= m.bytes;
    }
  }

  /** A loaded model, without any access check: only after the caller's lookup named it. */
  peek(modelId: string): LoadedModel | undefined {
    return this.entries.get(modelId);
  }

  evict(modelId: string): void {
    this.entries.delete(modelId);
  }

  get size(): number {
    return this.entries.size;
  }
}

function tooLarge(bytes: number, limits: ArtifactLimits): ArtifactError {
  const mb = (n: number) => `${Math.ceil(n / 1048576)} MiB`;
  return new ArtifactError(`the model needs about ${mb(bytes)} in memory, above the per-model limit of ${mb(limits.maxModelBytes)}`,
    `limit PGML_MODEL_MAX_BYTES = ${limits.maxModelBytes}`, 'Raise PGML_MODEL_MAX_BYTES, or train a smaller model (fewer trees, lower max_depth)', 'maxModelBytes');
}

/**
 * The onnxruntime session of a model, created on first use. The stored graph is checked like an
 * upload first: a row owner may have inserted any bytes.
 */
function ortOf(m: LoadedModel): Promise<OrtModel> {
  if (m.ort) return m.ort;
  try {
    checkOnnxModel(decodeOnnx(m.onnx), m.limits);
  } catch (e) {
    const err = e instanceof ArtifactError ? e : new ArtifactError('malformed model.onnx', (e as Error).message);
    return Promise.reject(unservable(m.id, err));
  }
  const width = rawLayout(m.meta).rawWidth;
  m.bytes += m.native ? ORT_BYTES_FACTOR * m.onnx.byteLength : 0;
  m.ort = OrtModel.create(m.onnx, { labelValues: m.meta.labelValues }).then(async (ort) => {
    if (ort.inputWidth !== width) {
      await ort.release();
      throw unservable(m.id, new ArtifactError(`model.onnx takes ${ort.inputWidth} inputs but the metadata describes ${width}`));
    }
    return ort;
  });
  // a failed session is not cached: the next call reports the error again
  m.ort.catch(() => (m.ort = null));
  return m.ort;
}

/** PostgresML's flat feature array → one value per training column (array columns take `width`). */
export function featuresToRow(columns: ColumnPreprocessor[], features: unknown): unknown[] {
  if (!Array.isArray(features)) throw new MLInputError('features must be an array');
  let expected = 0;
  let arrays = false;
  for (const c of columns) {
    if (c.kind === 'array') {
      expected += c.width;
      arrays = true;
    } else expected++;
  }
  if (features.length !== expected) {
    throw new MLInputError(`expected ${expected} features, got ${features.length}`, `columns in order: ${columns.map((c) => (c.kind === 'array' ? `${c.name}[${c.width}]` : c.name)).join(', ')}`);
  }
  // no array column: one feature per column already, so the features are the row (only read
  // downstream); saves a copy per row, ~6 ms of a 10k-row batch
  if (!arrays) return features;
  const row: unknown[] = [];
  let at = 0;
  for (const c of columns) {
    if (c.kind === 'array') {
      row.push(features.slice(at, at + c.width));
      at += c.width;
    } else row.push(features[at++]);
  }
  return row;
}

export interface Predictions {
  /** regression: value; classification: class index; clustering: cluster index (per row) */
  values: Float64Array;
  /** classification: rows × k probabilities */
  probabilities?: Float64Array;
  k: number;
}

function encodeForOrt(m: LoadedModel, rows: InputRow[]): Float32Array {
  return encodeRawRows(m.meta, rows as never) as Float32Array;
}

/** Whether the native evaluator serves a batch of `rows` rows (else onnxruntime does). */
function servedNatively(m: LoadedModel, rows: number): boolean {
  return m.native !== null && (m.flat !== null || m.native.kind !== 'trees' || rows < BATCH_THRESHOLD);
}

/**
 * A zeroed rows × featureCount matrix for predictFeatures; in shared memory when the batch will
 * be split over threads.
 */
export function featureMatrix(m: LoadedModel, rows: number): Float64Array {
  const bytes = rows * m.meta.featureCount * Float64Array.BYTES_PER_ELEMENT;
  return new Float64Array(m.flat && m.threads.splits(rows) ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
}

/** Evaluates rows (objects by column name, or arrays in training column order). */
export async function predictRows(m: LoadedModel, rows: InputRow[]): Promise<Predictions> {
  const cols = m.meta.columns;
  const d = m.meta.featureCount;
  if (servedNatively(m, rows.length)) {
    if (rows.length === 1) {
      transformRowInto(cols, rows[0], m.row, 0);
      return predictSingle(m);
    }
    const x = featureMatrix(m, rows.length);
    for (let i = 0; i < rows.length; i++) transformRowInto(cols, rows[i], x, i * d);
    return predictFeatures(m, x, rows.length);
  }
  // validate like the native path (NULLs without imputation, wrong types), then run ORT
  const scratch = new Float64Array(d);
  for (const r of rows) transformRowInto(cols, r, scratch, 0);
  const ort = await ortOf(m);
  const out = await ort.run(encodeForOrt(m, rows), rows.length);
  if (m.meta.task === 'classification') {
    const probabilities = Float64Array.from(out.probabilities ?? []);
    const values = new Float64Array(rows.length);
    for (let i = 0; i < rows.length; i++) values[i] = out.label ? out.label[i] : 0;
    return { values, probabilities, k: classCount(m) };
  }
  return { values: out.values, k: 1 };
}

function classCount(m: LoadedModel): number {
  return m.meta.task === 'classification' ? (m.meta.classes?.length ?? 2) : 1;
}

/** The row in m.row, through the scratch buffers (synchronous: nothing else can use them meanwhile). */
function predictSingle(m: LoadedModel): Predictions {
  const native = m.native!;
  if (m.flat) {
    evaluateFlat(m.flat, m.row, m.meta.featureCount, 0, 1, m.out);
    if (native.kind === 'trees') predictNaNRowsExactly(native, m.row, m.meta.featureCount, 1, m.out, m.row, m.out);
    return collect(m, Float64Array.from(m.out), 1);
  }
  return collect(m, predictMatrix(native, { data: m.row, rows: 1, cols: m.meta.featureCount }), 1);
}

/**
 * Evaluates rows × featureCount preprocessed features (from featureMatrix) natively. Only for
 * models with a native form.
 */
export async function predictFeatures(m: LoadedModel, x: Float64Array, rows: number): Promise<Predictions> {
  const native = m.native;
  if (!native) throw new Error(`model ${m.id} has no native form`);
  const d = m.meta.featureCount;
  if (!m.flat || native.kind !== 'trees') return collect(m, predictMatrix(native, { data: x, rows, cols: d }), rows);
  const bytes = rows * m.flat.width * Float64Array.BYTES_PER_ELEMENT;
  const split = x.buffer instanceof SharedArrayBuffer && m.threads.splits(rows);
  const out = new Float64Array(split ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
  if (split) await m.threads.evaluate(m.flat, x, d, rows, out);
  else evaluateFlat(m.flat, x, d, 0, rows, out);
  predictNaNRowsExactly(native, x, d, rows, out, new Float64Array(d), new Float64Array(m.flat.width));
  return collect(m, out, rows);
}

/** Native outputs (rows × outputWidth) → Predictions. */
function collect(m: LoadedModel, out: Float64Array, rows: number): Predictions {
  if (m.meta.task !== 'classification') return { values: out, k: 1 };
  const k = classCount(m);
  const values = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (out[i * k + c] > out[i * k + best]) best = c;
    values[i] = best;
  }
  return { values, probabilities: out, k };
}

/** For tests and benchmarks: the same rows through both engines. */
export async function predictBoth(m: LoadedModel, rows: InputRow[]): Promise<{ native: Float64Array; ort: Float64Array | Float32Array }> {
  if (!m.native) throw new Error('model has no native form');
  const d = m.meta.featureCount;
  const x: Matrix = { data: new Float64Array(rows.length * d), rows: rows.length, cols: d };
  for (let i = 0; i < rows.length; i++) transformRowInto(m.meta.columns, rows[i], x.data, i * d);
  const native = predictMatrix(m.native, x);
  const out = await (await ortOf(m)).run(encodeForOrt(m, rows), rows.length);
  return { native, ort: m.meta.task === 'classification' ? out.probabilities! : out.values };
}

export { featureWidth };
