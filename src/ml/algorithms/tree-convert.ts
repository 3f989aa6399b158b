import type { Tree } from '../model-types.ts';
import type { GrownTree } from './hist-tree.ts';

/**
 * Copies the reachable part of a grown tree (pruning leaves unreachable nodes behind) into the
 * contract's Tree, renumbered in preorder. leafValue writes the K outputs of a node.
 */
export function toTree(
  t: GrownTree,
  K: number,
  leafValue: (node: number, out: Float64Array, at: number) => void,
): Tree {
  const order: number[] = [];
  const stack = [0];
  while (stack.length) {
    const i = stack.pop()!;
    order.push(i);
    if (t.feature[i] >= 0) {
      stack.push(t.right[i]);
      stack.push(t.left[i]);
    }
  }
  const m = order.length;
  const newId = new Map<number, number>();
  order.forEach((old, j) => newId.set(old, j));
  const tree: Tree = {
    feature: new Int32Array(m),
    threshold: new Float64Array(m),
    left: new Int32Array(m),
    right: new Int32Array(m),
    missingLeft: new Uint8Array(m),
    value: new Float64Array(m * K),
  };
  for (let j = 0; j < m; j++) {
    const i = order[j];
    if (t.feature[i] >= 0) {
      tree.feature[j] = t.feature[i];
      tree.threshold[j] = t.threshold[i];
      tree.left[j] = newId.get(t.left[i])!;
      tree.right[j] = newId.get(t.right[i])!;
      tree.missingLeft[j] = t.missingLeft[i];
    } else {
      tree.feature[j] = -1;
      tree.left[j] = -1;
      tree.right[j] = -1;
    }
    leafValue(i, tree.value, j * K);
  }
  return tree;
}

/** Adds each split's gain to its feature; normalised to sum 1 by normaliseImportance. */
export function addImportance(t: GrownTree, acc: Float64Array): void {
  const stack = [0];
  while (stack.length) {
    const i = stack.pop()!;
    if (t.feature[i] >= 0) {
      acc[t.feature[i]] += Math.max(0, t.gain[i]);
      stack.push(t.left[i], t.right[i]);
    }
  }
}

export function normaliseImportance(acc: Float64Array): Float64Array {
  let s = 0;
  for (const v of acc) s += v;
  if (s > 0) for (let i = 0; i < acc.length; i++) acc[i] /= s;
  return acc;
}
