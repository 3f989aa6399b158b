import { Authenticator } from './auth/jwt.ts';
import { applyDbSettings, type Config } from './config.ts';
import { Pool } from './db/pool.ts';
import { SchemaCache } from './schema/cache.ts';
import { ReloadListener } from './schema/listener.ts';
import { ModelCache } from './ml/serving.ts';
import type { ArtifactLimits } from './ml/artifact-limits.ts';
import { JobWorker } from './ml/jobs.ts';
import { TrainingHeartbeat, TrainingSlots } from './ml/training-slots.ts';
import type { MlDeps } from './ml/service.ts';
import { createEmbedder, embedConfigFromEnv, withCache, type Embedder, type EmbedConfig } from './embed/index.ts';
import { PgEmbeddingCache } from './embed/pg-cache.ts';
import type { CallerContext } from './db/as-caller.ts';
import { searchPath } from './rest/context.ts';
import { BridgeNotices } from './bridge/calls.ts';
import { Metrics } from './metrics.ts';
import { createRequestPool } from './db/wire/select.ts';
import type { WirePool } from './db/wire/pool.ts';

export interface Logger {
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
  error(obj: unknown, msg?: string): void;
}

export function artifactLimits(c: Config): ArtifactLimits {
  return { maxFeatures: c.maxFeatures, maxClasses: c.maxClasses, maxTrees: c.maxTrees, maxTreeDepth: c.maxTreeDepth, maxTreeNodes: c.maxTreeNodes, maxCategories: c.maxCategories, maxModelBytes: c.modelMaxBytes };
}

/** auto: the one-round-trip pipeline (with or without TLS), unless the URI is a key=value string */
export function resolveDbClient(choice: Config['dbClient'], uri: string): 'postgres' | 'pipeline' {
  if (choice !== 'auto') return choice;
  try {
    new URL(uri);
  } catch {
    return 'postgres'; // a key=value connection string: leave it to postgres.js
  }
  return 'pipeline';
}

/** The long-lived resources of one gateway process: pool, schema cache, authenticator, listener. */
export class Gateway {
  config: Config;
  auth!: Authenticator;
  readonly pool: Pool;
  /** the one-round-trip request pool (PGML_DB_CLIENT=pipeline); null = requests use `pool` */
  readonly wirePool: WirePool | null;
  readonly cache: SchemaCache;
  private listener: ReloadListener | null = null;
  readonly models: ModelCache;
  readonly bridgeNotices = new BridgeNotices(() => ({
    maxCalls: this.config.bridgeMaxCalls,
    maxRoundBytes: this.config.bridgeMaxRoundBytes,
    maxFeatures: this.config.bridgeMaxFeatures,
    maxInputChars: this.embedConfig.maxInputChars,
  }));
  readonly metrics: Metrics = new Metrics({
    pool: () => {
      const a = this.pool.stats;
      const b = this.wirePool?.stats ?? { max: 0, inUse: 0, waiting: 0 };
      return { max: a.max + b.max, inUse: a.inUse + b.inUse, waiting: a.waiting + b.waiting };
    },
    schemaReloads: () => this.cache.reloads,
    modelsCached: () => ({ count: this.models.size, bytes: this.models.bytes }),
    embeddingCache: () => ({ hits: PgEmbeddingCache.hits, misses: PgEmbeddingCache.misses }),
    embeddingBatches: () => (this.embedderInstance?.loaded() ?? []).map((m) => ({ model: m.name, ...m.batches })),
    requestBatches: () => this.wirePool?.batcher?.stats ?? { batches: 0, groups: 0 },
  });
  jobWorker: JobWorker | null = null;
  /** trainings running in this process (bounded; their model rows heart-beaten) */
  readonly trainings: TrainingSlots;
  private trainingHeartbeat: TrainingHeartbeat | null = null;
  readonly embedConfig: EmbedConfig = embedConfigFromEnv();
  private embedderInstance: Embedder | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private closed = false;
  draining = false;

  /** the role the pool logs in as (PostgREST's authenticator) */
  readonly sessionRole: string;

  constructor(readonly baseConfig: Config, private readonly log: Logger) {
    if (!baseConfig.dbUri) throw new Error('Gateway needs a database URI');
    this.sessionRole = decodeURIComponent(new URL(baseConfig.dbUri).username) || process.env.PGUSER || process.env.USER || 'postgres';
    this.config = baseConfig;
    // PGRST_DB_POOL bounds the connections: with the pipeline client it is split, most for the
    // request path (/rpc, tables), the rest for postgres.js (ML catalog, jobs, embeddings cache)
    const client = resolveDbClient(baseConfig.dbClient, baseConfig.dbUri);
    const catalogShare = client === 'pipeline' && baseConfig.dbPool > 1 ? Math.max(1, Math.round(baseConfig.dbPool * 0.3)) : baseConfig.dbPool;
    this.pool = new Pool({
      onNotice: this.bridgeNotices.onNotice,
      onAcquisitionTimeout: () => this.metrics.poolTimeouts.inc(),
      uri: baseConfig.dbUri,
      max: catalogShare,
      acquisitionTimeout: baseConfig.dbPoolAcquisitionTimeout * 1000,
      prepare: baseConfig.dbPreparedStatements,
    });
    this.wirePool = createRequestPool(
      {
        uri: baseConfig.dbUri,
        max: Math.max(1, baseConfig.dbPool - catalogShare),
        acquisitionTimeout: baseConfig.dbPoolAcquisitionTimeout * 1000,
        prepare: baseConfig.dbPreparedStatements,
        onNotice: this.bridgeNotices.onNotice,
        onAcquisitionTimeout: () => this.metrics.poolTimeouts.inc(),
        batchGroups: baseConfig.dbBatch,
      },
      { PGML_DB_CLIENT: client },
    );
    this.cache = new SchemaCache(this.pool.sql, () => this.config.dbSchemas);
    this.trainings = new TrainingSlots({ perProcess: baseConfig.trainConcurrency, perRole: baseConfig.trainConcurrencyPerRole });
    this.models = new ModelCache(64, baseConfig.predictThreads, { maxBytes: baseConfig.modelCacheBytes, limits: artifactLimits(baseConfig) });
    this.models.onLoad = (s) => {
      this.metrics.modelLoads.inc();
      this.metrics.modelLoadSeconds.observe(s);
    };
  }

  /** Loads config and schema cache; if the database is not reachable yet, keeps retrying in the background. */
  async start(opts: { waitForDatabase: boolean } = { waitForDatabase: true }): Promise<void> {
    this.auth = await this.authenticatorFor(this.config);
    const attempt = async (): Promise<boolean> => {
      try {
        await this.reloadConfig();
        await this.cache.reload();
        if (this.config.dbChannelEnabled && !this.listener) {
          this.listener = new ReloadListener(this.pool.sql, this.config.dbChannel, {
            reloadSchema: () => void this.reloadSchema(),
            reloadConfig: () => void this.reloadConfig().then(() => this.reloadSchema()),
            announced: () => this.cache.announce(),
            log: (m) => this.log.info(m),
          });
          await this.listener.start();
        }
        await this.startJobWorker();
        return true;
      } catch (e) {
        this.log.warn({ err: e }, 'database not ready; retrying');
        return false;
      }
    };
    if (await attempt()) return;
    if (opts.waitForDatabase) {
      while (!this.closed && !(await attempt())) await new Promise((r) => setTimeout(r, 500));
      return;
    }
    const retry = async () => {
      if (this.closed || (await attempt())) return;
      this.retryTimer = setTimeout(retry, 1000);
    };
    this.retryTimer = setTimeout(retry, 1000);
  }

  async reloadSchema(): Promise<void> {
    try {
      const snap = await this.cache.reload();
      this.log.info({ functions: snap.reflection.functions.length, tables: snap.reflection.tables.length }, 'schema cache reloaded');
    } catch (e) {
      this.log.error({ err: e }, 'schema cache reload failed');
    }
  }

  /** Re-reads in-database settings (ALTER ROLE authenticator SET pgrst.*). */
  async reloadConfig(): Promise<void> {
    if (!this.baseConfig.dbConfig) return;
    const rows = await this.pool.sql`
      select split_part(kv, '=', 1) as k, substr(kv, strpos(kv, '=') + 1) as v
      from pg_db_role_setting s cross join unnest(s.setconfig) kv
      where s.setrole = (select oid from pg_roles where rolname = current_user)
        and s.setdatabase in (0, (select oid from pg_database where datname = current_database()))
        and kv like 'pgrst.%'`;
    const next = applyDbSettings(this.baseConfig, Object.fromEntries(rows.map((r) => [r.k as string, r.v as string])));
    const authChanged = ['jwtSecret', 'jwtAud', 'jwtRoleClaimKey', 'dbAnonRole'].some((k) => next[k as keyof Config] !== this.config[k as keyof Config]);
    this.config = next;
    if (authChanged || !this.auth) this.auth = await this.authenticatorFor(next);
  }

  private authenticatorFor(c: Config): Promise<Authenticator> {
    return Authenticator.create({ secret: c.jwtSecret, secretIsBase64: c.jwtSecretIsBase64, audience: c.jwtAud, roleClaimKey: c.jwtRoleClaimKey, anonRole: c.dbAnonRole });
  }

  get ml(): MlDeps {
    return { pool: this.pool, wirePool: this.wirePool, models: this.models, limits: { maxRows: this.config.trainMaxRows, timeoutMs: this.config.trainTimeout * 1000, ...artifactLimits(this.config), maxSearchCandidates: this.config.maxSearchCandidates }, metrics: this.metrics, trainings: this.trainings };
  }

  /** A caller context for work done on behalf of a role outside an HTTP request (queued jobs). */
  contextForRole(role: string, path: string): CallerContext {
    const schema = this.config.dbSchemas[0];
    return {
      role,
      claims: { role },
      method: 'JOB',
      path,
      headers: {},
      cookies: {},
      settings: [['search_path', searchPath(schema, this.config.dbExtraSearchPath)], ...(this.cache.maybeCurrent?.roleSettings(role) ?? [])],
    };
  }

  async startJobWorker(): Promise<void> {
    if (!this.trainingHeartbeat) {
      this.trainingHeartbeat = new TrainingHeartbeat(this.pool.sql, this.trainings, this.config.jobStaleSeconds, this.log);
      await this.trainingHeartbeat.start();
    }
    if (!this.config.jobWorker || this.config.jobConcurrency === 0 || this.jobWorker) return;
    this.jobWorker = new JobWorker({
      deps: this.ml,
      sql: this.pool.sql,
      slots: this.trainings,
      concurrency: this.config.jobConcurrency,
      maxRunningPerOwner: this.config.jobMaxRunningPerOwner,
      contextFor: (role, id) => this.contextForRole(role, `/models/jobs/${id}`),
      log: this.log,
      staleSeconds: this.config.jobStaleSeconds,
      pollMs: Math.min(5000, this.config.jobStaleSeconds * 500),
    });
    const worker = this.jobWorker;
    this.trainings.onTrainingEnd = () => worker.kick();
    await worker.start();
  }

  /** The local embedder (models load lazily on first use). */
  get embedder(): Embedder {
    this.embedderInstance ??= createEmbedder(this.embedConfig);
    return this.embedderInstance;
  }

  /** The embedder behind the caller's own slice of the pgml.embeddings cache. */
  embedderFor(ctx: CallerContext): Embedder {
    return withCache(this.embedder, new PgEmbeddingCache(this, ctx), this.embedConfig, (err) => this.log.warn({ err }, 'embeddings cache unavailable'));
  }

  get ready(): boolean {
    return this.cache.ready && !this.draining;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.listener?.stop();
    await this.jobWorker?.stop();
    this.trainingHeartbeat?.stop();
    await this.embedderInstance?.close();
    await this.models.close();
    await this.wirePool?.end();
    await this.pool.end(5);
  }
}
