import postgres, { type Sql, type TransactionSql } from 'postgres';
import { postgresJsSsl, tlsSettings, withoutTlsParams } from './wire/tls.ts';
import { ApiError, apiError } from '../errors.ts';

export interface PoolOptions {
  uri: string;
  max: number;
  /** ms to wait for a free connection */
  acquisitionTimeout: number;
  prepare: boolean;
  applicationName?: string;
  /** `source` names the backend when the client knows it (the pipeline client does) */
  onNotice?: (notice: { message?: string; detail?: string }, source?: { pid: number }) => void;
  onAcquisitionTimeout?: () => void;
}

/** The pool could not hand out a connection in time: PostgREST's 504 PGRST003. */
export class PoolTimeoutError extends Error {
  constructor(readonly waitedMs: number) {
    super(`Timed out acquiring connection from connection pool.`);
  }

  toApiError(): ApiError {
    return apiError(504, 'PGRST003', 'Timed out acquiring connection from connection pool.', `No connection became free within ${this.waitedMs} ms`, 'Raise PGRST_DB_POOL or PGRST_DB_POOL_ACQUISITION_TIMEOUT, or look for long-running requests');
  }
}

/** The database could not be reached: PostgREST's 503 PGRST001. */
export class DatabaseUnavailableError extends Error {
  constructor(override readonly cause: unknown) {
    super(`Database connection error. Retrying the connection.`);
  }

  toApiError(): ApiError {
    const err = apiError(503, 'PGRST001', 'Database connection error. Retrying the connection.', String((this.cause as Error)?.message ?? this.cause), null);
    err.headers['Retry-After'] = '1';
    return err;
  }
}

const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH',
  'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT',
]);

export function isConnectionError(e: unknown): boolean {
  if (!e || typeof e !== 'object') return false;
  const code = (e as { code?: unknown }).code;
  if (typeof code !== 'string') return false;
  // 57P01 admin_shutdown / 57P02 crash_shutdown / 57P03 cannot_connect_now arrive while a server stops or starts
  return CONNECTION_ERROR_CODES.has(code) || code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03';
}

/**
 * postgres.js on a URI whose TLS parameters are read as libpq reads them (sslmode, sslrootcert,
 * sslcert/sslkey), the same way as the pipeline client; postgres.js alone would ignore some and
 * pass the others to the server as settings. A key=value string is passed through as is.
 */
export function connectPostgresJs(uri: string, options: postgres.Options<Record<string, postgres.PostgresType>>): Sql {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return postgres(uri, options);
  }
  const ssl = postgresJsSsl(tlsSettings(url.searchParams), url.hostname.replace(/^\[|\]$/g, ''));
  return postgres(withoutTlsParams(uri), { ...options, ssl });
}

/** A postgres.js pool with an acquisition timeout and connection-error classification. */
export class Pool {
  readonly sql: Sql;
  private waiting = 0;
  private inUse = 0;

  constructor(readonly options: PoolOptions) {
    this.sql = connectPostgresJs(options.uri, {
      max: options.max,
      prepare: options.prepare,
      connect_timeout: Math.max(1, Math.ceil(options.acquisitionTimeout / 1000)),
      idle_timeout: 60,
      max_lifetime: 60 * 30,
      onnotice: options.onNotice ?? (() => {}),
      connection: { application_name: options.applicationName ?? 'pgml-gateway' },
      types: {},
      // postgres.js refuses an undefined parameter in a way that never releases a transaction's
      // connection (a forged bridge report once leaked the pool this way): send it as NULL
      transform: { undefined: null },
    });
  }

  get stats(): { max: number; inUse: number; waiting: number } {
    return { max: this.options.max, inUse: this.inUse, waiting: this.waiting };
  }

  /**
   * Runs fn in a transaction (BEGIN options e.g. "read only"). Rejects with PoolTimeoutError when
   * no connection frees up within the acquisition timeout, DatabaseUnavailableError when the
   * server cannot be reached. A transaction that starts after its timeout fired is rolled back.
   */
  async transaction<T>(mode: string, fn: (tx: TransactionSql) => Promise<T>): Promise<T> {
    this.waiting++;
    let started = false;
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const work = this.sql.begin(mode, async (tx) => {
      if (timedOut) throw new PoolTimeoutError(this.options.acquisitionTimeout);
      started = true;
      clearTimeout(timer);
      this.waiting--;
      this.inUse++;
      try {
        return await fn(tx);
      } finally {
        this.inUse--;
      }
    }) as Promise<T>;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        if (started) return;
        timedOut = true;
        this.waiting--;
        this.options.onAcquisitionTimeout?.();
        work.catch(() => {});
        reject(new PoolTimeoutError(this.options.acquisitionTimeout));
      }, this.options.acquisitionTimeout);
    });
    try {
      return await Promise.race([work, timeout]);
    } catch (e) {
      if (!started && !timedOut) this.waiting--;
      if (isConnectionError(e)) throw new DatabaseUnavailableError(e);
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  async ping(): Promise<boolean> {
    try {
      await this.sql`select 1`;
      return true;
    } catch {
      return false;
    }
  }

  end(timeoutSeconds = 5): Promise<void> {
    return this.sql.end({ timeout: timeoutSeconds });
  }
}
