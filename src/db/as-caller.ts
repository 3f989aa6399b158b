import { randomBytes } from 'node:crypto';
import type { Row, TransactionSql } from 'postgres';
import { DatabaseUnavailableError, isConnectionError, type Pool } from './pool.ts';
import { ApiError, apiError, isPgError, toHttp } from '../errors.ts';

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
   * temp table before the role switch. `bind` learns the backend pid of the connection the round
   * runs on (pipeline client), so that only notices from that connection count.
   */
  bridge?: { id: string; supplied: Map<string, string>; bind?: (pid: number) => void };
  /**
   * A fixed, fast, read-only statement of the gateway's own (an access check, a cache read): on
   * the pipeline client it may share one write to PostgreSQL with others of its kind, each in its
   * own implicit transaction. Never for user SQL: one slow statement would hold up the others
   * queued behind it on the connection.
   */
  shareWrite?: boolean;
}

export interface BridgePrelude {
  /** true when results are supplied: the transaction starts READ WRITE (see below) */
  supplying: boolean;
  /** transaction-local settings telling the stubs the round's id and results table */
  settings: [string, string][];
  /** statements to run first, as the connecting role, before the role switch */
  statements: Statement[];
}

/**
 * A bridge round's prelude, shared by both request clients. Results go into a fresh, unguessable
 * temp table per supplying transaction (see pgml._supplied in sql/004), written before the role
 * switch; a READ ONLY request then turns read-only (allowed once only temp tables were written).
 */
export function bridgePrelude(opts: Pick<AsCallerOptions, 'bridge' | 'readOnly'>): BridgePrelude {
  if (!opts.bridge) return { supplying: false, settings: [], statements: [] };
  const supplying = opts.bridge.supplied.size > 0;
  const table = supplying ? `pgml_bridge_${randomBytes(12).toString('hex')}` : '';
  const statements: Statement[] = supplying
    ? [
        { text: `create temp table ${table} (key text primary key, value text not null) on commit drop`, params: [] },
        { text: `grant select on pg_temp.${table} to public`, params: [] },
        { text: `insert into pg_temp.${table} (key, value) select key, value from json_each_text($1::text::json)`, params: [JSON.stringify(Object.fromEntries(opts.bridge.supplied))] },
        ...(opts.readOnly ? [{ text: 'set transaction read only', params: [] }] : []),
      ]
    : [];
  return { supplying, settings: [['pgml.bridge_id', opts.bridge.id], ['pgml.bridge_table', table]], statements };
}

/** Which stage of the transaction failed: lets the caller map a failed role switch to 401. */
export class StageError extends Error {
  constructor(readonly stage: 'begin' | 'setup' | 'pre-request' | 'main' | 'end', override readonly cause: unknown) {
    super((cause as Error)?.message ?? String(cause));
  }

  /** A failed role switch is the caller's identity problem (401/403); anything else is its cause's. */
  toApiError(authenticated: boolean): ApiError {
    const cause = this.cause;
    if (this.stage === 'setup' && isPgError(cause)) {
      // the token names a role that does not exist or that we may not become
      if ((cause.code === '22023' || cause.code === '42704') && /^role .* does not exist$/.test(cause.message)) {
        return new ApiError(401, { code: 'PGRST301', message: cause.message, details: 'The JWT role claim names a role that does not exist', hint: null }, { 'WWW-Authenticate': 'Bearer error="invalid_token", error_description="role does not exist"' });
      }
      if (cause.code === '42501') {
        return new ApiError(authenticated ? 403 : 401, { code: '42501', message: cause.message, details: 'The authenticator role is not a member of the requested role', hint: `GRANT the role TO the connecting role` }, authenticated ? {} : { 'WWW-Authenticate': 'Bearer' });
      }
    }
    return toHttp(cause, authenticated);
  }
}

/** The client went away before its statement ran. */
export class RequestAborted extends Error {
  constructor() {
    super('the client closed the request');
  }

  toApiError(): ApiError {
    return apiError(499, 'PGML499', this.message);
  }
}

export const SETUP_SQL = 'select set_config(k, v, true) from json_each_text($1::text::json) as t(k, v)';

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
  const bridge = bridgePrelude(opts);
  const mode = opts.readOnly && !bridge.supplying ? 'isolation level read committed read only' : 'isolation level read committed read write';
  const settingsCtx = bridge.settings.length ? { ...ctx, settings: [...ctx.settings, ...bridge.settings] } : ctx;
  try {
    return await pool.transaction(mode, async (tx) => {
      if (opts.signal?.aborted) throw new RequestAborted();
      // a new table name every time: not worth prepared statements
      const prelude = bridge.statements.map((s) => tx.unsafe(s.text, s.params as never[]).execute());
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
