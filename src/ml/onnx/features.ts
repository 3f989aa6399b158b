/**
 * Builds the preprocessing part of an exported graph: raw input → imputed → encoded
 * (one-hot / target) → optionally scaled model features.
 */
import type { ModelMetadata } from '../model-types.ts';
import { GraphBuilder, ML_DOMAIN } from './graph-builder.ts';
import { attr } from './proto.ts';
import { type RawLayout, rawLayout, UNKNOWN_CATEGORY } from './raw-input.ts';

export interface FeatureAffine {
  /** model feature = (pre-scale feature - offset) * factor */
  offset: Float64Array;
  factor: Float64Array;
  identity: boolean;
}

export function featureAffine(meta: ModelMetadata, layout: RawLayout = rawLayout(meta)): FeatureAffine {
  const offset = new Float64Array(layout.featureCount);
  const factor = new Float64Array(layout.featureCount).fill(1);
  for (const s of layout.slots) {
    for (let e = 0; e < s.featureWidth; e++) {
      offset[s.featureStart + e] = s.column.offset[e] ?? 0;
      factor[s.featureStart + e] = s.column.factor[e] ?? 1;
    }
  }
  const identity = offset.every((v) => v === 0) && factor.every((v) => v === 1);
  return { offset, factor, identity };
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Returns the name of the [N, featureCount] float tensor. */
export function buildFeatures(g: GraphBuilder, input: string, meta: ModelMetadata, scaled: boolean): string {
  const layout = rawLayout(meta);
  if (layout.slots.length === 0) return input;

  const imputed = new Array<number>(layout.rawWidth).fill(NaN);
  for (const s of layout.slots) {
    for (let e = 0; e < s.rawWidth; e++) imputed[s.rawStart + e] = s.column.imputeValue[e] ?? NaN;
  }
  let x = input;
  if (imputed.some((v) => !Number.isNaN(v))) {
    x = g.op1('Imputer', [x], [attr.floats('imputed_value_floats', imputed), attr.float('replaced_value_float', NaN)], ML_DOMAIN);
  }
  // Native / ordinal codes treat an unknown category (-1) like NULL. Other columns map -1 to
  // itself, so their values are untouched.
  const unknownAsNull = layout.slots.filter((s) => s.column.kind === 'text' && (s.column.encode === 'native' || s.column.encode === 'ordinal'));
  if (unknownAsNull.length > 0) {
    const values = new Array<number>(layout.rawWidth).fill(UNKNOWN_CATEGORY);
    for (const s of unknownAsNull) values[s.rawStart] = s.column.imputeValue[0] ?? NaN;
    x = g.op1('Imputer', [x], [attr.floats('imputed_value_floats', values), attr.float('replaced_value_float', UNKNOWN_CATEGORY)], ML_DOMAIN);
  }

  const needsExpansion = layout.slots.some((s) => s.column.kind === 'text' && (s.column.encode === 'one_hot' || s.column.encode === 'target'));
  if (needsExpansion) {
    const axes = g.int64Const('axis1', [1], [1]);
    const slice = (from: number, to: number) =>
      g.op1('Slice', [x, g.int64Const('start', [1], [from]), g.int64Const('end', [1], [to]), axes]);
    const pieces: string[] = [];
    let runStart = -1;
    const flush = (end: number) => {
      if (runStart >= 0 && end > runStart) pieces.push(slice(runStart, end));
      runStart = -1;
    };
    for (const s of layout.slots) {
      const c = s.column;
      if (c.kind === 'text' && c.encode === 'one_hot') {
        flush(s.rawStart);
        const k = c.categories?.length ?? 0;
        if (k === 0) continue;
        const onehot = g.op1('OneHotEncoder', [slice(s.rawStart, s.rawStart + 1)], [attr.ints('cats_int64s', range(k)), attr.int('zeros', 1)], ML_DOMAIN);
        pieces.push(g.op1('Squeeze', [onehot, axes]));
      } else if (c.kind === 'text' && c.encode === 'target') {
        flush(s.rawStart);
        const k = c.categories?.length ?? 0;
        const means = c.targetMeans ?? [];
        pieces.push(g.op1('LabelEncoder', [slice(s.rawStart, s.rawStart + 1)], [
          attr.floats('keys_floats', range(k)),
          attr.floats('values_floats', range(k).map((i) => means[i] ?? c.targetPrior ?? 0)),
          attr.float('default_float', c.targetPrior ?? 0),
        ], ML_DOMAIN));
      } else if (runStart < 0) {
        runStart = s.rawStart;
      }
    }
    flush(layout.rawWidth);
    x = pieces.length === 1 ? pieces[0] : g.op1('Concat', pieces, [attr.int('axis', 1)]);
  }

  if (scaled) {
    const aff = featureAffine(meta, layout);
    if (!aff.identity) x = g.op1('Scaler', [x], [attr.floats('offset', aff.offset), attr.floats('scale', aff.factor)], ML_DOMAIN);
  }
  return x;
}
