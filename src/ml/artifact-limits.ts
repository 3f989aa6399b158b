/**
 * The one validation layer for sizes that come from a request or a stored artifact. Every size
 * read from an ONNX upload, a pgml.files artifact or pgml.models.metadata is checked here against
 * a configured limit BEFORE anything is allocated from it, and every tree is checked to be a tree
 * (children in range, each node reached once from the root, so every walk ends).
 */
import type { ColumnPreprocessor, ModelMetadata, TrainedModel, Tree } from './model-types.ts';

export interface ArtifactLimits {
  /** model features (after preprocessing) and raw input width: PGML_MAX_FEATURES */
  maxFeatures: number;
  /** classes, regression targets, k-means clusters, outputs per leaf: PGML_MAX_CLASSES */
  maxClasses: number;
  /** trees per ensemble: PGML_MAX_TREES */
  maxTrees: number;
  /** longest root-to-leaf path of one tree: PGML_MAX_TREE_DEPTH */
  maxTreeDepth: number;
  /** nodes of all trees of one model: PGML_MAX_TREE_NODES */
  maxTreeNodes: number;
  /** categories (vocabulary) of one text column: PGML_MAX_CATEGORIES */
  maxCategories: number;
  /** memory one loaded model may take (artifact bytes + evaluator arrays): PGML_MODEL_MAX_BYTES */
  maxModelBytes: number;
}

/** The settings behind each limit, named in error hints. */
export const LIMIT_SETTING: Record<keyof ArtifactLimits, string> = {
  maxFeatures: 'PGML_MAX_FEATURES',
  maxClasses: 'PGML_MAX_CLASSES',
  maxTrees: 'PGML_MAX_TREES',
  maxTreeDepth: 'PGML_MAX_TREE_DEPTH',
  maxTreeNodes: 'PGML_MAX_TREE_NODES',
  maxCategories: 'PGML_MAX_CATEGORIES',
  maxModelBytes: 'PGML_MODEL_MAX_BYTES',
};

export const DEFAULT_ARTIFACT_LIMITS: ArtifactLimits = {
  maxFeatures: 100_000,
  maxClasses: 10_000,
  maxTrees: 10_000,
  // the forest trainer's own depth when max_depth is null: no model it trains is refused
  maxTreeDepth: 512,
  maxTreeNodes: 10_000_000,
  maxCategories: 100_000,
  maxModelBytes: 256 * 1024 * 1024,
};

/** An artifact or upload that breaks a limit or is malformed; `limit` names the exceeded one. */
export class ArtifactError extends Error {
  override name = 'ArtifactError';
  constructor(message: string, readonly details?: string, readonly hint?: string, readonly limit?: keyof ArtifactLimits) {
    super(message);
  }
}

/** Throws unless `n` is an integer in [min, limits[key]]. */
export function checkSize(what: string, n: unknown, limits: ArtifactLimits, key: keyof ArtifactLimits, min = 0): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min) {
    throw new ArtifactError(`${what} is ${JSON.stringify(n)}; expected an integer >= ${min}`);
  }
  if (n > limits[key]) {
    throw new ArtifactError(`${what} is ${n}, above the limit of ${limits[key]}`, `limit ${LIMIT_SETTING[key]} = ${limits[key]}`,
      `raise ${LIMIT_SETTING[key]} if this model is legitimate`, key);
  }
  return n;
}

function bad(what: string, details?: string): ArtifactError {
  return new ArtifactError(`malformed model artifact: ${what}`, details);
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function checkList(what: string, v: unknown, limits: ArtifactLimits, key: keyof ArtifactLimits, optional = true): unknown[] | undefined {
  if (v === undefined || v === null) {
    if (optional) return undefined;
    throw bad(`${what} is missing`);
  }
  if (!Array.isArray(v)) throw bad(`${what} is not an array`);
  checkSize(`the length of ${what}`, v.length, limits, key);
  return v;
}

const KINDS = new Set(['numeric', 'array', 'text']);
const TASKS = new Set(['regression', 'classification', 'clustering']);

function checkColumn(c: unknown, i: number, limits: ArtifactLimits): number {
  if (!isObject(c)) throw bad(`column ${i} is not an object`);
  const col = c as unknown as ColumnPreprocessor;
  if (typeof col.name !== 'string') throw bad(`column ${i} has no name`);
  if (!KINDS.has(col.kind)) throw bad(`column "${col.name}" has kind ${JSON.stringify(col.kind)}`);
  const width = checkSize(`the width of column "${col.name}"`, col.width, limits, 'maxFeatures', 1);
  for (const k of ['imputeValue', 'offset', 'factor'] as const) checkList(`${k} of column "${col.name}"`, col[k], limits, 'maxFeatures', false);
  const cats = checkList(`the categories of column "${col.name}"`, col.categories, limits, 'maxCategories');
  checkList(`the target means of column "${col.name}"`, col.targetMeans, limits, 'maxCategories');
  if (col.kind !== 'text') return width;
  return col.encode === 'one_hot' ? (cats?.length ?? 0) : 1;
}

/** pgml.models.metadata as stored: any JSON a row owner could have written. */
export function validateMetadata(meta: unknown, limits: ArtifactLimits): ModelMetadata {
  if (!isObject(meta)) throw bad('metadata is not an object');
  const m = meta as unknown as ModelMetadata;
  if (!TASKS.has(m.task)) throw bad(`metadata.task is ${JSON.stringify(m.task)}`);
  const d = checkSize('the feature count', m.featureCount, limits, 'maxFeatures', 1);
  const columns = checkList('metadata.columns', m.columns, limits, 'maxFeatures', false)!;
  let features = 0;
  let raw = 0;
  columns.forEach((c, i) => {
    features += checkColumn(c, i, limits);
    raw += (c as ColumnPreprocessor).kind === 'text' ? 1 : (c as ColumnPreprocessor).width;
  });
  if (columns.length > 0 && features !== d) throw bad(`the columns make ${features} features but featureCount is ${d}`);
  checkSize('the raw input width', raw, limits, 'maxFeatures');
  checkList('metadata.featureNames', m.featureNames, limits, 'maxFeatures');
  checkList('metadata.classes', m.classes, limits, 'maxClasses');
  checkList('metadata.labelValues', m.labelValues, limits, 'maxClasses');
  return m;
}

function typed<T>(what: string, v: unknown, Kind: abstract new (...a: never[]) => T): T {
  if (!(v instanceof Kind)) throw bad(`${what} is not a ${Kind.name}`);
  return v;
}

/**
 * Checks that one tree is a tree: equal array lengths, leaves marked by feature -1, split
 * features below `d`, children in range, every node reached at most once from the root (so no
 * cycle and no shared subtree) and no path longer than the depth limit. Returns its node count.
 */
export function validateTree(t: unknown, ti: number, d: number, leafWidth: number, limits: ArtifactLimits): number {
  if (!isObject(t)) throw bad(`tree ${ti} is not an object`);
  const tree = t as unknown as Tree;
  const feature = typed(`tree ${ti} feature`, tree.feature, Int32Array);
  const n = feature.length;
  if (n === 0) throw bad(`tree ${ti} has no nodes`);
  const threshold = typed(`tree ${ti} threshold`, tree.threshold, Float64Array);
  const left = typed(`tree ${ti} left`, tree.left, Int32Array);
  const right = typed(`tree ${ti} right`, tree.right, Int32Array);
  const missing = typed(`tree ${ti} missingLeft`, tree.missingLeft, Uint8Array);
  const value = typed(`tree ${ti} value`, tree.value, Float64Array);
  if (threshold.length !== n || left.length !== n || right.length !== n || missing.length !== n) {
    throw bad(`tree ${ti} has arrays of different lengths`);
  }
  if (value.length !== n * leafWidth) throw bad(`tree ${ti} has ${value.length} leaf values for ${n} nodes × ${leafWidth} outputs`);
  const seen = new Uint8Array(n);
  // node, depth pairs; a node is pushed only by its parent, so the stack holds at most n pairs
  const stack = new Int32Array(2 * n + 2);
  let top = 0;
  stack[top++] = 0;
  stack[top++] = 0;
  seen[0] = 1;
  while (top > 0) {
    const depth = stack[--top];
    const i = stack[--top];
    const f = feature[i];
    if (f === -1) continue;
    if (f < 0 || f >= d) throw bad(`tree ${ti} node ${i} splits on feature ${f}`, `the model has ${d} features`);
    if (depth + 1 > limits.maxTreeDepth) checkSize(`the depth of tree ${ti}`, depth + 1, limits, 'maxTreeDepth');
    for (const c of [left[i], right[i]]) {
      if (c < 0 || c >= n) throw bad(`tree ${ti} node ${i} has child ${c}`, `the tree has ${n} nodes`);
      if (seen[c]) throw bad(`tree ${ti} node ${c} is reached twice`, 'a cycle or a shared subtree: the tree would never end or double count');
      seen[c] = 1;
      stack[top++] = c;
      stack[top++] = depth + 1;
    }
  }
  return n;
}

/** A TrainedModel decoded from model.json, checked against its metadata and the limits. */
export function validateTrainedModel(model: unknown, meta: ModelMetadata, limits: ArtifactLimits): TrainedModel {
  if (!isObject(model)) throw bad('model.json is not an object');
  const m = model as unknown as TrainedModel;
  const d = meta.featureCount;
  if (m.task !== meta.task) throw bad(`model task ${JSON.stringify(m.task)} differs from the metadata's ${meta.task}`);
  if (m.kind === 'linear') {
    const outputs = checkSize('the number of outputs', m.outputs, limits, 'maxClasses', 1);
    const coef = typed('coefficients', m.coefficients, Float64Array);
    if (coef.length !== outputs * d) throw bad(`${coef.length} coefficients for ${outputs} outputs × ${d} features`);
    if (typed('intercepts', m.intercepts, Float64Array).length !== outputs) throw bad('intercepts do not match the outputs');
    if (!['none', 'logistic', 'softmax'].includes(m.post)) throw bad(`post ${JSON.stringify(m.post)}`);
  } else if (m.kind === 'kmeans') {
    const k = checkSize('the number of clusters', m.k, limits, 'maxClasses', 1);
    if (typed('centroids', m.centroids, Float64Array).length !== k * d) throw bad(`centroids do not match ${k} clusters × ${d} features`);
  } else if (m.kind === 'trees') {
    const outputs = checkSize('the number of outputs', m.outputs, limits, 'maxClasses', 1);
    if (!Array.isArray(m.trees)) throw bad('trees is not an array');
    checkSize('the number of trees', m.trees.length, limits, 'maxTrees');
    if (typed('baseScore', m.baseScore, Float64Array).length > outputs) throw bad('baseScore is longer than the outputs');
    if (!['none', 'logistic', 'softmax'].includes(m.post) || !['sum', 'average'].includes(m.aggregate)) throw bad('unknown post or aggregate');
    if (m.treeOutput !== undefined) {
      const to = typed('treeOutput', m.treeOutput, Int32Array);
      if (to.length !== m.trees.length || to.some((o) => o < 0 || o >= outputs)) throw bad('treeOutput does not match the trees and outputs');
    }
    const leafWidth = m.treeOutput ? 1 : outputs;
    let nodes = 0;
    for (let t = 0; t < m.trees.length; t++) {
      nodes += validateTree(m.trees[t], t, d, leafWidth, limits);
      if (nodes > limits.maxTreeNodes) checkSize('the number of tree nodes', nodes, limits, 'maxTreeNodes');
    }
  } else {
    throw bad(`unknown model kind ${JSON.stringify((m as { kind?: unknown }).kind)}`);
  }
  if (meta.task === 'classification') {
    const k = meta.classes?.length ?? 2;
    const width = m.kind === 'kmeans' ? 1 : m.post === 'logistic' && m.outputs === 1 ? 2 : m.outputs;
    if (width !== k) throw bad(`the model outputs ${width} probabilities for ${k} classes`);
  }
  return m;
}

/** Bytes held by the typed arrays of a model (what a loaded native model costs). */
export function trainedModelBytes(m: TrainedModel): number {
  if (m.kind === 'linear') return m.coefficients.byteLength + m.intercepts.byteLength;
  if (m.kind === 'kmeans') return m.centroids.byteLength;
  let n = m.baseScore.byteLength + (m.treeOutput?.byteLength ?? 0);
  for (const t of m.trees) n += t.feature.byteLength + t.threshold.byteLength + t.left.byteLength + t.right.byteLength + t.missingLeft.byteLength + t.value.byteLength;
  return n;
}
