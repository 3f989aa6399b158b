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
  /** settles when the reload that covers the last announcement has finished */
  private expected: { done: Promise<void>; settle: () => void } | null = null;
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

  /**
   * A reload is on its way (a NOTIFY arrived, the debounced reload has not finished): a request
   * that finds no function or table may wait for it, so `NOTIFY pgrst, 'reload schema'` followed
   * at once by a call to the new function works (as a script does it).
   */
  announce(): void {
    if (this.expected) return;
    let settle!: () => void;
    const done = new Promise<void>((r) => (settle = r));
    this.expected = { done, settle };
    for (const wake of this.announceWaiters.splice(0)) wake();
  }

  private announceWaiters: (() => void)[] = [];

  /**
   * Waits up to `ms` for an announced reload to finish, including one announced while waiting
   * (the NOTIFY of a script's `psql` may still be on its way when its next `curl` arrives).
   */
  async settleAnnounced(ms: number): Promise<void> {
    const deadline = new Promise<void>((r) => setTimeout(r, ms).unref());
    if (!this.expected) {
      let wake!: () => void;
      const announced = new Promise<void>((r) => (wake = r));
      this.announceWaiters.push(wake);
      await Promise.race([announced, deadline]);
      this.announceWaiters = this.announceWaiters.filter((w) => w !== wake);
    }
    if (this.expected) await Promise.race([this.expected.done, deadline]);
  }

  /** The announced reload, if one is pending; resolves when it is done (or failed). */
  get announced(): Promise<void> | null {
    return this.expected?.done ?? null;
  }

  /** Whether the database has a function or relation of this name that the cache would expose, cached or not. */
  async existsInDatabase(name: string): Promise<boolean> {
    const [row] = await this.sql`
      select exists (select 1 from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
                      where n.nspname = any(${this.schemas()}) and p.proname = ${name}
                        and p.prokind = 'f' and p.prorettype <> 'pg_catalog.trigger'::pg_catalog.regtype)
          or exists (select 1 from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                      where n.nspname = any(${this.schemas()}) and c.relname = ${name} and c.relkind in ('r', 'v', 'm', 'f', 'p')) as found`;
    return row.found === true;
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
    // this run reads the catalog after every announcement made so far: it covers them
    const covering = this.expected;
    this.expected = null;
    this.inFlight = (async () => {
      try {
        const snap = new Snapshot(await reflect(this.sql, this.schemas()), this.schemas());
        this.snapshot = snap;
        this.reloads++;
        return snap;
      } finally {
        this.inFlight = null;
        covering?.settle();
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

  /** a function or relation of this name exists in some exposed schema */
  knowsName(name: string): boolean {
    return this.schemas.some((s) => this.functions.has(`${s}.${name}`) || this.tables.has(`${s}.${name}`));
  }

  roleSettings(role: string): [string, string][] {
    return this.reflection.roleSettings[role] ?? [];
  }
}
