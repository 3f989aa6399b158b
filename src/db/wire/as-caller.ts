/**
 * runAsCaller (src/db/as-caller.ts) over the pipeline client: the same statements, stages and
 * errors, in one round trip (two when opts.decide is given).
 */
import type { Row } from 'postgres';
import { bridgePrelude, callerSettings, RequestAborted, SETUP_SQL, StageError, type AsCallerOptions, type CallerContext, type Statement } from '../as-caller.ts';
import { DatabaseUnavailableError, isConnectionError } from '../pool.ts';
import type { WirePool } from './pool.ts';
import { transaction, type TxEnd, type TxStep } from './transaction.ts';
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
  const steps: TxStep[] = [];
  const stages: Stage[] = [];
  const add = (stage: Stage, text: string, params?: unknown[]) => {
    steps.push({ text, params });
    stages.push(stage);
  };
  for (const s of bridge.statements) add('begin', s.text, s.params);
  add('setup', SETUP_SQL, [callerSettings(settingsCtx)]);
  if (opts.preRequest) add('pre-request', `select ${opts.preRequest}()`);
  add('main', statement.text, statement.params);
  const decide = opts.decide;
  const end: TxEnd = opts.rollback ? 'rollback' : decide ? (rows) => decide(rows as Row[]) : 'commit';

  try {
    return await pool.use(async (conn) => {
      if (opts.signal?.aborted) throw new RequestAborted();
      const onAbort = () => void conn.cancel().catch(() => {});
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      let outcome;
      try {
        outcome = await transaction(conn, begin, steps, end);
      } finally {
        opts.signal?.removeEventListener('abort', onAbort);
      }
      const f = outcome.failure;
      if (f) {
        if (isConnectionError(f.error)) throw new DatabaseUnavailableError(f.error);
        // BEGIN and COMMIT failures surface unwrapped, as from postgres.js's sql.begin
        if (f.at < 0 || f.at >= steps.length) throw f.error;
        throw new StageError(stages[f.at], f.error);
      }
      return outcome.results[steps.length - 1] as Row[];
    });
  } catch (e) {
    if (isConnectionError(e)) throw new DatabaseUnavailableError(e);
    throw e;
  }
}

/**
 * A read-only statement of the gateway's own (opts.shareWrite) needs no BEGIN…COMMIT: its
 * statements and a Sync are one implicit transaction, sent together with the other such requests
 * of this event-loop turn (ImplicitBatcher). Its first settings make it what BEGIN would:
 * READ COMMITTED (accepted only when that is already the session's default, since the setup
 * statement has taken its snapshot; otherwise the caller falls back to BEGIN) and READ ONLY.
 */
async function runImplicit(batcher: ImplicitBatcher, ctx: CallerContext, statement: Statement, opts: AsCallerOptions): Promise<Row[]> {
  const steps: TxStep[] = [{ text: SETUP_SQL, params: [callerSettings({ ...ctx, settings: [READ_COMMITTED, READ_ONLY, ...ctx.settings] })] }];
  const stages: Stage[] = ['setup'];
  if (opts.preRequest) {
    steps.push({ text: `select ${opts.preRequest}()` });
    stages.push('pre-request');
  }
  steps.push({ text: statement.text, params: statement.params });
  stages.push('main');
  let outcome;
  try {
    outcome = await batcher.run(steps);
  } catch (e) {
    if (isConnectionError(e)) throw new DatabaseUnavailableError(e);
    throw e;
  }
  const f = outcome.failure;
  if (f) {
    if (isConnectionError(f.error)) throw new DatabaseUnavailableError(f.error);
    // an error at the implicit commit surfaces unwrapped, as a COMMIT failure does
    if (f.at >= steps.length) throw f.error;
    throw new StageError(stages[f.at], f.error);
  }
  return outcome.results[steps.length - 1] as Row[];
}

const READ_COMMITTED: [string, string] = ['transaction_isolation', 'read committed'];
const READ_ONLY: [string, string] = ['transaction_read_only', 'on'];

/** "SET TRANSACTION ISOLATION LEVEL must be called before any query" */
function isIsolationRefused(e: unknown): boolean {
  return (e as { code?: string })?.code === '25001' && /ISOLATION LEVEL/i.test((e as Error).message ?? '');
}
