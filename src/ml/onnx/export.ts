/**
 * TrainedModel + ModelMetadata → self-contained ONNX model.
 *
 * Input: `input`, float32 [N, rawWidth] (see raw-input.ts). Outputs:
 *   regression      `variable` float [N, outputs]
 *   classification  `label` int64 [N] (class index), `probabilities` float [N, k]
 *   clustering      `label` int64 [N] (cluster index), `distances` float [N, k] (squared)
 * Probabilities are a plain tensor, never a ZipMap, so every runtime can read them.
 */
import type { KMeansModel, LinearModel, ModelMetadata, TrainedModel, TreeEnsembleModel } from '../model-types.ts';
import { buildFeatures, featureAffine } from './features.ts';
import { GraphBuilder, ML_DOMAIN } from './graph-builder.ts';
import { attr, DataType, encodeModel, type ModelProto, type ValueInfoProto, valueInfo } from './proto.ts';
import { rawLayout } from './raw-input.ts';
import { treeEnsembleAttrs } from './tree-attrs.ts';

export const INPUT_NAME = 'input';
export const OPSET = 17;
export const ML_OPSET = 3;
export const METADATA_KEY = 'pgml.metadata';
export const INPUT_LAYOUT_KEY = 'pgml.input_layout';

export class OnnxExportError extends Error {
  override name = 'OnnxExportError';
}

export function exportOnnx(model: TrainedModel, meta: ModelMetadata): Uint8Array {
  const layout = rawLayout(meta);
  const d = layout.featureCount;
  if (meta.columns.length > 0 && meta.featureCount !== d) {
    throw new OnnxExportError(`metadata featureCount ${meta.featureCount} does not match its columns (${d} features)`);
  }
  if (model.kind !== 'kmeans' && model.task === 'classification' && meta.classes) {
    const k = model.outputs === 1 ? 2 : model.outputs;
    if (meta.classes.length !== k) throw new OnnxExportError(`model scores ${k} classes but metadata lists ${meta.classes.length}`);
  }
  const g = new GraphBuilder();
  const outputs: ValueInfoProto[] = [];

  if (model.kind === 'linear') {
    linearHead(g, buildFeatures(g, INPUT_NAME, meta, true), model, d, outputs);
  } else if (model.kind === 'trees') {
    // Scaling is folded into the split thresholds (trees only compare), see tree-attrs.ts.
    treesHead(g, buildFeatures(g, INPUT_NAME, meta, false), model, meta, outputs);
  } else {
    kmeansHead(g, buildFeatures(g, INPUT_NAME, meta, true), model, d, outputs);
  }

  const proto: ModelProto = {
    ir_version: 8,
    producer_name: 'pgml-gateway',
    producer_version: '1',
    doc_string: docString(meta, layout.rawWidth),
    opset_import: [{ domain: '', version: OPSET }, { domain: ML_DOMAIN, version: ML_OPSET }],
    graph: {
      name: `pgml_${meta.algorithm}`,
      node: g.nodes,
      initializer: g.initializers,
      input: [valueInfo(INPUT_NAME, DataType.FLOAT, ['N', layout.rawWidth])],
      output: outputs,
    },
    metadata_props: [
      { key: METADATA_KEY, value: JSON.stringify(meta) },
      {
        key: INPUT_LAYOUT_KEY,
        value: JSON.stringify(layout.slots.map((s) => ({
          column: s.column.name, kind: s.column.kind, start: s.rawStart, width: s.rawWidth,
          ...(s.column.kind === 'text' ? { categories: s.column.categories ?? [], null: 'NaN', unknown: -1 } : { null: 'NaN' }),
        }))),
      },
    ],
  };
  return encodeModel(proto);
}

function docString(meta: ModelMetadata, rawWidth: number): string {
  return `pgml-gateway ${meta.task} model (${meta.algorithm}). Input "input": float32 [N, ${rawWidth}], ` +
    `source columns in order (see metadata ${INPUT_LAYOUT_KEY}); NULL = NaN; text columns carry the category ` +
    `index (unknown category = -1). Full metadata in ${METADATA_KEY}.`;
}

function linearHead(g: GraphBuilder, x: string, m: LinearModel, d: number, outputs: ValueInfoProto[]): void {
  if (m.coefficients.length !== m.outputs * d) {
    throw new OnnxExportError(`linear model has ${m.coefficients.length} coefficients, expected ${m.outputs}×${d}`);
  }
  const post = m.post.toUpperCase();
  if (m.task !== 'classification') {
    g.op('LinearRegressor', [x], [
      attr.floats('coefficients', m.coefficients), attr.floats('intercepts', m.intercepts),
      attr.int('targets', m.outputs), attr.string('post_transform', post),
    ], ['variable'], ML_DOMAIN);
    outputs.push(valueInfo('variable', DataType.FLOAT, ['N', m.outputs]));
    return;
  }
  let coefficients = Array.from(m.coefficients);
  let intercepts = Array.from(m.intercepts);
  let k = m.outputs;
  if (m.outputs === 1) {
    // One score s for class 1: emit rows [-w; w] so scores are [σ(-s), σ(s)] = [1-p, p].
    coefficients = [...coefficients.map((v) => -v), ...coefficients];
    intercepts = [-(intercepts[0] ?? 0), intercepts[0] ?? 0];
    k = 2;
  }
  g.op('LinearClassifier', [x], [
    attr.floats('coefficients', coefficients), attr.floats('intercepts', intercepts),
    attr.ints('classlabels_ints', Array.from({ length: k }, (_, i) => i)),
    attr.string('post_transform', post),
  ], ['label', 'probabilities'], ML_DOMAIN);
  outputs.push(valueInfo('label', DataType.INT64, ['N']), valueInfo('probabilities', DataType.FLOAT, ['N', k]));
}

function treesHead(g: GraphBuilder, x: string, m: TreeEnsembleModel, meta: ModelMetadata, outputs: ValueInfoProto[]): void {
  if (m.trees.length === 0) throw new OnnxExportError('tree ensemble has no trees');
  const attrs = treeEnsembleAttrs(m, featureAffine(meta));
  if (m.task !== 'classification') {
    g.op('TreeEnsembleRegressor', [x], attrs, ['variable'], ML_DOMAIN);
    outputs.push(valueInfo('variable', DataType.FLOAT, ['N', m.outputs]));
    return;
  }
  // TreeEnsembleRegressor + standard ops instead of TreeEnsembleClassifier: the classifier has
  // no AVERAGE aggregate and runtime-specific heuristics for the one-score binary case.
  const scores = g.op1('TreeEnsembleRegressor', [x], attrs, ML_DOMAIN);
  let probs: string;
  if (m.outputs === 1) {
    const p = m.post === 'none' ? scores : g.op1('Sigmoid', [scores]);
    const q = g.op1('Sub', [g.floatConst('one', [], [1]), p]);
    probs = g.op1('Concat', [q, p], [attr.int('axis', 1)], '', 'probabilities');
  } else if (m.post === 'softmax') {
    probs = g.op1('Softmax', [scores], [attr.int('axis', 1)], '', 'probabilities');
  } else if (m.post === 'logistic') {
    probs = g.op1('Sigmoid', [scores], [], '', 'probabilities');
  } else {
    probs = g.op1('Identity', [scores], [], '', 'probabilities');
  }
  g.op1('ArgMax', [probs], [attr.int('axis', 1), attr.int('keepdims', 0)], '', 'label');
  const k = m.outputs === 1 ? 2 : m.outputs;
  outputs.push(valueInfo('label', DataType.INT64, ['N']), valueInfo('probabilities', DataType.FLOAT, ['N', k]));
}

function kmeansHead(g: GraphBuilder, x: string, m: KMeansModel, d: number, outputs: ValueInfoProto[]): void {
  if (m.centroids.length !== m.k * d) throw new OnnxExportError(`kmeans has ${m.centroids.length} centroid values, expected ${m.k}×${d}`);
  // (x - c)² summed directly rather than |x|² - 2x·c + |c|², which cancels badly in float32.
  const x3 = g.op1('Unsqueeze', [x, g.int64Const('axis1', [1], [1])]);
  const diff = g.op1('Sub', [x3, g.floatConst('centroids', [m.k, d], m.centroids)]);
  const dist = g.op1('ReduceSumSquare', [diff], [attr.ints('axes', [2]), attr.int('keepdims', 0)], '', 'distances');
  g.op1('ArgMin', [dist], [attr.int('axis', 1), attr.int('keepdims', 0)], '', 'label');
  outputs.push(valueInfo('label', DataType.INT64, ['N']), valueInfo('distances', DataType.FLOAT, ['N', m.k]));
}
