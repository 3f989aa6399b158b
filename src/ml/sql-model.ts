/**
 * The form of a model that pgml._evaluate (sql/004) runs inside PostgreSQL, so pgml.predict works
 * from psql without the gateway. Only numeric and array features with impute/scale
 * preprocessing, and linear or tree models, have one; others return null.
 */
import type { ModelMetadata, TrainedModel } from './model-types.ts';

const num = (v: number) => (Number.isFinite(v) ? v : null);
const list = (a: ArrayLike<number>) => Array.from(a, num);

export function toSqlModel(model: TrainedModel, meta: ModelMetadata): Record<string, unknown> | null {
  if (model.kind === 'kmeans') return null;
  if (meta.columns.some((c) => c.kind === 'text')) return null;
  const columns = meta.columns.map((c) => ({
    name: c.name, width: c.width, impute: c.impute, impute_value: c.imputeValue.map(num), offset: c.offset.map(num), factor: c.factor.map(num),
  }));
  const rawWidth = meta.columns.reduce((n, c) => n + c.width, 0);
  const classes = meta.classes?.every((c) => typeof c === 'number' || typeof c === 'boolean') ? meta.classes.map((c) => Number(c)) : undefined;
  const base = { task: model.task, columns, raw_width: rawWidth, classes };
  if (model.kind === 'linear') {
    return { ...base, kind: 'linear', outputs: model.outputs, post: model.post, coefficients: list(model.coefficients), intercepts: list(model.intercepts) };
  }
  return {
    ...base,
    kind: 'trees',
    outputs: model.outputs,
    post: model.post,
    aggregate: model.aggregate,
    base: list(model.baseScore),
    ...(model.treeOutput ? { tree_output: Array.from(model.treeOutput) } : {}),
    trees: model.trees.map((t) => ({ f: Array.from(t.feature), t: list(t.threshold), l: Array.from(t.left), r: Array.from(t.right), m: Array.from(t.missingLeft, (b) => b === 1), v: list(t.value) })),
  };
}
