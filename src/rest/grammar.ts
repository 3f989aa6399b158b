/**
 * PostgREST's URL grammar for reads: select, filters, order, limit/offset. Parsing only: the
 * result names columns as strings that the planner must resolve against the schema cache.
 */
import { apiError, type ApiError } from './errors.ts';

export interface SelectItem {
  column: string;
  alias?: string;
  cast?: string;
  /** JSON path after the column: [['->', 'a'], ['->>', 'b']] */
  jsonPath: [('->' | '->>'), string][];
}

export type FilterOp = 'eq' | 'neq' | 'gt' | 'gte' | 'lt' | 'lte' | 'like' | 'ilike' | 'in' | 'is' | 'isdistinct';

export interface Filter {
  column: string;
  jsonPath: [('->' | '->>'), string][];
  negate: boolean;
  op: FilterOp;
  /** 'in' → list; 'is' → 'null' | 'not_null' | 'true' | 'false' | 'unknown'; else a string */
  value: string | string[];
}

export interface OrderItem {
  column: string;
  jsonPath: [('->' | '->>'), string][];
  direction: 'asc' | 'desc';
  nulls?: 'first' | 'last';
}

export const RESERVED_PARAMS = new Set(['select', 'order', 'limit', 'offset', 'columns', 'on_conflict', 'and', 'or', 'not.and', 'not.or']);

const OPS: FilterOp[] = ['eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'like', 'ilike', 'in', 'is', 'isdistinct'];
const IDENT = /^[^,.:()\-> ]+$/u;
const CAST_TYPE = /^[A-Za-z_][A-Za-z0-9_ ]*(\[\])?$/;

export function parseError(details: string, message = 'Unexpected input in query string'): ApiError {
  return apiError(400, 'PGRST100', `Failed to parse ${message}`, details);
}

function parseColumnWithPath(text: string, context: string): { column: string; jsonPath: [('->' | '->>'), string][] } {
  const parts = text.split(/(->>|->)/);
  const column = parts[0];
  if (!column || !IDENT.test(column)) throw parseError(`unexpected "${text}" in ${context}`, `${context} parameter`);
  const jsonPath: [('->' | '->>'), string][] = [];
  for (let i = 1; i < parts.length; i += 2) {
    const key = parts[i + 1];
    if (!key || !/^[A-Za-z0-9_$ -]+$/u.test(key)) throw parseError(`unexpected JSON path "${text}" in ${context}`, `${context} parameter`);
    jsonPath.push([parts[i] as '->' | '->>', key]);
  }
  return { column, jsonPath };
}

export function parseSelect(raw: string | undefined): SelectItem[] | '*' {
  if (raw === undefined || raw.trim() === '' || raw.trim() === '*') return '*';
  const items: SelectItem[] = [];
  for (const part of raw.split(',')) {
    const text = part.trim();
    if (text === '*') {
      items.push({ column: '*', jsonPath: [] });
      continue;
    }
    let rest = text;
    let alias: string | undefined;
    const aliasMatch = /^([^:]+):(?!:)(.+)$/.exec(rest);
    if (aliasMatch) {
      alias = aliasMatch[1];
      rest = aliasMatch[2];
      if (!IDENT.test(alias)) throw parseError(`unexpected alias "${alias}"`, 'select parameter');
    }
    let cast: string | undefined;
    const castIdx = rest.indexOf('::');
    if (castIdx >= 0) {
      cast = rest.slice(castIdx + 2);
      rest = rest.slice(0, castIdx);
      if (!CAST_TYPE.test(cast)) throw parseError(`unexpected cast "${cast}"`, 'select parameter');
    }
    items.push({ ...parseColumnWithPath(rest, 'select'), alias, cast });
  }
  return items;
}

function parseList(raw: string, context: string): string[] {
  if (!raw.startsWith('(') || !raw.endsWith(')')) throw parseError(`expected a list like (a,b) in ${context}, got "${raw}"`, 'filter');
  const body = raw.slice(1, -1);
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  let wasQuoted = false;
  for (let i = 0; i < body.length; i++) {
    const ch = body[i];
    if (quoted) {
      if (ch === '\\' && i + 1 < body.length) cur += body[++i];
      else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') {
      quoted = true;
      wasQuoted = true;
    } else if (ch === ',') {
      out.push(cur);
      cur = '';
      wasQuoted = false;
    } else cur += ch;
  }
  if (quoted) throw parseError(`unterminated quote in ${context}`, 'filter');
  if (body.length > 0 || wasQuoted) out.push(cur);
  return out;
}

/** One filter from `column=op.value` (`not.` negation). */
export function parseFilter(key: string, raw: string): Filter {
  const target = parseColumnWithPath(key, 'filter');
  let rest = raw;
  let negate = false;
  if (rest.startsWith('not.')) {
    negate = true;
    rest = rest.slice(4);
  }
  const dot = rest.indexOf('.');
  const opName = dot < 0 ? rest : rest.slice(0, dot);
  if (!OPS.includes(opName as FilterOp)) {
    throw parseError(`unknown operator "${opName}" in "${key}=${raw}"; expected one of ${OPS.join(', ')}`, 'filter');
  }
  if (dot < 0) throw parseError(`missing value after operator in "${key}=${raw}"`, 'filter');
  const op = opName as FilterOp;
  const valueText = rest.slice(dot + 1);
  if (op === 'in') return { ...target, negate, op, value: parseList(valueText, key) };
  if (op === 'is') {
    const v = valueText.toLowerCase();
    if (!['null', 'not_null', 'true', 'false', 'unknown'].includes(v)) {
      throw parseError(`"is" takes null, not_null, true, false or unknown; got "${valueText}"`, 'filter');
    }
    return { ...target, negate, op, value: v };
  }
  return { ...target, negate, op, value: valueText };
}

export function parseOrder(raw: string | undefined): OrderItem[] {
  if (!raw) return [];
  return raw.split(',').map((part) => {
    const pieces = part.trim().split('.');
    let nulls: 'first' | 'last' | undefined;
    let direction: 'asc' | 'desc' = 'asc';
    while (pieces.length > 1) {
      const last = pieces[pieces.length - 1];
      if (last === 'nullsfirst' || last === 'nullslast') nulls = last === 'nullsfirst' ? 'first' : 'last';
      else if (last === 'asc' || last === 'desc') direction = last;
      else break;
      pieces.pop();
    }
    return { ...parseColumnWithPath(pieces.join('.'), 'order'), direction, nulls };
  });
}

export function parseNonNegativeInt(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(Number(raw))) throw parseError(`"${name}" must be a non-negative integer, got "${raw}"`, `${name} parameter`);
  return Number(raw);
}

/** Range: 0-9 (items) → {offset, limit} */
export function parseRangeHeader(raw: string | undefined): { offset: number; limit?: number } | undefined {
  if (!raw) return undefined;
  const m = /^\s*(?:items=)?(\d+)-(\d*)\s*$/.exec(raw);
  if (!m) return undefined;
  const from = Number(m[1]);
  const to = m[2] === '' ? undefined : Number(m[2]);
  if (to !== undefined && to < from) {
    throw apiError(416, 'PGRST103', 'Requested range not satisfiable', 'The lower boundary must be lower than or equal to the upper boundary in the Range header.');
  }
  return { offset: from, limit: to === undefined ? undefined : to - from + 1 };
}
