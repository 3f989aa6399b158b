import { availableParallelism } from 'node:os';

/**
 * One typed configuration, read from environment variables (PostgREST's PGRST_* names where
 * they overlap) and command-line flags (--server-port=3001 is PGRST_SERVER_PORT).
 */

export interface Config {
  /** connection string the request pool uses (PostgREST's authenticator); undefined = embedded */
  dbUri?: string;
  /** connection used to apply migrations; defaults to dbUri */
  migrationDbUri?: string;
  dbSchemas: string[];
  dbExtraSearchPath: string[];
  dbAnonRole?: string;
  dbPool: number;
  /** seconds */
  dbPoolAcquisitionTimeout: number;
  dbMaxRows?: number;
  dbPreRequest?: string;
  dbChannel: string;
  dbChannelEnabled: boolean;
  dbPreparedStatements: boolean;
  /** read pgrst.* settings of the authenticator role (ALTER ROLE authenticator SET pgrst.db_anon_role = ...) */
  dbConfig: boolean;
  dbMigrate: boolean;
  jwtSecret?: string;
  jwtSecretIsBase64: boolean;
  jwtAud?: string;
  jwtRoleClaimKey: string;
  serverHost: string;
  serverPort: number;
  /** bytes */
  maxBodyBytes: number;
  /** deepest nesting of arrays/objects accepted in a JSON body */
  maxJsonDepth: number;
  /** seconds a SIGTERM waits for in-flight requests */
  shutdownTimeout: number;
  logLevel: string;
  embeddedDataDir: string;
  embeddedPort: number;
  trainMaxRows: number;
  /** seconds */
  trainTimeout: number;
  /** run queued training jobs in this process */
  jobWorker: boolean;
  /** trainings (synchronous and jobs) running at once in this process; more synchronous ones get 429 */
  trainConcurrency: number;
  /** trainings of one role running at once in this process; more synchronous ones get 429 */
  trainConcurrencyPerRole: number;
  /** queued jobs this process runs at once (each also takes a training slot) */
  jobConcurrency: number;
  /** running jobs of one owner across all replicas; its further jobs wait while others' run */
  jobMaxRunningPerOwner: number;
  /** seconds without a heartbeat after which a running job is retried (once) or failed */
  jobStaleSeconds: number;
  /** HTTP worker processes (node:cluster) sharing the port and, split between them, the pool */
  workers: number;
  /** separate port for /metrics, /live, /ready (PostgREST's admin server); unset = on the main port */
  adminPort?: number;
  /** aggregate functions in select= (PostgREST's db-aggregates-enabled) */
  dbAggregatesEnabled: boolean;
  /** refuse PATCH/DELETE without a filter, as pg-safeupdate does */
  dbSafeUpdate: boolean;
  /** request-path client: the one-round-trip pipeline, postgres.js, or auto (pipeline unless the URI asks for TLS) */
  dbClient: 'auto' | 'postgres' | 'pipeline';
  /** read-only request groups sent to PostgreSQL in one write (0: no implicit-transaction path) */
  dbBatch: number;
  /** limits on what SQL may report to the bridge (src/bridge/report.ts): distinct calls and report bytes per round, features per predict */
  bridgeMaxCalls: number;
  bridgeMaxRoundBytes: number;
  bridgeMaxFeatures: number;
  /** threads a large tree-model predict batch is split over (the calling thread + workers) */
  predictThreads: number;
  /** artifact and training size limits (src/ml/artifact-limits.ts); each is checked before allocating */
  maxFeatures: number;
  maxClasses: number;
  maxTrees: number;
  maxTreeDepth: number;
  maxTreeNodes: number;
  maxCategories: number;
  maxSearchCandidates: number;
  /** bytes one loaded model may take in memory */
  modelMaxBytes: number;
  /** bytes all loaded models may take together (least recently used dropped above) */
  modelCacheBytes: number;
  /** let requests without a token (the anonymous role) import ONNX models */
  importAllowAnonymous: boolean;
}

export class ConfigError extends Error {
  constructor(readonly variable: string, problem: string) {
    super(`${variable}: ${problem}`);
  }
}

interface Option {
  key: keyof Config;
  env: string[];
  help: string;
  parse: (raw: string, variable: string) => unknown;
  default?: unknown;
}

const str = (raw: string) => raw;
const list = (raw: string) => raw.split(',').map((s) => s.trim()).filter(Boolean);
const bool = (raw: string, variable: string) => {
  const v = raw.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(variable, `expected true or false, got ${JSON.stringify(raw)}`);
};
const int = (min: number, max = Number.MAX_SAFE_INTEGER) => (raw: string, variable: string) => {
  const n = Number(raw);
  if (!/^\s*-?\d+\s*$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new ConfigError(variable, `expected an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return n;
};
const dbUri = (raw: string, variable: string) => {
  if (!/^postgres(ql)?:\/\//.test(raw) && !/^(host|dbname|user)=/.test(raw)) {
    throw new ConfigError(variable, 'expected a postgres:// or postgresql:// connection URI');
  }
  return raw;
};
const roleClaimKey = (raw: string, variable: string) => {
  if (!/^(\.("[^"]+"|[A-Za-z0-9_$-]+)|\[\d+\])+$/.test(raw)) {
    throw new ConfigError(variable, `expected a JSPath such as .role or .app_metadata.role, got ${JSON.stringify(raw)}`);
  }
  return raw;
};
const logLevel = (raw: string, variable: string) => {
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent', 'crit'];
  if (!levels.includes(raw)) throw new ConfigError(variable, `expected one of ${levels.join(', ')}`);
  return raw === 'crit' ? 'fatal' : raw;
};

export const OPTIONS: Option[] = [
  { key: 'dbUri', env: ['PGRST_DB_URI', 'DATABASE_URL'], parse: dbUri, help: 'PostgreSQL URI of the authenticator role. Unset: run an embedded PostgreSQL.' },
  { key: 'migrationDbUri', env: ['PGML_MIGRATION_DB_URI'], parse: dbUri, help: 'URI of a role allowed to create the pgml schema (default: PGRST_DB_URI).' },
  { key: 'dbSchemas', env: ['PGRST_DB_SCHEMAS', 'PGRST_DB_SCHEMA'], parse: list, default: ['public'], help: 'Comma-separated schemas exposed over HTTP; the first is the default.' },
  { key: 'dbExtraSearchPath', env: ['PGRST_DB_EXTRA_SEARCH_PATH'], parse: list, default: ['public'], help: 'Schemas appended to search_path of every request.' },
  { key: 'dbAnonRole', env: ['PGRST_DB_ANON_ROLE'], parse: str, help: 'Role for requests without a token. Unset: such requests get 401.' },
  { key: 'dbPool', env: ['PGRST_DB_POOL'], parse: int(1, 1000), default: 10, help: 'Maximum connections in the pool.' },
  { key: 'dbPoolAcquisitionTimeout', env: ['PGRST_DB_POOL_ACQUISITION_TIMEOUT'], parse: int(1, 3600), default: 10, help: 'Seconds to wait for a free connection before answering 504.' },
  { key: 'dbMaxRows', env: ['PGRST_DB_MAX_ROWS'], parse: int(1), help: 'Upper bound on rows returned by a read.' },
  { key: 'dbPreRequest', env: ['PGRST_DB_PRE_REQUEST'], parse: str, help: 'Function (schema.name) called before every request, in its transaction.' },
  { key: 'dbChannel', env: ['PGRST_DB_CHANNEL'], parse: str, default: 'pgrst', help: 'LISTEN channel for "reload schema" / "reload config".' },
  { key: 'dbChannelEnabled', env: ['PGRST_DB_CHANNEL_ENABLED'], parse: bool, default: true, help: 'Listen for reload notifications.' },
  { key: 'dbPreparedStatements', env: ['PGRST_DB_PREPARED_STATEMENTS'], parse: bool, default: true, help: 'Use prepared statements (turn off behind pgbouncer in transaction mode).' },
  { key: 'dbConfig', env: ['PGRST_DB_CONFIG'], parse: bool, default: true, help: 'Read pgrst.* settings of the connecting role from the database.' },
  { key: 'dbMigrate', env: ['PGML_MIGRATE'], parse: bool, default: true, help: 'Apply pending sql/ migrations at start.' },
  { key: 'jwtSecret', env: ['PGRST_JWT_SECRET'], parse: str, help: 'HS256 secret (at least 32 characters), or a JWK / JWKS JSON document.' },
  { key: 'jwtSecretIsBase64', env: ['PGRST_JWT_SECRET_IS_BASE64'], parse: bool, default: false, help: 'The HS secret is base64-encoded.' },
  { key: 'jwtAud', env: ['PGRST_JWT_AUD'], parse: str, help: 'Required "aud" claim of tokens.' },
  { key: 'jwtRoleClaimKey', env: ['PGRST_JWT_ROLE_CLAIM_KEY'], parse: roleClaimKey, default: '.role', help: 'JSPath of the role in the JWT claims.' },
  { key: 'serverHost', env: ['PGRST_SERVER_HOST'], parse: str, default: '0.0.0.0', help: 'Address to listen on.' },
  { key: 'serverPort', env: ['PGRST_SERVER_PORT', 'PORT'], parse: int(0, 65535), default: 3000, help: 'Port to listen on.' },
  { key: 'maxBodyBytes', env: ['PGML_MAX_BODY_BYTES'], parse: int(1024), default: 10 * 1024 * 1024, help: 'Largest request body accepted (413 above).' },
  { key: 'maxJsonDepth', env: ['PGML_MAX_JSON_DEPTH'], parse: int(8, 10_000), default: 512, help: 'Deepest nesting of arrays and objects in a JSON body (400 above).' },
  { key: 'shutdownTimeout', env: ['PGML_SHUTDOWN_TIMEOUT'], parse: int(0, 3600), default: 20, help: 'Seconds SIGTERM waits for in-flight requests.' },
  { key: 'logLevel', env: ['PGRST_LOG_LEVEL', 'LOG_LEVEL'], parse: logLevel, default: 'info', help: 'fatal, error, warn, info, debug, trace or silent.' },
  { key: 'embeddedDataDir', env: ['PGML_DATA_DIR'], parse: str, default: '.pgdata', help: 'Data directory of the embedded PostgreSQL (kept across restarts).' },
  { key: 'embeddedPort', env: ['PGML_EMBEDDED_PORT'], parse: int(1, 65535), default: 54329, help: 'Port of the embedded PostgreSQL.' },
  { key: 'trainMaxRows', env: ['PGML_TRAIN_MAX_ROWS'], parse: int(1), default: 5_000_000, help: 'Largest relation training reads (400 above).' },
  { key: 'trainTimeout', env: ['PGML_TRAIN_TIMEOUT'], parse: int(1), default: 3600, help: 'Seconds a training may run before it is stopped and marked failed.' },
  { key: 'workers', env: ['PGML_WORKERS'], parse: int(1, 64), default: 1, help: 'Worker processes serving HTTP on the same port; PGRST_DB_POOL is split between them.' },
  { key: 'adminPort', env: ['PGRST_ADMIN_SERVER_PORT', 'PGML_ADMIN_PORT'], parse: int(1, 65535), help: 'Serve /metrics, /live and /ready on this port (and /metrics not on the main port).' },
  { key: 'dbClient', env: ['PGML_DB_CLIENT'], parse: (raw: string, variable: string) => {
      const v = raw.trim().toLowerCase();
      if (v !== 'auto' && v !== 'postgres' && v !== 'pipeline') throw new ConfigError(variable, 'expected auto, postgres or pipeline');
      return v;
    }, default: 'auto', help: 'Request-path client: pipeline (one round trip per request, no TLS), postgres (postgres.js, supports TLS), or auto = pipeline unless the URI asks for TLS.' },
  { key: 'dbBatch', env: ['PGML_DB_BATCH'], parse: int(0, 1000), default: 16, help: 'The gateway\'s own read-only statements (predict access checks, embeddings-cache reads) of requests that arrive together share one write to PostgreSQL, each in its own implicit transaction: at most this many per write; 0 = each runs BEGIN…COMMIT on its own.' },
  { key: 'bridgeMaxCalls', env: ['PGML_BRIDGE_MAX_CALLS'], parse: int(1, 10_000_000), default: 10_000, help: 'Most distinct pgml.embed / pgml.predict calls one statement may leave to the gateway in one bridge round (400 above).' },
  { key: 'bridgeMaxRoundBytes', env: ['PGML_BRIDGE_MAX_ROUND_BYTES'], parse: int(1024, 2 ** 31 - 1), default: 32 * 1024 * 1024, help: 'Most bytes of pgml.* call reports (inputs, features) one statement may send the gateway in one bridge round (400 above).' },
  { key: 'bridgeMaxFeatures', env: ['PGML_BRIDGE_MAX_FEATURES'], parse: int(1, 2 ** 30), default: 100_000, help: 'Most features one pgml.predict call inside SQL may pass (400 above).' },
  { key: 'dbAggregatesEnabled', env: ['PGRST_DB_AGGREGATES_ENABLED'], parse: bool, default: false, help: 'Allow count()/sum()/avg()/min()/max() in select (PostgREST 12).' },
  { key: 'dbSafeUpdate', env: ['PGML_SAFE_UPDATE'], parse: bool, default: false, help: 'Refuse PATCH and DELETE without a filter (as pg-safeupdate).' },
  { key: 'jobStaleSeconds', env: ['PGML_JOB_STALE_SECONDS'], parse: int(1, 86400), default: 60, help: 'Seconds without a heartbeat before a running job is retried once by another replica, then failed.' },
  { key: 'predictThreads', env: ['PGML_PREDICT_THREADS'], parse: int(1, 2), default: Math.min(2, availableParallelism()), help: 'Threads a large predict batch of a tree model is split over: 1 = the request thread only, 2 = plus one worker thread.' },
  { key: 'trainConcurrency', env: ['PGML_TRAIN_CONCURRENCY'], parse: int(1, 256), default: 4, help: 'Trainings (synchronous and queued jobs) running at once in this process; a synchronous training beyond it gets 429 with Retry-After.' },
  { key: 'trainConcurrencyPerRole', env: ['PGML_TRAIN_CONCURRENCY_PER_ROLE'], parse: int(1, 256), default: 2, help: 'Trainings of one role running at once in this process (anonymous callers share the anonymous role); a synchronous training beyond it gets 429.' },
  { key: 'jobConcurrency', env: ['PGML_JOB_CONCURRENCY'], parse: int(0, 256), default: 2, help: 'Queued training jobs this process runs at once (each also takes one of PGML_TRAIN_CONCURRENCY); 0 = claim none.' },
  { key: 'jobMaxRunningPerOwner', env: ['PGML_JOB_MAX_RUNNING_PER_OWNER'], parse: int(1, 256), default: 1, help: 'Running training jobs of one owner across all replicas; its other jobs stay queued while other owners\' jobs are claimed first.' },
  { key: 'jobWorker', env: ['PGML_JOB_WORKER'], parse: bool, default: true, help: 'Claim and run queued training jobs (pgml.jobs) in this process.' },
  { key: 'maxFeatures', env: ['PGML_MAX_FEATURES'], parse: int(1, 2 ** 30), default: 100_000, help: 'Most features (input width) a model may have: imported ONNX inputs, stored artifacts and metadata (400 on import, 422 on load above it).' },
  { key: 'maxClasses', env: ['PGML_MAX_CLASSES'], parse: int(2, 2 ** 30), default: 10_000, help: 'Most classes, regression targets or k-means clusters (n_clusters) a model may have.' },
  { key: 'maxTrees', env: ['PGML_MAX_TREES'], parse: int(1, 2 ** 30), default: 10_000, help: 'Most trees of an ensemble: n_estimators when training, and imported or stored models.' },
  { key: 'maxTreeDepth', env: ['PGML_MAX_TREE_DEPTH'], parse: int(1, 100_000), default: 512, help: 'Deepest tree: max_depth when training, and imported or stored trees (512 = the depth the trainer itself stops at).' },
  { key: 'maxTreeNodes', env: ['PGML_MAX_TREE_NODES'], parse: int(1, 2 ** 31 - 1), default: 10_000_000, help: 'Most tree nodes (all trees together) of an imported or stored model.' },
  { key: 'maxCategories', env: ['PGML_MAX_CATEGORIES'], parse: int(1, 2 ** 30), default: 100_000, help: 'Most categories (vocabulary) of one text column of a stored model.' },
  { key: 'maxSearchCandidates', env: ['PGML_MAX_SEARCH_CANDIDATES'], parse: int(1, 1_000_000), default: 1_000, help: 'Most hyperparameter combinations a search may train (grid size, or random n_iter).' },
  { key: 'modelMaxBytes', env: ['PGML_MODEL_MAX_BYTES'], parse: int(1024 * 1024), default: 256 * 1024 * 1024, help: 'Bytes one loaded model may take in memory (artifact + evaluator arrays); larger models are refused with 422.' },
  { key: 'modelCacheBytes', env: ['PGML_MODEL_CACHE_BYTES'], parse: int(1024 * 1024), default: 1024 * 1024 * 1024, help: 'Bytes all loaded models may take together; the least recently used are dropped above it.' },
  { key: 'importAllowAnonymous', env: ['PGML_IMPORT_ALLOW_ANONYMOUS'], parse: bool, default: false, help: 'Allow POST /models/{project}/import without a token (as the anonymous role); otherwise 401.' },
];

/** Flags: --server-port=3001 or --server-port 3001 map to PGRST_SERVER_PORT, etc. */
function flagsToEnv(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--') || arg === '--help') continue;
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2);
    const value = inline ?? argv[++i];
    const opt = OPTIONS.find((o) => o.env.some((e) => e.replace(/^(PGRST|PGML)_/, '').toLowerCase().replace(/_/g, '-') === name));
    if (!opt) throw new ConfigError(`--${name}`, 'unknown flag (see --help)');
    if (value === undefined) throw new ConfigError(`--${name}`, 'missing value');
    out[opt.env[0]] = value;
  }
  return out;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, argv: string[] = []): Config {
  const source = { ...env, ...flagsToEnv(argv) };
  const config: Record<string, unknown> = {};
  for (const opt of OPTIONS) {
    const variable = opt.env.find((name) => source[name] !== undefined && source[name] !== '');
    config[opt.key] = variable === undefined ? opt.default : opt.parse(source[variable]!, variable);
  }
  const c = config as unknown as Config;
  if (c.dbSchemas.length === 0) throw new ConfigError('PGRST_DB_SCHEMAS', 'at least one schema is required');
  if (c.jwtSecret !== undefined) validateJwtSecret(c.jwtSecret, c.jwtSecretIsBase64);
  if (c.dbPreRequest !== undefined && !/^[^.]+(\.[^.]+)?$/.test(c.dbPreRequest)) {
    throw new ConfigError('PGRST_DB_PRE_REQUEST', 'expected a function name, optionally schema-qualified');
  }
  return c;
}

function validateJwtSecret(secret: string, isBase64: boolean): void {
  const trimmed = secret.trim();
  if (trimmed.startsWith('{')) {
    try {
      const parsed = JSON.parse(trimmed) as { keys?: unknown; kty?: unknown };
      if (!Array.isArray(parsed.keys) && typeof parsed.kty !== 'string') throw new Error('no "kty" or "keys"');
    } catch (e) {
      throw new ConfigError('PGRST_JWT_SECRET', `looks like JSON but is not a JWK or JWKS (${(e as Error).message})`);
    }
    return;
  }
  const bytes = isBase64 ? Buffer.from(secret, 'base64').length : Buffer.byteLength(secret);
  if (bytes < 32) throw new ConfigError('PGRST_JWT_SECRET', 'an HS256 secret must be at least 32 characters long');
}

export function helpText(): string {
  const lines = [
    'pgml-gateway: PostgREST-compatible HTTP API and PostgresML-compatible ML for any PostgreSQL',
    '',
    'Usage: npm start [-- --flag value ...]    (flags are the variable names without PGRST_/PGML_, in kebab case)',
    '',
    'Environment variables:',
  ];
  for (const opt of OPTIONS) {
    const def = opt.default === undefined ? '' : ` (default: ${Array.isArray(opt.default) ? opt.default.join(',') : String(opt.default)})`;
    lines.push(`  ${opt.env.join(' | ')}`, `      ${opt.help}${def}`);
  }
  lines.push('', 'Training threads: PGML_TRAIN_THREADS (1 or 2; default: CPUs, at most 2), read by each training thread.');
  lines.push('', 'Embeddings (see README "Embeddings"): PGML_MODEL_DIR, PGML_ALLOW_REMOTE_MODELS, PGML_REMOTE_MODELS, PGML_REMOTE_HOST,',
    '  PGML_MODEL_CACHE_DIR, PGML_PRELOAD_MODELS, PGML_EMBED_DTYPE, PGML_EMBED_BATCH_WINDOW_MS, PGML_EMBED_MAX_BATCH,',
    '  PGML_EMBED_MAX_INPUTS, PGML_EMBED_MAX_INPUT_CHARS, PGML_EMBED_MAX_REQUEST_CHARS, PGML_EMBED_MEMORY_LIMIT_MB, PGML_EMBED_THREADS');
  return lines.join('\n');
}

/** pgrst.* settings stored in the database (ALTER ROLE authenticator SET pgrst.db_anon_role = 'anon'). */
export function applyDbSettings(base: Config, settings: Record<string, string>): Config {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(settings)) {
    if (key.startsWith('pgrst.')) env[`PGRST_${key.slice(6).toUpperCase()}`] = value;
  }
  const reloadable: (keyof Config)[] = ['dbAnonRole', 'dbMaxRows', 'dbPreRequest', 'dbSchemas', 'dbExtraSearchPath', 'jwtSecret', 'jwtAud', 'jwtRoleClaimKey', 'dbAggregatesEnabled'];
  const next: Config = { ...base };
  for (const opt of OPTIONS) {
    if (!reloadable.includes(opt.key)) continue;
    const variable = opt.env.find((name) => env[name] !== undefined);
    if (variable) (next as unknown as Record<string, unknown>)[opt.key] = opt.parse(env[variable], variable);
  }
  return next;
}
