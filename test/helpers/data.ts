import { createReadStream } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pipeline } from 'node:stream/promises';
import type { Sql } from 'postgres';

export const SHARED_DATA = fileURLToPath(new URL('../../../shared/data', import.meta.url));

/** Creates a table and COPYs a CSV of ../shared/data into it (empty cells are NULL). */
export async function loadCsv(sql: Sql, table: string, ddl: string, file: string, columns?: string[]): Promise<number> {
  await sql.unsafe(`create table ${table} (${ddl})`);
  const target = columns ? `${table} (${columns.map((c) => `"${c}"`).join(', ')})` : table;
  const writable = await sql.unsafe(`copy ${target} from stdin with (format csv, header true)`).writable();
  await pipeline(createReadStream(`${SHARED_DATA}/${file}`), writable);
  const [{ n }] = await sql.unsafe(`select count(*)::int as n from ${table}`);
  return n as number;
}
