import type { Sql } from 'postgres';
import { reflect, type FunctionDef, type Reflection, type TableDef } from './reflect.ts';

/**
 * The schema cache: what the exposed schemas contain, loaded at start and reloaded on NOTIFY.
 * A reload replaces the whole snapshot atomically; requests in flight keep the one they started with.
 */
export class SchemaCache {
  private snapshot: Snapshot | null = null;
  private inFlight: Promise<Snapshot> | null = null;
  private pending: Promise<Snapshot> | null = null;
  reloads = 0;

  constructor(private readonly sql: Sql, private schemas: () => string[]) {}

  get ready(): boolean {
    return this.snapshot !== null;
  }

  get current(): Snapshot {
    if (!this.snapshot) throw new Error('schema cache not loaded');
    return this.snapshot;
  }

  get maybeCurrent(): Snapshot | null {
    return this.snapshot;
  }

  /** Single-flight: reloads requested while one runs are coalesced into one more afterwards. */
  reload(): Promise<Snapshot> {
    if (this.pending) return this.pending;
    if (this.inFlight) {
      this.pending = this.inFlight.catch(() => undefined).then(() => {
        this.pending = null;
        return this.run();
      });
      return this.pending;
    }
    return this.run();
  }

  private run(): Promise<Snapshot> {
    this.inFlight = (async () => {
      try {
        const snap = new Snapshot(await reflect(this.sql, this.schemas()), this.schemas());
        this.snapshot = snap;
        this.reloads++;
        return snap;
      } finally {
        this.inFlight = null;
      }
    })();
    return this.inFlight;
  }
}

export class Snapshot {
  readonly functions = new Map<string, FunctionDef[]>();
  readonly tables = new Map<string, TableDef>();
  readonly loadedAt = new Date();

  constructor(readonly reflection: Reflection, readonly schemas: string[]) {
    for (const f of reflection.functions) {
      const key = `${f.schema}.${f.name}`;
      const list = this.functions.get(key);
      if (list) list.push(f);
      else this.functions.set(key, [f]);
    }
    for (const t of reflection.tables) this.tables.set(`${t.schema}.${t.name}`, t);
  }

  functionsNamed(schema: string, name: string): FunctionDef[] {
    return this.functions.get(`${schema}.${name}`) ?? [];
  }

  functionsIn(schema: string): FunctionDef[] {
    return this.reflection.functions.filter((f) => f.schema === schema);
  }

  table(schema: string, name: string): TableDef | undefined {
    return this.tables.get(`${schema}.${name}`);
  }

  roleSettings(role: string): [string, string][] {
    return this.reflection.roleSettings[role] ?? [];
  }
}
