/** What a trainer receives besides data and hyperparameters. */
export interface FitContext {
  /** fraction of this fit done, 0..1 */
  progress?: (fraction: number) => void;
  /** polled between trees / iterations; true stops training with TrainingCancelledError */
  cancelled?: () => boolean;
  /** classification: number of classes (defaults to max(y) + 1) */
  numClasses?: number;
  /** histogram threads (1 or 2); default: 2 on multi-core machines for large data, else 1 */
  threads?: number;
}

export class TrainingCancelledError extends Error {
  constructor(message = 'training was cancelled') {
    super(message);
    this.name = 'AbortError';
  }
}

export function checkCancelled(ctx: FitContext | undefined): void {
  if (ctx?.cancelled?.()) throw new TrainingCancelledError();
}

export function numClassesOf(y: Float64Array, ctx: FitContext | undefined): number {
  let k = ctx?.numClasses ?? 0;
  for (let i = 0; i < y.length; i++) if (y[i] + 1 > k) k = y[i] + 1;
  return Math.max(2, k);
}
