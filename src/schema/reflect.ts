import type { Sql } from 'postgres';

export interface ColumnDef {
  name: string;
  /** format_type() of the column, e.g. "integer", "character varying", "real[]" */
  type: string;
  nullable: boolean;
  hasDefault: boolean;
  description: string | null;
  position: number;
}

export interface ArgDef {
  name: string;
  type: string;
  hasDefault: boolean;
  variadic: boolean;
}

export type ReturnShape =
  | { kind: 'void' }
  | { kind: 'scalar'; type: string; set: boolean }
  | { kind: 'composite'; columns: ColumnDef[]; set: boolean; relation: string | null };

export interface FunctionDef {
  oid: number;
  schema: string;
  name: string;
  description: string | null;
  /** IN, INOUT and VARIADIC arguments in declaration order */
  args: ArgDef[];
  /** a single unnamed json/jsonb/text/bytea/xml argument receives the whole body */
  singleUnnamed: { type: string } | null;
  volatility: 'i' | 's' | 'v';
  returns: ReturnShape;
}

export interface TableDef {
  schema: string;
  name: string;
  kind: 'table' | 'view' | 'materialized_view' | 'foreign_table' | 'partitioned_table';
  description: string | null;
  insertable: boolean;
  updatable: boolean;
  deletable: boolean;
  columns: ColumnDef[];
  primaryKey: string[];
}

export interface ForeignKeyDef {
  name: string;
  schema: string;
  table: string;
  columns: string[];
  refSchema: string;
  refTable: string;
  refColumns: string[];
}

export interface Reflection {
  functions: FunctionDef[];
  tables: TableDef[];
  foreignKeys: ForeignKeyDef[];
  /** role name → transaction-settable settings from ALTER ROLE ... SET */
  roleSettings: Record<string, [string, string][]>;
  /** pgrst.* settings of the connecting role (in-database configuration) */
  ownSettings: Record<string, string>;
  serverVersion: number;
}

interface RawFunction {
  oid: number;
  schema: string;
  name: string;
  description: string | null;
  volatility: 'i' | 's' | 'v';
  returns_set: boolean;
  arg_names: string[] | null;
  arg_modes: string[] | null;
  arg_types: string[];
  n_defaults: number;
  variadic: boolean;
  return_type: string;
  return_typtype: string;
  return_relation: string | null;
  return_columns: ColumnDef[] | null;
}

const REFLECT_SQL = `
with fns as (
  select p.oid::int8 as oid, n.nspname as schema, p.proname as name,
    obj_description(p.oid, 'pg_proc') as description,
    p.provolatile as volatility, p.proretset as returns_set,
    p.proargnames as arg_names, p.proargmodes::text[] as arg_modes,
    array(select format_type(t.oid, null) from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) with ordinality t(oid, ord) order by t.ord) as arg_types,
    p.pronargdefaults as n_defaults, p.provariadic <> 0 as variadic,
    format_type(p.prorettype, null) as return_type, rt.typtype as return_typtype,
    case when rt.typrelid <> 0 then format('%I.%I', rn.nspname, rc.relname) end as return_relation,
    case when rt.typrelid <> 0 then (
      select json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, null), 'nullable', not a.attnotnull,
        'hasDefault', a.atthasdef, 'description', col_description(a.attrelid, a.attnum), 'position', a.attnum) order by a.attnum)
      from pg_attribute a where a.attrelid = rt.typrelid and a.attnum > 0 and not a.attisdropped) end as return_columns
  from pg_proc p
  join pg_namespace n on n.oid = p.pronamespace
  join pg_type rt on rt.oid = p.prorettype
  left join pg_class rc on rc.oid = rt.typrelid
  left join pg_namespace rn on rn.oid = rc.relnamespace
  where n.nspname = any($1::text[]) and p.prokind = 'f'
    and p.prorettype not in ('trigger'::regtype, 'event_trigger'::regtype)
),
rels as (
  select c.oid, n.nspname as schema, c.relname as name, c.relkind,
    obj_description(c.oid, 'pg_class') as description,
    case when c.relkind in ('r', 'p') then true else pg_relation_is_updatable(c.oid, true) & 8 = 8 end as insertable,
    case when c.relkind in ('r', 'p') then true else pg_relation_is_updatable(c.oid, true) & 4 = 4 end as updatable,
    case when c.relkind in ('r', 'p') then true else pg_relation_is_updatable(c.oid, true) & 16 = 16 end as deletable
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where n.nspname = any($1::text[]) and c.relkind in ('r', 'v', 'm', 'f', 'p')
)
select json_build_object(
  'functions', coalesce((select json_agg(fns) from fns), '[]'),
  'tables', coalesce((select json_agg(json_build_object(
      'schema', r.schema, 'name', r.name,
      'kind', case r.relkind when 'r' then 'table' when 'v' then 'view' when 'm' then 'materialized_view' when 'f' then 'foreign_table' else 'partitioned_table' end,
      'description', r.description, 'insertable', r.insertable, 'updatable', r.updatable, 'deletable', r.deletable,
      'columns', coalesce((select json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, null), 'nullable', not a.attnotnull,
          'hasDefault', a.atthasdef or a.attidentity <> '' or a.attgenerated <> '', 'description', col_description(a.attrelid, a.attnum), 'position', a.attnum) order by a.attnum)
        from pg_attribute a where a.attrelid = r.oid and a.attnum > 0 and not a.attisdropped), '[]'),
      'primaryKey', coalesce((select json_agg(a.attname order by k.ord)
        from pg_constraint con cross join unnest(con.conkey) with ordinality k(attnum, ord)
        join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.attnum
        where con.conrelid = r.oid and con.contype = 'p'), '[]')
    )) from rels r), '[]'),
  'foreignKeys', coalesce((select json_agg(json_build_object(
      'name', con.conname, 'schema', n.nspname, 'table', c.relname,
      'columns', (select json_agg(a.attname order by k.ord) from unnest(con.conkey) with ordinality k(attnum, ord) join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.attnum),
      'refSchema', fn.nspname, 'refTable', fc.relname,
      'refColumns', (select json_agg(a.attname order by k.ord) from unnest(con.confkey) with ordinality k(attnum, ord) join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.attnum)))
    from pg_constraint con
    join pg_class c on c.oid = con.conrelid join pg_namespace n on n.oid = c.relnamespace
    join pg_class fc on fc.oid = con.confrelid join pg_namespace fn on fn.oid = fc.relnamespace
    where con.contype = 'f' and (n.nspname = any($1::text[]) or fn.nspname = any($1::text[]))), '[]'),
  'roleSettings', coalesce((select json_object_agg(r.rolname, s.setconfig)
    from pg_db_role_setting s join pg_roles r on r.oid = s.setrole
    where s.setdatabase in (0, (select oid from pg_database where datname = current_database())) and s.setrole <> 0), '{}'),
  'ownSettings', coalesce((select json_object_agg(split_part(kv, '=', 1), substr(kv, strpos(kv, '=') + 1))
    from pg_db_role_setting s cross join unnest(s.setconfig) kv
    where s.setrole = (select oid from pg_roles where rolname = current_user)
      and s.setdatabase in (0, (select oid from pg_database where datname = current_database()))
      and kv like 'pgrst.%'), '{}'),
  'userSettable', (select json_agg(name) from pg_settings where context = 'user'),
  'serverVersion', current_setting('server_version_num')::int
)::text as doc`;

const BODY_TYPES = new Set(['json', 'jsonb', 'text', 'bytea', 'xml', 'character varying']);

function toFunctionDef(raw: RawFunction): FunctionDef {
  const modes = raw.arg_modes ?? raw.arg_types.map(() => 'i');
  const names = raw.arg_names ?? [];
  const inArgs: { name: string; type: string; variadic: boolean }[] = [];
  const outCols: ColumnDef[] = [];
  let table = false;
  for (let i = 0; i < raw.arg_types.length; i++) {
    const mode = modes[i];
    const name = names[i] ?? '';
    if (mode === 'i' || mode === 'b' || mode === 'v') inArgs.push({ name, type: raw.arg_types[i], variadic: mode === 'v' });
    if (mode === 'o' || mode === 'b' || mode === 't') {
      outCols.push({ name, type: raw.arg_types[i], nullable: true, hasDefault: false, description: null, position: outCols.length + 1 });
      if (mode === 't') table = true;
    }
  }
  const firstDefault = inArgs.length - raw.n_defaults;
  const args: ArgDef[] = inArgs.map((a, i) => ({ ...a, hasDefault: i >= firstDefault }));
  let returns: ReturnShape;
  if (raw.return_type === 'void') returns = { kind: 'void' };
  else if (outCols.length > 1 || table || (outCols.length === 1 && raw.return_type === 'record')) {
    returns = { kind: 'composite', columns: outCols, set: raw.returns_set, relation: null };
  } else if (raw.return_typtype === 'c' && raw.return_columns) {
    returns = { kind: 'composite', columns: raw.return_columns, set: raw.returns_set, relation: raw.return_relation };
  } else returns = { kind: 'scalar', type: raw.return_type, set: raw.returns_set };
  const singleUnnamed = args.length === 1 && args[0].name === '' && BODY_TYPES.has(args[0].type) ? { type: args[0].type } : null;
  return { oid: raw.oid, schema: raw.schema, name: raw.name, description: raw.description, args, singleUnnamed, volatility: raw.volatility, returns };
}

export async function reflect(sql: Sql, schemas: string[]): Promise<Reflection> {
  const [row] = await sql.unsafe(REFLECT_SQL, [schemas]);
  const doc = JSON.parse(row.doc as string) as {
    functions: RawFunction[];
    tables: TableDef[];
    foreignKeys: ForeignKeyDef[];
    roleSettings: Record<string, string[]>;
    ownSettings: Record<string, string>;
    userSettable: string[];
    serverVersion: number;
  };
  const settable = new Set(doc.userSettable);
  const roleSettings: Record<string, [string, string][]> = {};
  for (const [role, config] of Object.entries(doc.roleSettings)) {
    roleSettings[role] = config
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] as [string, string])
      .filter(([k]) => settable.has(k));
  }
  return {
    // functions with unnamed arguments are callable only through the single-unnamed form
    functions: doc.functions.map(toFunctionDef).filter((f) => f.singleUnnamed || f.args.every((a) => a.name !== '')),
    tables: doc.tables,
    foreignKeys: doc.foreignKeys,
    roleSettings,
    ownSettings: doc.ownSettings,
    serverVersion: doc.serverVersion,
  };
}
