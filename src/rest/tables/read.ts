/**
 * The select tree of a table request → SQL: embedded resources become LATERAL subqueries whose
 * JSON PostgreSQL builds (row_to_json / json_agg), spreads become plain columns, aggregates group
 * by the other selected fields.
 */
import type { Snapshot } from '../../schema/cache.ts';
import type { ColumnDef, TableDef } from '../../schema/reflect.ts';
import { apiError } from '../../errors.ts';
import { parseError, parseFilterValue, parseLogicTree, parseNonNegativeInt, parseOrderList, type LogicTree, type QueryKey, type SelectNode, type TableOrderItem } from '../grammar.ts';
import { ident, qualified, type Params } from '../sql.ts';
import type { TableExtras } from './catalog.ts';
import { conditionSql, exprType, fieldExpr } from './filters.ts';
import { resolveRelationship, type Relationship } from './relationships.ts';

export interface PlanContext {
  snapshot: Snapshot;
  extras: TableExtras;
  params: Params;
  aggregatesEnabled: boolean;
  aliases: number;
}

export interface ReadNode {
  table: TableDef;
  /** SQL alias of the table in its query */
  alias: string;
  /** how query parameters address it: its alias in select, else the relation name */
  name: string;
  items: SelectNode[];
  rel?: Relationship;
  inner: boolean;
  spread: boolean;
  /** embeds, in select order */
  children: ReadNode[];
  conditions: string[];
  order: TableOrderItem[];
  limit?: number;
  offset?: number;
}

export function columnOf(table: TableDef, name: string): ColumnDef {
  const col = table.columns.find((c) => c.name === name);
  if (!col) throw apiError(400, '42703', `column ${table.name}.${name} does not exist`, null, null);
  return col;
}

export function buildTree(ctx: PlanContext, table: TableDef, items: SelectNode[], alias: string, name: string): ReadNode {
  const node: ReadNode = { table, alias, name, items, inner: false, spread: false, children: [], conditions: [], order: [] };
  for (const item of items) {
    if (item.kind === 'field') columnOf(table, item.column);
    if ((item.kind === 'count' || (item.kind === 'field' && item.aggregate)) && !ctx.aggregatesEnabled) {
      throw apiError(400, 'PGRST123', 'Use of aggregate functions is not allowed', null, null);
    }
    if (item.kind !== 'embed') continue;
    const rel = resolveRelationship(ctx.snapshot, ctx.extras, table, item.name, item.hint);
    if (item.spread && !rel.toOne) {
      throw apiError(400, 'PGRST119', `A spread operation on '${item.name}' is not possible`, `'${table.name}' and '${item.name}' do not form a many-to-one or one-to-one relationship`, null);
    }
    const child = buildTree(ctx, rel.target, item.children, `pgrst_${++ctx.aliases}`, item.alias ?? item.name);
    child.rel = rel;
    child.inner = item.inner;
    child.spread = item.spread;
    node.children.push(child);
  }
  return node;
}

export function findNode(root: ReadNode, path: string[]): ReadNode {
  let node = root;
  for (const seg of path) {
    const next = node.children.find((c) => c.name === seg);
    if (!next) throw apiError(400, 'PGRST108', `'${seg}' is not an embedded resource in this request`, null, `Verify that '${seg}' is included in the 'select' query parameter.`);
    node = next;
  }
  return node;
}

function logicSql(ctx: PlanContext, node: ReadNode, tree: LogicTree): string {
  if (tree.kind === 'filter') {
    if (tree.embed.length) throw parseError(`filters on embedded resources inside and/or are not supported: "${tree.embed.join('.')}.${tree.filter.column}"`, 'logic tree');
    const col = columnOf(node.table, tree.filter.column);
    return conditionSql(fieldExpr(node.alias, col.name, tree.filter.jsonPath, ctx.params), exprType(col.type, tree.filter.jsonPath), tree.filter, ctx.params);
  }
  const joined = tree.children.map((c) => logicSql(ctx, node, c)).join(tree.kind === 'and' ? ' and ' : ' or ');
  return `${tree.negate ? 'not ' : ''}(${joined})`;
}

/** Applies one classified query parameter (filter, logic tree, order, limit, offset) to its node. */
export function applyParam(ctx: PlanContext, root: ReadNode, key: QueryKey, value: string): void {
  if (!('embed' in key)) return;
  const node = findNode(root, key.embed);
  switch (key.kind) {
    case 'filter': {
      const col = columnOf(node.table, key.column);
      const f = parseFilterValue({ column: key.column, jsonPath: key.jsonPath }, value);
      node.conditions.push(conditionSql(fieldExpr(node.alias, col.name, key.jsonPath, ctx.params), exprType(col.type, key.jsonPath), f, ctx.params));
      return;
    }
    case 'logic':
      node.conditions.push(logicSql(ctx, node, parseLogicTree(key.op, key.negate, value)));
      return;
    case 'order':
      node.order = parseOrderList(value);
      for (const o of node.order) {
        if (o.relation === undefined) columnOf(node.table, o.column);
        else {
          const child = node.children.find((c) => c.name === o.relation);
          if (!child) throw apiError(400, 'PGRST108', `'${o.relation}' is not an embedded resource in this request`, null, `Verify that '${o.relation}' is included in the 'select' query parameter.`);
          if (!child.rel!.toOne) throw apiError(400, 'PGRST118', `A related order on '${o.relation}' is not possible`, `'${node.table.name}' and '${o.relation}' do not form a many-to-one or one-to-one relationship`, null);
          columnOf(child.table, o.column);
        }
      }
      return;
    case 'limit':
      node.limit = parseNonNegativeInt(value, 'limit');
      return;
    case 'offset':
      node.offset = parseNonNegativeInt(value, 'offset');
      return;
  }
}

interface SelectList {
  exprs: string[];
  names: string[];
  groupBy: string[];
  aggregated: boolean;
}

function selectList(ctx: PlanContext, node: ReadNode): SelectList {
  const out: SelectList = { exprs: [], names: [], groupBy: [], aggregated: false };
  const a = node.alias;
  const plain = (expr: string, name: string) => {
    out.exprs.push(`${expr} as ${ident(name)}`);
    out.names.push(name);
    out.groupBy.push(expr);
  };
  let child = 0;
  for (const item of node.items) {
    if (item.kind === 'star') {
      for (const c of node.table.columns) plain(`${ident(a)}.${ident(c.name)}`, c.name);
    } else if (item.kind === 'field') {
      let expr = fieldExpr(a, item.column, item.jsonPath, ctx.params);
      if (item.cast) expr = `(${expr})::${item.cast}`;
      const name = item.alias ?? item.aggregate ?? (item.jsonPath.length ? item.jsonPath[item.jsonPath.length - 1][1] : item.column);
      if (item.aggregate) {
        let agg = `${item.aggregate}(${expr})`;
        if (item.aggregateCast) agg = `(${agg})::${item.aggregateCast}`;
        out.exprs.push(`${agg} as ${ident(name)}`);
        out.names.push(name);
        out.aggregated = true;
      } else plain(expr, name);
    } else if (item.kind === 'count') {
      const name = item.alias ?? 'count';
      out.exprs.push(`${item.cast ? `(count(*))::${item.cast}` : 'count(*)'} as ${ident(name)}`);
      out.names.push(name);
      out.aggregated = true;
    } else {
      const c = node.children[child++];
      const lateral = ident(`${c.alias}_body`);
      if (c.items.length === 0) continue;
      if (c.spread) {
        for (const n of subqueryNames(ctx, c)) plain(`${lateral}.${ident(n)}`, n);
      } else plain(`${lateral}.pgrst_body`, item.alias ?? item.name);
    }
  }
  return out;
}

/** Output column names of a node's subquery (spread needs them before generating SQL). */
function subqueryNames(ctx: PlanContext, node: ReadNode): string[] {
  const names: string[] = [];
  let child = 0;
  for (const item of node.items) {
    if (item.kind === 'star') names.push(...node.table.columns.map((c) => c.name));
    else if (item.kind === 'field') names.push(item.alias ?? item.aggregate ?? (item.jsonPath.length ? item.jsonPath[item.jsonPath.length - 1][1] : item.column));
    else if (item.kind === 'count') names.push(item.alias ?? 'count');
    else {
      const c = node.children[child++];
      if (c.items.length === 0) continue;
      if (c.spread) names.push(...subqueryNames(ctx, c));
      else names.push(item.alias ?? item.name);
    }
  }
  return names;
}

/** `child.col = parent.col` for a direct relationship, on the given aliases. */
function joinCondition(rel: Relationship, parentAlias: string, childAlias: string): string {
  return rel.pairs.map(([s, t]) => `${ident(childAlias)}.${ident(t)} = ${ident(parentAlias)}.${ident(s)}`).join(' and ');
}

/** FROM clause of a child: the target table, through the junction for many-to-many. */
function childFrom(node: ReadNode, parentAlias: string): { from: string; where: string } {
  const rel = node.rel!;
  const target = `${qualified(node.table.schema, node.table.name)} as ${ident(node.alias)}`;
  if (!rel.junction) return { from: target, where: joinCondition(rel, parentAlias, node.alias) };
  const j = rel.junction;
  const ja = `${node.alias}_j`;
  const on = j.targetPairs.map(([jc, tc]) => `${ident(ja)}.${ident(jc)} = ${ident(node.alias)}.${ident(tc)}`).join(' and ');
  return {
    from: `${target} join ${qualified(j.table.schema, j.table.name)} as ${ident(ja)} on ${on}`,
    where: j.sourcePairs.map(([jc, sc]) => `${ident(ja)}.${ident(jc)} = ${ident(parentAlias)}.${ident(sc)}`).join(' and '),
  };
}

function lateralJoins(ctx: PlanContext, node: ReadNode, onlyInner = false): string {
  let sql = '';
  for (const c of node.children) {
    if (onlyInner && !c.inner) continue;
    const sub = childQuery(ctx, c, node.alias);
    const join = c.inner ? 'inner join lateral' : 'left join lateral';
    const lateral = ident(`${c.alias}_body`);
    if (c.spread) sql += ` ${join} (${sub}) as ${lateral} on true`;
    else if (c.rel!.toOne) sql += ` ${join} (select row_to_json(pgrst_x)::jsonb as pgrst_body from (${sub}) pgrst_x) as ${lateral} on true`;
    else sql += ` ${join} (select coalesce(json_agg(pgrst_x), '[]')::jsonb as pgrst_body from (${sub}) pgrst_x${c.inner ? ' having count(*) > 0' : ''}) as ${lateral} on true`;
  }
  return sql;
}

export function orderSqlFor(ctx: PlanContext, node: ReadNode): string {
  if (node.order.length === 0) return '';
  return (
    ' order by ' +
    node.order
      .map((o) => {
        let expr: string;
        if (o.relation === undefined) expr = fieldExpr(node.alias, o.column, o.jsonPath, ctx.params);
        else {
          const child = node.children.find((c) => c.name === o.relation)!;
          const alias = `${child.alias}_o`;
          const target = `${qualified(child.table.schema, child.table.name)} as ${ident(alias)}`;
          expr = `(select ${fieldExpr(alias, o.column, o.jsonPath, ctx.params)} from ${target} where ${joinCondition(child.rel!, node.alias, alias)} limit 1)`;
        }
        return `${expr} ${o.direction}${o.nulls ? ` nulls ${o.nulls}` : ''}`;
      })
      .join(', ')
  );
}

function page(limit: number | undefined, offset: number | undefined): string {
  return `${limit !== undefined ? ` limit ${limit}` : ''}${offset ? ` offset ${offset}` : ''}`;
}

function childQuery(ctx: PlanContext, node: ReadNode, parentAlias: string): string {
  const list = selectList(ctx, node);
  const { from, where } = childFrom(node, parentAlias);
  const conds = [where, ...node.conditions].join(' and ');
  const cols = list.exprs.length ? list.exprs.join(', ') : 'null as pgrst_none';
  const group = list.aggregated && list.groupBy.length ? ` group by ${list.groupBy.join(', ')}` : '';
  return `select ${cols} from ${from}${lateralJoins(ctx, node)} where ${conds}${group}${orderSqlFor(ctx, node)}${page(node.limit, node.offset)}`;
}

export interface RootQuery {
  /** the page: select ... from source ... where ... order ... limit */
  page: string;
  /** count(*) of every row the filters match, ignoring the page */
  count: string;
  names: string[];
}

/** The root query over `source` (a table, or the CTE of a write's RETURNING rows). */
export function rootQuery(ctx: PlanContext, root: ReadNode, source: string, limit: number | undefined, offset: number | undefined): RootQuery {
  const list = selectList(ctx, root);
  const where = root.conditions.length ? ` where ${root.conditions.join(' and ')}` : '';
  const from = `from ${source} as ${ident(root.alias)}`;
  const group = list.aggregated && list.groupBy.length ? ` group by ${list.groupBy.join(', ')}` : '';
  const cols = list.exprs.length ? list.exprs.join(', ') : 'null as pgrst_none';
  const body = `${from}${lateralJoins(ctx, root)}${where}${group}`;
  const count = list.aggregated
    ? `select count(*) from (select ${cols} ${body}) pgrst_c`
    : `select count(*) from ${source} as ${ident(root.alias)}${lateralJoins(ctx, root, true)}${where}`;
  return { page: `select ${cols} ${body}${orderSqlFor(ctx, root)}${page(limit, offset)}`, count, names: list.names };
}
