/**
 * Checks a decoded ONNX model before onnxruntime or our converter allocates anything from it:
 * only operators whose output sizes follow from real data in the file (no control flow, no
 * tensors shaped by a value such as ConstantOfShape / Expand / Tile / Range / OneHot), every
 * declared dimension and size attribute within the limits, initializers holding exactly the data
 * their dims declare, and tree ensembles that are trees (ids in range, no cycle, bounded depth).
 */
import { type ArtifactLimits, ArtifactError, checkSize } from '../artifact-limits.ts';
import {
  AttrType, attrInt, attrInts, attrStrings, DataType, type GraphProto, type ModelProto, type NodeProto, type TensorProto,
} from './proto.ts';

/** Operators of classical-ML exports (skl2onnx, onnxmltools) whose output size is data-bound. */
const ALLOWED: Record<string, ReadonlySet<string>> = {
  '': new Set([
    'Abs', 'Add', 'And', 'ArgMax', 'ArgMin', 'Cast', 'CastLike', 'Ceil', 'Clip', 'Concat', 'Constant', 'Div', 'Equal', 'Erf',
    'Exp', 'Flatten', 'Floor', 'Gather', 'GatherElements', 'Gemm', 'Greater', 'GreaterOrEqual', 'HardSigmoid', 'Identity',
    'IsInf', 'IsNaN', 'LeakyRelu', 'Less', 'LessOrEqual', 'Log', 'LogSoftmax', 'MatMul', 'Max', 'Mean', 'Min', 'Mod', 'Mul', 'Neg',
    'Not', 'Or', 'Pow', 'Reciprocal', 'ReduceL1', 'ReduceL2', 'ReduceLogSumExp', 'ReduceMax', 'ReduceMean', 'ReduceMin',
    'ReduceProd', 'ReduceSum', 'ReduceSumSquare', 'Relu', 'Reshape', 'Round', 'Shape', 'Sigmoid', 'Sign', 'Size', 'Slice',
    'Softmax', 'Softplus', 'Split', 'Sqrt', 'Squeeze', 'Sub', 'Sum', 'Tanh', 'TopK', 'Transpose', 'Unsqueeze', 'Where', 'Xor',
  ]),
  'ai.onnx.ml': new Set([
    'ArrayFeatureExtractor', 'Binarizer', 'CategoryMapper', 'DictVectorizer', 'FeatureVectorizer', 'Imputer', 'LabelEncoder', 'Scaler',
    'LinearClassifier', 'LinearRegressor', 'Normalizer', 'OneHotEncoder', 'SVMClassifier', 'SVMRegressor',
    'TreeEnsembleClassifier', 'TreeEnsembleRegressor', 'ZipMap',
  ]),
};

const ELEMENT_BYTES: Record<number, number> = {
  [DataType.FLOAT]: 4, [DataType.UINT8]: 1, [DataType.INT8]: 1, [DataType.INT32]: 4, [DataType.INT64]: 8,
  [DataType.BOOL]: 1, [DataType.DOUBLE]: 8, 4: 2, 5: 2, 10: 2, 12: 4, 13: 8, 16: 2,
};

function refuse(message: string, details?: string, hint?: string): ArtifactError {
  return new ArtifactError(message, details, hint);
}

/** Elements a tensor's dims declare, or Infinity past `cap` (no overflow on hostile dims). */
function declaredElements(dims: number[], cap: number): number {
  let n = 1;
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) return Infinity;
    n *= d;
    if (n > cap) return Infinity;
  }
  return n;
}

function presentElements(t: TensorProto): number {
  const type = t.data_type ?? 0;
  if (t.raw_data && t.raw_data.length > 0) return t.raw_data.length / (ELEMENT_BYTES[type] ?? 1);
  if (type === DataType.STRING) return t.string_data?.length ?? 0;
  return (t.float_data?.length ?? 0) + (t.int32_data?.length ?? 0) + (t.int64_data?.length ?? 0) + (t.double_data?.length ?? 0) + (t.uint64_data?.length ?? 0);
}

function checkTensor(t: TensorProto, where: string): void {
  const present = presentElements(t);
  const declared = declaredElements(t.dims ?? [], present);
  if (declared !== present) {
    throw refuse(`${where} declares dims ${JSON.stringify(t.dims ?? [])} but holds ${present} values`, undefined,
      'export the model again; a tensor must contain the data its dims declare');
  }
}

function checkValueDims(graph: GraphProto, limits: ArtifactLimits): void {
  const cap = Math.max(limits.maxFeatures, limits.maxClasses);
  for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.value_info ?? [])]) {
    for (const d of v.type?.tensor_type?.shape?.dim ?? []) {
      if (d.dim_value !== undefined && d.dim_value !== null && (d.dim_value < 0 || d.dim_value > cap)) {
        throw new ArtifactError(`tensor ${v.name} declares a dimension of ${d.dim_value}, above the limit of ${cap}`,
          `limits PGML_MAX_FEATURES = ${limits.maxFeatures}, PGML_MAX_CLASSES = ${limits.maxClasses}`, 'raise the limits if this model is legitimate');
      }
    }
  }
}

/** Per-node size attributes: declared counts that ORT would allocate outputs from. */
function checkNodeSizes(n: NodeProto, limits: ArtifactLimits): void {
  const op = n.op_type ?? '';
  const where = `${op} node ${n.name ?? ''}`.trim();
  if (op === 'TreeEnsembleRegressor') checkSize(`n_targets of ${where}`, attrInt(n, 'n_targets', 1), limits, 'maxClasses', 1);
  if (op === 'LinearRegressor') checkSize(`targets of ${where}`, attrInt(n, 'targets', 1), limits, 'maxClasses', 1);
  if (op === 'FeatureVectorizer') {
    const total = (attrInts(n, 'inputdimensions') ?? []).reduce((a, b) => a + (b > 0 ? b : Infinity), 0);
    checkSize(`the output width of ${where}`, Number.isFinite(total) ? total : -1, limits, 'maxFeatures');
  }
  for (const key of ['classlabels_ints', 'classlabels_int64s', 'classlabels_strings']) {
    const labels = n.attribute?.find((a) => a.name === key);
    if (labels) checkSize(`${key} of ${where}`, (labels.ints?.length ?? 0) + (labels.strings?.length ?? 0), limits, 'maxClasses');
  }
  if (op === 'TreeEnsembleRegressor' || op === 'TreeEnsembleClassifier') checkEnsemble(n, where, limits);
}

/** The nodes_* arrays of a TreeEnsemble{Regressor,Classifier} form trees of bounded depth. */
function checkEnsemble(n: NodeProto, where: string, limits: ArtifactLimits): void {
  const treeIds = attrInts(n, 'nodes_treeids') ?? [];
  const nodeIds = attrInts(n, 'nodes_nodeids') ?? [];
  const count = checkSize(`the node count of ${where}`, treeIds.length, limits, 'maxTreeNodes');
  const lists: Record<string, number | undefined> = {
    nodes_nodeids: nodeIds.length, nodes_featureids: attrInts(n, 'nodes_featureids')?.length, nodes_modes: attrStrings(n, 'nodes_modes')?.length,
    nodes_truenodeids: attrInts(n, 'nodes_truenodeids')?.length, nodes_falsenodeids: attrInts(n, 'nodes_falsenodeids')?.length,
  };
  for (const [name, len] of Object.entries(lists)) {
    if (len !== count) throw refuse(`${where}: ${name} has ${len ?? 0} entries for ${count} nodes`);
  }
  const modes = attrStrings(n, 'nodes_modes')!;
  const trueIds = attrInts(n, 'nodes_truenodeids')!;
  const falseIds = attrInts(n, 'nodes_falsenodeids')!;
  const index = new Map<number, Map<number, number>>();
  treeIds.forEach((t, i) => {
    let m = index.get(t);
    if (!m) {
      index.set(t, (m = new Map()));
      checkSize(`the number of trees of ${where}`, index.size, limits, 'maxTrees');
    }
    if (m.has(nodeIds[i])) throw refuse(`${where}: tree ${t} has node id ${nodeIds[i]} twice`);
    m.set(nodeIds[i], i);
  });
  // in-degree ≤ 1 and every node reachable from a root ⇔ a forest: no walk can loop
  const parents = new Uint8Array(count);
  const children: number[][] = Array.from({ length: count }, () => []);
  for (let i = 0; i < count; i++) {
    if (modes[i] === 'LEAF') continue;
    const ids = index.get(treeIds[i])!;
    for (const c of [ids.get(trueIds[i]), ids.get(falseIds[i])]) {
      if (c === undefined) throw refuse(`${where}: tree ${treeIds[i]} node ${nodeIds[i]} points at a node that does not exist`);
      if (parents[c]++ > 0 || c === i) throw refuse(`${where}: tree ${treeIds[i]} node ${nodeIds[c]} is reached twice`, 'a cycle or a shared subtree');
      children[i].push(c);
    }
  }
  let reached = 0;
  const stack: number[] = [];
  for (let i = 0; i < count; i++) if (parents[i] === 0) stack.push(i, 0);
  while (stack.length) {
    const depth = stack.pop()!;
    const i = stack.pop()!;
    reached++;
    if (children[i].length) checkSize(`the depth of a tree of ${where}`, depth + 1, limits, 'maxTreeDepth');
    for (const c of children[i]) stack.push(c, depth + 1);
  }
  if (reached !== count) throw refuse(`${where}: ${count - reached} nodes form a cycle`);
  const w = n.op_type === 'TreeEnsembleClassifier' ? 'class' : 'target';
  const wLen = attrInts(n, `${w}_treeids`)?.length ?? 0;
  for (const name of [`${w}_nodeids`, `${w}_ids`]) {
    if ((attrInts(n, name)?.length ?? 0) !== wLen) throw refuse(`${where}: ${name} does not match ${w}_treeids`);
  }
  const outputs = n.op_type === 'TreeEnsembleRegressor' ? attrInt(n, 'n_targets', 1) : Math.max(2, (attrInts(n, 'classlabels_int64s') ?? attrStrings(n, 'classlabels_strings') ?? []).length);
  if ((attrInts(n, `${w}_ids`) ?? []).some((o) => o < 0 || o >= outputs)) throw refuse(`${where}: ${w}_ids outside 0..${outputs - 1}`);
}

/** Throws ArtifactError unless the model is safe to hand to onnxruntime and the converter. */
export function checkOnnxModel(proto: ModelProto, limits: ArtifactLimits): void {
  const graph = proto.graph;
  if (!graph) return;
  for (const o of proto.opset_import ?? []) {
    const domain = o.domain === 'ai.onnx' ? '' : (o.domain ?? '');
    if (!ALLOWED[domain]) throw refuse(`operator domain "${o.domain}" is not supported`, undefined, 'export with the standard ai.onnx and ai.onnx.ml opsets only');
  }
  checkValueDims(graph, limits);
  for (const t of graph.initializer ?? []) checkTensor(t, `initializer ${t.name}`);
  for (const n of graph.node ?? []) {
    const domain = n.domain === 'ai.onnx' ? '' : (n.domain ?? '');
    if (!ALLOWED[domain]?.has(n.op_type ?? '')) {
      throw refuse(`operator ${domain ? `${domain}.` : ''}${n.op_type} is not accepted`, 'control flow and operators that size a tensor from a value (ConstantOfShape, Expand, Tile, Range, OneHot, ...) are refused',
        'export a classical ML pipeline (skl2onnx / onnxmltools) with a fixed number of features');
    }
    for (const a of n.attribute ?? []) {
      if (a.g || a.type === AttrType.GRAPH || a.type === 10 || a.type === 5) throw refuse(`${n.op_type} has a subgraph attribute ${a.name}`);
      if (a.t) checkTensor(a.t, `attribute ${a.name} of ${n.op_type}`);
      for (const t of a.tensors ?? []) checkTensor(t, `attribute ${a.name} of ${n.op_type}`);
    }
    checkNodeSizes(n, limits);
  }
}
