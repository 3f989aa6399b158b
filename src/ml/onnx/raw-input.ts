/**
 * The raw input contract of exported models. The single float32 input `input` has shape
 * [N, rawWidth]; source columns appear in `meta.columns` order:
 *   numeric / boolean  → 1 slot, the value (NULL = NaN)
 *   array of width w   → w slots (NULL array or element = NaN)
 *   text (any encoding) → 1 slot, the category code = index in `categories`;
 *                         NULL = NaN, a category not seen in training = -1
 * Inside the graph, following preprocess.ts: NULL → imputeValue (for text a category code;
 * -1 for target encoding means the prior); native/ordinal treat an unknown category like NULL,
 * one-hot gives all zeros and target encoding the prior; then (x - offset) * factor.
 * A NULL without imputation (impute 'error', imputeValue NaN) reaches the model as NaN: the
 * caller must refuse it first if it wants preprocess.ts's error.
 */
import { coerceNumber } from '../preprocess.ts';
import type { ColumnPreprocessor, ModelMetadata } from '../model-types.ts';

export const UNKNOWN_CATEGORY = -1;

export interface RawSlot {
  column: ColumnPreprocessor;
  /** first raw input position of this column */
  rawStart: number;
  rawWidth: number;
  /** first model feature produced by this column */
  featureStart: number;
  featureWidth: number;
}

export interface RawLayout {
  rawWidth: number;
  featureCount: number;
  slots: RawSlot[];
}

export function columnFeatureWidth(c: ColumnPreprocessor): number {
  if (c.kind !== 'text') return c.width;
  return c.encode === 'one_hot' ? (c.categories?.length ?? 0) : 1;
}

export function rawLayout(meta: ModelMetadata): RawLayout {
  const slots: RawSlot[] = [];
  let raw = 0;
  let feat = 0;
  for (const column of meta.columns) {
    const rawWidth = column.kind === 'text' ? 1 : column.width;
    const featureWidth = columnFeatureWidth(column);
    slots.push({ column, rawStart: raw, rawWidth, featureStart: feat, featureWidth });
    raw += rawWidth;
    feat += featureWidth;
  }
  if (meta.columns.length === 0) return { rawWidth: meta.featureCount, featureCount: meta.featureCount, slots };
  return { rawWidth: raw, featureCount: feat, slots };
}

function toNumber(v: unknown): number {
  const n = coerceNumber(v);
  if (n === undefined) throw new TypeError(`expected a number, got ${JSON.stringify(v)}`);
  return n;
}

/**
 * Encodes rows given as objects keyed by column name into the raw float32 input.
 * Rows given as arrays are read positionally, one entry per source column.
 */
export function encodeRawRows(meta: ModelMetadata, rows: (Record<string, unknown> | unknown[])[], out?: Float32Array): Float32Array {
  const layout = rawLayout(meta);
  const w = layout.rawWidth;
  const buf = out && out.length >= rows.length * w ? out : new Float32Array(rows.length * w);
  const codes = layout.slots.map((s) => (s.column.kind === 'text' ? new Map((s.column.categories ?? []).map((c, i) => [c, i])) : undefined));
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r];
    const base = r * w;
    if (layout.slots.length === 0) {
      const arr = row as unknown[];
      for (let j = 0; j < w; j++) buf[base + j] = toNumber(arr[j]);
      continue;
    }
    layout.slots.forEach((s, ci) => {
      const v = Array.isArray(row) ? row[ci] : row[s.column.name];
      const at = base + s.rawStart;
      if (s.column.kind === 'text') {
        buf[at] = v === null || v === undefined ? NaN : (codes[ci]!.get(String(v)) ?? UNKNOWN_CATEGORY);
      } else if (s.column.kind === 'array') {
        const a = v === null || v === undefined ? [] : (v as unknown[]);
        if (!Array.isArray(a)) throw new TypeError(`column ${s.column.name}: expected an array`);
        if (a.length !== 0 && a.length !== s.rawWidth) {
          throw new TypeError(`column ${s.column.name}: expected ${s.rawWidth} elements, got ${a.length}`);
        }
        for (let e = 0; e < s.rawWidth; e++) buf[at + e] = a.length ? toNumber(a[e]) : NaN;
      } else {
        buf[at] = toNumber(v);
      }
    });
  }
  return buf;
}
