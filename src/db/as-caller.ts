import { randomBytes } from 'node:crypto';
import type { Row, TransactionSql } from 'postgres';
import { DatabaseUnavailableError, isConnectionError, type Pool } from './pool.ts';

/** Who is asking, and the request facts exposed to SQL as transaction-local settings. */
export interface CallerContext {
  role: string;
  claims: Record<string, unknown>;
  method: string;
  path: string;
  headers: Record<string, string>;
  cookies: Record<string, string>;
  /** extra transaction-local settings applied before the role switch (search_path, role settings) */
  settings: [string, string][];
}

export interface Statement {
  text: string;
  params: unknown[];
}

export interface AsCallerOptions {
  readOnly: boolean;
  /** e.g. '"public"."check_request"' (already quoted); called after the settings */
  preRequest?: string;
  /** end with ROLLBACK instead of COMMIT (Prefer: tx=rollback) */
  rollback?: boolean;
  /** cancels the running statement, e.g. when the client disconnects */
  signal?: AbortSignal;
  /**
   * Decide after seeing the main result whether to commit. When given, COMMIT/ROLLBACK is a
   * second round trip; otherwise it is pipelined with the rest.
   */
  decide?: (rows: Row[]) => 'commit' | 'rollback';
  /**
   * pgml bridge round: the id tags the transaction (pgml.bridge_id) so the stubs' NOTICEs reach
   * this request; `supplied` holds results computed in earlier rounds, loaded into the session's
   * temp table before the role switch.
   */
  bridge?: { id: string; supplied: Map<string, string> };
}

/** A fresh, unguessable table per supplying transaction (see pgml._supplied in sql/004). */
function bridgeTableStatements(name: string): string[] {
  return [
    `create temp table ${name} (key text primary key, value text not null) on commit drop`,
    `grant select on pg_temp.${name} to public`,
  ];
}
const supplyBridgeResults = (name: string) => `insert into pg_temp.${name} (key, value) select key, value from json_each_text($1::text::json)`;

/** Which stage of the transaction failed: lets the caller map a failed role switch to 401. */
export class StageError extends Error {
  constructor(readonly stage: 'begin' | 'setup' | 'pre-request' | 'main' | 'end', override readonly cause: unknown) {
    super((cause as Error)?.message ?? String(cause));
  }
}

/** The client went away before its statement ran. */
export class RequestAborted extends Error {
  constructor() {
    super('the client closed the request');
  }
}

const SETUP_SQL = 'select set_config(k, v, true) from json_each_text($1::text::json) as t(k, v)';

export function callerSettings(ctx: CallerContext): string {
  const entries: [string, string][] = [
    ...ctx.settings,
    ['role', ctx.role],
    ['request.jwt.claims', JSON.stringify(ctx.claims)],
    ['request.method', ctx.method],
    ['request.path', ctx.path],
    ['request.headers', JSON.stringify(ctx.headers)],
    ['request.cookies', JSON.stringify(ctx.cookies)],
  ];
  // json_each_text keeps key order: settings first, then the role switch, then the request facts
  let json = '{';
  for (let i = 0; i < entries.length; i++) {
    if (i) json += ',';
    json += JSON.stringify(entries[i][0]) + ':' + JSON.stringify(entries[i][1]);
  }
  return json + '}';
}

type Pending = Promise<Row[]> & { cancel(): void; state?: unknown };

/**
 * postgres.js can cancel a statement only once it was sent (cancelling one still queued in the
 * transaction would leave the connection idle in transaction for good): wait until it is sent.
 */
function cancelWhenSent(q: Pending, done: () => boolean): void {
  if (done()) return;
  if (q.state) q.cancel();
  else setTimeout(() => cancelWhenSent(q, done), 2);
}

/**
 * Runs fn in one transaction as the caller: the role switch and request settings come first
 * (pipelined with fn's first statements). For work that needs several statements, such as the
 * ML catalog; runAsCaller below is the one-statement path of the HTTP API.
 */
export async function withCaller<T>(pool: Pool, ctx: CallerContext, opts: { readOnly: boolean }, fn: (tx: TransactionSql) => Promise<T>): Promise<T> {
  const mode = opts.readOnly ? 'isolation level read committed read only' : 'isolation level read committed read write';
  try {
    return await pool.transaction(mode, async (tx) => {
      const setup = tx.unsafe(SETUP_SQL, [callerSettings(ctx)], { prepare: pool.options.prepare }).execute();
      setup.catch(() => {});
      const body = fn(tx);
      body.catch(() => {});
      try {
        await setup;
      } catch (e) {
        throw new StageError('setup', e);
      }
      return await body;
    });
  } catch (e) {
    if (isConnectionError(e)) throw new DatabaseUnavailableError(e);
    throw e;
  }
}

/** Thrown inside the transaction callback to end it with ROLLBACK while still returning rows. */
class RollbackWith {
  constructor(readonly rows: Row[]) {}
}

/**
 * Runs one statement in one transaction as the caller: BEGIN, then the settings (role switch and
 * request GUCs), the pre-request call and the statement pipelined as prepared statements, then
 * COMMIT: three round trips.
 */
export async function runAsCaller(pool: Pool, ctx: CallerContext, statement: Statement, opts: AsCallerOptions): Promise<Row[]> {
  const prepare = { prepare: pool.options.prepare };
  let main: Pending | null = null;
  let settled = false;
  const onAbort = () => main && cancelWhenSent(main, () => settled);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const supplying = !!opts.bridge && opts.bridge.supplied.size > 0;
  // the bridge's temp table is written before the role switch, so such a transaction starts
  // READ WRITE and turns READ ONLY right after (allowed once only temp tables were written)
  const mode = opts.readOnly && !supplying ? 'isolation level read committed read only' : 'isolation level read committed read write';
  const bridgeTable = supplying ? `pgml_bridge_${randomBytes(12).toString('hex')}` : null;
  const bridgeSettings: [string, string][] = opts.bridge ? [['pgml.bridge_id', opts.bridge.id], ['pgml.bridge_table', bridgeTable ?? '']] : [];
  const settingsCtx = opts.bridge ? { ...ctx, settings: [...ctx.settings, ...bridgeSettings] } : ctx;
  try {
    return await pool.transaction(mode, async (tx) => {
      if (opts.signal?.aborted) throw new RequestAborted();
      const prelude: Promise<unknown>[] = [];
      if (bridgeTable) {
        for (const statement of bridgeTableStatements(bridgeTable)) prelude.push(tx.unsafe(statement).execute());
        // a new table name every time: not worth a prepared statement
        prelude.push(tx.unsafe(supplyBridgeResults(bridgeTable), [JSON.stringify(Object.fromEntries(opts.bridge!.supplied))]).execute());
        if (opts.readOnly) prelude.push(tx.unsafe('set transaction read only').execute());
      }
      const setup = tx.unsafe(SETUP_SQL, [callerSettings(settingsCtx)], prepare).execute();
      const pre = opts.preRequest ? tx.unsafe(`select ${opts.preRequest}()`, [], prepare).execute() : null;
      main = tx.unsafe(statement.text, statement.params as never[], prepare).execute() as unknown as Pending;
      if (opts.signal?.aborted) onAbort();
      const names = ['begin', 'setup', 'pre-request', 'main'] as const;
      const settled_ = await Promise.allSettled([Promise.all(prelude), setup, pre ?? Promise.resolve(null), main]);
      for (let i = 0; i < settled_.length; i++) {
        const r = settled_[i];
        if (r.status === 'rejected') throw isConnectionError(r.reason) ? new DatabaseUnavailableError(r.reason) : new StageError(names[i], r.reason);
      }
      const rows = (settled_[3] as PromiseFulfilledResult<Row[]>).value;
      const verdict = opts.rollback ? 'rollback' : opts.decide ? opts.decide(rows) : 'commit';
      if (verdict === 'rollback') throw new RollbackWith(rows);
      return rows;
    });
  } catch (e) {
    if (e instanceof RollbackWith) return e.rows;
    if (isConnectionError(e)) throw new DatabaseUnavailableError(e);
    throw e;
  } finally {
    settled = true;
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
