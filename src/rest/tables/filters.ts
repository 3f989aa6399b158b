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

/** A type name from the schema cache usable in a cast: char/bit without a length would mean length 1. */
export function castType(type: string): string {
  return type.replace(/^character(?=(\[\])*$)/, 'bpchar').replace(/^bit(?=(\[\])*$)/, 'varbit');
}

/** The type of `column->a->>b` given the column's type. */
export function exprType(columnType: string, jsonPath: JsonPath): string {
  return jsonPath.length === 0 ? columnType : jsonPath[jsonPath.length - 1][0] === '->>' ? 'text' : columnType;
}

/**
 * Values are bound as text and cast to the compared expression's type: postgres.js would otherwise
 * serialise a string for the type PostgreSQL inferred (a boolean 'true' as 'f', a jsonb string quoted).
 */
export function conditionSql(expr: string, type: string, f: Filter, params: Params): string {
  let cond: string;
  const v = f.value;
  const T = castType(type);
  const typed = (value: string, t = T) => `${params.add(value)}::text::${t}`;
  const arrayOf = T.endsWith('[]') ? T : `${T}[]`;
  switch (f.op) {
    case 'in': {
      const list = v as string[];
      cond = list.length === 0 ? 'false' : `${expr} = any(${typed(arrayLiteral(list), arrayOf)})`;
      break;
    }
    case 'is':
      cond = `${expr} is ${v === 'not_null' ? 'not null' : v === 'true' ? 'true' : v === 'false' ? 'false' : v === 'unknown' ? 'unknown' : 'null'}`;
      break;
    case 'isdistinct':
      cond = `${expr} is distinct from ${typed(v as string)}`;
      break;
    case 'fts':
    case 'plfts':
    case 'phfts':
    case 'wfts': {
      const lang = f.language ? `${typed(f.language, 'regconfig')}, ` : '';
      const doc = type === 'tsvector' ? expr : `to_tsvector(${lang}${expr})`;
      cond = `${doc} @@ ${TSQUERY[f.op]}(${lang}${typed(v as string, 'text')})`;
      break;
    }
    default:
      if (f.op in RANGE) {
        cond = `${expr} ${RANGE[f.op]} ${typed(v as string)}`;
      } else {
        const text = v as string;
        const pattern = f.op === 'like' || f.op === 'ilike' || f.op === 'match' || f.op === 'imatch';
        const value = f.op === 'like' || f.op === 'ilike' ? likePattern(text) : text;
        const t = pattern ? 'text' : T;
        cond = f.modifier ? `${expr} ${COMPARE[f.op]} ${f.modifier}(${typed(value, t.endsWith('[]') ? t : `${t}[]`)})` : `${expr} ${COMPARE[f.op]} ${typed(value, t)}`;
      }
  }
  return f.negate ? `not (${cond})` : cond;
}
