/**
 * One transaction in one socket write: BEGIN, the steps, COMMIT or ROLLBACK and a Sync. With a
 * decide callback the end waits for the last step's rows: everything up to it goes with a Flush,
 * then COMMIT/ROLLBACK and the Sync (two round trips).
 */
import type { ExecSlot, Row, WireConnection } from './connection.ts';
import type { PostgresError } from './errors.ts';

export interface TxStep {
  text: string;
  params?: unknown[];
}

export type TxEnd = 'commit' | 'rollback' | ((lastRows: Row[]) => 'commit' | 'rollback');

export interface TxOutcome {
  /** rows of each step, index-aligned with the steps (empty for steps that did not run) */
  results: Row[][];
  /** the first error and where it happened: -1 = BEGIN, steps.length = COMMIT/ROLLBACK */
  failure: { at: number; error: PostgresError } | null;
  /** the end that was sent (null when a step failed first) */
  ended: 'commit' | 'rollback' | null;
}

export async function transaction(conn: WireConnection, begin: string, steps: TxStep[], end: TxEnd): Promise<TxOutcome> {
  const beginSlot = conn.exec(begin);
  const slots = steps.map((s) => conn.exec(s.text, s.params));
  let ended: 'commit' | 'rollback' | null = null;
  let endSlot: ExecSlot | null = null;
  let decideError: { e: unknown } | null = null;
  if (typeof end === 'function') {
    conn.flush();
    const last = slots[slots.length - 1] ?? beginSlot;
    await conn.until(() => last.done || conn.roundError !== null);
    if (!conn.roundError) {
      try {
        ended = end(last.rows);
      } catch (e) {
        decideError = { e };
        ended = 'rollback';
      }
    }
  } else {
    ended = end;
  }
  if (ended) endSlot = conn.exec(ended);
  conn.sync();
  await conn.until(() => conn.idle);
  if (decideError) throw decideError.e;

  let failure: TxOutcome['failure'] = null;
  if (conn.roundError) {
    const i = beginSlot.error ? -1 : slots.findIndex((s) => s.error !== null);
    const at = i >= 0 || beginSlot.error ? i : endSlot?.error ? steps.length : -1;
    failure = { at, error: conn.roundError };
  }
  return { results: slots.map((s) => s.rows), failure, ended: failure ? null : ended };
}
