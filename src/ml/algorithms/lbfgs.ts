/** Limited-memory BFGS with Armijo backtracking; minimises f given f(w, grad) -> value. */
export interface LbfgsOptions {
  maxIter: number;
  /** stop when max |gradient| <= gtol (scipy's pgtol, which sklearn passes tol to) */
  gtol: number;
  memory?: number;
  onIteration?: (iteration: number) => void;
}

export function lbfgs(
  f: (w: Float64Array, grad: Float64Array) => number,
  w0: Float64Array,
  opts: LbfgsOptions,
): Float64Array {
  const P = w0.length;
  const m = opts.memory ?? 10;
  const w = w0.slice();
  const g = new Float64Array(P);
  let fx = f(w, g);
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const rho: number[] = [];
  const dir = new Float64Array(P);
  const wNew = new Float64Array(P);
  const gNew = new Float64Array(P);
  const alphaBuf = new Float64Array(m);
  for (let iter = 0; iter < opts.maxIter; iter++) {
    if (maxAbs(g) <= opts.gtol) break;
    opts.onIteration?.(iter);
    // two-loop recursion: dir = -H·g
    for (let i = 0; i < P; i++) dir[i] = -g[i];
    for (let j = S.length - 1; j >= 0; j--) {
      const a = rho[j] * dot(S[j], dir);
      alphaBuf[j] = a;
      axpy(-a, Y[j], dir);
    }
    if (S.length > 0) {
      const last = S.length - 1;
      const gamma = dot(S[last], Y[last]) / dot(Y[last], Y[last]);
      for (let i = 0; i < P; i++) dir[i] *= gamma;
    }
    for (let j = 0; j < S.length; j++) {
      const b = rho[j] * dot(Y[j], dir);
      axpy(alphaBuf[j] - b, S[j], dir);
    }
    let slope = dot(g, dir);
    if (!(slope < 0)) {
      // not a descent direction: restart from steepest descent
      S.length = Y.length = rho.length = 0;
      for (let i = 0; i < P; i++) dir[i] = -g[i];
      slope = dot(g, dir);
    }
    let step = S.length === 0 ? Math.min(1, 1 / Math.max(1e-12, Math.sqrt(-slope))) : 1;
    let fNew = Infinity;
    let accepted = false;
    for (let ls = 0; ls < 40; ls++) {
      for (let i = 0; i < P; i++) wNew[i] = w[i] + step * dir[i];
      fNew = f(wNew, gNew);
      if (fNew <= fx + 1e-4 * step * slope) {
        accepted = true;
        break;
      }
      step *= 0.5;
    }
    if (!accepted) break;
    const s = new Float64Array(P);
    const yv = new Float64Array(P);
    for (let i = 0; i < P; i++) {
      s[i] = wNew[i] - w[i];
      yv[i] = gNew[i] - g[i];
    }
    const sy = dot(s, yv);
    if (sy > 1e-12 * Math.max(1e-300, dot(yv, yv))) {
      if (S.length === m) {
        S.shift();
        Y.shift();
        rho.shift();
      }
      S.push(s);
      Y.push(yv);
      rho.push(1 / sy);
    }
    const fOld = fx;
    w.set(wNew);
    g.set(gNew);
    fx = fNew;
    if ((fOld - fx) / Math.max(Math.abs(fOld), Math.abs(fx), 1) <= 1e-14) break;
  }
  return w;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function axpy(a: number, x: Float64Array, y: Float64Array): void {
  for (let i = 0; i < x.length; i++) y[i] += a * x[i];
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
