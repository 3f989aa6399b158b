/**
 * The boosting step after a tree, run per row shard (by the helper thread too): adds the
 * leaves' values to the margins and computes the next round's gradients in the same pass.
 * updateShard must stay self-contained (hist-pool.ts injects its source into the helper).
 */

/**
 * A tree's rows are dealt to the two shards in blocks of this many positions (even blocks to
 * shard 0, odd ones to shard 1), so that rows sorted by some column still spread over both.
 */
export const SHARD_BLOCK = 1024;

/** how many of count listed rows shard 0 gets */
export function shard0Size(count: number): number {
  const blocks = Math.floor(count / SHARD_BLOCK);
  return Math.ceil(blocks / 2) * SHARD_BLOCK + (blocks % 2 === 0 ? count % SHARD_BLOCK : 0);
}

/** doubles per leaf in UpdateBuffers.leaves: s0, e0, s1, e1 (row ranges per shard), v, exp(-v) */
export const LEAF_WORDS = 6;

/** shared per-row state of binary:logistic or reg:squarederror boosting */
export interface UpdateBuffers {
  margin: Float64Array;
  /** binary:logistic: exp(-margin) per row, kept by one exp per leaf; empty for squared error */
  expNeg: Float64Array;
  y: Float64Array;
  /** LEAF_WORDS per leaf of the tree being applied */
  leaves: Float64Array;
}

/**
 * Shard k: margin += leaf value for the rows of every leaf, then gh = the next gradients and
 * sums[at], sums[at + 1] = their totals (in leaf order). Afterwards rows[s..e) (the shard's
 * range of a tree over all rows) is reset to the shard's row ids for the next tree: ascending,
 * in blocks of `block` (SHARD_BLOCK) ids.
 */
export function updateShard(
  rows: Int32Array,
  gh: Float64Array,
  u: UpdateBuffers,
  nLeaves: number,
  k: number,
  s: number,
  e: number,
  sums: Float64Array,
  at: number,
  block: number,
): void {
  const { margin, expNeg, y, leaves } = u;
  const logistic = expNeg.length > 0;
  let sg = 0;
  let sh = 0;
  for (let i = 0; i < nLeaves; i++) {
    const o = i * 6;
    const a = leaves[o + 2 * k];
    const b = leaves[o + 2 * k + 1];
    const v = leaves[o + 4];
    const ev = leaves[o + 5];
    if (logistic) {
      for (let j = a; j < b; j++) {
        const r = rows[j];
        const m = margin[r] + v;
        margin[r] = m;
        // exp(-margin) from its previous value; recomputed where the product left the normal range
        let x = expNeg[r] * ev;
        if (!(x > 1e-300 && x < 1e300)) x = Math.exp(-m);
        expNeg[r] = x;
        const p = 1 / (1 + x);
        const g = p - y[r];
        let h = p * (1 - p);
        if (h < 1e-16) h = 1e-16;
        gh[2 * r] = g;
        gh[2 * r + 1] = h;
        sg += g;
        sh += h;
      }
    } else {
      for (let j = a; j < b; j++) {
        const r = rows[j];
        const m = margin[r] + v;
        margin[r] = m;
        const g = m - y[r];
        gh[2 * r] = g;
        gh[2 * r + 1] = 1;
        sg += g;
        sh += 1;
      }
    }
  }
  let j = s;
  for (let b = k * block; j < e; b += 2 * block) for (let r = b; r < b + block && j < e; r++) rows[j++] = r;
  sums[at] = sg;
  sums[at + 1] = sh;
}
