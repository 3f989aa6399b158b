/**
 * A pool of WireConnections. A connection whose socket closed is dropped at once (idle or not) and
 * never handed out again; requests waiting when one is dropped get a fresh connection attempt, and
 * a failed attempt fails one waiter with DatabaseUnavailableError instead of letting it hang.
 */
import type { NoticeMessage } from 'pg-protocol/dist/messages.js';
import { DatabaseUnavailableError, PoolTimeoutError, type PoolOptions } from '../pool.ts';
import { parseWireUri, type WireConfig } from './config.ts';
import { WireConnection } from './connection.ts';
import { ImplicitBatcher } from './batcher.ts';

export interface WirePoolOptions extends Omit<PoolOptions, 'onNotice'> {
  onNotice?: (notice: NoticeMessage, conn: WireConnection) => void;
  /** prepared statements kept per connection (LRU); default 256 */
  statementCacheSize?: number;
  /** close connections idle this long; default 60 s */
  idleTimeoutMs?: number;
  /** close idle connections older than this; default 30 min */
  maxLifetimeMs?: number;
  /**
   * implicit-transaction groups sent together in one write (ImplicitBatcher); 0 turns the
   * implicit path off (every request then runs BEGIN…COMMIT); default 16
   */
  batchGroups?: number;
}

interface Waiter {
  resolve: (c: WireConnection) => void;
  reject: (e: unknown) => void;
  timer: NodeJS.Timeout;
}

export class WirePool {
  readonly config: WireConfig;
  private readonly idle: WireConnection[] = [];
  private readonly waiters: Waiter[] = [];
  /** connections open or opening */
  private total = 0;
  private connecting = 0;
  private inUse = 0;
  private ended = false;
  private readonly sweeper: NodeJS.Timeout;
  /** null when PGML_DB_BATCH=0 */
  readonly batcher: ImplicitBatcher | null;

  constructor(readonly options: WirePoolOptions) {
    this.config = parseWireUri(options.uri, options.applicationName);
    const groups = options.batchGroups ?? 16;
    this.batcher = groups > 0 ? new ImplicitBatcher(this, groups) : null;
    this.sweeper = setInterval(() => this.sweep(), 5000).unref();
  }

  get stats(): { max: number; inUse: number; waiting: number } {
    return { max: this.options.max, inUse: this.inUse, waiting: this.waiters.length };
  }

  /**
   * Runs fn on a connection. A connection left in a transaction (a failed step leaves it
   * aborted, status E) is rolled back before it returns to the pool; fn's result does not wait
   * for that.
   */
  async use<T>(fn: (conn: WireConnection) => Promise<T>): Promise<T> {
    const conn = await this.acquire();
    try {
      return await fn(conn);
    } finally {
      this.release(conn);
    }
  }

  acquire(): Promise<WireConnection> {
    if (this.ended) return Promise.reject(new DatabaseUnavailableError(new Error('the pool was closed')));
    let conn: WireConnection | undefined;
    while ((conn = this.idle.pop())) {
      if (!conn.broken) {
        this.inUse++;
        return Promise.resolve(conn);
      }
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const i = this.waiters.indexOf(waiter);
          if (i < 0) return;
          this.waiters.splice(i, 1);
          this.options.onAcquisitionTimeout?.();
          reject(new PoolTimeoutError(this.options.acquisitionTimeout));
        }, this.options.acquisitionTimeout),
      };
      this.waiters.push(waiter);
      if (this.total < this.options.max) this.spawn();
    });
  }

  release(conn: WireConnection): void {
    this.inUse--;
    // closing also ends an open transaction server-side, so nothing is left idle in transaction
    if (conn.broken || this.ended || conn.cancelRequested) return this.discard(conn);
    if (!conn.idle) {
      // fn gave up in the middle of a round (should not happen): the socket state is unknown
      conn.destroy();
      return this.discard(conn);
    }
    if (conn.status === 'I') return this.hand(conn);
    this.inUse++;
    conn.query('rollback');
    conn.send();
    conn.until(() => conn.idle).then(
      () => this.release(conn),
      () => {
        this.inUse--;
        this.discard(conn);
      },
    );
  }

  async ping(): Promise<boolean> {
    try {
      await this.use(async (conn) => {
        const slot = conn.query('select 1');
        conn.send();
        await conn.until(() => conn.idle);
        if (slot.error) throw slot.error;
      });
      return true;
    } catch {
      return false;
    }
  }

  async end(): Promise<void> {
    this.ended = true;
    clearInterval(this.sweeper);
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new DatabaseUnavailableError(new Error('the pool was closed')));
    }
    for (const c of this.idle.splice(0)) c.close();
  }

  private spawn(): void {
    this.total++;
    this.connecting++;
    WireConnection.connect(this.config, {
      prepare: this.options.prepare,
      statementCacheSize: this.options.statementCacheSize ?? 256,
      connectTimeoutMs: this.options.acquisitionTimeout,
      onNotice: this.options.onNotice,
    }).then(
      (conn) => {
        this.connecting--;
        conn.onClose = () => this.onIdleClose(conn);
        if (this.ended) {
          this.total--;
          return conn.close();
        }
        this.hand(conn);
      },
      (e: unknown) => {
        this.total--;
        this.connecting--;
        const w = this.waiters.shift();
        if (w) {
          clearTimeout(w.timer);
          w.reject(new DatabaseUnavailableError(e));
        }
        this.spawnForWaiters();
      },
    );
  }

  private hand(conn: WireConnection): void {
    const w = this.waiters.shift();
    if (w) {
      clearTimeout(w.timer);
      this.inUse++;
      w.resolve(conn);
      return;
    }
    conn.lastUsed = Date.now();
    this.idle.push(conn);
  }

  private discard(conn: WireConnection): void {
    conn.onClose = null;
    if (!conn.broken) conn.close();
    this.total--;
    this.spawnForWaiters();
  }

  /** Waiters with no connection on its way get one (while under max). */
  private spawnForWaiters(): void {
    if (!this.ended && this.waiters.length > this.connecting && this.total < this.options.max) this.spawn();
  }

  private onIdleClose(conn: WireConnection): void {
    const i = this.idle.indexOf(conn);
    if (i < 0) return; // in use: release() discards it
    this.idle.splice(i, 1);
    conn.onClose = null;
    this.total--;
  }

  private sweep(): void {
    const now = Date.now();
    const idleMs = this.options.idleTimeoutMs ?? 60_000;
    const lifeMs = this.options.maxLifetimeMs ?? 30 * 60_000;
    for (const c of [...this.idle]) {
      if (now - c.lastUsed > idleMs || now - c.createdAt > lifeMs) {
        this.idle.splice(this.idle.indexOf(c), 1);
        this.discard(c);
      }
    }
  }
}
