/**
 * ONNX graphs shaped like sklearn-onnx / onnxmltools exports (ZipMap outputs, Cast on labels,
 * Normalizer after OvR linear classifiers, BRANCH_LEQ trees), written with our proto writer.
 */
import type { LinearModel, TreeEnsembleModel } from '../../src/ml/model-types.ts';
import {
  attr, type AttributeProto, DataType, encodeModel, type NodeProto, type TensorProto, type ValueInfoProto, node, valueInfo,
} from '../../src/ml/onnx/proto.ts';

const ML = 'ai.onnx.ml';

export function seqMapOutput(name: string, keyType: number): ValueInfoProto {
  return { name, type: { sequence_type: { elem_type: { map_type: { key_type: keyType, value_type: { tensor_type: { elem_type: DataType.FLOAT } } } } } } };
}

export function floatInput(name: string, width: number | null, elem: number = DataType.FLOAT): ValueInfoProto {
  // sklearn-onnx leaves the batch dimension without a value
  return { name, type: { tensor_type: { elem_type: elem, shape: { dim: [{}, width === null ? {} : { dim_value: width }] } } } };
}

export function modelBytes(nodes: NodeProto[], inputs: ValueInfoProto[], outputs: ValueInfoProto[], initializers: TensorProto[] = [], opts: { mlOpset?: number; producer?: string } = {}): Uint8Array {
  return encodeModel({
    ir_version: 8,
    producer_name: opts.producer ?? 'skl2onnx',
    producer_version: '1.17.0',
    opset_import: [{ domain: '', version: 15 }, { domain: ML, version: opts.mlOpset ?? 1 }],
    graph: { name: 'g', node: nodes, input: inputs, output: outputs, initializer: initializers },
  });
}

/** sklearn classifier tail: label → Cast → output_label, probabilities → ZipMap → output_probability. */
export function classifierTail(labelTensor: string, probTensor: string, labels: number[] | string[]): { nodes: NodeProto[]; outputs: ValueInfoProto[] } {
  const strings = typeof labels[0] === 'string';
  const zip = strings
    ? attr.strings('classlabels_strings', labels as string[])
    : attr.ints('classlabels_int64s', labels as number[]);
  return {
    nodes: [
      strings ? node('Identity', [labelTensor], ['output_label']) : node('Cast', [labelTensor], ['output_label'], [attr.int('to', DataType.INT64)]),
      node('ZipMap', [probTensor], ['output_probability'], [zip], ML),
    ],
    outputs: [
      valueInfo('output_label', strings ? DataType.STRING : DataType.INT64, ['N']),
      seqMapOutput('output_probability', strings ? DataType.STRING : DataType.INT64),
    ],
  };
}

export function linearClassifierNode(m: LinearModel, d: number, labels: number[] | string[], out: [string, string]): NodeProto {
  let coef = Array.from(m.coefficients);
  let icp = Array.from(m.intercepts);
  if (m.outputs === 1) {
    coef = [...coef.map((v) => -v), ...coef];
    icp = [-icp[0], icp[0]];
  }
  const cl = typeof labels[0] === 'string' ? attr.strings('classlabels_strings', labels as string[]) : attr.ints('classlabels_ints', labels as number[]);
  return node('LinearClassifier', ['x'], out, [
    attr.floats('coefficients', coef), attr.floats('intercepts', icp), cl,
    attr.int('multi_class', m.post === 'softmax' ? 1 : 0), attr.string('post_transform', m.post.toUpperCase()),
  ], ML);
}

/**
 * Tree attributes the way converters write them. `leq` uses BRANCH_LEQ (sklearn) with the
 * model's (float32-exact) thresholds; otherwise BRANCH_LT with missing-value tracking (xgboost).
 * `divide` scales leaf weights by 1/trees (sklearn forests use SUM over pre-divided weights).
 */
export function treeAttrs(m: TreeEnsembleModel, prefix: 'target' | 'class', opts: { leq: boolean; divide: boolean }): AttributeProto[] {
  const n = { tree: [] as number[], id: [] as number[], feat: [] as number[], mode: [] as string[], val: [] as number[], t: [] as number[], f: [] as number[], miss: [] as number[] };
  const w = { tree: [] as number[], node: [] as number[], id: [] as number[], val: [] as number[] };
  const scale = opts.divide ? 1 / m.trees.length : 1;
  m.trees.forEach((tree, ti) => {
    for (let i = 0; i < tree.feature.length; i++) {
      n.tree.push(ti); n.id.push(i);
      if (tree.feature[i] < 0) {
        n.feat.push(0); n.mode.push('LEAF'); n.val.push(0); n.t.push(0); n.f.push(0); n.miss.push(0);
        const outs = m.treeOutput ? [m.treeOutput[ti]] : Array.from({ length: m.outputs }, (_, o) => o);
        const width = tree.value.length / tree.feature.length;
        for (const o of outs) {
          w.tree.push(ti); w.node.push(i); w.id.push(o);
          w.val.push(scale * (width === 1 ? tree.value[i] : tree.value[i * m.outputs + o]));
        }
        continue;
      }
      n.feat.push(tree.feature[i]); n.mode.push(opts.leq ? 'BRANCH_LEQ' : 'BRANCH_LT'); n.val.push(tree.threshold[i]);
      n.t.push(tree.left[i]); n.f.push(tree.right[i]); n.miss.push(tree.missingLeft[i]);
    }
  });
  const attrs = [
    attr.ints('nodes_treeids', n.tree), attr.ints('nodes_nodeids', n.id), attr.ints('nodes_featureids', n.feat),
    attr.strings('nodes_modes', n.mode), attr.floats('nodes_values', n.val),
    attr.ints('nodes_truenodeids', n.t), attr.ints('nodes_falsenodeids', n.f),
    attr.ints(`${prefix}_treeids`, w.tree), attr.ints(`${prefix}_nodeids`, w.node), attr.ints(`${prefix}_ids`, w.id),
    attr.floats(`${prefix}_weights`, w.val),
    attr.string('post_transform', m.post.toUpperCase()),
  ];
  if (!opts.leq) attrs.push(attr.ints('nodes_missing_value_tracks_true', n.miss));
  if (m.baseScore.some((v) => v !== 0)) attrs.push(attr.floats('base_values', m.baseScore));
  return attrs;
}

/** Rounds thresholds and leaf values to float32 so BRANCH_LEQ/LT only differ at exact ties. */
export function float32Trees(m: TreeEnsembleModel): TreeEnsembleModel {
  for (const t of m.trees) {
    t.threshold = t.threshold.map(Math.fround);
    t.value = t.value.map(Math.fround);
  }
  m.baseScore = m.baseScore.map(Math.fround);
  return m;
}
