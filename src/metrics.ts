/**
 * Prometheus metrics (prom-client), one registry per gateway so several gateways in one process
 * (tests, workers) keep separate counts. Route labels use the route pattern (/rpc/:name), never
 * the raw URL, to keep cardinality bounded.
 *
 * Two registries: `registry` holds what anyone may read (aggregates), `tenantRegistry` what names
 * tenants' objects (project names, model ids). The public port serves only the first; the admin
 * port (PGRST_ADMIN_SERVER_PORT) serves both, since /models is built not to reveal that a project
 * exists to a caller who cannot see it.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly tenantRegistry = new Registry();
  readonly httpRequests = new Counter({ name: 'pgml_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['method', 'route', 'status'], registers: [this.registry] });
  readonly httpDuration = new Histogram({
    name: 'pgml_http_request_duration_seconds', help: 'HTTP request latency by route and status', labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10], registers: [this.registry],
  });
  readonly poolTimeouts = new Counter({ name: 'pgml_db_pool_acquisition_timeouts_total', help: 'Requests that waited longer than PGRST_DB_POOL_ACQUISITION_TIMEOUT', registers: [this.registry] });
  readonly predictions = new Counter({ name: 'pgml_predictions_total', help: 'Rows predicted, by project and model id (admin port only)', labelNames: ['project', 'model_id'], registers: [this.tenantRegistry] });
  readonly predictedRows = new Counter({ name: 'pgml_predicted_rows_total', help: 'Rows predicted, all projects', registers: [this.registry] });
  readonly predictionDuration = new Histogram({
    name: 'pgml_prediction_duration_seconds', help: 'Time to evaluate one predict request (model evaluation only)',
    buckets: [0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5], registers: [this.registry],
  });
  readonly predictionBatchRows = new Histogram({ name: 'pgml_prediction_batch_rows', help: 'Rows per predict request', buckets: [1, 2, 8, 32, 128, 256, 1024, 4096, 16384], registers: [this.registry] });
  readonly bridgeCalls = new Counter({ name: 'pgml_bridge_calls_total', help: 'pgml.* calls computed for SQL by the bridge', labelNames: ['fn'], registers: [this.registry] });
  readonly bridgeRounds = new Histogram({ name: 'pgml_bridge_rounds', help: 'Attempts per request that used the bridge', buckets: [1, 2, 3, 4, 5], registers: [this.registry] });
  readonly modelLoads = new Counter({ name: 'pgml_model_loads_total', help: 'Model artifacts loaded into memory', registers: [this.registry] });
  readonly modelLoadSeconds = new Histogram({ name: 'pgml_model_load_seconds', help: 'Time to load a model artifact', buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers: [this.registry] });
  readonly trainingJobs = new Counter({ name: 'pgml_training_total', help: 'Trainings finished, by outcome (succeeded, failed, cancelled)', labelNames: ['status'], registers: [this.registry] });
  readonly trainingSeconds = new Histogram({ name: 'pgml_training_duration_seconds', help: 'Wall time of a training', labelNames: ['status'], buckets: [0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800], registers: [this.registry] });

  /** Both registries' text, for the admin port. */
  async all(): Promise<string> {
    return (await this.registry.metrics()) + '\n' + (await this.tenantRegistry.metrics());
  }

  /** One predict request's rows, counted for its project and in the aggregate. */
  countPredictions(project: string, modelId: string, rows: number): void {
    this.predictions.inc({ project, model_id: modelId }, rows);
    this.predictedRows.inc(rows);
  }

  constructor(sources: {
    pool: () => { max: number; inUse: number; waiting: number };
    schemaReloads: () => number;
    modelsCached: () => { count: number; bytes: number };
    embeddingCache: () => { hits: number; misses: number };
    embeddingBatches: () => { model: string; batches: number; items: number; maxBatchItems: number }[];
    requestBatches: () => { batches: number; groups: number };
  }) {
    collectDefaultMetrics({ register: this.registry, prefix: 'pgml_' });
    const reg = [this.registry];
    new Gauge({
      name: 'pgml_db_pool_connections', help: 'Pool connections: max, in use by requests, requests waiting', labelNames: ['state'], registers: reg,
      collect() {
        const s = sources.pool();
        this.set({ state: 'max' }, s.max);
        this.set({ state: 'in_use' }, s.inUse);
        this.set({ state: 'waiting' }, s.waiting);
      },
    });
    new Gauge({ name: 'pgml_schema_cache_reloads', help: 'Schema cache loads since start', registers: reg, collect() { this.set(sources.schemaReloads()); } });
    new Gauge({
      name: 'pgml_models_cached', help: 'Model artifacts held in memory (count, bytes)', labelNames: ['unit'], registers: reg,
      collect() {
        const m = sources.modelsCached();
        this.set({ unit: 'count' }, m.count);
        this.set({ unit: 'bytes' }, m.bytes);
      },
    });
    new Gauge({
      name: 'pgml_embedding_cache_lookups', help: 'pgml.embeddings cache lookups by result', labelNames: ['result'], registers: reg,
      collect() {
        const c = sources.embeddingCache();
        this.set({ result: 'hit' }, c.hits);
        this.set({ result: 'miss' }, c.misses);
      },
    });
    new Gauge({
      name: 'pgml_db_request_batches', help: 'Read-only requests sent to PostgreSQL together, each in its own implicit transaction (requests per write = requests / writes)', labelNames: ['what'], registers: reg,
      collect() {
        const b = sources.requestBatches();
        this.set({ what: 'writes' }, b.batches);
        this.set({ what: 'requests' }, b.groups);
      },
    });
    new Gauge({
      name: 'pgml_embedding_batches', help: 'Embedding model runs and inputs per model (mean batch size = items / batches)', labelNames: ['model', 'what'], registers: reg,
      collect() {
        this.reset();
        for (const b of sources.embeddingBatches()) {
          this.set({ model: b.model, what: 'batches' }, b.batches);
          this.set({ model: b.model, what: 'items' }, b.items);
          this.set({ model: b.model, what: 'max_batch_items' }, b.maxBatchItems);
        }
      },
    });
  }
}
