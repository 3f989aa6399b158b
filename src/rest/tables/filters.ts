/** Filter conditions as SQL: the column expression comes from the schema cache, every value is a bind parameter. */
import type { Filter, JsonPath } from '../grammar.ts';
import { ident, type Params } from '../sql.ts';

const COMPARE: Record<string, string> = { eq: '=', neq: '<>', gt: '>', gte: '>=', lt: '<', lte: '<=', like: 'like', ilike: 'ilike', match: '~', imatch: '~*' };
const RANGE: Record<string, string> = { cs: '@>', cd: '<@', ov: '&&', sl: '<<', sr: '>>', nxr: '&<', nxl: '&>', adj: '-|-' };
const TSQUERY: Record<string, string> = { fts: 'to_tsquery', plfts: 'plainto_tsquery', phfts: 'phraseto_tsquery', wfts: 'websearch_to_tsquery' };

/** "alias"."column"->key->>key; keys are parameters too (a number indexes an array) */
export function fieldExpr(alias: string, column: string, jsonPath: JsonPath, params: Params): string {
  let expr = `${ident(alias)}.${ident(column)}`;
  for (const [arrow, k] of jsonPath) expr += /^-?\d+$/.test(k) ? `${arrow}${params.add(Number(k))}::int` : `${arrow}${params.add(k)}::text`;
  return expr;
}

/** An array literal {"a","b"} whose elements are all quoted: values stay values, never NULL or syntax. */
export function arrayLiteral(values: string[]): string {
  return '{' + values.map((v) => '"' + v.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"').join(',') + '}';
}

const likePattern = (v: string) => v.replace(/\*/g, '%');

export function conditionSql(expr: string, columnType: string | undefined, f: Filter, params: Params): string {
  let cond: string;
  const v = f.value;
  switch (f.op) {
    case 'in': {
      const list = v as string[];
      cond = list.length === 0 ? 'false' : `${expr} = any(${params.add(arrayLiteral(list))})`;
      break;
    }
    case 'is':
      cond = `${expr} is ${v === 'not_null' ? 'not null' : v === 'true' ? 'true' : v === 'false' ? 'false' : v === 'unknown' ? 'unknown' : 'null'}`;
      break;
    case 'isdistinct':
      cond = `${expr} is distinct from ${params.add(v)}`;
      break;
    case 'fts':
    case 'plfts':
    case 'phfts':
    case 'wfts': {
      const lang = f.language ? `${params.add(f.language)}::regconfig, ` : '';
      const doc = columnType === 'tsvector' ? expr : `to_tsvector(${lang}${expr})`;
      cond = `${doc} @@ ${TSQUERY[f.op]}(${lang}${params.add(v)})`;
      break;
    }
    default:
      if (f.op in RANGE) {
        cond = `${expr} ${RANGE[f.op]} ${params.add(v)}`;
      } else {
        const text = v as string;
        const value = f.op === 'like' || f.op === 'ilike' ? likePattern(text) : text;
        cond = f.modifier ? `${expr} ${COMPARE[f.op]} ${f.modifier}(${params.add(value)})` : `${expr} ${COMPARE[f.op]} ${params.add(value)}`;
      }
  }
  return f.negate ? `not (${cond})` : cond;
}
