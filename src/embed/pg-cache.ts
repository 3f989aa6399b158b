import { createHash } from 'node:crypto';
import { RequestAborted, StageError, type CallerContext } from '../db/as-caller.ts';
import { DatabaseUnavailableError, PoolTimeoutError } from '../db/pool.ts';
import { runAsCallerSelected, type RequestPools } from '../db/wire/select.ts';
import type { CacheVariant, CachedEmbedding, EmbeddingCache } from './cache.ts';

const variantKey = (v: CacheVariant) => `${v.pooling}/${v.normalize ? 'normalized' : 'raw'}`;
const sha256Hex = (text: string) => createHash('sha256').update(text).digest('hex');

// Parameters are pre-formatted array literals (hex hashes need no quoting), so both request
// clients send the same text; the results come back as text from both as well.
const READ_SQL = `select input_hash, embedding::text as e, truncated::text as t from pgml.embeddings
  where owner = current_user and model = $1 and variant = $2 and input_hash = any($3::text[])`;
const WRITE_SQL = `insert into pgml.embeddings (model, variant, input_hash, embedding, truncated)
  select $1, $2, x.h, v.a[(x.i - 1) * $5::int + 1 : x.i * $5::int], x.t
  from (select $4::real[] as a) v, unnest($3::text[], $6::bool[]) with ordinality as x(h, t, i)
  on conflict do nothing`;

/** One statement for the entries of every caller with the same key that joined before it started. */
interface Group<In, Out> {
  inputs: In[];
  done: Promise<Out>;
  start: () => void;
}

/** Per key: the statement running now, and the group that starts when it is done. */
interface KeyState<In, Out> {
  running: boolean;
  next: Group<In, Out> | null;
}

type Registry<In, Out> = WeakMap<RequestPools, Map<string, KeyState<In, Out>>>;

const pendingReads: Registry<string, Map<string, CachedEmbedding>> = new WeakMap();
const pendingWrites: Registry<{ h: string; e: Float32Array; t: boolean }, void> = new WeakMap();

/**
 * At most one statement per key at a time: callers arriving while one runs join the next one,
 * which starts when it finishes (at once, in the next turn, when none runs).
 */
function coalesce<In, Out>(registry: Registry<In, Out>, pools: RequestPools, key: string, inputs: In[], run: (all: In[]) => Promise<Out>): Promise<Out> {
  let byKey = registry.get(pools);
  if (!byKey) registry.set(pools, (byKey = new Map()));
  let state = byKey.get(key);
  if (!state) byKey.set(key, (state = { running: false, next: null }));
  const st = state;
  let group = st.next;
  if (!group) {
    let start!: () => void;
    const started = new Promise<void>((resolve) => (start = resolve));
    const g: Group<In, Out> = { inputs: [], done: undefined!, start };
    g.done = started.then(() => {
      st.next = null;
      st.running = true;
      return run(g.inputs);
    });
    const finish = () => {
      st.running = false;
      if (st.next) st.next.start();
      else if (byKey.get(key) === st) byKey.delete(key);
    };
    g.done.then(finish, finish);
    st.next = group = g;
    if (!st.running) setImmediate(start);
  }
  for (const x of inputs) group.inputs.push(x);
  return group.done;
}

/** '{v1,v2,...}' of float32 values (their shortest float64 form, which real's input reads back exactly) */
function realArrayLiteral(rows: Float32Array[]): string {
  const parts: string[] = [];
  for (const r of rows) parts.push(r.join(','));
  return '{' + parts.join(',') + '}';
}

function parseRealArray(text: string): Float32Array {
  const parts = text.slice(1, -1).split(',');
  const out = new Float32Array(parts.length);
  for (let i = 0; i < parts.length; i++) out[i] = Number(parts[i]);
  return out;
}

/**
 * pgml.embeddings as the embedder's cache, read and written as the caller: RLS keeps each role's
 * entries to itself. Counters let tests and metrics see hits and misses.
 *
 * Reads, and writes, of the same caller (role, claims, settings) and variant go out as one
 * statement in one transaction on the request client (one round trip on the pipeline client):
 * while one runs, the next callers gather for the next one, so under concurrency there is about one
 * read and one write per dynamic batch instead of a transaction each per request, and a lone
 * request waits for nothing. Each caller still waits for its rows to be written (a later request
 * of the same caller finds them).
 */
export class PgEmbeddingCache implements EmbeddingCache {
  static hits = 0;
  static misses = 0;
  /** statements run: reads and writes (each coalesces the callers of one event loop turn) */
  static reads = 0;
  static writes = 0;

  /** a request looks its texts up, then writes the misses: each is hashed once */
  private readonly hashes = new Map<string, string>();

  constructor(private readonly pools: RequestPools, private readonly ctx: CallerContext) {}

  private hash(text: string): string {
    let h = this.hashes.get(text);
    if (h === undefined) this.hashes.set(text, (h = sha256Hex(text)));
    return h;
  }

  private key(variant: CacheVariant): string {
    // request.id differs per request and decides nothing about the rows
    const settings = this.ctx.settings.filter(([k]) => k !== 'request.id');
    return JSON.stringify([this.ctx.role, this.ctx.claims, settings, variant.model, variantKey(variant)]);
  }

  /**
   * The read runs as the caller, so it is also the role check /rpc makes: a role PostgreSQL will
   * not switch to fails its setup stage (401/403, as for /rpc), and a caller whose role cannot be
   * checked at all (database down, pool exhausted) is not served either.
   */
  refuses(err: unknown): boolean {
    if (err instanceof StageError) return err.stage === 'setup' || err.stage === 'begin';
    return err instanceof DatabaseUnavailableError || err instanceof PoolTimeoutError || err instanceof RequestAborted;
  }

  async get(variant: CacheVariant, texts: string[]): Promise<(CachedEmbedding | undefined)[]> {
    const hashes = texts.map((t) => this.hash(t));
    const found = await coalesce(pendingReads, this.pools, this.key(variant), hashes, (all) => this.read(variant, all));
    const out = hashes.map((h) => found.get(h));
    const hits = out.filter(Boolean).length;
    PgEmbeddingCache.hits += hits;
    PgEmbeddingCache.misses += out.length - hits;
    return out;
  }

  put(variant: CacheVariant, texts: string[], rows: CachedEmbedding[]): Promise<void> {
    const entries = texts.map((text, i) => ({ h: this.hash(text), e: rows[i].embedding, t: rows[i].truncated }));
    return coalesce(pendingWrites, this.pools, this.key(variant), entries, (all) => this.write(variant, all));
  }

  private async read(variant: CacheVariant, hashes: string[]): Promise<Map<string, CachedEmbedding>> {
    const unique = [...new Set(hashes)];
    PgEmbeddingCache.reads++;
    const rows = await runAsCallerSelected(this.pools, this.ctx, { text: READ_SQL, params: [variant.model, variantKey(variant), `{${unique.join(',')}}`] }, { readOnly: true, shareWrite: true });
    return new Map(rows.map((r) => [r.input_hash as string, { embedding: parseRealArray(r.e as string), truncated: r.t === 'true' }]));
  }

  private async write(variant: CacheVariant, entries: { h: string; e: Float32Array; t: boolean }[]): Promise<void> {
    // the same input twice in one statement would make ON CONFLICT touch a row twice
    const seen = new Set<string>();
    const unique = entries.filter((x) => !seen.has(x.h) && (seen.add(x.h), true));
    if (unique.length === 0) return;
    const dim = unique[0].e.length;
    PgEmbeddingCache.writes++;
    const params = [variant.model, variantKey(variant), `{${unique.map((x) => x.h).join(',')}}`, realArrayLiteral(unique.map((x) => x.e)), String(dim), `{${unique.map((x) => (x.t ? 't' : 'f')).join(',')}}`];
    // the cache is an optimisation: a read-only caller (or one without INSERT) just does not cache,
    // and a crash may lose the last writes, so the requests waiting for it need not wait for the WAL flush
    const ctx = { ...this.ctx, settings: [...this.ctx.settings, ['synchronous_commit', 'off'] as [string, string]] };
    await runAsCallerSelected(this.pools, ctx, { text: WRITE_SQL, params }, { readOnly: false });
  }
}
