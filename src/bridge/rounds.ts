/**
 * Collect and replay: run the statement; if pgml.* stubs reported calls they could not answer,
 * roll the attempt back, compute all of them in one batch, and run it again with the results
 * supplied. Only the last attempt commits, so a request's effects happen once.
 */
import { randomUUID } from 'node:crypto';
import type { Row } from 'postgres';
import { RequestAborted, type AsCallerOptions, type CallerContext, type Statement } from '../db/as-caller.ts';
import { runAsCallerSelected } from '../db/wire/select.ts';
import { apiError } from '../errors.ts';
import type { BridgeNotices } from './calls.ts';
import { computeCalls, type BridgeDeps } from './compute.ts';

export const MAX_ROUNDS = 5;

export async function runBridged(deps: BridgeDeps, notices: BridgeNotices, ctx: CallerContext, statement: Statement, opts: AsCallerOptions): Promise<Row[]> {
  const supplied = new Map<string, string>();
  let computed = 0;
  for (let round = 1; round <= MAX_ROUNDS; round++) {
    if (opts.signal?.aborted) throw new RequestAborted();
    const r = notices.open(randomUUID(), { bound: Boolean(deps.wirePool) });
    let rows: Row[] | null = null;
    let failure: unknown = null;
    try {
      rows = await runAsCallerSelected(deps, ctx, statement, {
        ...opts,
        // a refused report ends the statement early: its result would be thrown away. Only on the
        // pipeline client, which closes a cancelled connection: postgres.js cancels by backend pid
        // and a late CancelRequest could hit the next request on the reused connection (another
        // tenant's), so there the statement runs to its end (or its statement_timeout)
        signal: !deps.wirePool ? opts.signal : opts.signal ? AbortSignal.any([opts.signal, r.refused.signal]) : r.refused.signal,
        rollback: false,
        bridge: { id: r.id, supplied, bind: (pid) => notices.bind(r, pid) },
        decide: () => (r.calls.length > 0 || r.error || opts.rollback ? 'rollback' : 'commit'),
      });
    } catch (e) {
      failure = e;
    } finally {
      notices.close(r);
    }
    if (r.error) throw r.error;
    // a statement can fail because a stub answered NULL (a NOT NULL column, a strict check):
    // with calls reported, that attempt was provisional like any other
    if (r.calls.length === 0) {
      if (round > 1) deps.metrics?.bridgeRounds.observe(round);
      if (failure) throw failure;
      return rows!;
    }
    await computeCalls(deps, ctx, r.calls, supplied, opts.signal);
    computed += r.calls.length;
  }
  throw apiError(500, 'PGML508', `pgml.* calls did not settle after ${MAX_ROUNDS} rounds`, `${computed} calls were computed; each round asked for new ones`, 'A pgml.embed / pgml.predict whose input depends on the result of another in a chain longer than the bridge allows; split the work into steps');
}
