/**
 * Per-model evaluation data for plots (the dashboard's ROC curve, confusion matrix,
 * predicted-vs-actual, residuals and feature importance). Everything runs as the caller: the
 * model and its snapshot are read through RLS, and the snapshot's relation is re-read as the
 * caller, so a role only ever sees evaluations of data it may read.
 *
 * The test split is rebuilt exactly as training built it (same test_size, test_sampling and the
 * default seed over the relation's rows in the same order), then at most EVAL_MAX_ROWS of its
 * rows are predicted with the model's native form. When the relation changed since training
 * (another row count) the split is still rebuilt the same way but is only an approximation of the
 * original test set: `data_changed` says so.
 */
import { withCaller, type CallerContext } from '../db/as-caller.ts';
import { apiError } from '../errors.ts';
import { requireProject } from './catalog.ts';
import { evaluateModel } from './metrics.ts';
import type { Matrix, ModelMetadata, Task } from './model-types.ts';
import { outputWidth, predictMatrix } from './predict-native.ts';
import { encodeLabels, transformColumns, type PreprocessSpec } from './preprocess.ts';
import { readRelation } from './relation.ts';
import type { MlDeps } from './service.ts';
import { splitRows } from './split.ts';

/** test rows predicted at most */
export const EVAL_MAX_ROWS = 5000;
/** points of predicted-vs-actual and residual plots at most */
export const SCATTER_MAX_POINTS = 1000;
/** points per ROC curve at most */
export const ROC_MAX_POINTS = 500;

export interface RocPoint {
  fpr: number;
  tpr: number;
}

export interface Evaluation {
  project: string;
  model_id: number;
  task: Task;
  algorithm: string;
  relation_name: string;
  y_column_name: string | null;
  test_size: number;
  test_sampling: string;
  /** rows of the relation now */
  rows: number;
  /** rows of the rebuilt test split, and how many of them were predicted */
  test_rows: number;
  evaluated_rows: number;
  /** the relation's row count differs from the one recorded at training */
  data_changed: boolean;
  /** metrics recomputed on the evaluated rows (equal to the stored ones when nothing changed) */
  metrics: Record<string, number>;
  /** classification: class labels, index = class id */
  classes?: (string | number | boolean)[];
  /** binary: the curve of the positive class (classes[1]); multiclass: one-vs-rest per class */
  roc?: RocPoint[] | { label: string | number | boolean; auc: number; points: RocPoint[] }[];
  roc_auc?: number;
  confusion?: { labels: (string | number | boolean)[]; matrix: number[][] };
  /** regression: a sample of at most SCATTER_MAX_POINTS test rows */
  scatter?: { actual: number; predicted: number }[];
  residuals?: { predicted: number; residual: number }[];
  /** clustering: rows per cluster */
  clusters?: { cluster: number; count: number }[];
  /** tree models: gain importance per model feature, largest first */
  feature_importance: { name: string; importance: number }[] | null;
  /** the request that trained this model, as far as the catalog records it (for retraining) */
  train_request: Record<string, unknown>;
}

const numeric = /^\d{1,18}$/;

export async function evaluateModelById(deps: MlDeps, ctx: CallerContext, projectName: string, modelId: string): Promise<Evaluation> {
  if (!numeric.test(modelId)) throw apiError(404, 'PGML404', `Model ${modelId} not found in project "${projectName}"`);
  return withCaller(deps.pool, ctx, { readOnly: true }, async (tx) => {
    const p = await requireProject(tx, projectName);
    const found = await tx`
      select m.id::text, m.algorithm, m.status, m.hyperparams, m.metadata, s.relation_name, s.y_column_name, s.test_size::float8 as test_size,
             s.test_sampling::text as test_sampling, s.analysis
      from pgml.models m left join pgml.snapshots s on s.id = m.snapshot_id
      where m.id = ${modelId} and m.project_id = ${p.id}`;
    if (found.length === 0) throw apiError(404, 'PGML404', `Model ${modelId} not found in project "${projectName}"`);
    const row = found[0];
    if (row.status !== 'successful') throw apiError(409, 'PGML409', `Model ${modelId} is ${row.status}, not successfully trained`, null, 'Only successful models can be evaluated');
    if (!row.relation_name) throw apiError(409, 'PGML409', `Model ${modelId} has no training snapshot`, 'Imported models were not trained here: there is no test split to rebuild');
    const model = await deps.models.get(tx, row.id as string);
    if (!model.native) throw apiError(409, 'PGML409', `Model ${modelId} has no native form to evaluate`);
    const meta = model.meta;
    const task = meta.task;
    const yColumn = Array.isArray(row.y_column_name) && row.y_column_name.length ? String(row.y_column_name[0]) : null;
    // float4 in the catalog: 0.2 comes back as 0.200000003
    const testSize = Number(Number(row.test_size).toPrecision(7));
    const testSampling = row.test_sampling as string;

    const data = await readRelation(tx, row.relation_name as string, yColumn, { maxRows: deps.limits.maxRows });
    const recordedRows = (row.analysis as { rows?: number } | null)?.rows;
    const n = data.rows;
    // the split exactly as prepareData made it (default seed; stratified over the encoded labels)
    const encoded = data.label ? encodeLabels(data.label, task) : { y: new Float64Array(0), classes: undefined };
    const split = splitRows(n, { testSize, testSampling, y: task === 'classification' ? encoded.y : undefined });
    const test = split.test.length > EVAL_MAX_ROWS ? split.test.slice(0, EVAL_MAX_ROWS) : split.test;
    const x = transformColumns(meta.columns, data.columns, test);

    const base = {
      project: p.name,
      model_id: Number(row.id),
      task,
      algorithm: row.algorithm as string,
      relation_name: row.relation_name as string,
      y_column_name: yColumn,
      test_size: testSize,
      test_sampling: testSampling,
      rows: n,
      test_rows: split.test.length,
      evaluated_rows: test.length,
      data_changed: recordedRows !== undefined && recordedRows !== n,
      feature_importance: featureImportance(model.native, meta),
      train_request: trainRequest(p.name, task, row, yColumn, testSize, testSampling, meta),
    };

    if (task === 'classification') {
      const classes = meta.classes ?? [];
      // map the data's labels onto the model's class ids (by value; unknown labels are skipped)
      const index = new Map(classes.map((c, i) => [String(c), i] as const));
      const dataClasses = encoded.classes ?? [];
      const keep: number[] = [];
      const yTrue: number[] = [];
      for (let i = 0; i < test.length; i++) {
        const id = index.get(String(dataClasses[encoded.y[test[i]]]));
        if (id !== undefined) {
          keep.push(i);
          yTrue.push(id);
        }
      }
      const xs = keep.length === test.length ? x : takeMatrixRows(x, keep);
      const y = Float64Array.from(yTrue);
      const k = Math.max(classes.length, outputWidth(model.native));
      const w = outputWidth(model.native);
      const proba = predictMatrix(model.native, xs);
      const metrics = xs.rows ? evaluateModel(task, model.native, xs, y) : {};
      const matrix = Array.from({ length: k }, () => new Array<number>(k).fill(0));
      for (let i = 0; i < xs.rows; i++) {
        let best = 0;
        for (let c = 1; c < w; c++) if (proba[i * w + c] > proba[i * w + best]) best = c;
        matrix[y[i]][best]++;
      }
      const labels = classes.length === k ? classes : Array.from({ length: k }, (_, i) => classes[i] ?? i);
      const out: Evaluation = { ...base, evaluated_rows: xs.rows, metrics, classes: labels, confusion: { labels, matrix } };
      if (k === 2) {
        const curve = rocCurve(y, column(proba, w, 1), 1);
        out.roc = curve.points;
        out.roc_auc = curve.auc;
      } else {
        out.roc = labels.map((label, c) => {
          const curve = rocCurve(y, column(proba, w, c), c);
          return { label, auc: curve.auc, points: curve.points };
        });
      }
      return out;
    }

    const predicted = predictMatrix(model.native, x);
    if (task === 'regression') {
      const actual = Float64Array.from(test, (r) => encoded.y[r]);
      const metrics = x.rows ? evaluateModel(task, model.native, x, actual) : {};
      const step = Math.max(1, x.rows / SCATTER_MAX_POINTS);
      const scatter: { actual: number; predicted: number }[] = [];
      const residuals: { predicted: number; residual: number }[] = [];
      for (let f = 0; f < x.rows && scatter.length < SCATTER_MAX_POINTS; f += step) {
        const i = Math.floor(f);
        scatter.push({ actual: actual[i], predicted: predicted[i] });
        residuals.push({ predicted: predicted[i], residual: actual[i] - predicted[i] });
      }
      return { ...base, metrics, scatter, residuals };
    }

    // clustering
    const metrics = x.rows ? evaluateModel(task, model.native, x, new Float64Array(0)) : {};
    const counts = new Map<number, number>();
    for (let i = 0; i < x.rows; i++) counts.set(predicted[i], (counts.get(predicted[i]) ?? 0) + 1);
    const clusters = [...counts.entries()].sort((a, b) => a[0] - b[0]).map(([cluster, count]) => ({ cluster, count }));
    return { ...base, metrics, clusters };
  });
}

function column(m: Float64Array, w: number, c: number): Float64Array {
  const n = m.length / w;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = m[i * w + c];
  return out;
}

function takeMatrixRows(x: Matrix, rows: number[]): Matrix {
  const d = x.cols;
  const data = new Float64Array(rows.length * d);
  rows.forEach((r, i) => data.set(x.data.subarray(r * d, r * d + d), i * d));
  return { data, rows: rows.length, cols: d };
}

/**
 * ROC curve of `positive` against the rest: one point per distinct score (ties form one step),
 * from (0,0) to (1,1), thinned to at most ROC_MAX_POINTS points; AUC by the trapezoid rule.
 */
export function rocCurve(y: Float64Array, score: Float64Array, positive: number): { points: RocPoint[]; auc: number } {
  const n = y.length;
  const idx = Int32Array.from({ length: n }, (_, i) => i).sort((a, b) => score[b] - score[a]);
  let pos = 0;
  for (let i = 0; i < n; i++) if (y[i] === positive) pos++;
  const neg = n - pos;
  const points: RocPoint[] = [{ fpr: 0, tpr: 0 }];
  let tp = 0;
  let fp = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j < n && score[idx[j]] === score[idx[i]]) {
      if (y[idx[j]] === positive) tp++;
      else fp++;
      j++;
    }
    points.push({ fpr: neg ? fp / neg : 0, tpr: pos ? tp / pos : 0 });
    i = j;
  }
  let auc = 0;
  for (let i = 1; i < points.length; i++) auc += ((points[i].fpr - points[i - 1].fpr) * (points[i].tpr + points[i - 1].tpr)) / 2;
  if (pos === 0 || neg === 0) auc = NaN;
  return { points: thin(points, ROC_MAX_POINTS), auc };
}

function thin<T>(points: T[], max: number): T[] {
  if (points.length <= max) return points;
  const out: T[] = [];
  const step = (points.length - 1) / (max - 1);
  for (let i = 0; i < max - 1; i++) out.push(points[Math.round(i * step)]);
  out.push(points[points.length - 1]);
  return out;
}

function featureImportance(model: { kind: string; featureImportance?: Float64Array }, meta: ModelMetadata): { name: string; importance: number }[] | null {
  if (model.kind !== 'trees' || !model.featureImportance) return null;
  const imp = model.featureImportance;
  return Array.from(imp, (importance, i) => ({ name: meta.featureNames[i] ?? `f${i}`, importance })).sort((a, b) => b.importance - a.importance);
}

/** The training request as recorded: project, relation, label, algorithm, hyperparameters, split and preprocessing. */
function trainRequest(project: string, task: Task, row: Record<string, unknown>, yColumn: string | null, testSize: number, testSampling: string, meta: ModelMetadata): Record<string, unknown> {
  const preprocess: Record<string, PreprocessSpec> = {};
  for (const c of meta.columns) {
    const spec: Record<string, unknown> = {};
    if (c.impute !== 'error') spec.impute = c.impute;
    if (c.scale !== 'preserve') spec.scale = c.scale;
    if (c.encode === 'ordinal') spec.encode = { ordinal: c.categories ?? [] };
    else if (c.encode !== 'native') spec.encode = c.encode;
    if (Object.keys(spec).length) preprocess[c.name] = spec as PreprocessSpec;
  }
  const req: Record<string, unknown> = {
    project_name: project,
    task,
    relation_name: row.relation_name,
    algorithm: row.algorithm,
    hyperparams: row.hyperparams ?? {},
    test_size: testSize,
    test_sampling: testSampling,
  };
  if (yColumn !== null) req.y_column_name = yColumn;
  if (Object.keys(preprocess).length) req.preprocess = preprocess;
  return req;
}
