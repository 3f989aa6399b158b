/**
 * Relationships between tables and views, from foreign keys as PostgREST 12 detects them:
 * many-to-one, one-to-many, one-to-one, many-to-many through a junction table, and the same
 * through views whose columns PostgreSQL traces back to the keyed table.
 */
import type { Snapshot } from '../../schema/cache.ts';
import type { ForeignKeyDef, TableDef } from '../../schema/reflect.ts';
import { ApiError, apiError } from '../../errors.ts';
import type { TableExtras } from './catalog.ts';

export type Cardinality = 'many-to-one' | 'one-to-many' | 'one-to-one' | 'many-to-many';

export interface Junction {
  table: TableDef;
  /** junction column = source column */
  sourcePairs: [string, string][];
  /** junction column = target column */
  targetPairs: [string, string][];
  sourceConstraint: string;
  targetConstraint: string;
}

export interface Relationship {
  cardinality: Cardinality;
  source: TableDef;
  target: TableDef;
  constraint: string;
  /** source column = target column (direct relationships) */
  pairs: [string, string][];
  junction?: Junction;
  toOne: boolean;
  /** the foreign key lives on the target (one-to-many, and one-to-one seen from the referenced side) */
  fkOnTarget: boolean;
}

interface Side {
  table: TableDef;
  columns: string[];
}

const key = (t: { schema: string; name: string }) => `${t.schema}.${t.name}`;

/** The table itself and every view that exposes all of `columns` of it. */
function sides(snapshot: Snapshot, extras: TableExtras, schema: string, table: string, columns: string[]): Side[] {
  const out: Side[] = [];
  const base = snapshot.table(schema, table);
  if (base) out.push({ table: base, columns });
  for (const [view, origins] of extras.viewOrigins) {
    const mapped = columns.map((c) => [...origins].find(([, o]) => o.schema === schema && o.table === table && o.column === c)?.[0]);
    if (mapped.every((m) => m !== undefined)) {
      const [vs, ...rest] = view.split('.');
      const v = snapshot.table(vs, rest.join('.'));
      if (v) out.push({ table: v, columns: mapped as string[] });
    }
  }
  return out;
}

function isUnique(extras: TableExtras, fk: ForeignKeyDef): boolean {
  const keys = extras.uniqueKeys.get(`${fk.schema}.${fk.table}`) ?? [];
  return keys.some((k) => k.length === fk.columns.length && k.every((c) => fk.columns.includes(c)));
}

const graphs = new WeakMap<Snapshot, WeakMap<TableExtras, Map<string, Relationship[]>>>();

/** Every relationship, grouped by source table ("schema.name"). */
export function relationshipGraph(snapshot: Snapshot, extras: TableExtras): Map<string, Relationship[]> {
  let bySnap = graphs.get(snapshot);
  if (!bySnap) graphs.set(snapshot, (bySnap = new WeakMap()));
  let graph = bySnap.get(extras);
  if (graph) return graph;
  graph = new Map();
  const add = (r: Relationship) => {
    const k = key(r.source);
    graph!.set(k, [...(graph!.get(k) ?? []), r]);
  };
  const zip = (a: string[], b: string[]) => a.map((c, i) => [c, b[i]] as [string, string]);
  for (const fk of snapshot.reflection.foreignKeys) {
    const oneToOne = isUnique(extras, fk);
    for (const owner of sides(snapshot, extras, fk.schema, fk.table, fk.columns)) {
      for (const ref of sides(snapshot, extras, fk.refSchema, fk.refTable, fk.refColumns)) {
        add({ cardinality: oneToOne ? 'one-to-one' : 'many-to-one', source: owner.table, target: ref.table, constraint: fk.name, pairs: zip(owner.columns, ref.columns), toOne: true, fkOnTarget: false });
        add({ cardinality: oneToOne ? 'one-to-one' : 'one-to-many', source: ref.table, target: owner.table, constraint: fk.name, pairs: zip(ref.columns, owner.columns), toOne: oneToOne, fkOnTarget: true });
      }
    }
  }
  // many-to-many: a table whose primary key holds foreign keys to both ends
  const byTable = new Map<string, ForeignKeyDef[]>();
  for (const fk of snapshot.reflection.foreignKeys) byTable.set(`${fk.schema}.${fk.table}`, [...(byTable.get(`${fk.schema}.${fk.table}`) ?? []), fk]);
  for (const [jk, fks] of byTable) {
    const junction = snapshot.tables.get(jk);
    if (!junction || fks.length < 2) continue;
    const inKey = (fk: ForeignKeyDef) => fk.columns.every((c) => junction.primaryKey.includes(c));
    for (const a of fks) {
      for (const b of fks) {
        if (a === b || !inKey(a) || !inKey(b)) continue;
        const source = snapshot.table(a.refSchema, a.refTable);
        const target = snapshot.table(b.refSchema, b.refTable);
        if (!source || !target) continue;
        add({
          cardinality: 'many-to-many',
          source,
          target,
          constraint: junction.name,
          pairs: [],
          toOne: false,
          fkOnTarget: false,
          junction: { table: junction, sourcePairs: zip(a.columns, a.refColumns), targetPairs: zip(b.columns, b.refColumns), sourceConstraint: a.name, targetConstraint: b.name },
        });
      }
    }
  }
  bySnap.set(extras, graph);
  return graph;
}

function describe(r: Relationship): string {
  if (r.junction) {
    const j = r.junction;
    return `${j.table.name} using ${j.sourceConstraint}(${j.sourcePairs.map((p) => p[0]).join(', ')}) and ${j.targetConstraint}(${j.targetPairs.map((p) => p[0]).join(', ')})`;
  }
  const [fkTable, fkCols, refTable, refCols] =
    r.fkOnTarget
      ? [r.target.name, r.pairs.map((p) => p[1]), r.source.name, r.pairs.map((p) => p[0])]
      : [r.source.name, r.pairs.map((p) => p[0]), r.target.name, r.pairs.map((p) => p[1])];
  return `${r.constraint} using ${fkTable}(${fkCols.join(', ')}) and ${refTable}(${refCols.join(', ')})`;
}

function matchesHint(r: Relationship, hint: string): boolean {
  if (r.constraint === hint) return true;
  if (r.junction) return r.junction.sourceConstraint === hint || r.junction.targetConstraint === hint;
  return r.pairs.some(([s, t]) => s === hint || t === hint);
}

/** The one relationship from `source` to the table or view called `name`, or PostgREST's PGRST200 / PGRST201. */
export function resolveRelationship(snapshot: Snapshot, extras: TableExtras, source: TableDef, name: string, hint: string | undefined): Relationship {
  const all = relationshipGraph(snapshot, extras).get(key(source)) ?? [];
  let found = all.filter((r) => r.target.name === name && r.target.schema === source.schema);
  if (found.length === 0) found = all.filter((r) => r.target.name === name);
  if (hint !== undefined) found = found.filter((r) => matchesHint(r, hint));
  if (found.length === 1) return found[0];
  if (found.length === 0) {
    return throwNoRelationship(source, name, hint);
  }
  // a direct foreign key wins over many-to-many through a junction, as in PostgREST
  const direct = found.filter((r) => !r.junction);
  if (direct.length === 1 && hint === undefined && found.every((r) => r === direct[0] || r.junction)) return direct[0];
  const sorted = [...found].sort((a, b) => describe(a).localeCompare(describe(b)));
  const err = new ApiError(300, {
    code: 'PGRST201',
    message: `Could not embed because more than one relationship was found for '${source.name}' and '${name}'`,
    details: null,
    hint: `Try changing '${name}' to one of the following: ${sorted.map((r) => `'${name}!${r.constraint}'`).join(', ')}. Find the desired relationship in the 'details' key.`,
  });
  (err.body as unknown as { details: unknown }).details = sorted.map((r) => ({ cardinality: r.cardinality, embedding: `${source.name} with ${name}`, relationship: describe(r) }));
  throw err;
}

function throwNoRelationship(source: TableDef, name: string, hint: string | undefined): never {
  throw apiError(
    400,
    'PGRST200',
    `Could not find a relationship between '${source.name}' and '${name}' in the schema cache`,
    `Searched for a foreign key relationship between '${source.name}' and '${name}'${hint !== undefined ? ` using the hint '${hint}'` : ''} in the schema '${source.schema}', but no matches were found.`,
    null,
  );
}
