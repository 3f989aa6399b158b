/**
 * PGML_DB_CLIENT picks the request path's database client: 'postgres' (default, postgres.js,
 * src/db/as-caller.ts) or 'pipeline' (experimental, this directory: one round trip per request).
 */
import type { Row } from 'postgres';
import { runAsCaller, type AsCallerOptions, type CallerContext, type Statement } from '../as-caller.ts';
import type { Pool, PoolOptions } from '../pool.ts';
import { runAsCallerPipelined } from './as-caller.ts';
import { WirePool } from './pool.ts';

export type DbClient = 'postgres' | 'pipeline';

export function dbClientFromEnv(env: NodeJS.ProcessEnv = process.env): DbClient {
  const v = (env.PGML_DB_CLIENT ?? '').trim().toLowerCase();
  if (v === '' || v === 'postgres' || v === 'postgresjs') return 'postgres';
  if (v === 'pipeline') return 'pipeline';
  throw new Error(`PGML_DB_CLIENT must be "postgres" (default) or "pipeline", got ${JSON.stringify(env.PGML_DB_CLIENT)}`);
}

/** The pipeline pool when PGML_DB_CLIENT=pipeline, else null. Throws for a TLS URI (not supported). */
export function createRequestPool(options: PoolOptions & { batchGroups?: number }, env: NodeJS.ProcessEnv = process.env): WirePool | null {
  if (dbClientFromEnv(env) !== 'pipeline') return null;
  const { onNotice, ...rest } = options;
  return new WirePool({ ...rest, onNotice: onNotice ? (n, conn) => onNotice({ message: n.message, detail: n.detail }, { pid: conn.pid }) : undefined });
}

export interface RequestPools {
  pool: Pool;
  wirePool?: WirePool | null;
}

/** runAsCaller on the pipeline pool when there is one, else on postgres.js. */
export function runAsCallerSelected(pools: RequestPools, ctx: CallerContext, statement: Statement, opts: AsCallerOptions): Promise<Row[]> {
  return pools.wirePool ? runAsCallerPipelined(pools.wirePool, ctx, statement, opts) : runAsCaller(pools.pool, ctx, statement, opts);
}
