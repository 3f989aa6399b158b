/** Seeded random models, preprocessors and raw inputs for the ONNX tests and benchmark. */
import type {
  ColumnPreprocessor, KMeansModel, LinearModel, ModelMetadata, Task, Tree, TreeEnsembleModel,
} from '../../src/ml/model-types.ts';
import { rawLayout } from '../../src/ml/onnx/raw-input.ts';

export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function gauss(r: () => number): number {
  return Math.sqrt(-2 * Math.log(r() + 1e-300)) * Math.cos(2 * Math.PI * r());
}

const stats = { count: 100, nulls: 0 };

export function numericCol(name: string, opts: Partial<ColumnPreprocessor> = {}): ColumnPreprocessor {
  return {
    name, kind: 'numeric', width: 1, impute: 'mean', imputeValue: [0.5], scale: 'standard',
    offset: [1.5], factor: [1 / 3], encode: 'native', stats, ...opts,
  };
}

/** A mixed set of columns exercising every preprocessing path. */
export function mixedColumns(): ColumnPreprocessor[] {
  const cats = ['red', 'green', 'blue', 'violet'];
  return [
    numericCol('a'),
    numericCol('b', { impute: 'error', imputeValue: [NaN], scale: 'preserve', offset: [0], factor: [1] }),
    numericCol('c', { impute: 'median', imputeValue: [-2], scale: 'min_max', offset: [-7], factor: [-0.25] }),
    { name: 'emb', kind: 'array', width: 3, impute: 'zero', imputeValue: [0, 0, 0], scale: 'max_abs', offset: [0, 0, 0], factor: [0.5, 2, 0.1], encode: 'native', stats },
    { name: 'color', kind: 'text', width: 1, impute: 'mode', imputeValue: [1], scale: 'preserve', offset: [], factor: [], encode: 'one_hot', categories: cats, stats },
    { name: 'size', kind: 'text', width: 1, impute: 'mode', imputeValue: [0], scale: 'standard', offset: [1], factor: [0.8], encode: 'ordinal', categories: ['s', 'm', 'l'], stats },
    { name: 'city', kind: 'text', width: 1, impute: 'mode', imputeValue: [2], scale: 'preserve', offset: [0], factor: [1], encode: 'target', categories: ['x', 'y', 'z'], targetMeans: [0.2, -1.3, 4.5], targetPrior: 0.7, stats },
    numericCol('flag', { impute: 'zero', imputeValue: [0], scale: 'preserve', offset: [0], factor: [0] }),
  ];
}

export function metaFor(task: Task, columns: ColumnPreprocessor[], featureCount?: number, classes?: number): ModelMetadata {
  const d = columns.length ? rawLayout({ task, algorithm: 'x', columns, featureCount: 0, featureNames: [] }).featureCount : featureCount!;
  return {
    task, algorithm: 'test', columns, featureCount: d,
    featureNames: Array.from({ length: d }, (_, i) => `f${i}`),
    ...(classes ? { classes: Array.from({ length: classes }, (_, i) => `class${i}`) } : {}),
  };
}

/** Raw rows: numeric ~ N(1, 3) with 10% NULL; text codes in [-1, k) with 10% NULL. */
export function randomRaw(meta: ModelMetadata, rows: number, r: () => number): Float32Array {
  const layout = rawLayout(meta);
  const x = new Float32Array(rows * layout.rawWidth);
  for (let i = 0; i < rows; i++) {
    if (layout.slots.length === 0) {
      for (let j = 0; j < layout.rawWidth; j++) x[i * layout.rawWidth + j] = r() < 0.05 ? NaN : 1 + 3 * gauss(r);
      continue;
    }
    for (const s of layout.slots) {
      for (let e = 0; e < s.rawWidth; e++) {
        const at = i * layout.rawWidth + s.rawStart + e;
        if (r() < 0.1) x[at] = NaN;
        else if (s.column.kind === 'text') x[at] = Math.floor(r() * ((s.column.categories?.length ?? 0) + 1)) - 1;
        else x[at] = 1 + 3 * gauss(r);
      }
    }
  }
  return x;
}

export function randomLinear(task: Task, d: number, outputs: number, post: LinearModel['post'], r: () => number): LinearModel {
  return {
    kind: 'linear', task, outputs, post,
    coefficients: Float64Array.from({ length: outputs * d }, () => gauss(r)),
    intercepts: Float64Array.from({ length: outputs }, () => gauss(r)),
  };
}

/** A random tree of at most `depth` levels; thresholds ~ N(0, 1.5) in model feature space. */
export function randomTree(d: number, depth: number, leafWidth: number, r: () => number, fullDepth = false): Tree {
  const feature: number[] = [], threshold: number[] = [], left: number[] = [], right: number[] = [];
  const missingLeft: number[] = [], value: number[] = [];
  const grow = (level: number): number => {
    const id = feature.length;
    feature.push(-1); threshold.push(0); left.push(-1); right.push(-1); missingLeft.push(0);
    for (let o = 0; o < leafWidth; o++) value.push(0);
    if (level < depth && (fullDepth || r() < 0.85)) {
      feature[id] = Math.floor(r() * d);
      threshold[id] = 1.5 * gauss(r);
      missingLeft[id] = r() < 0.5 ? 1 : 0;
      left[id] = grow(level + 1);
      right[id] = grow(level + 1);
    } else {
      for (let o = 0; o < leafWidth; o++) value[id * leafWidth + o] = gauss(r);
    }
    return id;
  };
  grow(0);
  return {
    feature: Int32Array.from(feature), threshold: Float64Array.from(threshold),
    left: Int32Array.from(left), right: Int32Array.from(right),
    missingLeft: Uint8Array.from(missingLeft), value: Float64Array.from(value),
  };
}

export function randomForest(
  task: Task, d: number, nTrees: number, depth: number, outputs: number, r: () => number,
  opts: Partial<TreeEnsembleModel> & { leafWidth?: number; fullDepth?: boolean } = {},
): TreeEnsembleModel {
  const leafWidth = opts.leafWidth ?? outputs;
  return {
    kind: 'trees', task, outputs,
    trees: Array.from({ length: nTrees }, () => randomTree(d, depth, leafWidth, r, opts.fullDepth)),
    baseScore: opts.baseScore ?? Float64Array.from({ length: outputs }, () => gauss(r)),
    aggregate: opts.aggregate ?? 'sum', post: opts.post ?? 'none',
    ...(opts.treeOutput ? { treeOutput: opts.treeOutput } : {}),
  };
}

export function randomKMeans(d: number, k: number, r: () => number): KMeansModel {
  return { kind: 'kmeans', task: 'clustering', k, centroids: Float64Array.from({ length: k * d }, () => 2 * gauss(r)) };
}
