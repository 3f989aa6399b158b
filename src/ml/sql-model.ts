/**
 * The form of a model that PostgreSQL evaluates itself, so pgml.predict works from psql and in
 * /rpc without the gateway computing it: sql/008 compiles it into pgml_compiled.m<id> (and
 * pgml._evaluate interprets it when it cannot be compiled). Only numeric and array features with
 * impute/scale preprocessing have one (text features need category strings, which are never
 * compiled into SQL); linear, tree and k-means models do. Only numbers matter to the compiler:
 * names are kept for error messages.
 */
import type { ModelMetadata, TrainedModel } from './model-types.ts';

const num = (v: number) => (Number.isFinite(v) ? v : null);
const list = (a: ArrayLike<number>) => Array.from(a, num);

export function toSqlModel(model: TrainedModel, meta: ModelMetadata): Record<string, unknown> | null {
  if (meta.columns.some((c) => c.kind === 'text')) return null;
  const columns = meta.columns.map((c) => ({
    name: c.name, width: c.width, impute: c.impute, impute_value: c.imputeValue.map(num), offset: c.offset.map(num), factor: c.factor.map(num),
  }));
  const rawWidth = meta.columns.reduce((n, c) => n + c.width, 0);
  const classes = meta.classes?.every((c) => typeof c === 'number' || typeof c === 'boolean') ? meta.classes.map((c) => Number(c)) : undefined;
  const base = { task: model.task, columns, raw_width: rawWidth, classes };
  if (model.kind === 'kmeans') return { ...base, kind: 'kmeans', k: model.k, centroids: list(model.centroids) };
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
