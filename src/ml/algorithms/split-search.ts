/**
 * Best split of one gradient channel (K = 1, hist slots hold [G, H]) over a range of features.
 * The helper thread runs this same function (hist-pool.ts injects its source), so it must stay
 * self-contained: no imports, no module constants, no nested functions.
 */

/** doubles per search result: gain, feature (-1: none), bin, missing left (0/1), GL, HL */
export const SPLIT_WORDS = 6;

/**
 * Scans features [f0, f1) with active[f] = 1 and writes the best split that beats minGain to
 * out[at..at + SPLIT_WORDS). Ties keep the first candidate in feature then bin order, so
 * searching a feature range in pieces and keeping strictly better results gives the same split.
 */
export function searchSplits(
  hist: Float64Array,
  nBins: Int32Array,
  featOffset: Int32Array,
  active: Uint8Array,
  f0: number,
  f1: number,
  G: number,
  H: number,
  lambda: number,
  alpha: number,
  mcw: number,
  minGain: number,
  out: Float64Array,
  at: number,
): void {
  const tp = alpha === 0 ? G : G > alpha ? G - alpha : G < -alpha ? G + alpha : 0;
  const parent = (tp * tp) / (H + lambda);
  let best = minGain;
  let bestF = -1;
  let bestBin = 0;
  let bestMl = 0;
  let bestGL = 0;
  let bestHL = 0;
  for (let f = f0; f < f1; f++) {
    const nb = nBins[f];
    if (active[f] === 0 || nb < 2) continue;
    const off = featOffset[f] * 2;
    const mo = off + nb * 2;
    const Gm = hist[mo];
    const Hm = hist[mo + 1];
    // missing values go right, then (when there are any) left
    const directions = Hm > 0 ? 2 : 1;
    let GL = 0;
    let HL = 0;
    for (let b = 0; b < nb - 1; b++) {
      GL += hist[off + 2 * b];
      HL += hist[off + 2 * b + 1];
      for (let ml = 0; ml < directions; ml++) {
        const gl = ml === 0 ? GL : GL + Gm;
        const hl = ml === 0 ? HL : HL + Hm;
        const hr = H - hl;
        if (!(hl >= mcw && hr >= mcw)) continue;
        const gr = G - gl;
        const tl = alpha === 0 ? gl : gl > alpha ? gl - alpha : gl < -alpha ? gl + alpha : 0;
        const tr = alpha === 0 ? gr : gr > alpha ? gr - alpha : gr < -alpha ? gr + alpha : 0;
        const gain = (tl * tl) / (hl + lambda) + (tr * tr) / (hr + lambda) - parent;
        if (gain > best) {
          best = gain;
          bestF = f;
          bestBin = b;
          bestMl = ml;
          bestGL = gl;
          bestHL = hl;
        }
      }
    }
  }
  out[at] = best;
  out[at + 1] = bestF;
  out[at + 2] = bestBin;
  out[at + 3] = bestMl;
  out[at + 4] = bestGL;
  out[at + 5] = bestHL;
}
