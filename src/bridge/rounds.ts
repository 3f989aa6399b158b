/**
 * Collect and replay: run the statement; if pgml.* stubs reported calls they could not answer,
 * roll the attempt back, compute all of them in one batch, and run it again with the results
 * supplied. Only the last attempt commits, so a request's effects happen once.
 */
import { randomUUID } from 'node:crypto';
import type { Row } from 'postgres';
import type { AsCallerOptions, CallerContext, Statement } from '../db/as-caller.ts';
import { runAsCallerSelected } from '../db/wire/select.ts';
import { apiError } from '../rest/errors.ts';
import type { BridgeNotices } from './calls.ts';
import { computeCalls, type BridgeDeps } from './compute.ts';

export const MAX_ROUNDS = 5;

export async function runBridged(deps: BridgeDeps, notices: BridgeNotices, ctx: CallerContext, statement: Statement, opts: AsCallerOptions): Promise<Row[]> {
  const supplied = new Map<string, string>();
  let computed = 0;
  for (let round = 1; round <= MAX_ROUNDS; round++) {
    const id = randomUUID();
    const calls = notices.open(id);
    let rows: Row[] | null = null;
    let failure: unknown = null;
    try {
      rows = await runAsCallerSelected(deps, ctx, statement, {
        ...opts,
        rollback: false,
        bridge: { id, supplied },
        decide: () => (calls.length > 0 || opts.rollback ? 'rollback' : 'commit'),
      });
    } catch (e) {
      failure = e;
    } finally {
      notices.close(id);
    }
    // a statement can fail because a stub answered NULL (a NOT NULL column, a strict check):
    // with calls reported, that attempt was provisional like any other
    if (calls.length === 0) {
      if (round > 1) deps.metrics?.bridgeRounds.observe(round);
      if (failure) throw failure;
      return rows!;
    }
    await computeCalls(deps, ctx, calls, supplied);
    computed += calls.length;
  }
  throw apiError(500, 'PGML508', `pgml.* calls did not settle after ${MAX_ROUNDS} rounds`, `${computed} calls were computed; each round asked for new ones`, 'A pgml.embed / pgml.predict whose input depends on the result of another in a chain longer than the bridge allows; split the work into steps');
}
