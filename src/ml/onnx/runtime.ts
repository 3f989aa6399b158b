/**
 * onnxruntime-node session wrapper for models with our standard interface: one float32
 * input [N, width] and outputs `variable` | `label` + `probabilities` | `label` + `distances`.
 */
import ort from 'onnxruntime-node';

export interface OrtModelOptions {
  /** threads used inside one operator; default 1 (serving runs many small batches) */
  intraOpThreads?: number;
  /**
   * Label values in probability-column order, used to turn the `label` output into class
   * indices (imported models emit their own labels, e.g. strings or [3, 5, 7]).
   */
  labelValues?: (string | number | boolean)[];
}

export interface OrtPrediction {
  rows: number;
  /** regression: rows × valueWidth predictions; classification / clustering: class or cluster index */
  values: Float64Array;
  valueWidth: number;
  label?: Int32Array;
  /** rows × classes (clustering: squared distance to each centroid) */
  probabilities?: Float32Array;
  classes?: number;
}

export class OrtModel {
  private buffer: Float32Array;
  private bufferBusy = false;
  private readonly labelIndex?: Map<string, number>;

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly inputName: string,
    readonly inputWidth: number,
    opts: OrtModelOptions,
  ) {
    this.buffer = new Float32Array(inputWidth * 16);
    if (opts.labelValues) this.labelIndex = new Map(opts.labelValues.map((v, i) => [String(v), i]));
  }

  static async create(bytes: Uint8Array, opts: OrtModelOptions = {}): Promise<OrtModel> {
    const session = await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: opts.intraOpThreads ?? 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    const inputName = session.inputNames[0];
    const meta = session.inputMetadata[0];
    const shape = meta && meta.isTensor ? meta.shape : [];
    const width = typeof shape[shape.length - 1] === 'number' ? (shape[shape.length - 1] as number) : NaN;
    if (session.inputNames.length !== 1 || !Number.isInteger(width)) {
      await session.release();
      throw new Error('model must have exactly one input of shape [N, width] with a fixed width');
    }
    return new OrtModel(session, inputName, width, opts);
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /**
   * A scratch buffer for `rows` rows that `run` can use without copying. Only one caller may
   * hold it at a time; when it is taken a fresh array is returned instead.
   */
  inputBuffer(rows: number): Float32Array {
    const n = rows * this.inputWidth;
    if (this.bufferBusy) return new Float32Array(n);
    if (this.buffer.length < n) this.buffer = new Float32Array(Math.max(n, this.buffer.length * 2));
    this.bufferBusy = true;
    return this.buffer.subarray(0, n);
  }

  /** Runs rows × inputWidth float32 values (row-major). */
  async run(x: Float32Array, rows: number): Promise<OrtPrediction> {
    const ownsBuffer = x.buffer === this.buffer.buffer;
    try {
      if (x.length !== rows * this.inputWidth) {
        throw new Error(`expected ${rows}×${this.inputWidth} input values, got ${x.length}`);
      }
      if (rows === 0) return { rows: 0, values: new Float64Array(0), valueWidth: 1 };
      const input = new ort.Tensor('float32', x, [rows, this.inputWidth]);
      const out = await this.session.run({ [this.inputName]: input });
      return this.collect(out, rows);
    } finally {
      if (ownsBuffer) this.bufferBusy = false;
    }
  }

  private collect(out: ort.InferenceSession.OnnxValueMapType, rows: number): OrtPrediction {
    const variable = out.variable as ort.Tensor | undefined;
    const probT = (out.probabilities ?? out.distances) as ort.Tensor | undefined;
    const labelT = out.label as ort.Tensor | undefined;
    const result: OrtPrediction = { rows, values: new Float64Array(0), valueWidth: 1 };
    if (probT) {
      result.probabilities = probT.data instanceof Float32Array ? probT.data : Float32Array.from(probT.data as ArrayLike<number>);
      result.classes = rows > 0 ? result.probabilities.length / rows : Number(probT.dims[1] ?? 0);
    }
    if (labelT) result.label = this.labelsToIndex(labelT, rows, result);
    if (variable) {
      const data = variable.data as Float32Array | Float64Array;
      result.values = Float64Array.from(data);
      result.valueWidth = rows > 0 ? data.length / rows : 1;
    } else if (result.label) {
      result.values = Float64Array.from(result.label);
    } else {
      throw new Error(`model has none of the outputs variable / label (has ${Object.keys(out).join(', ')})`);
    }
    return result;
  }

  private labelsToIndex(t: ort.Tensor, rows: number, r: OrtPrediction): Int32Array {
    const idx = new Int32Array(rows);
    const data = t.data as BigInt64Array | Int32Array | string[];
    for (let i = 0; i < rows; i++) {
      const v = data[i];
      if (this.labelIndex) {
        const j = this.labelIndex.get(String(v));
        idx[i] = j ?? argmax(r.probabilities, r.classes, i);
      } else if (typeof v === 'string') {
        idx[i] = argmax(r.probabilities, r.classes, i);
      } else {
        idx[i] = Number(v);
      }
    }
    return idx;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function argmax(p: Float32Array | undefined, k: number | undefined, row: number): number {
  if (!p || !k) return -1;
  let best = 0;
  for (let j = 1; j < k; j++) if (p[row * k + j] > p[row * k + best]) best = j;
  return best;
}
