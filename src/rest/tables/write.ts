/**
 * INSERT / UPDATE / DELETE / PUT as one data-modifying statement whose RETURNING rows feed the
 * representation. The JSON body is bound once as text and expanded by json_to_recordset.
 */
import type { ColumnDef, TableDef } from '../../schema/reflect.ts';
import { apiError } from '../../errors.ts';
import { ident, qualified, type Params } from '../sql.ts';
import type { TableExtras } from './catalog.ts';
import { castType } from './filters.ts';

export type Returning = 'minimal' | 'headers-only' | 'representation';

/** a column definition type for json_to_record: char/bit without a length would mean length 1 */
function recordType(c: ColumnDef): string {
  return castType(c.type);
}

export function writableColumn(table: TableDef, name: string): ColumnDef {
  const col = table.columns.find((c) => c.name === name);
  if (!col) throw apiError(400, 'PGRST204', `Column '${name}' of relation '${table.name}' does not exist`, null, null);
  return col;
}

/** The body as a JSON array text, and the columns it sets (from `columns=` or the keys). */
export function bodyRows(body: unknown, rawBody: string | undefined, columns: string[] | undefined): { json: string; keys: string[] } {
  if (body === null || typeof body !== 'object') throw apiError(400, 'PGRST102', 'Empty or invalid json', null, null);
  const isArray = Array.isArray(body);
  const raw = rawBody ?? JSON.stringify(body);
  const json = isArray ? raw : `[${raw}]`;
  if (columns) return { json, keys: columns };
  const rows = (isArray ? body : [body]) as unknown[];
  if (rows.length === 0) return { json, keys: [] };
  const first = rows[0];
  if (first === null || typeof first !== 'object' || Array.isArray(first)) throw apiError(400, 'PGRST102', 'Empty or invalid json', null, null);
  const keys = Object.keys(first);
  const keySet = new Set(keys);
  for (let i = 1; i < rows.length; i++) {
    const r = rows[i];
    if (r === null || typeof r !== 'object' || Array.isArray(r)) throw apiError(400, 'PGRST102', 'Empty or invalid json', null, null);
    const k = Object.keys(r);
    if (k.length !== keys.length || !k.every((x) => keySet.has(x))) throw apiError(400, 'PGRST102', 'All object keys must match', null, null);
  }
  return { json, keys };
}

function returningList(table: TableDef, alias: string, returning: Returning): string {
  let list: string;
  if (returning === 'representation') list = `${ident(alias)}.*`;
  else if (returning === 'headers-only' && table.primaryKey.length) list = table.primaryKey.map((k) => `${ident(alias)}.${ident(k)}`).join(', ');
  else list = '1';
  return ` returning ${list}`;
}

export interface InsertOptions {
  table: TableDef;
  alias: string;
  json: string;
  keys: string[];
  missingDefault: boolean;
  /** upsert: conflict target and what to do */
  onConflict?: { columns: string[]; action: 'merge' | 'ignore' };
  returning: Returning;
  extras: TableExtras;
  params: Params;
}

/**
 * How many payload rows find no conflicting row: the statement's snapshot predates the insert, so
 * this counts the rows the upsert inserts (no xmax trick, which needs table-wide SELECT).
 */
function newRowsSql(o: InsertOptions, bodyParam: string): string {
  const cols = o.onConflict!.columns.map((c) => writableColumn(o.table, c));
  const defs = cols.map((c) => `${ident(c.name)} ${recordType(c)}`).join(', ');
  const match = cols.map((c) => `pgrst_t.${ident(c.name)} = pgrst_b.${ident(c.name)}`).join(' and ');
  return `(select count(*) from json_to_recordset(${bodyParam}) as pgrst_b(${defs}) where not exists (select 1 from ${qualified(o.table.schema, o.table.name)} as pgrst_t where ${match}))`;
}

export function insertSql(o: InsertOptions): { sql: string; newRows: string | null } {
  const cols = o.keys.map((k) => writableColumn(o.table, k));
  const target = `${qualified(o.table.schema, o.table.name)} as ${ident(o.alias)}`;
  const bodyParam = `${o.params.add(o.json)}::text::json`;
  let select: string;
  if (cols.length === 0) {
    select = `select from json_array_elements(${bodyParam})`;
  } else {
    const defs = cols.map((c) => `${ident(c.name)} ${recordType(c)}`).join(', ');
    if (o.missingDefault) {
      const defaults = o.extras.defaults.get(`${o.table.schema}.${o.table.name}`);
      const exprs = cols.map((c) => {
        const d = defaults?.get(c.name);
        return d === undefined ? `pgrst_body.${ident(c.name)}` : `case when pgrst_elem.j::jsonb ? ${o.params.add(c.name)}::text then pgrst_body.${ident(c.name)} else ${d} end`;
      });
      select = `select ${exprs.join(', ')} from json_array_elements(${bodyParam}) as pgrst_elem(j) cross join lateral json_to_record(pgrst_elem.j) as pgrst_body(${defs})`;
    } else {
      select = `select ${cols.map((c) => `pgrst_body.${ident(c.name)}`).join(', ')} from json_to_recordset(${bodyParam}) as pgrst_body(${defs})`;
    }
  }
  let conflict = '';
  if (o.onConflict) {
    const targetCols = o.onConflict.columns.map((c) => ident(writableColumn(o.table, c).name)).join(', ');
    const sets = cols.map((c) => `${ident(c.name)} = excluded.${ident(c.name)}`).join(', ');
    conflict = o.onConflict.action === 'ignore' || sets === '' ? ` on conflict (${targetCols}) do nothing` : ` on conflict (${targetCols}) do update set ${sets}`;
  }
  const newRows = o.onConflict?.action === 'merge' ? newRowsSql(o, bodyParam) : null;
  const colList = cols.length ? ` (${cols.map((c) => ident(c.name)).join(', ')})` : '';
  return { sql: `insert into ${target}${colList} ${select}${conflict}${returningList(o.table, o.alias, o.returning)}`, newRows };
}

export function updateSql(table: TableDef, alias: string, body: unknown, rawBody: string | undefined, columns: string[] | undefined, conditions: string[], returning: Returning, params: Params): string {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw apiError(400, 'PGRST102', 'Empty or invalid json', null, null);
  const keys = columns ?? Object.keys(body);
  const cols = keys.map((k) => writableColumn(table, k));
  const target = `${qualified(table.schema, table.name)} as ${ident(alias)}`;
  const where = conditions.length ? ` where ${conditions.join(' and ')}` : '';
  // nothing to set: PostgREST answers as if no row matched
  if (cols.length === 0) return `select ${ident(alias)}.* from ${target} where false${conditions.map((c) => ` and ${c}`).join('')}`;
  const defs = cols.map((c) => `${ident(c.name)} ${recordType(c)}`).join(', ');
  const sets = cols.map((c) => `${ident(c.name)} = pgrst_body.${ident(c.name)}`).join(', ');
  const json = rawBody ?? JSON.stringify(body);
  return `update ${target} set ${sets} from json_to_record(${params.add(json)}::text::json) as pgrst_body(${defs})${where}${returningList(table, alias, returning)}`;
}

export function deleteSql(table: TableDef, alias: string, conditions: string[], returning: Returning): string {
  const where = conditions.length ? ` where ${conditions.join(' and ')}` : '';
  return `delete from ${qualified(table.schema, table.name)} as ${ident(alias)}${where}${returningList(table, alias, returning)}`;
}
