/**
 * Facts the table API needs beyond the shared schema cache: unique keys (one-to-one embeds, upsert
 * targets), column default expressions (Prefer: missing=default) and where view columns come from
 * (embedding through views). Loaded once per schema-cache snapshot, on the first table request.
 */
import type { Sql } from 'postgres';
import type { Snapshot } from '../../schema/cache.ts';

export interface ColumnOrigin {
  schema: string;
  table: string;
  column: string;
}

export interface TableExtras {
  /** "schema.table" → unique column sets (primary key included) */
  uniqueKeys: Map<string, string[][]>;
  /** "schema.table" → column → default expression (identity columns: nextval of their sequence) */
  defaults: Map<string, Map<string, string>>;
  /** "schema.view" → view column → base table column (followed through views of views) */
  viewOrigins: Map<string, Map<string, ColumnOrigin>>;
}

const EXTRAS_SQL = `
select json_build_object(
  'unique', coalesce((select json_agg(json_build_object('schema', n.nspname, 'table', c.relname,
      'columns', (select json_agg(a.attname order by k.ord) from unnest(con.conkey) with ordinality k(attnum, ord)
                  join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.attnum)))
    from pg_constraint con join pg_class c on c.oid = con.conrelid join pg_namespace n on n.oid = c.relnamespace
    where con.contype in ('p', 'u') and n.nspname = any($1::text[])), '[]'),
  'defaults', coalesce((select json_agg(json_build_object('schema', n.nspname, 'table', c.relname, 'column', a.attname,
      'expr', case when a.attidentity <> '' then format('nextval(%L::regclass)', pg_get_serial_sequence(format('%I.%I', n.nspname, c.relname), a.attname))
                   else pg_get_expr(d.adbin, d.adrelid) end))
    from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
    left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
    where n.nspname = any($1::text[]) and c.relkind in ('r', 'p', 'v', 'f') and a.attnum > 0 and not a.attisdropped
      and a.attgenerated = '' and (d.oid is not null or a.attidentity <> '')), '[]'),
  'views', coalesce((select json_agg(v) from (
    select n.nspname as schema, c.relname as view, m.col, bn.nspname as base_schema, bc.relname as base_table, ba.attname as base_column
    from pg_rewrite r join pg_class c on c.oid = r.ev_class join pg_namespace n on n.oid = c.relnamespace
    cross join lateral (
      -- the top-level target list comes last in the rule's node tree: keep each output column's last entry
      select distinct on (x.m[1]) x.m[1] as col, x.m[2]::oid as tbl, x.m[3]::int2 as attnum
      from regexp_matches(r.ev_action::text, ':resname (\\S+) :ressortgroupref \\d+ :resorigtbl (\\d+) :resorigcol (\\d+)', 'g') with ordinality x(m, ord)
      order by x.m[1], x.ord desc) m
    join pg_class bc on bc.oid = m.tbl join pg_namespace bn on bn.oid = bc.relnamespace
    join pg_attribute ba on ba.attrelid = bc.oid and ba.attnum = m.attnum
    where c.relkind = 'v' and r.rulename = '_RETURN' and n.nspname = any($1::text[]) and m.tbl <> 0) v), '[]')
)::text as doc`;

interface RawExtras {
  unique: { schema: string; table: string; columns: string[] }[];
  defaults: { schema: string; table: string; column: string; expr: string | null }[];
  views: { schema: string; view: string; col: string; base_schema: string; base_table: string; base_column: string }[];
}

const loaded = new WeakMap<Snapshot, Promise<TableExtras>>();

export function tableExtras(sql: Sql, snapshot: Snapshot): Promise<TableExtras> {
  let p = loaded.get(snapshot);
  if (!p) {
    p = load(sql, snapshot.schemas);
    p.catch(() => loaded.delete(snapshot));
    loaded.set(snapshot, p);
  }
  return p;
}

async function load(sql: Sql, schemas: string[]): Promise<TableExtras> {
  const [row] = await sql.unsafe(EXTRAS_SQL, [schemas]);
  const raw = JSON.parse(row.doc as string) as RawExtras;
  const uniqueKeys = new Map<string, string[][]>();
  for (const u of raw.unique) {
    const k = `${u.schema}.${u.table}`;
    uniqueKeys.set(k, [...(uniqueKeys.get(k) ?? []), u.columns]);
  }
  const defaults = new Map<string, Map<string, string>>();
  for (const d of raw.defaults) {
    if (d.expr === null) continue;
    const k = `${d.schema}.${d.table}`;
    if (!defaults.has(k)) defaults.set(k, new Map());
    defaults.get(k)!.set(d.column, d.expr);
  }
  const direct = new Map<string, Map<string, ColumnOrigin>>();
  for (const v of raw.views) {
    const k = `${v.schema}.${v.view}`;
    if (!direct.has(k)) direct.set(k, new Map());
    direct.get(k)!.set(v.col, { schema: v.base_schema, table: v.base_table, column: v.base_column });
  }
  // a view over a view: follow the chain down to a table
  const viewOrigins = new Map<string, Map<string, ColumnOrigin>>();
  for (const [view, cols] of direct) {
    const resolved = new Map<string, ColumnOrigin>();
    for (const [col, origin] of cols) {
      let o: ColumnOrigin | undefined = origin;
      for (let depth = 0; o && depth < 10; depth++) {
        const next: Map<string, ColumnOrigin> | undefined = direct.get(`${o.schema}.${o.table}`);
        if (!next) break;
        o = next.get(o.column);
      }
      if (o) resolved.set(col, o);
    }
    viewOrigins.set(view, resolved);
  }
  return { uniqueKeys, defaults, viewOrigins };
}
