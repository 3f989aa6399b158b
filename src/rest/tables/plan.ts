/** A table or view request → one statement and what the response needs to know about it. */
import type { Statement } from '../../db/as-caller.ts';
import type { Snapshot } from '../../schema/cache.ts';
import type { TableDef } from '../../schema/reflect.ts';
import { apiError } from '../../errors.ts';
import { classifyKey, parseFilterValue, parseNameList, parseSelectTree, type QueryKey } from '../grammar.ts';
import type { Preferences } from '../prefer.ts';
import type { BodyKind } from '../rpc.ts';
import { Params } from '../sql.ts';
import { closest } from '../suggest.ts';
import type { TableExtras } from './catalog.ts';
import { bodySql, type Media } from './media.ts';
import { applyParam, buildTree, rootQuery, type PlanContext } from './read.ts';
import { bodyRows, deleteSql, insertSql, updateSql, type Returning } from './write.ts';
import { ident, qualified } from '../sql.ts';

export interface TableRequest {
  method: string;
  schema: string;
  name: string;
  query: [string, string][];
  bodyKind: BodyKind;
  body: unknown;
  rawBody?: string;
  prefer: Preferences;
  media: Media;
  range?: { offset: number; limit?: number };
  maxRows?: number;
  aggregatesEnabled: boolean;
  safeUpdate: boolean;
}

export interface TablePlan {
  table: TableDef;
  statement: Statement;
  readOnly: boolean;
  offset: number;
  counted: boolean;
  returning: Returning;
  /** merge-duplicates upsert: 200 when no row was inserted */
  flagsInserted: boolean;
}

export function findTable(snapshot: Snapshot, schema: string, name: string): TableDef {
  const table = snapshot.table(schema, name);
  if (table) return table;
  const near = closest(name, snapshot.reflection.tables.filter((t) => t.schema === schema).map((t) => t.name));
  throw apiError(404, 'PGRST205', `Could not find the table '${schema}.${name}' in the schema cache`, null, near ? `Perhaps you meant the table '${schema}.${near}'` : null);
}

const GUCS = `nullif(current_setting('response.headers', true), '') as response_headers, nullif(current_setting('response.status', true), '') as response_status`;

export function planTable(snapshot: Snapshot, extras: TableExtras, req: TableRequest): TablePlan {
  const table = findTable(snapshot, req.schema, req.name);
  const params = new Params();
  const ctx: PlanContext = { snapshot, extras, params, aggregatesEnabled: req.aggregatesEnabled, aliases: 0 };
  const keyed: [QueryKey, string][] = req.query.map(([k, v]) => [classifyKey(k), v]);
  const single = (kind: string) => keyed.find(([k]) => k.kind === kind)?.[1];
  const root = buildTree(ctx, table, parseSelectTree(single('select')), table.name, table.name);
  // PUT's filters only name the row (checked against the body); they are no WHERE clause
  for (const [k, v] of keyed) if (!(req.method === 'PUT' && (k.kind === 'filter' || k.kind === 'logic') && k.embed.length === 0)) applyParam(ctx, root, k, v);
  const isRead = req.method === 'GET' || req.method === 'HEAD';
  const counted = req.prefer.count !== undefined;

  if (isRead) {
    let limit = root.limit;
    let offset = root.offset ?? 0;
    if (req.range) {
      offset += req.range.offset;
      if (req.range.limit !== undefined) limit = limit === undefined ? req.range.limit : Math.min(limit, req.range.limit);
    }
    if (req.maxRows !== undefined) limit = limit === undefined ? req.maxRows : Math.min(limit, req.maxRows);
    const q = rootQuery(ctx, root, qualified(table.schema, table.name), limit, offset);
    const body = req.method === 'HEAD' ? 'null::text' : bodySql(req.media, q.names, params);
    const text = `select ${counted ? `(${q.count})` : 'null::bigint'} as total_result_set, pg_catalog.count(_postgrest_t) as page_total, ${body} as body, ${GUCS} from (${q.page}) _postgrest_t`;
    return { table, statement: { text, params: params.values }, readOnly: true, offset, counted, returning: 'representation', flagsInserted: false };
  }

  const returning: Returning = req.prefer.return ?? 'minimal';
  const conditions = root.conditions;
  root.conditions = [];
  const columnsParam = single('columns');
  const columns = columnsParam !== undefined ? parseNameList(columnsParam, 'columns') : undefined;
  let mutation: string;
  let newRows: string | null = null;
  switch (req.method) {
    case 'POST': {
      const { json, keys } = bodyRows(req.body, req.rawBody, columns);
      const onConflictParam = single('on_conflict');
      const resolution = req.prefer.resolution;
      const conflictColumns = onConflictParam !== undefined ? parseNameList(onConflictParam, 'on_conflict') : table.primaryKey;
      if (resolution && conflictColumns.length === 0) throw apiError(400, 'PGRST100', 'An upsert needs on_conflict or a primary key', `${table.name} has no primary key`, 'Add on_conflict=column,...');
      const ins = insertSql({ table, alias: root.alias, json, keys, missingDefault: req.prefer.missing === 'default', onConflict: resolution ? { columns: conflictColumns, action: resolution === 'merge-duplicates' ? 'merge' : 'ignore' } : undefined, returning, extras, params });
      mutation = ins.sql;
      newRows = ins.newRows;
      break;
    }
    case 'PUT': {
      mutation = putSql(table, root.alias, req, keyed, columns, returning, ctx);
      break;
    }
    case 'PATCH':
    case 'DELETE': {
      if (req.safeUpdate && conditions.length === 0) {
        throw apiError(400, '21000', `${req.method === 'PATCH' ? 'UPDATE' : 'DELETE'} requires a WHERE clause`, null, null);
      }
      mutation = req.method === 'PATCH' ? updateSql(table, root.alias, req.body, req.rawBody, columns, conditions, returning, params) : deleteSql(table, root.alias, conditions, returning);
      break;
    }
    default:
      throw apiError(405, 'PGRST101', `Cannot use the ${req.method} method on a table`, null, null);
  }
  const wantsBody = returning === 'representation';
  const q = wantsBody ? rootQuery(ctx, root, 'pgrst_source', undefined, undefined) : null;
  const page = q ? q.page : 'select 1 from pgrst_source';
  const body = q ? bodySql(req.media, q.names, params) : 'null::text';
  const location = returning === 'headers-only' && req.method === 'POST' && table.primaryKey.length ? `(select row_to_json(pgrst_l)::text from (select ${table.primaryKey.map((k) => `pgrst_source.${ident(k)}`).join(', ')} from pgrst_source limit 1) pgrst_l)` : 'null::text';
  const inserted = newRows ?? 'null::bigint';
  const text =
    `with pgrst_source as (${mutation})` +
    ` select ${counted ? '(select count(*) from pgrst_source)' : 'null::bigint'} as total_result_set, pg_catalog.count(_postgrest_t) as page_total, ${body} as body,` +
    ` ${location} as location, ${inserted} as inserted, ${GUCS} from (${page}) _postgrest_t`;
  return { table, statement: { text, params: params.values }, readOnly: false, offset: 0, counted, returning, flagsInserted: newRows !== null };
}

/** PUT: a single-row upsert addressed by eq filters on every primary-key column. */
function putSql(table: TableDef, alias: string, req: TableRequest, keyed: [QueryKey, string][], columns: string[] | undefined, returning: Returning, ctx: PlanContext): string {
  const pk = table.primaryKey;
  const filters = keyed.filter(([k]) => k.kind === 'filter' || k.kind === 'logic');
  const eqs = new Map<string, string>();
  for (const [k, v] of filters) {
    if (k.kind !== 'filter' || k.embed.length || k.jsonPath.length) continue;
    const f = parseFilterValue({ column: k.column, jsonPath: [] }, v);
    if (f.op === 'eq' && !f.negate && !f.modifier) eqs.set(k.column, f.value as string);
  }
  if (pk.length === 0 || filters.length !== pk.length || eqs.size !== pk.length || !pk.every((c) => eqs.has(c))) {
    throw apiError(405, 'PGRST105', "Filters must include all and only primary key columns with 'eq' operators", null, null);
  }
  let row = req.body;
  if (Array.isArray(row)) {
    if (row.length !== 1) throw apiError(400, 'PGRST116', 'JSON object requested, multiple (or no) rows returned', `The payload contains ${row.length} rows`, null);
    row = row[0];
  }
  if (row === null || typeof row !== 'object' || Array.isArray(row)) throw apiError(400, 'PGRST102', 'Empty or invalid json', null, null);
  const obj = row as Record<string, unknown>;
  if (!pk.every((c) => c in obj && obj[c] !== null && String(obj[c]) === eqs.get(c))) {
    throw apiError(400, 'PGRST115', 'Payload values do not match URL in primary key column(s)', null, null);
  }
  const keys = columns ?? Object.keys(obj);
  return insertSql({ table, alias, json: `[${JSON.stringify(obj)}]`, keys, missingDefault: false, onConflict: { columns: pk, action: 'merge' }, returning, extras: ctx.extras, params: ctx.params }).sql;
}
