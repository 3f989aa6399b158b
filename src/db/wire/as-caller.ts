/**
 * runAsCaller (src/db/as-caller.ts) over the pipeline client: the same statements, stages and
 * errors, in one round trip (two when opts.decide is given).
 */
import type { Row } from 'postgres';
import { bridgePrelude, callerSettings, RequestAborted, SETUP_SQL, StageError, type AsCallerOptions, type CallerContext, type Statement } from '../as-caller.ts';
import { DatabaseUnavailableError, isConnectionError } from '../pool.ts';
import type { WirePool } from './pool.ts';
import { transaction, type TxEnd, type TxOutcome, type TxStep } from './transaction.ts';
import type { ImplicitBatcher } from './batcher.ts';

// kept identical to src/db/as-caller.ts (not exported there)
const BEGIN_RO = 'begin isolation level read committed read only';
const BEGIN_RW = 'begin isolation level read committed read write';

type Stage = 'begin' | 'setup' | 'pre-request' | 'main';

export async function runAsCallerPipelined(pool: WirePool, ctx: CallerContext, statement: Statement, opts: AsCallerOptions): Promise<Row[]> {
  if (opts.signal?.aborted) throw new RequestAborted();
  if (opts.shareWrite && pool.batcher?.enabled && opts.readOnly && !opts.signal && !opts.decide && !opts.rollback && !opts.bridge) {
    try {
      return await runImplicit(pool.batcher, ctx, statement, opts);
    } catch (e) {
      if (!(e instanceof StageError && e.stage === 'setup' && isIsolationRefused(e.cause))) throw e;
      // the session's default isolation is not READ COMMITTED (ALTER ROLE/DATABASE ... SET
      // default_transaction_isolation): implicit transactions cannot have it, BEGIN can
      pool.batcher.enabled = false;
    }
  }
  const bridge = bridgePrelude(opts);
  const begin = opts.readOnly && !bridge.supplying ? BEGIN_RO : BEGIN_RW;
  const settingsCtx = bridge.settings.length ? { ...ctx, settings: [...ctx.settings, ...bridge.settings] } : ctx;
  const { steps, stages } = callerSteps(settingsCtx, statement, opts, bridge.statements);
  const decide = opts.decide;
  const end: TxEnd = opts.rollback ? 'rollback' : decide ? (rows) => decide(rows as Row[]) : 'commit';

  return connectionErrorsAs503(() =>
    pool.use(async (conn) => {
      if (opts.signal?.aborted) throw new RequestAborted();
      opts.bridge?.bind?.(conn.pid);
      const onAbort = () => void conn.cancel().catch(() => {});
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        return lastRows(await transaction(conn, begin, steps, end), stages);
      } finally {
        opts.signal?.removeEventListener('abort', onAbort);
      }
    }),
  );
}

/**
 * A read-only statement of the gateway's own (opts.shareWrite) needs no BEGIN…COMMIT: its
 * statements and a Sync are one implicit transaction, sent together with the other such requests
 * of this event-loop turn (ImplicitBatcher). Its first settings make it what BEGIN would:
 * READ COMMITTED (accepted only when that is already the session's default, since the setup
 * statement has taken its snapshot; otherwise the caller falls back to BEGIN) and READ ONLY.
 */
async function runImplicit(batcher: ImplicitBatcher, ctx: CallerContext, statement: Statement, opts: AsCallerOptions): Promise<Row[]> {
  const { steps, stages } = callerSteps({ ...ctx, settings: [READ_COMMITTED, READ_ONLY, ...ctx.settings] }, statement, opts);
  return connectionErrorsAs503(async () => lastRows(await batcher.run(steps), stages));
}

/** The request's statements in order, each with the stage a failure of it is reported as. */
function callerSteps(ctx: CallerContext, statement: Statement, opts: AsCallerOptions, prelude: Statement[] = []): { steps: TxStep[]; stages: Stage[] } {
  const steps: TxStep[] = [];
  const stages: Stage[] = [];
  const add = (stage: Stage, text: string, params?: unknown[]) => {
    steps.push({ text, params });
    stages.push(stage);
  };
  for (const s of prelude) add('begin', s.text, s.params);
  add('setup', SETUP_SQL, [callerSettings(ctx)]);
  if (opts.preRequest) add('pre-request', `select ${opts.preRequest}()`);
  add('main', statement.text, statement.params);
  return { steps, stages };
}

/**
 * The main statement's rows, or its failure: BEGIN and COMMIT failures (and an implicit
 * transaction's commit) surface unwrapped, as from postgres.js's sql.begin; a step's as StageError.
 */
function lastRows(outcome: Pick<TxOutcome, 'results' | 'failure'>, stages: Stage[]): Row[] {
  const f = outcome.failure;
  if (f) {
    if (isConnectionError(f.error)) throw new DatabaseUnavailableError(f.error);
    if (f.at < 0 || f.at >= stages.length) throw f.error;
    throw new StageError(stages[f.at], f.error);
  }
  return outcome.results[stages.length - 1] as Row[];
}

async function connectionErrorsAs503<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (isConnectionError(e)) throw new DatabaseUnavailableError(e);
    throw e;
  }
}

const READ_COMMITTED: [string, string] = ['transaction_isolation', 'read committed'];
const READ_ONLY: [string, string] = ['transaction_read_only', 'on'];

/** "SET TRANSACTION ISOLATION LEVEL must be called before any query" */
function isIsolationRefused(e: unknown): boolean {
  return (e as { code?: string })?.code === '25001' && /ISOLATION LEVEL/i.test((e as Error).message ?? '');
}
