/** Small helpers for generated SQL: identifiers quoted, values always bind parameters. */
import type { Filter, OrderItem } from './grammar.ts';
import { apiError } from '../errors.ts';

export function ident(name: string): string {
  if (name.includes('\0')) throw apiError(400, 'PGRST100', 'Failed to parse the request', 'A name in the request contains a NUL character');
  return '"' + name.replace(/"/g, '""') + '"';
}

export function qualified(schema: string, name: string): string {
  return `${ident(schema)}.${ident(name)}`;
}

/** Collects bind parameters; add() returns the placeholder. */
export class Params {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

export function columnExpr(table: string, column: string, jsonPath: [string, string][]): string {
  let expr = `${ident(table)}.${ident(column)}`;
  for (const [arrow, key] of jsonPath) {
    expr += /^\d+$/.test(key) ? `${arrow}${key}` : `${arrow}'${key.replace(/'/g, "''")}'`;
  }
  return expr;
}

const COMPARISON: Record<string, string> = { eq: '=', neq: '<>', gt: '>', gte: '>=', lt: '<', lte: '<=' };

/**
 * One filter as SQL. Values are bound as text and cast to the column's type: an untyped
 * parameter would be re-encoded by postgres.js with the type PostgreSQL inferred once the
 * statement is prepared ('true' for a boolean became 'f').
 */
export function filterSql(table: string, f: Filter, params: Params, columnType: string): string {
  const col = columnExpr(table, f.column, f.jsonPath);
  const type = f.jsonPath.length === 0 ? columnType : f.jsonPath[f.jsonPath.length - 1][0] === '->>' ? 'text' : 'jsonb';
  const value = (v: string) => `${params.add(v)}::text::${type}`;
  let cond: string;
  switch (f.op) {
    case 'in': {
      const list = f.value as string[];
      cond = list.length === 0 ? 'false' : `${col} in (${list.map(value).join(', ')})`;
      break;
    }
    case 'is':
      cond = `${col} is ${f.value === 'not_null' ? 'not null' : (f.value as string)}`;
      break;
    case 'isdistinct':
      cond = `${col} is distinct from ${value(f.value as string)}`;
      break;
    case 'like':
    case 'ilike':
      cond = `${col}::text ${f.op} ${params.add((f.value as string).replace(/\*/g, '%'))}::text`;
      break;
    default:
      cond = `${col} ${COMPARISON[f.op]} ${value(f.value as string)}`;
  }
  return f.negate ? `not (${cond})` : cond;
}

export function orderSql(table: string, items: OrderItem[]): string {
  if (items.length === 0) return '';
  return ' order by ' + items.map((o) => `${columnExpr(table, o.column, o.jsonPath)} ${o.direction}${o.nulls ? ` nulls ${o.nulls}` : ''}`).join(', ');
}
