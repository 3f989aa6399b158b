/** Sentence pooling over a [batch, seq, hidden] token-embedding tensor, as sentence-transformers does it. */

export type Pooling = 'mean' | 'cls';
export const POOLINGS: readonly Pooling[] = ['mean', 'cls'];

/**
 * Pools row `b` of `hidden` (row-major [batch, seq, dim]) into `out`.
 * `mask` is the attention mask of that row (length seq); padded tokens are ignored.
 */
export function poolRow(
  hidden: Float32Array,
  b: number,
  seq: number,
  dim: number,
  mask: ArrayLike<number>,
  pooling: Pooling,
  out: Float32Array,
): void {
  const base = b * seq * dim;
  if (pooling === 'cls') {
    out.set(hidden.subarray(base, base + dim));
    return;
  }
  // Accumulate in float64 so the result does not depend on how many pad rows follow.
  const acc = new Float64Array(dim);
  let count = 0;
  for (let t = 0; t < seq; t++) {
    if (!mask[t]) continue;
    count++;
    const off = base + t * dim;
    for (let d = 0; d < dim; d++) acc[d] += hidden[off + d];
  }
  const denom = Math.max(count, 1e-9);
  for (let d = 0; d < dim; d++) out[d] = acc[d] / denom;
}

/** In-place L2 normalisation; like torch's F.normalize, a zero vector stays zero. */
export function l2Normalize(v: Float32Array): Float32Array {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += v[i] * v[i];
  const norm = Math.max(Math.sqrt(sum), 1e-12);
  for (let i = 0; i < v.length; i++) v[i] /= norm;
  return v;
}
