import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Sql } from 'postgres';
import { dataCsv } from '../fixtures/index.ts';

export { SHARED_DATA, dataSource } from '../fixtures/index.ts';

/**
 * Creates a table and COPYs a data set into it (empty cells are NULL): the file of
 * ../shared/data when present, else the repository's copy or a generated stand-in (test/fixtures).
 */
export async function loadCsv(sql: Sql, table: string, ddl: string, file: string, columns?: string[]): Promise<number> {
  await sql.unsafe(`create table ${table} (${ddl})`);
  const target = columns ? `${table} (${columns.map((c) => `"${c}"`).join(', ')})` : table;
  const writable = await sql.unsafe(`copy ${target} from stdin with (format csv, header true)`).writable();
  await pipeline(Readable.from([Buffer.from(dataCsv(file))]), writable);
  const [{ n }] = await sql.unsafe(`select count(*)::int as n from ${table}`);
  return n as number;
}
