import type { Row } from 'postgres';
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
}

/** Which stage of the transaction failed: lets the caller map a failed role switch to 401. */
export class StageError extends Error {
  constructor(readonly stage: 'begin' | 'setup' | 'pre-request' | 'main' | 'end', override readonly cause: unknown) {
    super((cause as Error)?.message ?? String(cause));
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

/** Thrown inside the transaction callback to end it with ROLLBACK while still returning rows. */
class RollbackWith {
  constructor(readonly rows: Row[]) {}
}

/**
 * Runs one statement in one transaction as the caller. After BEGIN, the settings (role switch and
 * request GUCs), the pre-request call and the statement are pipelined on the transaction's
 * connection: three round trips per request (BEGIN, the pipeline, COMMIT).
 */
export async function runAsCaller(pool: Pool, ctx: CallerContext, statement: Statement, opts: AsCallerOptions): Promise<Row[]> {
  let main: (Promise<Row[]> & { cancel(): void }) | null = null;
  const onAbort = () => main?.cancel();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const mode = opts.readOnly ? 'isolation level read committed read only' : 'isolation level read committed read write';
  try {
    return await pool.transaction(mode, async (tx) => {
      const setup = tx.unsafe(SETUP_SQL, [callerSettings(ctx)]).execute();
      const pre = opts.preRequest ? tx.unsafe(`select ${opts.preRequest}()`).execute() : null;
      main = tx.unsafe(statement.text, statement.params as never[]).execute() as unknown as Promise<Row[]> & { cancel(): void };
      if (opts.signal?.aborted) main.cancel();
      const names = ['setup', 'pre-request', 'main'] as const;
      const settled = await Promise.allSettled([setup, pre ?? Promise.resolve(null), main]);
      for (let i = 0; i < settled.length; i++) {
        const r = settled[i];
        if (r.status === 'rejected') throw isConnectionError(r.reason) ? new DatabaseUnavailableError(r.reason) : new StageError(names[i], r.reason);
      }
      const rows = (settled[2] as PromiseFulfilledResult<Row[]>).value;
      const verdict = opts.rollback ? 'rollback' : opts.decide ? opts.decide(rows) : 'commit';
      if (verdict === 'rollback') throw new RollbackWith(rows);
      return rows;
    });
  } catch (e) {
    if (e instanceof RollbackWith) return e.rows;
    if (isConnectionError(e)) throw new DatabaseUnavailableError(e);
    throw e;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
