/**
 * Binary batch bodies for predict: rows × features little-endian IEEE floats, row-major, the
 * features in the model's feature order (the order of the `features` JSON arrays).
 *   application/octet-stream   float32 (4 bytes a feature)
 *   application/x-float64      float64 (8 bytes a feature: the exact values JSON would carry)
 * NaN is a missing value (NULL). Only models whose columns are all numeric or numeric arrays
 * take them: a text column needs its category looked up by name.
 */
import { MLInputError } from './hyperparams.ts';
import { featureMatrix, type LoadedModel } from './serving.ts';

export type BinaryFormat = 'float32' | 'float64';

export const BINARY_MEDIA_TYPES: Readonly<Record<string, BinaryFormat>> = {
  'application/octet-stream': 'float32',
  'application/x-float64': 'float64',
};

/** The binary format a Content-Type header names, or null for any other type. */
export function binaryFormat(contentType: string | undefined): BinaryFormat | null {
  const media = (contentType ?? '').split(';')[0].trim().toLowerCase();
  return Object.hasOwn(BINARY_MEDIA_TYPES, media) ? BINARY_MEDIA_TYPES[media] : null;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** The body's values as typed numbers, copying only when the bytes are misaligned (or the host is big-endian). */
function valuesOf(body: Uint8Array, format: BinaryFormat): Float32Array | Float64Array {
  const size = format === 'float32' ? 4 : 8;
  const n = body.byteLength / size;
  if (!LITTLE_ENDIAN_HOST) {
    const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    const out = format === 'float32' ? new Float32Array(n) : new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = format === 'float32' ? view.getFloat32(i * 4, true) : view.getFloat64(i * 8, true);
    return out;
  }
  const bytes = body.byteOffset % size === 0 ? body : body.slice();
  return format === 'float32' ? new Float32Array(bytes.buffer, bytes.byteOffset, n) : new Float64Array(bytes.buffer, bytes.byteOffset, n);
}

/**
 * The body as the model's preprocessed feature matrix (imputation and scaling as preprocess.ts
 * replays them), ready for predictFeatures.
 */
export function binaryFeatureMatrix(m: LoadedModel, body: Uint8Array | undefined, format: BinaryFormat): { x: Float64Array; rows: number } {
  const { columns, featureCount: d } = m.meta;
  const text = columns.find((c) => c.kind === 'text');
  if (text) {
    throw new MLInputError(
      `a binary body carries numbers only, and column "${text.name}" is text`,
      `the model has text (categorical) columns: ${columns.filter((c) => c.kind === 'text').map((c) => c.name).join(', ')}`,
      'Send {"rows": [{column: value}, ...]} or {"features": [[...], ...]} as JSON',
    );
  }
  const size = format === 'float32' ? 4 : 8;
  const rowBytes = size * d;
  const length = body?.byteLength ?? 0;
  if (!body || length === 0) throw new MLInputError('the binary body is empty', '', `Send rows × ${d} little-endian ${format} values`);
  if (length % rowBytes !== 0) {
    throw new MLInputError(
      `a ${format} body must hold whole rows of ${d} features (${rowBytes} bytes each); got ${length} bytes`,
      `${length} bytes = ${Math.floor(length / rowBytes)} rows and ${length % rowBytes} bytes over`,
      `features in order: ${m.meta.featureNames.join(', ')}`,
    );
  }
  const rows = length / rowBytes;
  const values = valuesOf(body, format);
  const { impute, offset, factor, identity } = featureAffine(m);
  const x = featureMatrix(m, rows);
  // (v - 0) * 1 is v for every number, so unscaled models only need their NULLs imputed
  if (identity) x.set(values);
  for (let r = 0; r < rows; r++) {
    const b = r * d;
    for (let j = 0; j < d; j++) {
      let v = values[b + j];
      if (v !== v) {
        v = impute[j];
        if (v !== v && columns.length > 0) throw nullWithoutImputation(m, j, r);
      } else if (identity) continue;
      x[b + j] = (v - offset[j]) * factor[j];
    }
  }
  return { x, rows };
}

/** Per model feature: the value a NULL becomes and the scaling, from numeric and array columns. */
function featureAffine(m: LoadedModel): { impute: Float64Array; offset: Float64Array; factor: Float64Array; identity: boolean } {
  const d = m.meta.featureCount;
  const impute = new Float64Array(d).fill(NaN);
  const offset = new Float64Array(d);
  const factor = new Float64Array(d).fill(1);
  let at = 0;
  for (const c of m.meta.columns) {
    for (let e = 0; e < c.width; e++, at++) {
      impute[at] = c.imputeValue[e];
      offset[at] = c.offset[e];
      factor[at] = c.factor[e];
    }
  }
  let identity = true;
  for (let j = 0; j < d; j++) if (offset[j] !== 0 || factor[j] !== 1) identity = false;
  return { impute, offset, factor, identity };
}

function nullWithoutImputation(m: LoadedModel, feature: number, row: number): MLInputError {
  let at = 0;
  const column = m.meta.columns.find((c) => (at += c.width) > feature)!;
  return new MLInputError(
    `column "${column.name}" is NULL (NaN) in row ${row} and the model has no imputation for it`,
    '',
    `retrain with preprocess => '{"${column.name}": {"impute": "mean"}}' or pass a value`,
  );
}
