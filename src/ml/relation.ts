/**
 * Reads a training relation as the caller (so RLS and grants on the data hold), streaming rows
 * with a cursor into typed columns: numeric/boolean → Float64Array (NaN = NULL), real[]/float8[]
 * → fixed-width Float64Array, text/enum → strings.
 */
import type { TransactionSql } from 'postgres';
import { MLInputError } from './hyperparams.ts';
import type { RawColumn } from './preprocess.ts';

export interface RelationColumn {
  name: string;
  type: string;
  kind: 'numeric' | 'boolean' | 'text' | 'array' | 'unsupported';
}

export interface RelationData {
  relation: string;
  columns: RawColumn[];
  label: RawColumn | null;
  rows: number;
  described: RelationColumn[];
}

const ident = (s: string) => '"' + s.replace(/"/g, '""') + '"';

export async function describeRelation(tx: TransactionSql, relationName: string): Promise<{ qualified: string; columns: RelationColumn[] }> {
  const found = await tx`
    select n.nspname as schema, c.relname as name
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.oid = to_regclass(${relationName}) and c.relkind in ('r', 'v', 'm', 'f', 'p')`;
  if (found.length === 0) {
    throw new MLInputError(`relation "${relationName}" does not exist`, 'Check relation_name (schema-qualify it if it is not on the search_path)');
  }
  const { schema, name } = found[0] as { schema: string; name: string };
  const cols = await tx`
    select a.attname as name, format_type(a.atttypid, a.atttypmod) as type, t.typcategory as cat,
           coalesce(et.typcategory, '') as elem_cat, t.oid = 'bool'::regtype as is_bool, t.typtype = 'e' as is_enum
    from pg_attribute a join pg_type t on t.oid = a.atttypid left join pg_type et on et.oid = t.typelem and t.typcategory = 'A'
    where a.attrelid = to_regclass(${relationName}) and a.attnum > 0 and not a.attisdropped order by a.attnum`;
  const columns = cols.map((c) => {
    let kind: RelationColumn['kind'] = 'unsupported';
    if (c.is_bool) kind = 'boolean';
    else if (c.cat === 'N') kind = 'numeric';
    else if (c.cat === 'S' || c.is_enum) kind = 'text';
    else if (c.cat === 'A' && c.elem_cat === 'N') kind = 'array';
    return { name: c.name as string, type: c.type as string, kind };
  });
  return { qualified: `${ident(schema)}.${ident(name)}`, columns };
}

function selectExpr(c: RelationColumn): string {
  switch (c.kind) {
    case 'numeric':
      return `${ident(c.name)}::float8`;
    case 'boolean':
      return `${ident(c.name)}::int::float8`;
    case 'array':
      return `${ident(c.name)}::float8[]`;
    default:
      return `${ident(c.name)}::text`;
  }
}

/**
 * Streams the relation into typed columns. `yColumn` may be null (clustering). Columns listed in
 * `exclude` are skipped; unsupported types are refused with the column named.
 */
export async function readRelation(
  tx: TransactionSql,
  relationName: string,
  yColumn: string | null,
  opts: { maxRows?: number; exclude?: string[] } = {},
): Promise<RelationData> {
  const { qualified, columns } = await describeRelation(tx, relationName);
  if (yColumn !== null && !columns.some((c) => c.name === yColumn)) {
    throw new MLInputError(`column "${yColumn}" does not exist in ${relationName}`, `Columns: ${columns.map((c) => c.name).join(', ')}`);
  }
  const used = columns.filter((c) => !opts.exclude?.includes(c.name));
  for (const c of used) {
    if (c.kind === 'unsupported' && c.name !== yColumn) {
      throw new MLInputError(`column "${c.name}" has type ${c.type}, which cannot be a feature`, 'Use numeric, boolean, text or real[]/float8[] columns, or train on a view that casts or drops it');
    }
  }
  const limit = opts.maxRows !== undefined ? ` limit ${opts.maxRows + 1}` : '';
  const cursor = tx.unsafe(`select ${used.map(selectExpr).join(', ')} from ${qualified}${limit}`).values().cursor(2000);

  const numeric = used.map(() => [] as number[]);
  const texts = used.map(() => [] as (string | null)[]);
  const arrays = used.map(() => [] as number[]);
  const widths = used.map(() => -1);
  let n = 0;
  for await (const batch of cursor) {
    for (const row of batch as unknown as unknown[][]) {
      for (let j = 0; j < used.length; j++) {
        const v = row[j];
        const c = used[j];
        if (c.kind === 'numeric' || c.kind === 'boolean') numeric[j].push(v === null ? NaN : Number(v));
        else if (c.kind === 'array') {
          const arr = v as number[] | null;
          if (arr === null) {
            if (widths[j] < 0) throw new MLInputError(`column "${c.name}" starts with a NULL array`, 'Filter NULL arrays out of the relation');
            for (let k = 0; k < widths[j]; k++) arrays[j].push(NaN);
          } else {
            if (widths[j] < 0) widths[j] = arr.length;
            if (arr.length !== widths[j]) {
              throw new MLInputError(`column "${c.name}" has arrays of different lengths (${widths[j]} and ${arr.length})`, 'Array feature columns must have one width');
            }
            for (let k = 0; k < arr.length; k++) arrays[j].push(arr[k] === null ? NaN : Number(arr[k]));
          }
        } else texts[j].push(v === null ? null : String(v));
      }
      n++;
    }
    if (opts.maxRows !== undefined && n > opts.maxRows) {
      throw new MLInputError(`relation "${relationName}" has more than ${opts.maxRows} rows`, 'Raise PGML_TRAIN_MAX_ROWS or train on a sample');
    }
  }
  if (n === 0) throw new MLInputError(`relation "${relationName}" is empty`, 'Training needs at least one row');

  const raw: RawColumn[] = used.map((c, j) => {
    if (c.kind === 'numeric') return { name: c.name, kind: 'numeric', values: Float64Array.from(numeric[j]) };
    if (c.kind === 'boolean') return { name: c.name, kind: 'numeric', values: Float64Array.from(numeric[j]), boolean: true };
    if (c.kind === 'array') return { name: c.name, kind: 'array', width: Math.max(widths[j], 0), values: Float64Array.from(arrays[j]) };
    return { name: c.name, kind: 'text', values: texts[j] };
  });
  const label = yColumn === null ? null : raw.find((c) => c.name === yColumn)!;
  return { relation: relationName, columns: raw.filter((c) => c.name !== yColumn), label, rows: n, described: used };
}
