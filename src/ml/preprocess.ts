/**
 * Column preprocessing (PostgresML's `preprocess` argument): impute, scale and encode, fitted on
 * the training split only and replayed at predict time from ColumnPreprocessor records.
 *
 * Raw data is columnar and typed (RawColumn). Conventions for ColumnPreprocessor that the
 * contract leaves open, so every consumer (ONNX exporter, SQL evaluator) can replay them:
 * - numeric / array: NULL (NaN) → imputeValue[e]; then x' = (x − offset[e]) · factor[e].
 * - text: `categories` lists the known values; the code of a value is its index.
 *   imputeValue[0] is the category index substituted for NULL (the mode), or −1 meaning "use
 *   targetPrior" (target encoding with impute mean), or NaN with impute 'error'.
 *   native / ordinal: feature = (code − offset[0]) · factor[0]; an unknown value is treated
 *   as NULL. target: feature = (targetMeans[code] − offset[0]) · factor[0], unknown →
 *   targetPrior. one_hot: one 0/1 feature per category, unknown → all zeros, never scaled.
 */
import type { ColumnPreprocessor, Matrix, Task } from './model-types.ts';
import { MLInputError } from './hyperparams.ts';

export type RawColumn =
  | { name: string; kind: 'numeric'; values: Float64Array; /** label decoding only */ boolean?: boolean }
  | { name: string; kind: 'text'; values: (string | null)[] }
  | { name: string; kind: 'array'; width: number; values: Float64Array };

type Impute = ColumnPreprocessor['impute'];
type Scale = ColumnPreprocessor['scale'];
export type EncodeSpec = 'native' | 'one_hot' | 'target' | { ordinal: string[] };

export interface PreprocessSpec {
  impute?: Impute;
  scale?: Scale;
  encode?: EncodeSpec;
}

const IMPUTES: Impute[] = ['error', 'mean', 'median', 'mode', 'min', 'max', 'zero'];
const SCALES: Scale[] = ['preserve', 'standard', 'min_max', 'max_abs', 'robust'];

export interface FitOptions {
  /** training-split row indices into the columns; default all rows */
  rows?: Int32Array;
  /** label per row (indexed like the columns), needed for target encoding */
  target?: Float64Array;
}

export function fitPreprocessors(
  columns: RawColumn[],
  spec: Record<string, PreprocessSpec> | null | undefined = {},
  opts: FitOptions = {},
): ColumnPreprocessor[] {
  const names = new Set(columns.map((c) => c.name));
  for (const key of Object.keys(spec ?? {})) {
    if (!names.has(key)) {
      throw new MLInputError(
        `preprocess names column "${key}", which is not a feature`,
        `feature columns: ${[...names].join(', ')}`,
      );
    }
  }
  return columns.map((c) => fitColumn(c, checkSpec(c.name, spec?.[c.name]), opts));
}

function checkSpec(name: string, s: unknown): Required<PreprocessSpec> {
  const out: Required<PreprocessSpec> = { impute: 'error', scale: 'preserve', encode: 'native' };
  if (s === undefined || s === null) return out;
  if (typeof s !== 'object' || Array.isArray(s)) {
    throw new MLInputError(`preprocess for "${name}" must be an object`, 'e.g. {"impute": "mean", "scale": "standard"}');
  }
  for (const [k, v] of Object.entries(s as Record<string, unknown>)) {
    if (k === 'impute') {
      if (!IMPUTES.includes(v as Impute)) throw badOption(name, k, v, IMPUTES);
      out.impute = v as Impute;
    } else if (k === 'scale') {
      if (!SCALES.includes(v as Scale)) throw badOption(name, k, v, SCALES);
      out.scale = v as Scale;
    } else if (k === 'encode') {
      if (v === 'native' || v === 'one_hot' || v === 'target') out.encode = v;
      else if (v && typeof v === 'object' && Array.isArray((v as { ordinal?: unknown }).ordinal)) {
        out.encode = { ordinal: (v as { ordinal: unknown[] }).ordinal.map(String) };
      } else throw badOption(name, k, v, ['native', 'one_hot', 'target', '{"ordinal": [...]}']);
    } else {
      throw new MLInputError(`unknown preprocess option "${k}" for column "${name}"`, 'valid options: impute, scale, encode');
    }
  }
  return out;
}

function badOption(name: string, key: string, v: unknown, valid: string[]): MLInputError {
  return new MLInputError(`invalid preprocess ${key} ${JSON.stringify(v)} for column "${name}"`, `valid values: ${valid.join(', ')}`);
}

function nullError(name: string, nulls: number): MLInputError {
  return new MLInputError(
    `column "${name}" has ${nulls} NULL value(s) and no imputation`,
    'impute defaults to "error"',
    `set a preprocessor to impute them, e.g. preprocess => '{"${name}": {"impute": "mean"}}' (text columns: "mode")`,
  );
}

interface NumStats {
  count: number;
  nulls: number;
  mean: number;
  std: number;
  min: number;
  max: number;
  median: number;
  q25: number;
  q75: number;
  mode: number;
  distinct: number;
}

function numStats(values: ArrayLike<number>, total: number): NumStats {
  const xs = Float64Array.from(values).sort();
  const k = xs.length;
  if (k === 0) {
    return { count: total, nulls: total, mean: 0, std: 0, min: 0, max: 0, median: 0, q25: 0, q75: 0, mode: 0, distinct: 0 };
  }
  let sum = 0;
  for (const v of xs) sum += v;
  const mean = sum / k;
  let v2 = 0;
  for (const v of xs) v2 += (v - mean) ** 2;
  let mode = xs[0];
  let best = 0;
  let distinct = 0;
  for (let i = 0; i < k; ) {
    let j = i;
    while (j + 1 < k && xs[j + 1] === xs[i]) j++;
    distinct++;
    if (j - i + 1 > best) {
      best = j - i + 1;
      mode = xs[i];
    }
    i = j + 1;
  }
  return {
    count: total,
    nulls: total - k,
    mean,
    std: Math.sqrt(v2 / k),
    min: xs[0],
    max: xs[k - 1],
    median: quantile(xs, 0.5),
    q25: quantile(xs, 0.25),
    q75: quantile(xs, 0.75),
    mode,
    distinct,
  };
}

/** numpy's default (linear interpolation) quantile of sorted values */
function quantile(xs: Float64Array, q: number): number {
  const pos = (xs.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo);
}

function imputeFrom(s: NumStats, impute: Impute): number {
  switch (impute) {
    case 'error':
      return NaN;
    case 'mean':
      return s.mean;
    case 'median':
      return s.median;
    case 'mode':
      return s.mode;
    case 'min':
      return s.min;
    case 'max':
      return s.max;
    case 'zero':
      return 0;
  }
}

function scaleFrom(s: NumStats, scale: Scale): [number, number] {
  const inv = (v: number) => (v > 0 && Number.isFinite(v) ? 1 / v : 1);
  switch (scale) {
    case 'preserve':
      return [0, 1];
    case 'standard':
      return [s.mean, inv(s.std)];
    case 'min_max':
      return [s.min, inv(s.max - s.min)];
    case 'max_abs':
      return [0, inv(Math.max(Math.abs(s.min), Math.abs(s.max)))];
    case 'robust':
      return [s.median, inv(s.q75 - s.q25)];
  }
}

function fitColumn(col: RawColumn, spec: Required<PreprocessSpec>, opts: FitOptions): ColumnPreprocessor {
  const rows = opts.rows;
  const total = rows ? rows.length : col.kind === 'array' ? col.values.length / Math.max(1, col.width) : col.values.length;
  const rowAt = (i: number) => (rows ? rows[i] : i);
  if (col.kind !== 'text' && spec.encode !== 'native') {
    throw new MLInputError(
      `column "${col.name}" is numeric; encode ${JSON.stringify(spec.encode)} only applies to text columns`,
      '',
      'remove encode for this column',
    );
  }
  if (col.kind === 'numeric' || col.kind === 'array') {
    const w = col.kind === 'array' ? col.width : 1;
    const imputeValue: number[] = [];
    const offset: number[] = [];
    const factor: number[] = [];
    const all: number[] = [];
    let nulls = 0;
    let single: NumStats | null = null;
    for (let e = 0; e < w; e++) {
      const vals: number[] = [];
      for (let i = 0; i < total; i++) {
        const v = col.values[rowAt(i) * w + e];
        if (v === v) vals.push(v);
        else nulls++;
      }
      if (vals.length < total && spec.impute === 'error') throw nullError(col.name, total - vals.length);
      const s = numStats(vals, total);
      imputeValue.push(imputeFrom(s, spec.impute));
      const [o, f] = scaleFrom(s, spec.scale);
      offset.push(o);
      factor.push(f);
      if (col.kind === 'numeric') single = s;
      else for (const v of vals) all.push(v);
    }
    if (single) {
      return {
        name: col.name,
        kind: 'numeric',
        width: 1,
        impute: spec.impute,
        imputeValue,
        scale: spec.scale,
        offset,
        factor,
        encode: 'native',
        stats: publicStats(single),
      };
    }
    const s = numStats(all, total * w);
    return {
      name: col.name,
      kind: 'array',
      width: w,
      impute: spec.impute,
      imputeValue,
      scale: spec.scale,
      offset,
      factor,
      encode: 'native',
      stats: { ...publicStats(s), nulls },
    };
  }
  return fitText(col, spec, total, rowAt, opts.target);
}

function publicStats(s: NumStats): ColumnPreprocessor['stats'] {
  return {
    count: s.count,
    nulls: s.nulls,
    mean: s.mean,
    std: s.std,
    min: s.min,
    max: s.max,
    median: s.median,
    mode: s.mode,
    distinct: s.distinct,
  };
}

function fitText(
  col: { name: string; values: (string | null)[] },
  spec: Required<PreprocessSpec>,
  total: number,
  rowAt: (i: number) => number,
  target: Float64Array | undefined,
): ColumnPreprocessor {
  const counts = new Map<string, number>();
  let nulls = 0;
  for (let i = 0; i < total; i++) {
    const v = col.values[rowAt(i)];
    if (v === null || v === undefined) nulls++;
    else counts.set(v, (counts.get(v) ?? 0) + 1);
  }
  const encode = typeof spec.encode === 'object' ? 'ordinal' : spec.encode;
  const categories = typeof spec.encode === 'object' ? spec.encode.ordinal : [...counts.keys()].sort();
  const index = new Map(categories.map((c, i) => [c, i] as const));
  // ordinal values outside the given list count as NULL
  let missing = nulls;
  if (encode === 'ordinal') for (const [v, c] of counts) if (!index.has(v)) missing += c;
  let mode: string | undefined;
  let best = -1;
  for (const c of categories) {
    const n = counts.get(c) ?? 0;
    if (n > best) {
      best = n;
      mode = c;
    }
  }
  let imputeIndex = NaN;
  if (spec.impute === 'error') {
    if (missing > 0) throw nullError(col.name, missing);
  } else if (spec.impute === 'mode') {
    imputeIndex = mode === undefined ? 0 : index.get(mode)!;
  } else if (spec.impute === 'mean' && encode === 'target') {
    imputeIndex = -1;
  } else {
    throw new MLInputError(
      `impute "${spec.impute}" does not apply to text column "${col.name}"`,
      'there is no average category',
      'use {"impute": "mode"}, or encode "target" with impute "mean"',
    );
  }

  let targetMeans: number[] | undefined;
  let targetPrior: number | undefined;
  if (encode === 'target') {
    if (!target) throw new MLInputError(`target encoding of "${col.name}" needs a label column`);
    const sums = new Float64Array(categories.length);
    const ns = new Float64Array(categories.length);
    let all = 0;
    for (let i = 0; i < total; i++) {
      const r = rowAt(i);
      all += target[r];
      const v = col.values[r];
      const c = v === null ? undefined : index.get(v);
      if (c !== undefined) {
        sums[c] += target[r];
        ns[c]++;
      }
    }
    targetPrior = total > 0 ? all / total : 0;
    targetMeans = categories.map((_, c) => (ns[c] > 0 ? sums[c] / ns[c] : targetPrior!));
  }

  const pre: ColumnPreprocessor = {
    name: col.name,
    kind: 'text',
    width: 1,
    impute: spec.impute,
    imputeValue: [imputeIndex],
    scale: encode === 'one_hot' ? 'preserve' : spec.scale,
    offset: [0],
    factor: [1],
    encode,
    categories,
    targetMeans,
    targetPrior,
    stats: { count: total, nulls, distinct: counts.size, mode },
  };
  if (encode !== 'one_hot' && spec.scale !== 'preserve') {
    const codes: number[] = [];
    const one = new Float64Array(1);
    for (let i = 0; i < total; i++) {
      encodeText(pre, col.values[rowAt(i)], one, 0, false);
      codes.push(one[0]);
    }
    const [o, f] = scaleFrom(numStats(codes, total), spec.scale);
    pre.offset = [o];
    pre.factor = [f];
  }
  return pre;
}

/** Number of model features a preprocessor produces. */
export function featureWidth(p: ColumnPreprocessor): number {
  if (p.kind === 'text' && p.encode === 'one_hot') return p.categories?.length ?? 0;
  return p.kind === 'array' ? p.width : 1;
}

export function featureCount(pre: ColumnPreprocessor[]): number {
  let s = 0;
  for (const p of pre) s += featureWidth(p);
  return s;
}

export function featureNames(pre: ColumnPreprocessor[]): string[] {
  const out: string[] = [];
  for (const p of pre) {
    if (p.kind === 'text' && p.encode === 'one_hot') for (const c of p.categories ?? []) out.push(`${p.name}_${c}`);
    else if (p.kind === 'array') for (let e = 0; e < p.width; e++) out.push(`${p.name}[${e}]`);
    else out.push(p.name);
  }
  return out;
}

const indexCache = new WeakMap<ColumnPreprocessor, Map<string, number>>();

function categoryIndex(p: ColumnPreprocessor): Map<string, number> {
  let m = indexCache.get(p);
  if (!m) {
    m = new Map((p.categories ?? []).map((c, i) => [c, i] as const));
    indexCache.set(p, m);
  }
  return m;
}

/** Writes the encoded feature(s) of one text value at out[at..]. */
function encodeText(p: ColumnPreprocessor, v: string | null | undefined, out: Float64Array, at: number, scale = true): void {
  const idx = categoryIndex(p);
  let code = v === null || v === undefined ? undefined : idx.get(v);
  if (p.encode === 'one_hot') {
    const k = p.categories?.length ?? 0;
    for (let c = 0; c < k; c++) out[at + c] = 0;
    if (code === undefined && (v === null || v === undefined)) code = imputedCode(p, v);
    if (code !== undefined && code >= 0) out[at + code] = 1;
    return;
  }
  let value: number;
  if (p.encode === 'target') {
    if (code === undefined && (v === null || v === undefined)) code = imputedCode(p, v);
    value = code === undefined || code < 0 ? (p.targetPrior ?? 0) : p.targetMeans![code];
  } else {
    if (code === undefined) code = imputedCode(p, v);
    value = code!;
  }
  out[at] = scale ? (value - p.offset[0]) * p.factor[0] : value;
}

function imputedCode(p: ColumnPreprocessor, v: string | null | undefined): number {
  const c = p.imputeValue[0];
  if (c !== c) {
    const what = v === null || v === undefined ? 'NULL' : `unknown category ${JSON.stringify(v)}`;
    throw new MLInputError(
      `column "${p.name}" is ${what} and the model has no imputation for it`,
      p.categories ? `known categories: ${p.categories.slice(0, 20).join(', ')}${p.categories.length > 20 ? ', ...' : ''}` : '',
      `retrain with preprocess => '{"${p.name}": {"impute": "mode"}}' or pass a known value`,
    );
  }
  return c;
}

function encodeNumber(p: ColumnPreprocessor, v: number, e: number): number {
  if (v !== v) {
    v = p.imputeValue[e];
    if (v !== v) {
      throw new MLInputError(
        `column "${p.name}" is NULL and the model has no imputation for it`,
        '',
        `retrain with preprocess => '{"${p.name}": {"impute": "mean"}}' or pass a value`,
      );
    }
  }
  return (v - p.offset[e]) * p.factor[e];
}

/** Applies preprocessors to raw columns (matched by name), optionally only some rows. */
export function transformColumns(pre: ColumnPreprocessor[], columns: RawColumn[], rows?: Int32Array): Matrix {
  const byName = new Map(columns.map((c) => [c.name, c] as const));
  const d = featureCount(pre);
  const first = columns[0];
  const nAll = !first ? 0 : first.kind === 'array' ? first.values.length / Math.max(1, first.width) : first.values.length;
  const n = rows ? rows.length : nAll;
  const data = new Float64Array(n * d);
  let at = 0;
  for (const p of pre) {
    const col = byName.get(p.name);
    if (!col) throw new MLInputError(`column "${p.name}" is missing`, `the model needs: ${pre.map((q) => q.name).join(', ')}`);
    const w = featureWidth(p);
    for (let i = 0; i < n; i++) {
      const r = rows ? rows[i] : i;
      const o = i * d + at;
      if (p.kind === 'text') {
        if (col.kind !== 'text') throw typeMismatch(p);
        encodeText(p, col.values[r], data, o);
      } else if (p.kind === 'array') {
        if (col.kind !== 'array' || col.width !== p.width) throw typeMismatch(p);
        for (let e = 0; e < w; e++) data[o + e] = encodeNumber(p, col.values[r * w + e], e);
      } else {
        if (col.kind !== 'numeric') throw typeMismatch(p);
        data[o] = encodeNumber(p, col.values[r], 0);
      }
    }
    at += w;
  }
  return { data, rows: n, cols: d };
}

function typeMismatch(p: ColumnPreprocessor): MLInputError {
  return new MLInputError(`column "${p.name}" does not have the type the model was trained on`, `expected ${p.kind}${p.kind === 'array' ? `[${p.width}]` : ''}`);
}

export type InputRow = Record<string, unknown> | readonly unknown[];

/** Encodes predict-time rows: objects by column name, or arrays in training column order. */
export function transformRows(pre: ColumnPreprocessor[], rows: readonly InputRow[]): Matrix {
  const d = featureCount(pre);
  const data = new Float64Array(rows.length * d);
  for (let i = 0; i < rows.length; i++) transformRowInto(pre, rows[i], data, i * d);
  return { data, rows: rows.length, cols: d };
}

export function transformRowInto(pre: ColumnPreprocessor[], row: InputRow, out: Float64Array, at = 0): void {
  const isArray = Array.isArray(row);
  if (isArray && (row as readonly unknown[]).length !== pre.length) {
    throw new MLInputError(
      `expected ${pre.length} values per row, got ${(row as readonly unknown[]).length}`,
      `columns in order: ${pre.map((p) => p.name).join(', ')}`,
    );
  }
  for (let j = 0; j < pre.length; j++) {
    const p = pre[j];
    const v = isArray ? (row as readonly unknown[])[j] : (row as Record<string, unknown>)[p.name];
    if (p.kind === 'text') {
      encodeText(p, v === null || v === undefined ? null : String(v), out, at);
    } else if (p.kind === 'array') {
      if (v === null || v === undefined) {
        for (let e = 0; e < p.width; e++) out[at + e] = encodeNumber(p, NaN, e);
      } else {
        const a = v as ArrayLike<unknown>;
        if (typeof a !== 'object' || a.length !== p.width) {
          throw new MLInputError(`column "${p.name}" must be an array of ${p.width} numbers`);
        }
        for (let e = 0; e < p.width; e++) out[at + e] = encodeNumber(p, toNumber(p.name, a[e]), e);
      }
    } else {
      out[at] = encodeNumber(p, toNumber(p.name, v), 0);
    }
    at += featureWidth(p);
  }
}

/** A JSON value as a feature number: NULL → NaN, booleans → 0/1, numeric strings parsed; undefined when not numeric. */
export function coerceNumber(v: unknown): number | undefined {
  if (v === null || v === undefined) return NaN;
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    if (!Number.isNaN(n)) return n;
  }
  return undefined;
}

function toNumber(name: string, v: unknown): number {
  const n = coerceNumber(v);
  if (n === undefined) throw new MLInputError(`column "${name}" must be a number, got ${JSON.stringify(v)}`);
  return n;
}

export type ClassLabel = string | number | boolean;

/**
 * Turns the label column into the numeric target: regression values, or class indices with the
 * sorted distinct labels as `classes`. NULL labels are refused, as PostgresML does.
 */
export function encodeLabels(col: RawColumn, task: Task): { y: Float64Array; classes?: ClassLabel[] } {
  if (task === 'clustering') return { y: new Float64Array(0) };
  const nullLabel = (i: number) =>
    new MLInputError(
      `the label column "${col.name}" has NULL values`,
      `first at row ${i}`,
      `filter them out, e.g. with a VIEW ... WHERE "${col.name}" IS NOT NULL`,
    );
  if (col.kind === 'array') throw new MLInputError(`the label column "${col.name}" cannot be an array`);
  const n = col.values.length;
  const y = new Float64Array(n);
  if (task === 'regression') {
    if (col.kind !== 'numeric') throw new MLInputError(`regression needs a numeric label; "${col.name}" is text`, '', 'use task => classification');
    for (let i = 0; i < n; i++) {
      if (col.values[i] !== col.values[i]) throw nullLabel(i);
      y[i] = col.values[i];
    }
    return { y };
  }
  if (col.kind === 'numeric') {
    const distinct = new Set<number>();
    for (let i = 0; i < n; i++) {
      const v = col.values[i];
      if (v !== v) throw nullLabel(i);
      distinct.add(v);
    }
    const sorted = [...distinct].sort((a, b) => a - b);
    const index = new Map(sorted.map((v, i) => [v, i] as const));
    for (let i = 0; i < n; i++) y[i] = index.get(col.values[i])!;
    return { y, classes: col.boolean ? sorted.map((v) => v !== 0) : sorted };
  }
  const distinct = new Set<string>();
  for (let i = 0; i < n; i++) {
    const v = col.values[i];
    if (v === null || v === undefined) throw nullLabel(i);
    distinct.add(v);
  }
  const sorted = [...distinct].sort();
  const index = new Map(sorted.map((v, i) => [v, i] as const));
  for (let i = 0; i < n; i++) y[i] = index.get(col.values[i] as string)!;
  return { y, classes: sorted };
}
