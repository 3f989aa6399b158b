import { WirePool, type WirePoolOptions } from '../../src/db/wire/pool.ts';
import { transaction, type TxStep } from '../../src/db/wire/transaction.ts';
import type { Row, WireConnection } from '../../src/db/wire/connection.ts';

export function wirePool(uri: string, o: Partial<WirePoolOptions> = {}): WirePool {
  return new WirePool({ uri, max: 4, acquisitionTimeout: 5000, prepare: true, ...o });
}

/** Runs fn with the pool, then ends it. */
export async function withPool<T>(pool: WirePool, fn: (pool: WirePool) => Promise<T>): Promise<T> {
  try {
    return await fn(pool);
  } finally {
    await pool.end();
  }
}

/** One committed transaction's rows of its last step (throws the failure). */
export async function rowsOf(conn: WireConnection, text: string, params: unknown[] = []): Promise<Row[]> {
  const out = await transaction(conn, 'begin', [{ text, params }], 'commit');
  if (out.failure) throw out.failure.error;
  return out.results[0];
}

export function tx(conn: WireConnection, steps: TxStep[], end: 'commit' | 'rollback' = 'commit') {
  return transaction(conn, 'begin', steps, end);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 3000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > until) return v;
    await sleep(50);
  }
}
