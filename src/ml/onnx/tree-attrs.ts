/**
 * TreeEnsembleModel → ai.onnx.ml TreeEnsembleRegressor attributes.
 *
 * The graph feeds the trees unscaled features (float32), so each split
 * `(x - offset) * factor < t` is rewritten as a comparison on x, and the threshold is
 * rounded to the float32 that decides every float32 x exactly as the float64 test would.
 */
import type { Tree, TreeEnsembleModel } from '../model-types.ts';
import type { FeatureAffine } from './features.ts';
import { ceil32, floor32 } from './f32.ts';
import { attr, type AttributeProto } from './proto.ts';

/** Leaf value of node i for output o (leaves may store `outputs` values or, with treeOutput, just one). */
export function leafValue(tree: Tree, i: number, outputs: number, o: number): number {
  const width = tree.feature.length > 0 ? tree.value.length / tree.feature.length : outputs;
  return width === 1 ? tree.value[i] : tree.value[i * outputs + o];
}

interface Split { mode: 'BRANCH_LT' | 'BRANCH_GT'; threshold: number }

function foldSplit(t: number, offset: number, factor: number): Split {
  if (factor === 0) return { mode: 'BRANCH_LT', threshold: 0 < t ? Infinity : -Infinity };
  const raw = offset + t / factor;
  return factor > 0 ? { mode: 'BRANCH_LT', threshold: ceil32(raw) } : { mode: 'BRANCH_GT', threshold: floor32(raw) };
}

export function treeEnsembleAttrs(m: TreeEnsembleModel, aff: FeatureAffine): AttributeProto[] {
  const nodesTree: number[] = [], nodesId: number[] = [], nodesFeature: number[] = [], nodesMode: string[] = [];
  const nodesValue: number[] = [], nodesTrue: number[] = [], nodesFalse: number[] = [], nodesMissing: number[] = [];
  const tTree: number[] = [], tNode: number[] = [], tId: number[] = [], tWeight: number[] = [];
  let anyMissing = false;
  // predict-native.ts averages a treeOutput ensemble per output (over trees.length / outputs
  // trees); ORT's AVERAGE divides by all trees, so pre-divide the weights and SUM instead.
  const perOutputAverage = m.aggregate === 'average' && m.treeOutput !== undefined;
  const leafScale = perOutputAverage ? m.outputs / m.trees.length : 1;

  m.trees.forEach((tree, ti) => {
    for (let i = 0; i < tree.feature.length; i++) {
      nodesTree.push(ti);
      nodesId.push(i);
      const f = tree.feature[i];
      if (f < 0) {
        nodesFeature.push(0); nodesMode.push('LEAF'); nodesValue.push(0);
        nodesTrue.push(0); nodesFalse.push(0); nodesMissing.push(0);
        const outs = m.treeOutput ? [m.treeOutput[ti]] : Array.from({ length: m.outputs }, (_, o) => o);
        for (const o of outs) {
          tTree.push(ti); tNode.push(i); tId.push(o); tWeight.push(leafScale * leafValue(tree, i, m.outputs, o));
        }
        continue;
      }
      const s = aff.identity ? foldSplit(tree.threshold[i], 0, 1) : foldSplit(tree.threshold[i], aff.offset[f], aff.factor[f]);
      nodesFeature.push(f); nodesMode.push(s.mode); nodesValue.push(s.threshold);
      nodesTrue.push(tree.left[i]); nodesFalse.push(tree.right[i]);
      nodesMissing.push(tree.missingLeft[i] ? 1 : 0);
      if (tree.missingLeft[i]) anyMissing = true;
    }
  });

  const base = Array.from({ length: m.outputs }, (_, o) => m.baseScore[o] ?? 0);
  const attrs = [
    attr.int('n_targets', m.outputs),
    attr.string('aggregate_function', m.aggregate === 'average' && !perOutputAverage ? 'AVERAGE' : 'SUM'),
    attr.string('post_transform', 'NONE'),
    attr.floats('base_values', base),
    attr.ints('nodes_treeids', nodesTree), attr.ints('nodes_nodeids', nodesId),
    attr.ints('nodes_featureids', nodesFeature), attr.strings('nodes_modes', nodesMode),
    attr.floats('nodes_values', nodesValue),
    attr.ints('nodes_truenodeids', nodesTrue), attr.ints('nodes_falsenodeids', nodesFalse),
    attr.ints('target_treeids', tTree), attr.ints('target_nodeids', tNode),
    attr.ints('target_ids', tId), attr.floats('target_weights', tWeight),
  ];
  if (anyMissing) attrs.push(attr.ints('nodes_missing_value_tracks_true', nodesMissing));
  return attrs;
}
