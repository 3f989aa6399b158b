/**
 * PostgREST's URL grammar for reads: select, filters, order, limit/offset. Parsing only: the
 * result names columns as strings that the planner must resolve against the schema cache.
 */
import { apiError, type ApiError } from '../errors.ts';

export interface SelectItem {
  column: string;
  alias?: string;
  cast?: string;
  /** JSON path after the column: [['->', 'a'], ['->>', 'b']] */
  jsonPath: [('->' | '->>'), string][];
}

export type FilterOp =
  | 'eq' | 'neq' | 'gt' | 'gte' | 'lt' | 'lte' | 'like' | 'ilike' | 'match' | 'imatch' | 'in' | 'is' | 'isdistinct'
  | 'fts' | 'plfts' | 'phfts' | 'wfts' | 'cs' | 'cd' | 'ov' | 'sl' | 'sr' | 'nxr' | 'nxl' | 'adj';

export interface Filter {
  column: string;
  jsonPath: [('->' | '->>'), string][];
  negate: boolean;
  op: FilterOp;
  /** 'in' → list; 'is' → 'null' | 'not_null' | 'true' | 'false' | 'unknown'; else a string */
  value: string | string[];
  /** eq(any).{a,b}: compare with any / all of an array literal */
  modifier?: 'any' | 'all';
  /** fts(english).term: the text search configuration */
  language?: string;
}

export interface OrderItem {
  column: string;
  jsonPath: [('->' | '->>'), string][];
  direction: 'asc' | 'desc';
  nulls?: 'first' | 'last';
}

export const RESERVED_PARAMS = new Set(['select', 'order', 'limit', 'offset', 'columns', 'on_conflict', 'and', 'or', 'not.and', 'not.or']);

/** the operators /rpc filters accept; table filters accept ALL_OPS */
const OPS: FilterOp[] = ['eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'like', 'ilike', 'in', 'is', 'isdistinct'];
const IDENT = /^[^,.:()\-> ]+$/u;
/** one type word, or one of the few multi-word type names: a free run of words could smuggle SQL keywords */
const CAST_TYPE = /^(?:[A-Za-z_][A-Za-z0-9_]*|double precision|character varying|bit varying|time(?:stamp)? with(?:out)? time zone)(\[\])*$/;

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

/* ---------- tables and views: the full PostgREST 12 grammar ---------- */

export type JsonPath = [('->' | '->>'), string][];
export type AggregateName = 'count' | 'sum' | 'avg' | 'min' | 'max';

export type SelectNode =
  | { kind: 'star' }
  | { kind: 'field'; column: string; jsonPath: JsonPath; alias?: string; cast?: string; aggregate?: AggregateName; aggregateCast?: string }
  /** count() over the whole row */
  | { kind: 'count'; alias?: string; cast?: string }
  | { kind: 'embed'; name: string; alias?: string; hint?: string; inner: boolean; spread: boolean; children: SelectNode[] };

export const ALL_OPS: FilterOp[] = ['eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'like', 'ilike', 'match', 'imatch', 'in', 'is', 'isdistinct', 'fts', 'plfts', 'phfts', 'wfts', 'cs', 'cd', 'ov', 'sl', 'sr', 'nxr', 'nxl', 'adj'];
const QUANTIFIABLE = new Set<FilterOp>(['eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'like', 'ilike', 'match', 'imatch']);
const FTS = new Set<FilterOp>(['fts', 'plfts', 'phfts', 'wfts']);
const AGGREGATES = new Set<string>(['count', 'sum', 'avg', 'min', 'max']);
/** characters that end an unquoted name: PostgREST's reserved punctuation and whitespace around it */
const NAME_CHAR = /[^,.:()!"\s>]/u;
const LANGUAGE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A small cursor over one parameter value, with PostgREST-like error details. */
class Cursor {
  i = 0;
  constructor(readonly text: string, readonly what: string) {}
  get done(): boolean {
    return this.i >= this.text.length;
  }
  peek(n = 1): string {
    return this.text.slice(this.i, this.i + n);
  }
  eat(s: string): boolean {
    if (this.text.startsWith(s, this.i)) {
      this.i += s.length;
      return true;
    }
    return false;
  }
  expect(s: string): void {
    if (!this.eat(s)) this.fail(`expecting "${s}"`);
  }
  fail(expecting: string): never {
    const at = this.done ? 'end of input' : `"${this.text[this.i]}"`;
    throw apiError(400, 'PGRST100', `"failed to parse ${this.what} (${this.text})" (line 1, column ${this.i + 1})`, `unexpected ${at} ${expecting}`);
  }
  /** a double-quoted name ("" escapes a quote) or a run of name characters; a '-' not starting '->' belongs to the name */
  name(expecting = 'expecting field name'): string {
    if (this.eat('"')) {
      let out = '';
      for (;;) {
        if (this.done) this.fail('expecting closing quote');
        const ch = this.text[this.i++];
        if (ch === '"') {
          if (this.peek() === '"') {
            out += '"';
            this.i++;
          } else break;
        } else out += ch;
      }
      if (out === '') this.fail(expecting);
      return out;
    }
    const start = this.i;
    while (!this.done) {
      const ch = this.text[this.i];
      if (ch === '-' ? this.text[this.i + 1] === '>' : !NAME_CHAR.test(ch)) break;
      this.i++;
    }
    const out = this.text.slice(start, this.i).trim();
    if (out === '') this.fail(expecting);
    return out;
  }
  /** ->key / ->>key steps after a column */
  jsonPath(): JsonPath {
    const path: JsonPath = [];
    for (;;) {
      let arrow: '->' | '->>';
      if (this.eat('->>')) arrow = '->>';
      else if (this.eat('->')) arrow = '->';
      else return path;
      if (this.eat('"')) {
        this.i--;
        path.push([arrow, this.name('expecting a JSON key')]);
        continue;
      }
      const start = this.i;
      while (!this.done && !/[,.:()!"\s]/u.test(this.text[this.i]) && !this.text.startsWith('->', this.i)) this.i++;
      const key = this.text.slice(start, this.i);
      if (key === '') this.fail('expecting a JSON key');
      path.push([arrow, key]);
    }
  }
  cast(): string | undefined {
    if (!this.eat('::')) return undefined;
    const start = this.i;
    while (!this.done && /[A-Za-z0-9_ \[\]]/.test(this.text[this.i])) this.i++;
    const t = this.text.slice(start, this.i).trim();
    if (!CAST_TYPE.test(t)) this.fail('expecting a type name after "::"');
    return t;
  }
}

/**
 * Embeds and logic trees are parsed, planned and turned into SQL recursively: nesting is bounded
 * first, so a short hostile query string cannot overflow the stack (PostgREST's own parser has no
 * such limit; real queries nest a few levels).
 */
export const MAX_QUERY_NESTING = 64;

function checkNesting(text: string, what: string): void {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 40 && ++depth > MAX_QUERY_NESTING) {
      throw apiError(400, 'PGRST100', `"failed to parse ${what} (${text.slice(0, 100)}…)"`, `parentheses nest deeper than ${MAX_QUERY_NESTING} levels`);
    } else if (ch === 41) depth--;
  }
}

/** Splits on commas outside parentheses and double quotes. */
function splitTopLevel(text: string, what: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '\\') i++;
      else if (ch === '"') quoted = false;
    } else if (ch === '"') quoted = true;
    else if (ch === '(') depth++;
    else if (ch === ')') {
      depth--;
      if (depth < 0) throw parseError(`unexpected ")" at position ${i + 1} of ${what} (${text})`, what);
    } else if (ch === ',' && depth === 0) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  if (quoted) throw parseError(`unterminated quote in ${what} (${text})`, what);
  if (depth !== 0) throw parseError(`unbalanced parentheses in ${what} (${text})`, what);
  out.push(text.slice(start));
  return out;
}

function parseSelectItem(c: Cursor): SelectNode {
  if (c.eat('*')) return { kind: 'star' };
  let alias: string | undefined;
  let spread = false;
  if (c.eat('...')) spread = true;
  let name = c.name();
  if (!spread && c.peek() === ':' && c.peek(2) !== '::') {
    c.i++;
    alias = name;
    if (c.eat('...')) spread = true;
    name = c.name();
  }
  if (!spread && name === 'count' && c.eat('()')) return { kind: 'count', alias, cast: c.cast() };
  if (spread || c.peek() === '!' || c.peek() === '(') {
    let hint: string | undefined;
    let inner = false;
    while (c.eat('!')) {
      const h = c.name('expecting a hint or "inner"/"left"');
      if (h === 'inner') inner = true;
      else if (h !== 'left') {
        if (hint !== undefined) c.fail('expecting "inner" or "left"');
        hint = h;
      }
    }
    c.expect('(');
    const children = c.peek() === ')' ? [] : parseSelectList(c);
    c.expect(')');
    return { kind: 'embed', name, alias, hint, inner, spread, children };
  }
  const jsonPath = c.jsonPath();
  const cast = c.cast();
  let aggregate: AggregateName | undefined;
  let aggregateCast: string | undefined;
  if (c.peek() === '.') {
    c.i++;
    const agg = c.name('expecting an aggregate (count, sum, avg, max, min)');
    if (!AGGREGATES.has(agg)) c.fail('expecting an aggregate (count, sum, avg, max, min)');
    c.expect('()');
    aggregate = agg as AggregateName;
    aggregateCast = c.cast();
  }
  return { kind: 'field', column: name, jsonPath, alias, cast, aggregate, aggregateCast };
}

function parseSelectList(c: Cursor): SelectNode[] {
  const items = [parseSelectItem(c)];
  while (c.eat(',')) items.push(parseSelectItem(c));
  return items;
}

/** `select=` with embeds, spreads, hints, aliases, casts, JSON paths and aggregates. */
export function parseSelectTree(raw: string | undefined): SelectNode[] {
  if (raw === undefined || raw.trim() === '') return [{ kind: 'star' }];
  checkNesting(raw, 'select');
  const c = new Cursor(raw, 'select');
  const items = parseSelectList(c);
  if (!c.done) c.fail('expecting "," or end of input');
  return items;
}

/** The right-hand side of a filter: `[not.]op[(any|all|config)].value`. */
export function parseFilterValue(target: { column: string; jsonPath: JsonPath }, raw: string, what = 'filter'): Filter {
  const c = new Cursor(raw, what);
  const negate = c.eat('not.');
  const start = c.i;
  while (!c.done && /[a-z]/.test(c.text[c.i])) c.i++;
  const op = c.text.slice(start, c.i) as FilterOp;
  if (!ALL_OPS.includes(op)) {
    c.i = start;
    c.fail(`expecting ${negate ? '' : '"not" or '}operator (eq, gt, ...)`);
  }
  let modifier: 'any' | 'all' | undefined;
  let language: string | undefined;
  if (c.eat('(')) {
    const arg = c.text.slice(c.i, c.text.indexOf(')', c.i) < 0 ? c.text.length : c.text.indexOf(')', c.i));
    if (QUANTIFIABLE.has(op) && (arg === 'any' || arg === 'all')) modifier = arg;
    else if (FTS.has(op) && LANGUAGE.test(arg)) language = arg;
    else c.fail(FTS.has(op) ? 'expecting a text search configuration' : 'expecting "any" or "all"');
    c.i += arg.length;
    c.expect(')');
  }
  c.expect('.');
  const value = c.text.slice(c.i);
  if (op === 'in') {
    if (!value.startsWith('(') || !value.endsWith(')')) c.fail('expecting "("');
    return { ...target, negate, op, value: parseList(value, what) };
  }
  if (op === 'is') {
    const v = value.toLowerCase();
    if (!['null', 'not_null', 'true', 'false', 'unknown'].includes(v)) c.fail('expecting null or trilean value (unknown, true, false)');
    return { ...target, negate, op, value: v };
  }
  if (modifier && !(value.startsWith('{') && value.endsWith('}'))) c.fail('expecting "{"');
  return { ...target, negate, op, value, modifier, language };
}

export type LogicTree = { kind: 'filter'; embed: string[]; filter: Filter } | { kind: 'and' | 'or'; negate: boolean; children: LogicTree[] };

function unquote(v: string): string {
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) return v.slice(1, -1).replace(/\\(.)/g, '$1');
  return v;
}

function parseLogicItem(text: string, what: string): LogicTree {
  const m = /^(not\.)?(and|or)\((.*)\)$/s.exec(text);
  if (m) return { kind: m[2] as 'and' | 'or', negate: !!m[1], children: splitTopLevel(m[3], what).map((t) => parseLogicItem(t, what)) };
  const c = new Cursor(text, what);
  const path: string[] = [];
  let column = c.name();
  let jsonPath = c.jsonPath();
  // embedded.column.op.value: a name followed by a dot and another name that is no operator
  while (jsonPath.length === 0 && c.peek() === '.') {
    const save = c.i;
    c.i++;
    const next = /^[a-z]+/.exec(c.text.slice(c.i))?.[0] ?? '';
    if (next === 'not' || (ALL_OPS as string[]).includes(next)) {
      c.i = save;
      break;
    }
    path.push(column);
    column = c.name();
    jsonPath = c.jsonPath();
  }
  c.expect('.');
  const filter = parseFilterValue({ column, jsonPath }, text.slice(c.i), what);
  if (filter.op !== 'in' && typeof filter.value === 'string') filter.value = unquote(filter.value);
  return { kind: 'filter', embed: path, filter };
}

/** `or=(a.eq.1,and(b.gt.2,c.is.null))`, `not.and=(...)`. */
export function parseLogicTree(op: 'and' | 'or', negate: boolean, raw: string): LogicTree {
  const what = 'logic tree';
  checkNesting(raw, what);
  if (!raw.startsWith('(') || !raw.endsWith(')')) throw apiError(400, 'PGRST100', `"failed to parse ${what} (${raw})" (line 1, column 1)`, 'unexpected input expecting "("');
  return { kind: op, negate, children: splitTopLevel(raw.slice(1, -1), what).map((t) => parseLogicItem(t, what)) };
}

export interface TableOrderItem extends OrderItem {
  /** order=rel(col).desc: by a column of a to-one embed */
  relation?: string;
}

/** `order=a.desc.nullslast,rel(col),data->>k.asc` */
export function parseOrderList(raw: string | undefined): TableOrderItem[] {
  if (raw === undefined || raw === '') return [];
  checkNesting(raw, 'order');
  return splitTopLevel(raw, 'order').map((part) => {
    const c = new Cursor(part, 'order');
    let relation: string | undefined;
    let column = c.name();
    let jsonPath: JsonPath;
    if (c.eat('(')) {
      relation = column;
      column = c.name();
      jsonPath = c.jsonPath();
      c.expect(')');
    } else jsonPath = c.jsonPath();
    let direction: 'asc' | 'desc' = 'asc';
    let nulls: 'first' | 'last' | undefined;
    let seenDir = false;
    while (c.eat('.')) {
      if (!seenDir && c.eat('asc')) seenDir = true;
      else if (!seenDir && c.eat('desc')) {
        direction = 'desc';
        seenDir = true;
      } else if (nulls === undefined && c.eat('nullsfirst')) nulls = 'first';
      else if (nulls === undefined && c.eat('nullslast')) nulls = 'last';
      else c.fail('expecting "asc", "desc", "nullsfirst" or "nullslast"');
    }
    if (!c.done) c.fail('expecting "," or end of input');
    return { column, jsonPath, direction, nulls, relation };
  });
}

/** `columns="a","b"` / `on_conflict=a,b`: a list of (optionally quoted) names. */
export function parseNameList(raw: string, what: string): string[] {
  const c = new Cursor(raw, what);
  const out = [c.name()];
  while (c.eat(',')) out.push(c.name());
  if (!c.done) c.fail('expecting "," or end of input');
  return out;
}

/** What a query-string key addresses on a table request. */
export type QueryKey =
  | { kind: 'select' | 'columns' | 'on_conflict' }
  | { kind: 'order' | 'limit' | 'offset'; embed: string[] }
  | { kind: 'logic'; embed: string[]; op: 'and' | 'or'; negate: boolean }
  | { kind: 'filter'; embed: string[]; column: string; jsonPath: JsonPath };

export function classifyKey(key: string): QueryKey {
  if (key === 'select' || key === 'columns' || key === 'on_conflict') return { kind: key };
  const c = new Cursor(key, 'filter');
  const parts: string[] = [];
  let jsonPath: JsonPath = [];
  for (;;) {
    parts.push(c.name());
    jsonPath = c.jsonPath();
    if (jsonPath.length || !c.eat('.')) break;
  }
  if (!c.done) c.fail('expecting "." or "->"');
  const last = parts[parts.length - 1];
  if (jsonPath.length === 0) {
    if (last === 'order' || last === 'limit' || last === 'offset') return { kind: last, embed: parts.slice(0, -1) };
    if (last === 'and' || last === 'or') {
      const negate = parts.length >= 2 && parts[parts.length - 2] === 'not';
      return { kind: 'logic', embed: parts.slice(0, negate ? -2 : -1), op: last, negate };
    }
  }
  return { kind: 'filter', embed: parts.slice(0, -1), column: last, jsonPath };
}
