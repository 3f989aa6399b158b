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

/**
 * Runs one statement in one transaction as the caller. BEGIN, the settings (role switch and
 * request GUCs), the pre-request call, the statement and COMMIT are pipelined on one connection:
 * one network round trip per request once the statements are prepared.
 */
export async function runAsCaller(pool: Pool, ctx: CallerContext, statement: Statement, opts: AsCallerOptions): Promise<Row[]> {
  const sql = await pool.reserve();
  const onAbort = () => main.cancel();
  let main!: Promise<Row[]> & { cancel(): void };
  try {
    const begin = sql.unsafe(opts.readOnly ? 'begin isolation level read committed read only' : 'begin isolation level read committed read write').execute();
    const setup = sql.unsafe(SETUP_SQL, [callerSettings(ctx)]).execute();
    const pre = opts.preRequest ? sql.unsafe(`select ${opts.preRequest}()`).execute() : null;
    main = sql.unsafe(statement.text, statement.params as never[]).execute() as unknown as Promise<Row[]> & { cancel(): void };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.signal?.aborted) main.cancel();
    let end = opts.decide ? null : sql.unsafe(opts.rollback ? 'rollback' : 'commit').execute();
    const stages = [begin, setup, pre, main] as const;
    const names = ['begin', 'setup', 'pre-request', 'main'] as const;
    const settled = await Promise.allSettled(stages.map((q) => q ?? Promise.resolve(null)));
    let failure: StageError | null = null;
    for (let i = 0; i < settled.length; i++) {
      const s = settled[i];
      if (s.status === 'rejected') {
        failure = new StageError(names[i], s.reason);
        break;
      }
    }
    if (!end) {
      const verdict = failure ? 'rollback' : opts.rollback ? 'rollback' : opts.decide!((settled[3] as PromiseFulfilledResult<Row[]>).value);
      end = sql.unsafe(verdict).execute();
    }
    try {
      await end;
    } catch (e) {
      failure ??= new StageError('end', e);
    }
    if (failure) {
      if (isConnectionError(failure.cause)) throw new DatabaseUnavailableError(failure.cause);
      throw failure;
    }
    return (settled[3] as PromiseFulfilledResult<Row[]>).value;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    sql.release();
  }
}
