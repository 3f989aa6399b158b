/** Float32 rounding helpers used to make float32 split thresholds decide exactly like float64 ones. */

const f = new Float32Array(1);
const u = new Uint32Array(f.buffer);

/** Next float32 above a float32 value. */
export function nextUp32(x: number): number {
  if (Number.isNaN(x) || x === Infinity) return x;
  if (x === 0) return 1.401298464324817e-45;
  f[0] = x;
  if (x > 0) u[0]++;
  else u[0]--;
  return f[0];
}

export function nextDown32(x: number): number {
  return -nextUp32(-x);
}

/** Smallest float32 >= x, so that for every float32 v: v < ceil32(x) ⇔ v < x. */
export function ceil32(x: number): number {
  const r = Math.fround(x);
  return r >= x || Number.isNaN(x) ? r : nextUp32(r);
}

/** Largest float32 <= x, so that for every float32 v: v > floor32(x) ⇔ v > x. */
export function floor32(x: number): number {
  const r = Math.fround(x);
  return r <= x || Number.isNaN(x) ? r : nextDown32(r);
}

const d = new Float64Array(1);
const b = new BigInt64Array(d.buffer);

/** Next float64 above x: for every float64 v, v <= x ⇔ v < nextUp64(x). */
export function nextUp64(x: number): number {
  if (Number.isNaN(x) || x === Infinity) return x;
  if (x === 0) return Number.MIN_VALUE;
  d[0] = x;
  b[0] += x > 0 ? 1n : -1n;
  return d[0];
}
