/**
 * Imports an ONNX model trained elsewhere (sklearn-onnx, onnxmltools xgboost/lightgbm, ...).
 * The graph is normalised to our serving interface — one float32 input `input` [N, width];
 * outputs `variable` | `label` + `probabilities` (ZipMap stripped) | `label` + `distances` —
 * validated in onnxruntime, and when it is a plain Linear / TreeEnsemble model (optionally
 * after Imputer/Scaler) also converted to a TrainedModel, kept only if it reproduces the
 * original's predictions.
 */
import { type ArtifactLimits, ArtifactError, checkSize, DEFAULT_ARTIFACT_LIMITS, validateTrainedModel } from '../artifact-limits.ts';
import type { ModelMetadata, Task, TrainedModel } from '../model-types.ts';
import { exportOnnx } from './export.ts';
import { convertGraph } from './import-convert.ts';
import { OnnxImportError } from './import-error.ts';
import {
  attr, attrInts, attrStrings, DataType, decodeModel, encodeModel, type GraphProto, type ModelProto,
  node, tensorDims, type ValueInfoProto, valueInfo,
} from './proto.ts';
import { type OrtPrediction, OrtModel } from './runtime.ts';
import { checkOnnxModel } from './validate.ts';

export { OnnxImportError } from './import-error.ts';

export interface ImportOptions {
  task: Task;
  /** class labels in probability-column order; default: the labels stored in the model */
  classes?: (string | number | boolean)[];
  feature_names?: string[];
  algorithm?: string;
  /** size limits every declared size is checked against before anything is allocated */
  limits?: ArtifactLimits;
}

export interface ImportedModel {
  /** normalised model bytes to serve with OrtModel */
  onnx: Uint8Array;
  inputWidth: number;
  meta: ModelMetadata;
  /** the equivalent native model, when the graph is convertible and verified */
  native?: TrainedModel;
  /** label output values in probability-column order (pass to OrtModel as labelValues) */
  labelValues?: (string | number)[];
  producer: string;
  warnings: string[];
}

const INPUT = 'input';
const HINT_EXPORT = 'export with a single input, e.g. skl2onnx.to_onnx(model, initial_types=[("input", FloatTensorType([None, n_features]))])';

export async function importOnnx(bytes: Uint8Array, opts: ImportOptions): Promise<ImportedModel> {
  try {
    return await importChecked(bytes, opts, opts.limits ?? DEFAULT_ARTIFACT_LIMITS);
  } catch (e) {
    if (e instanceof ArtifactError) throw new OnnxImportError(e.message, e.details, e.hint);
    throw e;
  }
}

async function importChecked(bytes: Uint8Array, opts: ImportOptions, limits: ArtifactLimits): Promise<ImportedModel> {
  const warnings: string[] = [];
  const proto = decode(bytes);
  checkOnnxModel(proto, limits);
  const graph = proto.graph!;
  const { originalInput, width, elemType } = findInput(graph, opts, limits);
  if (opts.feature_names) checkSize('the number of feature_names', opts.feature_names.length, limits, 'maxFeatures');
  if (opts.classes) checkSize('the number of classes', opts.classes.length, limits, 'maxClasses');
  const featureNames = opts.feature_names ?? Array.from({ length: width }, (_, i) => `f${i}`);
  if (featureNames.length !== width) {
    throw new OnnxImportError(`feature_names has ${featureNames.length} names but the model takes ${width} features`);
  }

  // Normalise the input to float32 `input` [N, width].
  if (originalInput.name !== INPUT || elemType !== DataType.FLOAT) {
    if ((graph.node ?? []).some((n) => n.output?.includes(INPUT)) || (graph.initializer ?? []).some((t) => t.name === INPUT)) {
      throw new OnnxImportError(`the model already uses the tensor name "${INPUT}" internally`, undefined, 'rename the model input to "input"');
    }
    const conv = elemType === DataType.FLOAT
      ? node('Identity', [INPUT], [originalInput.name!])
      : node('Cast', [INPUT], [originalInput.name!], [attr.int('to', DataType.DOUBLE)]);
    graph.node = [conv, ...(graph.node ?? [])];
  }
  graph.input = [valueInfo(INPUT, DataType.FLOAT, ['N', width]), ...(graph.input ?? []).filter((v) => v !== originalInput)];
  const labelValues = normaliseOutputs(graph, opts.task, warnings);

  const onnx = encodeModel(proto);
  let ortModel: OrtModel;
  try {
    ortModel = await OrtModel.create(onnx, { labelValues });
  } catch (e) {
    throw new OnnxImportError('onnxruntime cannot load the model', (e as Error).message,
      'check the opsets (ai.onnx ≤ 23, ai.onnx.ml ≤ 5) and that the model passes onnx.checker.check_model');
  }
  let sample: OrtPrediction;
  const probeRows = probeRowCount(width, 64);
  const probe = verificationRows(width, probeRows);
  try {
    sample = await ortModel.run(probe, probeRows);
    checkSize('the width of the model output', Math.max(sample.classes ?? 1, sample.valueWidth), limits, 'maxClasses');
  } catch (e) {
    await ortModel.release();
    if (e instanceof ArtifactError) throw e;
    throw new OnnxImportError('the model fails on a test batch', (e as Error).message);
  }

  let classes = opts.classes;
  if (opts.task === 'classification') {
    const k = sample.classes ?? labelValues?.length ?? 0;
    if (!sample.probabilities) warnings.push('the model has no probability output; probabilities are unavailable');
    if (classes && k && classes.length !== k) {
      await ortModel.release();
      throw new OnnxImportError(`the model predicts ${k} classes but ${classes.length} classes were given`);
    }
    classes ??= labelValues ?? Array.from({ length: k }, (_, i) => i);
  }

  const meta: ModelMetadata = {
    task: opts.task,
    algorithm: opts.algorithm ?? 'onnx',
    columns: [],
    featureCount: width,
    featureNames,
    ...(classes ? { classes } : {}),
  };

  let native: TrainedModel | undefined;
  const conv = convertGraph(graph, originalInput.name!, width, opts.task, featureNames);
  if (typeof conv === 'string') {
    warnings.push(`served by onnxruntime only: ${conv}`);
  } else {
    meta.columns = conv.columns;
    meta.algorithm = opts.algorithm ?? `onnx:${conv.modelOp}`;
    const mismatch = await verifyNative(ortModel, conv.model, meta, width, probeRowCount(width, 512));
    if (mismatch) {
      warnings.push(`served by onnxruntime only: the converted model disagrees (${mismatch})`);
      meta.algorithm = opts.algorithm ?? 'onnx';
    } else {
      try {
        native = validateTrainedModel(conv.model, meta, limits);
      } catch (e) {
        if (!(e instanceof ArtifactError)) throw e;
        warnings.push(`served by onnxruntime only: ${e.message}`);
        meta.algorithm = opts.algorithm ?? 'onnx';
      }
    }
  }
  await ortModel.release();
  return { onnx, inputWidth: width, meta, ...(native ? { native } : {}), ...(labelValues ? { labelValues } : {}), producer: `${proto.producer_name ?? ''} ${proto.producer_version ?? ''}`.trim(), warnings };
}

function decode(bytes: Uint8Array): ModelProto {
  if (!bytes || bytes.length === 0) throw new OnnxImportError('the upload is empty');
  let proto: ModelProto;
  try {
    proto = decodeModel(bytes);
  } catch (e) {
    throw new OnnxImportError('the upload is not an ONNX model', `protobuf decoding failed: ${(e as Error).message}`,
      'upload the .onnx file written by onnx.save / skl2onnx / onnxmltools');
  }
  if (!proto.ir_version || !proto.graph) {
    throw new OnnxImportError(proto.ir_version ? 'the ONNX model has no graph' : 'the upload is not an ONNX model',
      `ir_version=${proto.ir_version ?? 'missing'}, graph ${proto.graph ? 'present' : 'missing'}`,
      'upload the .onnx file written by onnx.save / skl2onnx / onnxmltools');
  }
  if (!proto.graph.node?.length) throw new OnnxImportError('the ONNX graph has no nodes');
  const external = (proto.graph.initializer ?? []).find((t) => t.data_location === 1);
  if (external) {
    throw new OnnxImportError('the model stores weights in external files', `initializer ${external.name}`,
      'save with onnx.save_model(model, path, save_as_external_data=False)');
  }
  return proto;
}

function findInput(graph: GraphProto, opts: ImportOptions, limits: ArtifactLimits): { originalInput: ValueInfoProto; width: number; elemType: number } {
  const inits = new Set((graph.initializer ?? []).map((t) => t.name));
  const inputs = (graph.input ?? []).filter((v) => !inits.has(v.name));
  if (inputs.length !== 1) {
    throw new OnnxImportError(`the model has ${inputs.length} inputs; exactly one feature tensor is supported`,
      `inputs: ${inputs.map((v) => v.name).join(', ')}`, HINT_EXPORT);
  }
  const input = inputs[0];
  const tt = input.type?.tensor_type;
  const typeName = (t: number | undefined) => ({ 1: 'float', 6: 'int32', 7: 'int64', 8: 'string', 9: 'bool', 11: 'double' } as Record<number, string>)[t ?? 0] ?? `type ${t}`;
  if (!tt) throw new OnnxImportError(`input ${input.name} is not a tensor`, undefined, HINT_EXPORT);
  if (tt.elem_type !== DataType.FLOAT && tt.elem_type !== DataType.DOUBLE) {
    throw new OnnxImportError(`input ${input.name} has element type ${typeName(tt.elem_type)}; a float or double tensor is required`,
      undefined, 'encode features as numbers and export with FloatTensorType([None, n_features])');
  }
  const dims = tensorDims(input);
  if (dims && dims.length !== 2) {
    throw new OnnxImportError(`input ${input.name} has rank ${dims.length}; expected [N, n_features]`, undefined, HINT_EXPORT);
  }
  const declared = dims?.[1];
  const width = typeof declared === 'number' && declared > 0 ? declared : opts.feature_names?.length;
  if (!width) {
    throw new OnnxImportError(`the width of input ${input.name} is not fixed`, `shape ${JSON.stringify(dims)}`,
      'pass feature_names, or export with a fixed number of features');
  }
  checkSize(`the width of input ${input.name}`, width, limits, 'maxFeatures', 1);
  return { originalInput: input, width, elemType: tt.elem_type };
}

function isTensor(v: ValueInfoProto, ...types: number[]): boolean {
  const t = v.type?.tensor_type?.elem_type;
  return t !== undefined && types.includes(t);
}

/** Rewrites graph outputs to our names; returns label values in probability-column order when known. */
function normaliseOutputs(graph: GraphProto, task: Task, warnings: string[]): (string | number)[] | undefined {
  const nodes = graph.node ?? [];
  let outputs = graph.output ?? [];
  let probSource: string | undefined;
  let labelValues: (string | number)[] | undefined;

  for (const zm of nodes.filter((n) => n.op_type === 'ZipMap')) {
    probSource = zm.input![0];
    labelValues = attrInts(zm, 'classlabels_int64s') ?? attrStrings(zm, 'classlabels_strings');
    outputs = outputs.filter((o) => o.name !== zm.output![0]);
  }
  graph.node = nodes.filter((n) => n.op_type !== 'ZipMap');
  const dropped = outputs.filter((o) => !o.type?.tensor_type);
  if (dropped.length) warnings.push(`ignored non-tensor outputs ${dropped.map((o) => o.name).join(', ')}`);
  outputs = outputs.filter((o) => o.type?.tensor_type);

  const named = (re: RegExp, list: ValueInfoProto[]) => list.find((o) => re.test(o.name ?? ''));
  const byName = (re: RegExp, list: ValueInfoProto[]) => named(re, list) ?? (list.length === 1 ? list[0] : undefined);
  const floats = outputs.filter((o) => isTensor(o, DataType.FLOAT, DataType.DOUBLE));
  const labels = outputs.filter((o) => isTensor(o, DataType.INT64, DataType.STRING, DataType.INT32));
  const result: ValueInfoProto[] = [];
  const bind = (target: string, source: string, vi: ValueInfoProto) => {
    if (source !== target) {
      if (tensorNames(graph).has(target)) renameTensor(graph, target, freshName(graph, target));
      graph.node!.push(node('Identity', [source], [target]));
    }
    result.push({ ...vi, name: target });
  };

  if (task === 'regression') {
    const v = byName(/^variable$/, floats) ?? byName(/variable|predict|output/i, floats);
    if (!v) {
      throw new OnnxImportError('no regression output found',
        `float outputs: ${floats.map((o) => o.name).join(', ') || 'none'}`, 'a regression model must output one float tensor [N, 1]');
    }
    bind('variable', v.name!, v);
  } else {
    const label = byName(/label/i, labels);
    const prob = probSource
      ? valueInfo('probabilities', DataType.FLOAT, ['N', labelValues?.length ?? 'K'])
      : named(task === 'clustering' ? /score|dist/i : /prob/i, floats) ?? (label && floats.length === 1 ? floats[0] : undefined);
    const probName = probSource ?? prob?.name;
    if (!label && !probName) {
      throw new OnnxImportError(`no ${task} output found`,
        `outputs: ${outputs.map((o) => o.name).join(', ') || 'none'}`, 'a classifier must output a label tensor and/or a probability tensor [N, k]');
    }
    const second = task === 'clustering' ? 'distances' : 'probabilities';
    if (probName) bind(second, probName, prob!);
    if (label) {
      bind('label', label.name!, label);
      labelValues ??= classLabelsOf(graph, label.name!);
    } else {
      graph.node!.push(node('ArgMax', [second], ['label'], [attr.int('axis', 1), attr.int('keepdims', 0)]));
      result.push(valueInfo('label', DataType.INT64, ['N']));
      labelValues = undefined;
    }
  }
  graph.output = result;
  return labelValues;
}

function tensorNames(graph: GraphProto): Set<string> {
  const names = new Set<string>();
  for (const n of graph.node ?? []) for (const t of [...(n.input ?? []), ...(n.output ?? [])]) names.add(t);
  for (const t of graph.initializer ?? []) names.add(t.name ?? '');
  return names;
}

function freshName(graph: GraphProto, base: string): string {
  const names = tensorNames(graph);
  let i = 0;
  while (names.has(`${base}_${i}`)) i++;
  return `${base}_${i}`;
}

/** Renames an internal tensor (not a graph input) everywhere it is produced or consumed. */
function renameTensor(graph: GraphProto, from: string, to: string): void {
  for (const n of graph.node ?? []) {
    n.input = n.input?.map((t) => (t === from ? to : t));
    n.output = n.output?.map((t) => (t === from ? to : t));
  }
  for (const t of graph.initializer ?? []) if (t.name === from) t.name = to;
}

/** The classlabels of the classifier operator that produces `tensor` (through Identity / Cast). */
function classLabelsOf(graph: GraphProto, tensor: string): (string | number)[] | undefined {
  let name = tensor;
  for (let hops = 0; hops < 8; hops++) {
    const producer = (graph.node ?? []).find((n) => n.output?.includes(name));
    if (!producer) return undefined;
    if (producer.op_type === 'Identity' || producer.op_type === 'Cast') {
      name = producer.input![0];
      continue;
    }
    return attrInts(producer, 'classlabels_ints') ?? attrInts(producer, 'classlabels_int64s') ?? attrStrings(producer, 'classlabels_strings');
  }
  return undefined;
}

/** Probe rows for a model `width` wide: `wanted`, fewer for wide models (at most ~4M values). */
function probeRowCount(width: number, wanted: number): number {
  return Math.max(4, Math.min(wanted, Math.floor(4_000_000 / width)));
}

/** Deterministic probe rows: a spread of magnitudes plus some NaN. */
function verificationRows(width: number, rows: number): Float32Array {
  const x = new Float32Array(rows * width);
  let s = 12345;
  const next = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  for (let i = 0; i < x.length; i++) {
    const u = next();
    x[i] = u < 0.05 ? NaN : (next() - 0.5) * (u < 0.5 ? 4 : u < 0.8 ? 40 : 400);
  }
  return x;
}

async function verifyNative(original: OrtModel, model: TrainedModel, meta: ModelMetadata, width: number, rows: number): Promise<string | undefined> {
  let exported: OrtModel;
  try {
    exported = await OrtModel.create(exportOnnx(model, meta));
  } catch (e) {
    return `re-export failed: ${(e as Error).message}`;
  }
  try {
    const x = verificationRows(width, rows);
    const a = await original.run(x, rows);
    const b = await exported.run(x, rows);
    const diff = (p: ArrayLike<number> | undefined, q: ArrayLike<number> | undefined, what: string) => {
      if (!p || !q) return p || q ? `${what} missing` : undefined;
      if (p.length !== q.length) return `${what}: ${p.length} vs ${q.length} values`;
      for (let i = 0; i < p.length; i++) {
        if (Number.isNaN(p[i]) && Number.isNaN(q[i])) continue;
        if (!(Math.abs(p[i] - q[i]) <= 1e-4 * Math.max(1, Math.abs(p[i])))) return `${what}[${i}]: ${p[i]} vs ${q[i]}`;
      }
      return undefined;
    };
    if (meta.task === 'regression') return diff(a.values, b.values, 'variable');
    return diff(a.probabilities, b.probabilities, 'probabilities') ?? diff(a.label, b.label, 'label');
  } finally {
    await exported.release();
  }
}
