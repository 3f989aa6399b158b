/**
 * Converts an imported graph of the shape [Cast|Identity]* [Imputer] [Scaler] model-op [tails]
 * into our TrainedModel + per-feature ColumnPreprocessors, so it can also be served natively.
 * Returns a reason string when the graph is not of that shape.
 */
import type { ColumnPreprocessor, LinearModel, Task, TrainedModel, Tree, TreeEnsembleModel } from '../model-types.ts';
import { nextUp64 } from './f32.ts';
import {
  attrFloat, attrFloats, attrInt, attrInts, attrString, attrStrings, type GraphProto, type NodeProto,
} from './proto.ts';

export interface Converted {
  model: TrainedModel;
  columns: ColumnPreprocessor[];
  modelOp: string;
}

const MODEL_OPS = new Set(['LinearRegressor', 'LinearClassifier', 'TreeEnsembleRegressor', 'TreeEnsembleClassifier']);
const PASS_OPS = new Set(['Identity', 'Cast']);

class Unsupported extends Error {}

export function convertGraph(graph: GraphProto, inputName: string, width: number, task: Task, featureNames: string[]): Converted | string {
  try {
    return convert(graph, inputName, width, task, featureNames);
  } catch (e) {
    if (e instanceof Unsupported) return e.message;
    throw e;
  }
}

function convert(graph: GraphProto, inputName: string, width: number, task: Task, featureNames: string[]): Converted {
  const nodes = graph.node ?? [];
  const consumers = (t: string) => nodes.filter((n) => n.input?.includes(t));
  let cur = inputName;
  let imputer: NodeProto | undefined;
  let scaler: NodeProto | undefined;
  let modelNode: NodeProto | undefined;
  const chain = new Set<NodeProto>();
  while (!modelNode) {
    const next = consumers(cur);
    if (next.length !== 1) throw new Unsupported(next.length ? `tensor ${cur} feeds ${next.length} nodes` : 'no model operator found');
    const n = next[0];
    chain.add(n);
    const op = n.op_type ?? '';
    if (MODEL_OPS.has(op)) modelNode = n;
    else if (PASS_OPS.has(op) && (op !== 'Cast' || [1, 11].includes(attrInt(n, 'to', 0)))) { /* value-preserving */ }
    else if (op === 'Imputer' && !imputer && !scaler) imputer = n;
    else if (op === 'Scaler' && !scaler) scaler = n;
    else throw new Unsupported(`operator ${op} is not convertible`);
    cur = n.output![0];
  }
  for (const n of nodes) {
    if (chain.has(n)) continue;
    const op = n.op_type ?? '';
    if (PASS_OPS.has(op)) continue;
    if (op === 'Normalizer' && attrString(n, 'norm', 'MAX') === 'L1') continue; // checked below
    throw new Unsupported(`operator ${op} after the model is not convertible`);
  }

  const columns = featureColumns(width, featureNames, imputer, scaler);
  const op = modelNode.op_type!;
  let model: TrainedModel;
  if (op === 'LinearRegressor' || op === 'LinearClassifier') model = linear(modelNode, width, task);
  else model = trees(modelNode, width, task);

  const hasNormalizer = nodes.some((n) => n.op_type === 'Normalizer');
  if (hasNormalizer && model.task === 'classification' && model.post === 'logistic' && model.outputs > 1) {
    throw new Unsupported('one-vs-rest logistic scores normalised with Normalizer are not representable');
  }
  return { model, columns, modelOp: op };
}

function broadcast(v: number[] | undefined, i: number, dflt: number): number {
  if (!v || v.length === 0) return dflt;
  return v.length === 1 ? v[0] : (v[i] ?? dflt);
}

function featureColumns(width: number, names: string[], imputer?: NodeProto, scaler?: NodeProto): ColumnPreprocessor[] {
  let imputed: number[] | undefined;
  if (imputer) {
    if (attrInts(imputer, 'imputed_value_int64s')?.length) throw new Unsupported('integer Imputer');
    if (!Number.isNaN(attrFloat(imputer, 'replaced_value_float', 0))) throw new Unsupported('Imputer replacing a value other than NaN');
    imputed = attrFloats(imputer, 'imputed_value_floats');
  }
  const offset = scaler ? attrFloats(scaler, 'offset') : undefined;
  const scale = scaler ? attrFloats(scaler, 'scale') : undefined;
  return Array.from({ length: width }, (_, f) => ({
    name: names[f],
    kind: 'numeric' as const,
    width: 1,
    impute: imputed ? ('mean' as const) : ('error' as const),
    imputeValue: [broadcast(imputed, f, NaN)],
    scale: scaler ? ('standard' as const) : ('preserve' as const),
    offset: [broadcast(offset, f, 0)],
    factor: [broadcast(scale, f, 1)],
    encode: 'native' as const,
    stats: { count: 0, nulls: 0 },
  }));
}

function post(n: NodeProto): LinearModel['post'] {
  const p = attrString(n, 'post_transform', 'NONE');
  if (p === 'NONE') return 'none';
  if (p === 'LOGISTIC') return 'logistic';
  if (p === 'SOFTMAX') return 'softmax';
  throw new Unsupported(`post_transform ${p}`);
}

function classCount(n: NodeProto): number {
  return (attrInts(n, 'classlabels_ints') ?? attrInts(n, 'classlabels_int64s') ?? attrStrings(n, 'classlabels_strings') ?? []).length;
}

function linear(n: NodeProto, d: number, task: Task): LinearModel {
  const coef = attrFloats(n, 'coefficients') ?? [];
  const rows = coef.length / d;
  if (!Number.isInteger(rows) || rows < 1) throw new Unsupported(`${coef.length} coefficients do not fit ${d} features`);
  const icp = attrFloats(n, 'intercepts') ?? [];
  const intercepts = Float64Array.from({ length: rows }, (_, o) => icp[o] ?? 0);
  const p = post(n);
  if (n.op_type === 'LinearRegressor') {
    if (task !== 'regression') throw new Unsupported('LinearRegressor for a non-regression task');
    return { kind: 'linear', task, coefficients: Float64Array.from(coef), intercepts, outputs: rows, post: p };
  }
  if (task !== 'classification') throw new Unsupported('LinearClassifier for a non-classification task');
  const k = classCount(n);
  if (rows === 2 && k === 2 && p === 'logistic') {
    // [-w; w] rows (sklearn binary): one logistic score
    const w = coef.slice(d);
    const mirrored = coef.slice(0, d).every((v, j) => v === -w[j]) && intercepts[0] === -intercepts[1];
    if (mirrored) return { kind: 'linear', task, coefficients: Float64Array.from(w), intercepts: intercepts.slice(1), outputs: 1, post: 'logistic' };
  }
  if (rows === 1 && k === 2 && p === 'logistic') {
    return { kind: 'linear', task, coefficients: Float64Array.from(coef), intercepts, outputs: 1, post: 'logistic' };
  }
  if (rows !== k) throw new Unsupported(`${rows} coefficient rows for ${k} classes`);
  return { kind: 'linear', task, coefficients: Float64Array.from(coef), intercepts, outputs: rows, post: p };
}

interface Split { threshold: number; leftIsTrue: boolean }

function split(mode: string, v: number): Split {
  switch (mode) {
    case 'BRANCH_LT': return { threshold: v, leftIsTrue: true };
    case 'BRANCH_LEQ': return { threshold: nextUp64(v), leftIsTrue: true };
    case 'BRANCH_GTE': return { threshold: v, leftIsTrue: false };
    case 'BRANCH_GT': return { threshold: nextUp64(v), leftIsTrue: false };
    default: throw new Unsupported(`split mode ${mode}`);
  }
}

function trees(n: NodeProto, d: number, task: Task): TreeEnsembleModel {
  const isClassifier = n.op_type === 'TreeEnsembleClassifier';
  if (isClassifier !== (task === 'classification')) throw new Unsupported(`${n.op_type} for task ${task}`);
  const treeIds = attrInts(n, 'nodes_treeids') ?? [];
  const nodeIds = attrInts(n, 'nodes_nodeids') ?? [];
  const featureIds = attrInts(n, 'nodes_featureids') ?? [];
  const modes = attrStrings(n, 'nodes_modes') ?? [];
  const values = attrFloats(n, 'nodes_values') ?? [];
  const trueIds = attrInts(n, 'nodes_truenodeids') ?? [];
  const falseIds = attrInts(n, 'nodes_falsenodeids') ?? [];
  const missing = attrInts(n, 'nodes_missing_value_tracks_true') ?? [];
  if (treeIds.length === 0) throw new Unsupported('no tree nodes (TreeEnsemble-5 layout is not convertible)');
  const w = isClassifier ? 'class' : 'target';
  const wTree = attrInts(n, `${w}_treeids`) ?? [];
  const wNode = attrInts(n, `${w}_nodeids`) ?? [];
  const wId = attrInts(n, `${w}_ids`) ?? [];
  const wVal = attrFloats(n, `${w}_weights`) ?? [];

  let outputs: number;
  let p: LinearModel['post'];
  let aggregate: 'sum' | 'average' = 'sum';
  let binaryOneScore = false;
  if (isClassifier) {
    const k = classCount(n);
    p = post(n);
    binaryOneScore = k === 2 && wId.every((id) => id === 0);
    // predict-native gives [1 - p, p] only for a logistic single score
    if (binaryOneScore && p !== 'logistic') throw new Unsupported('binary classifier with one untransformed score');
    outputs = binaryOneScore ? 1 : k;
  } else {
    outputs = attrInt(n, 'n_targets', 1);
    if (post(n) !== 'none') throw new Unsupported('post_transform on a tree regressor');
    p = 'none';
    const agg = attrString(n, 'aggregate_function', 'SUM');
    if (agg === 'AVERAGE') aggregate = 'average';
    else if (agg !== 'SUM') throw new Unsupported(`aggregate_function ${agg}`);
  }

  // tree id → (node id → local index)
  const order: number[] = [];
  const index = new Map<number, Map<number, number>>();
  treeIds.forEach((t, i) => {
    if (!index.has(t)) { index.set(t, new Map()); order.push(t); }
    const m = index.get(t)!;
    m.set(nodeIds[i], m.size);
  });
  const built = new Map<number, Tree>();
  for (const t of order) {
    const size = index.get(t)!.size;
    built.set(t, {
      feature: new Int32Array(size).fill(-1), threshold: new Float64Array(size), left: new Int32Array(size).fill(-1),
      right: new Int32Array(size).fill(-1), missingLeft: new Uint8Array(size), value: new Float64Array(size * outputs),
    });
  }
  treeIds.forEach((t, i) => {
    if (modes[i] === 'LEAF') return;
    const tree = built.get(t)!;
    const ids = index.get(t)!;
    const at = ids.get(nodeIds[i])!;
    const s = split(modes[i], values[i]);
    const tIdx = ids.get(trueIds[i]);
    const fIdx = ids.get(falseIds[i]);
    if (tIdx === undefined || fIdx === undefined) throw new Unsupported(`tree ${t} node ${nodeIds[i]} has a dangling child`);
    if (featureIds[i] < 0 || featureIds[i] >= d) throw new Unsupported(`feature id ${featureIds[i]} outside 0..${d - 1}`);
    tree.feature[at] = featureIds[i];
    tree.threshold[at] = s.threshold;
    tree.left[at] = s.leftIsTrue ? tIdx : fIdx;
    tree.right[at] = s.leftIsTrue ? fIdx : tIdx;
    const tracksTrue = (missing[i] ?? 0) === 1;
    tree.missingLeft[at] = tracksTrue === s.leftIsTrue ? 1 : 0;
  });
  wTree.forEach((t, i) => {
    const tree = built.get(t);
    const at = index.get(t)?.get(wNode[i]);
    if (!tree || at === undefined || tree.feature[at] >= 0) throw new Unsupported('leaf weight on a missing or non-leaf node');
    const o = binaryOneScore ? 0 : wId[i];
    if (o < 0 || o >= outputs) throw new Unsupported(`weight for output ${o} of ${outputs}`);
    tree.value[at * outputs + o] += wVal[i];
  });

  const base = attrFloats(n, 'base_values') ?? [];
  return {
    kind: 'trees', task, trees: order.map((t) => built.get(t)!), outputs,
    baseScore: Float64Array.from({ length: outputs }, (_, o) => base[o] ?? 0),
    aggregate, post: p,
  };
}
