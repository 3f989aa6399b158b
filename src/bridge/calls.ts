/** The pgml.* calls SQL reported to the gateway (NOTICE 'pgml.bridge' from sql/004). */

export type BridgeCall =
  | { fn: 'embed'; key: string; model: string; input: string; kwargs: Record<string, unknown> }
  | { fn: 'predict' | 'predict_proba'; key: string; model_id: number; features: (number | null)[] };

export const BRIDGE_NOTICE = 'pgml.bridge';

/**
 * Routes bridge notices to the request that is waiting for them. postgres.js delivers notices
 * to one handler per pool; each round tags its transaction with a fresh bridge id.
 */
export class BridgeNotices {
  private rounds = new Map<string, BridgeCall[]>();

  open(id: string): BridgeCall[] {
    const calls: BridgeCall[] = [];
    this.rounds.set(id, calls);
    return calls;
  }

  close(id: string): void {
    this.rounds.delete(id);
  }

  /** The pool's onnotice handler. */
  onNotice = (notice: { message?: string; detail?: string }): void => {
    if (notice.message !== BRIDGE_NOTICE || !notice.detail) return;
    let call: BridgeCall & { bridge_id?: string };
    try {
      call = JSON.parse(notice.detail);
    } catch {
      return;
    }
    const calls = call.bridge_id ? this.rounds.get(call.bridge_id) : undefined;
    if (calls && !calls.some((c) => c.key === call.key)) calls.push(call);
  };
}

/** Postgres array literal of a float vector, as the stubs cast it back with ::real[]. */
export function realArrayLiteral(values: ArrayLike<number>): string {
  let s = '{';
  for (let i = 0; i < values.length; i++) {
    if (i) s += ',';
    const v = values[i];
    s += Number.isFinite(v) ? String(v) : Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
  }
  return s + '}';
}
