/**
 * /rpc/{name}: resolve the function (overloads by argument names), build one statement, and
 * shape the result as PostgREST does.
 */
import type { Statement } from '../db/as-caller.ts';
import type { Snapshot } from '../schema/cache.ts';
import type { ArgDef, ColumnDef, FunctionDef } from '../schema/reflect.ts';
import { ApiError, apiError } from '../errors.ts';
import { parseFilter, parseNonNegativeInt, parseOrder, parseSelect, RESERVED_PARAMS, type Filter, type OrderItem, type SelectItem } from './grammar.ts';
import type { Preferences } from './prefer.ts';
import { closest } from './suggest.ts';
import { Params, filterSql, ident, orderSql, qualified } from './sql.ts';

export type BodyKind = 'none' | 'json' | 'form' | 'text' | 'binary';

export interface RpcRequest {
  method: string;
  schema: string;
  name: string;
  /** decoded query pairs in order */
  query: [string, string][];
  bodyKind: BodyKind;
  /** parsed JSON, form object, text or Buffer */
  body: unknown;
  /** the raw JSON text, passed as is to a single unnamed json parameter */
  rawBody?: string;
  prefer: Preferences;
  singleObject: boolean;
  range?: { offset: number; limit?: number };
  maxRows?: number;
}

export interface RpcPlan {
  fn: FunctionDef;
  statement: Statement;
  readOnly: boolean;
  offset: number;
  singleObject: boolean;
  counted: boolean;
}

const SOURCE = 'pgrst_call';
const JSON_TYPES = new Set(['json', 'jsonb']);

function signature(fn: FunctionDef): string {
  return `${fn.schema}.${fn.name}(${fn.args.map((a) => a.name || a.type).join(', ')})`;
}

function notFound(req: RpcRequest, keys: string[], snapshot: Snapshot): ApiError {
  const candidates = snapshot.functionsNamed(req.schema, req.name);
  const argList = [...keys].sort().join(', ');
  let hint: string | null = null;
  if (candidates.length) {
    hint = `Perhaps you meant to call the function ${signature(candidates[0])}`;
  } else {
    const near = closest(req.name, snapshot.functionsIn(req.schema).map((f) => f.name));
    if (near) hint = `Perhaps you meant to call the function ${req.schema}.${near}`;
  }
  return apiError(
    404,
    'PGRST202',
    `Could not find the function ${req.schema}.${req.name}${keys.length ? `(${argList})` : ' without parameters'} in the schema cache`,
    `Searched for the function ${req.schema}.${req.name} with ${keys.length ? `parameters ${argList}` : 'no parameters'} or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache.`,
    hint,
  );
}

function acceptsKeys(fn: FunctionDef, keys: Set<string>, exact: boolean): boolean {
  if (fn.singleUnnamed) return false;
  const names = new Set(fn.args.map((a) => a.name));
  for (const a of fn.args) if (!a.hasDefault && !a.variadic && !keys.has(a.name)) return false;
  if (exact) for (const k of keys) if (!names.has(k)) return false;
  return true;
}

/** Resolves overloads the way PostgREST does: by the set of argument names given. */
export function resolveFunction(snapshot: Snapshot, req: RpcRequest, argKeys: string[]): FunctionDef {
  const candidates = snapshot.functionsNamed(req.schema, req.name);
  const keys = new Set(argKeys);
  const isGet = req.method === 'GET' || req.method === 'HEAD';
  // a text or binary body can only feed a single unnamed parameter, never named arguments
  const namedBody = isGet || req.bodyKind === 'json' || req.bodyKind === 'form' || req.bodyKind === 'none';
  // GET mixes arguments and filters in the query string: a key that is no argument may be a filter
  let matches = !namedBody ? [] : candidates.filter((f) => acceptsKeys(f, isGet ? new Set(argKeys.filter((k) => f.args.some((a) => a.name === k))) : keys, !isGet));
  if (isGet && matches.length > 1) {
    const best = Math.max(...matches.map((f) => f.args.filter((a) => keys.has(a.name)).length));
    matches = matches.filter((f) => f.args.filter((a) => keys.has(a.name)).length === best);
    if (matches.length > 1) {
      const fewest = Math.min(...matches.map((f) => f.args.length));
      matches = matches.filter((f) => f.args.length === fewest);
    }
  }
  if (matches.length === 0) {
    const single = candidates.filter((f) => f.singleUnnamed && (req.bodyKind === 'json' ? JSON_TYPES.has(f.singleUnnamed.type) : req.bodyKind === 'text' ? f.singleUnnamed.type === 'text' || f.singleUnnamed.type === 'xml' || f.singleUnnamed.type === 'character varying' : req.bodyKind === 'binary' ? f.singleUnnamed.type === 'bytea' : false));
    if (single.length === 1 && !isGet) return single[0];
    throw notFound(req, argKeys, snapshot);
  }
  if (matches.length > 1) {
    throw apiError(
      300,
      'PGRST203',
      `Could not choose the best candidate function between: ${matches.map((f) => `${f.schema}.${f.name}(${f.args.map((a) => `${a.name} => ${a.type}`).join(', ')})`).join(', ')}`,
      null,
      'Try renaming the parameters or the function itself in the database so function overloading can be resolved',
    );
  }
  return matches[0];
}

function isArrayArg(a: ArgDef): boolean {
  return a.variadic || a.type.endsWith('[]');
}

/** GET arguments come as strings; repeated keys build arrays for array and variadic arguments. */
function argsFromQuery(fn: FunctionDef, query: [string, string][]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const a of fn.args) {
    const values = query.filter(([k]) => k === a.name).map(([, v]) => v);
    if (values.length === 0) continue;
    if (isArrayArg(a) && (values.length > 1 || a.variadic)) {
      out[a.name] = values.length === 1 && /^\{.*\}$/s.test(values[0]) ? values[0] : values;
    } else {
      let v: unknown = values[values.length - 1];
      if (JSON_TYPES.has(a.type)) {
        try {
          v = JSON.parse(v as string);
        } catch {
          /* a bare string is a valid JSON string argument */
        }
      }
      out[a.name] = v;
    }
  }
  return out;
}

function checkColumn(fn: FunctionDef, columns: ColumnDef[] | null, name: string): void {
  if (columns === null || !columns.some((c) => c.name === name)) {
    throw apiError(400, '42703', `column ${SOURCE}.${name} does not exist`, null, columns?.length ? `Columns of ${fn.schema}.${fn.name}: ${columns.map((c) => c.name).join(', ')}` : `${fn.schema}.${fn.name} does not return rows with columns`);
  }
}

function selectList(fn: FunctionDef, columns: ColumnDef[] | null, select: SelectItem[] | '*'): string {
  if (select === '*') return `${ident(SOURCE)}.*`;
  return select
    .map((item) => {
      if (item.column === '*') return `${ident(SOURCE)}.*`;
      checkColumn(fn, columns, item.column);
      let expr = `${ident(SOURCE)}.${ident(item.column)}`;
      for (const [arrow, key] of item.jsonPath) expr += `${arrow}'${key.replace(/'/g, "''")}'`;
      if (item.cast) expr = `(${expr})::${item.cast}`;
      const alias = item.alias ?? (item.jsonPath.length ? item.jsonPath[item.jsonPath.length - 1][1] : item.column);
      return `${expr} as ${ident(alias)}`;
    })
    .join(', ');
}

export function planRpc(snapshot: Snapshot, req: RpcRequest): RpcPlan {
  if (!['GET', 'HEAD', 'POST'].includes(req.method)) {
    throw apiError(405, 'PGRST101', `Cannot use the ${req.method} method on RPC`, null, 'Use GET or POST');
  }
  const isGet = req.method === 'GET' || req.method === 'HEAD';
  let argKeys: string[];
  if (isGet) {
    argKeys = [...new Set(req.query.map(([k]) => k).filter((k) => !RESERVED_PARAMS.has(k)))];
  } else if (req.bodyKind === 'json' || req.bodyKind === 'form') {
    const b = req.body;
    if (b !== null && typeof b === 'object' && !Array.isArray(b)) argKeys = Object.keys(b as object);
    else argKeys = [];
  } else argKeys = [];
  if (!isGet && req.bodyKind === 'json' && (req.body === null || typeof req.body !== 'object' || Array.isArray(req.body))) {
    const takesBody = snapshot.functionsNamed(req.schema, req.name).some((f) => f.singleUnnamed && JSON_TYPES.has(f.singleUnnamed.type));
    if (!takesBody) {
      throw apiError(400, 'PGRST102', 'Invalid body: expected a JSON object of named arguments', `Got ${Array.isArray(req.body) ? 'an array' : JSON.stringify(req.body)?.slice(0, 100)}`, `Send {"argument": value, ...}`);
    }
  }
  const fn = resolveFunction(snapshot, req, argKeys);

  const params = new Params();
  let call: string;
  let from: string;
  if (fn.singleUnnamed) {
    const value = req.bodyKind === 'json' ? (req.rawBody ?? JSON.stringify(req.body)) : req.body;
    // postgres.js would JSON-encode a string bound to a json parameter: bind text, then cast
    const cast = JSON_TYPES.has(fn.singleUnnamed.type) ? `::text::${fn.singleUnnamed.type}` : `::${fn.singleUnnamed.type}`;
    call = `${qualified(fn.schema, fn.name)}(${params.add(value)}${cast})`;
    from = '';
  } else {
    const args = isGet ? argsFromQuery(fn, req.query) : (req.body as Record<string, unknown> | undefined) ?? {};
    const given = fn.args.filter((a) => a.name in args);
    if (given.length === 0) {
      call = `${qualified(fn.schema, fn.name)}()`;
      from = '';
    } else {
      const defs = given.map((a) => `${ident(a.name)} ${a.type}`).join(', ');
      const json = JSON.stringify(Object.fromEntries(given.map((a) => [a.name, args[a.name]])));
      from = `json_to_record(${params.add(json)}::text::json) as pgrst_args(${defs}), lateral `;
      call = `${qualified(fn.schema, fn.name)}(${given.map((a) => `${a.variadic ? 'variadic ' : ''}${ident(a.name)} := pgrst_args.${ident(a.name)}`).join(', ')})`;
    }
  }

  const ret = fn.returns;
  const columns = ret.kind === 'composite' ? ret.columns : null;
  const isSet = ret.kind !== 'void' && ret.set;
  const filterPairs = isGet ? req.query.filter(([k]) => !RESERVED_PARAMS.has(k) && !fn.args.some((a) => a.name === k)) : req.query.filter(([k]) => !RESERVED_PARAMS.has(k));
  const q = new Map(req.query.filter(([k]) => RESERVED_PARAMS.has(k)));
  const filters: Filter[] = filterPairs.map(([k, v]) => parseFilter(k, v));
  const order: OrderItem[] = parseOrder(q.get('order'));
  const select = parseSelect(q.get('select'));
  for (const f of filters) checkColumn(fn, columns, f.column);
  for (const o of order) checkColumn(fn, columns, o.column);

  let limit = parseNonNegativeInt(q.get('limit'), 'limit');
  let offset = parseNonNegativeInt(q.get('offset'), 'offset') ?? 0;
  if (req.range) {
    offset = req.range.offset + offset;
    if (req.range.limit !== undefined) limit = limit === undefined ? req.range.limit : Math.min(limit, req.range.limit);
  }
  if (req.maxRows !== undefined && isSet) limit = limit === undefined ? req.maxRows : Math.min(limit, req.maxRows);

  const scalar = ret.kind !== 'composite';
  const source = scalar ? `${call} as ${ident(SOURCE)}(pgrst_scalar)` : `${call} as ${ident(SOURCE)}`;
  const typeOf = (name: string) => columns!.find((c) => c.name === name)!.type;
  const where = filters.length ? ' where ' + filters.map((f) => filterSql(SOURCE, f, params, typeOf(f.column))).join(' and ') : '';
  const page = `${limit !== undefined ? ` limit ${limit}` : ''}${offset ? ` offset ${offset}` : ''}`;
  const columnsSql = scalar ? `${ident(SOURCE)}.pgrst_scalar` : selectList(fn, columns, select);
  const counted = req.prefer.count !== undefined && isSet;
  const singleBody = req.singleObject || !isSet;
  const agg = scalar ? '_postgrest_t.pgrst_scalar' : '_postgrest_t';
  const body = singleBody ? `coalesce((json_agg(${agg})->0)::text, 'null')` : `coalesce(json_agg(${agg}), '[]')::text`;
  const text =
    `with pgrst_source as materialized (select ${ident(SOURCE)}.* from ${from}${source})` +
    ` select ${counted ? `(select count(*) from pgrst_source ${ident(SOURCE)}${where})` : 'null::bigint'} as total_result_set,` +
    ` pg_catalog.count(_postgrest_t) as page_total, ${body} as body,` +
    ` nullif(current_setting('response.headers', true), '') as response_headers,` +
    ` nullif(current_setting('response.status', true), '') as response_status` +
    ` from (select ${columnsSql} from pgrst_source ${ident(SOURCE)}${where}${orderSql(SOURCE, order)}${page}) _postgrest_t`;
  const readOnly = isGet || fn.volatility !== 'v';
  return { fn, statement: { text, params: params.values }, readOnly, offset, singleObject: req.singleObject && isSet, counted };
}

export interface RpcResult {
  total_result_set: string | null;
  page_total: string | number;
  body: string;
  response_headers: string | null;
  response_status: string | null;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string | null;
}

/** Applies response.headers / response.status set by the SQL (PostgREST's GUC response control). */
export function applyResponseGucs(row: { response_headers: string | null; response_status: string | null }, res: HttpResponse): void {
  if (row.response_headers) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(row.response_headers);
    } catch {
      parsed = null;
    }
    if (!Array.isArray(parsed) || !parsed.every((h) => h && typeof h === 'object' && !Array.isArray(h))) {
      throw apiError(500, 'PGRST111', 'response.headers guc must be a JSON array composed of objects with a single key and a string value');
    }
    for (const h of parsed as Record<string, unknown>[]) for (const [k, v] of Object.entries(h)) res.headers[k] = String(v);
  }
  if (row.response_status) {
    const status = Number(row.response_status);
    if (!Number.isInteger(status) || status < 100 || status > 599) {
      throw apiError(500, 'PGRST112', 'response.status guc must be a valid status code');
    }
    res.status = status;
  }
}

export function contentRange(offset: number, pageTotal: number, total: number | null): string {
  const totalText = total === null ? '*' : String(total);
  return pageTotal > 0 ? `${offset}-${offset + pageTotal - 1}/${totalText}` : `*/${totalText}`;
}

export function shapeRpcResponse(plan: RpcPlan, row: RpcResult, method: string, prefer: Preferences): HttpResponse {
  const pageTotal = Number(row.page_total);
  const total = row.total_result_set === null ? null : Number(row.total_result_set);
  if (plan.singleObject && pageTotal !== 1) {
    throw apiError(406, 'PGRST116', 'JSON object requested, multiple (or no) rows returned', `The result contains ${pageTotal} rows`);
  }
  const res: HttpResponse = { status: 200, headers: { 'Content-Type': plan.singleObject ? 'application/vnd.pgrst.object+json; charset=utf-8' : 'application/json; charset=utf-8' }, body: row.body };
  if (plan.fn.returns.kind === 'void') {
    res.status = 204;
    res.body = null;
    delete res.headers['Content-Type'];
  } else if (plan.fn.returns.set || plan.fn.returns.kind === 'composite') {
    res.headers['Content-Range'] = contentRange(plan.offset, pageTotal, total);
    if (total !== null && pageTotal < total && (method === 'GET' || method === 'HEAD')) res.status = 206;
  }
  const applied = prefer.applied.filter((p) => p.startsWith('tx=') || (p.startsWith('count=') && plan.counted));
  if (applied.length) res.headers['Preference-Applied'] = applied.join(', ');
  applyResponseGucs(row, res);
  if (method === 'HEAD') res.body = null;
  return res;
}
