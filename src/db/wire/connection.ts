/**
 * One PostgreSQL connection speaking the extended protocol with pipelining: callers queue
 * statements (exec), then write them all at once with flush() or sync(), and wait with until().
 * A "round" runs from the first queued message to the ReadyForQuery answering its last Sync.
 */
import type { Socket } from 'node:net';
import { serialize } from 'pg-protocol';
import { Parser } from 'pg-protocol/dist/parser.js';
import type { BackendMessage, CommandCompleteMessage, DataRowMessage, NoticeMessage, RowDescriptionMessage } from 'pg-protocol/dist/messages.js';
import { openSocket, sendCancel } from './cancel.ts';
import type { WireConfig } from './config.ts';
import { PostgresError, ProtocolError, WireConnectionError } from './errors.ts';
import { toText } from './params.ts';
import { Startup } from './startup.ts';
import { negotiateTls, serverEndPoint, wantsTls } from './tls.ts';
import { StatementCache, type Prepared } from './statements.ts';

export type Row = Record<string, string | null>;

/** The outcome of one queued statement. */
export interface ExecSlot {
  rows: Row[];
  /** CommandComplete tag, e.g. 'SELECT 1' */
  command: string | null;
  done: boolean;
  error: PostgresError | null;
}

/** The outcome of one Sync: the statements queued since the previous Sync, as one group. */
export interface SyncSlot {
  /** its ReadyForQuery arrived */
  done: boolean;
  /** the first error of the group (including one raised at its implicit commit) */
  error: PostgresError | null;
}

type Expect =
  | { k: 'parse'; p: Prepared }
  | { k: 'describe'; p: Prepared }
  | { k: 'bind' }
  | { k: 'exec'; p: Prepared; slot: ExecSlot }
  | { k: 'close' }
  | { k: 'sync'; slot: SyncSlot }
  | { k: 'query'; slot: ExecSlot };

export interface ConnectionOptions {
  /** named prepared statements kept per connection (false: the unnamed statement, parsed every time) */
  prepare: boolean;
  statementCacheSize: number;
  connectTimeoutMs: number;
  /** must not throw: it runs while the connection parses its input */
  onNotice?: (notice: NoticeMessage, conn: WireConnection) => void;
}

const NO_PARAMS: unknown[] = [];

const connectTimeout = (cfg: WireConfig) => new WireConnectionError('CONNECT_TIMEOUT', `connecting to ${cfg.host || cfg.socketDir}:${cfg.port} timed out`);

/** A connected socket to speak the protocol on: TCP or Unix socket, then TLS as sslmode asks. */
function openTransport(cfg: WireConfig, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = openSocket(cfg);
    let done = false;
    const finish = (e: unknown, s?: Socket) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (e) {
        socket.destroy();
        reject(WireConnectionError.from(e));
      } else resolve(s!);
    };
    const timer = setTimeout(() => finish(connectTimeout(cfg)), timeoutMs);
    socket.once('error', (e) => finish(e));
    socket.once('connect', () => {
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 60_000);
      if (!wantsTls(cfg.tls)) return finish(null, socket);
      negotiateTls(socket, cfg.tls, cfg.host).then((s) => finish(null, s), (e) => finish(e));
    });
  });
}

export class WireConnection {
  pid = 0;
  secret = 0;
  readonly parameters: Record<string, string> = {};
  /** transaction status of the last ReadyForQuery: I idle, T in transaction, E failed transaction */
  status = 'I';
  broken = false;
  /** a CancelRequest was sent: it may land after this round ended, so the pool does not reuse the connection */
  cancelRequested = false;
  readonly createdAt = Date.now();
  lastUsed = Date.now();
  /** set by the pool: called once when the socket is gone */
  onClose: ((e: WireConnectionError | PostgresError) => void) | null = null;
  /** the first error of the current round */
  roundError: PostgresError | null = null;

  private readonly parser = new Parser();
  private readonly cache: StatementCache;
  private expects: Expect[] = [];
  private head = 0;
  private out: Buffer[] = [];
  private parsed: Prepared[] = [];
  private roundOpen = false;
  private pendingReady = 0;
  private skipping = false;
  private fatal: PostgresError | null = null;
  private closeReason: WireConnectionError | PostgresError | null = null;
  private waiter: { pred: () => boolean; resolve: () => void; reject: (e: unknown) => void } | null = null;
  private startup: Startup | null = null;

  private constructor(readonly cfg: WireConfig, private readonly socket: Socket, private readonly opts: ConnectionOptions) {
    this.cache = new StatementCache(opts.statementCacheSize);
  }

  static async connect(cfg: WireConfig, opts: ConnectionOptions): Promise<WireConnection> {
    const started = Date.now();
    const socket = await openTransport(cfg, opts.connectTimeoutMs);
    const remainingMs = Math.max(1, opts.connectTimeoutMs - (Date.now() - started));
    const conn = new WireConnection(cfg, socket, opts);
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (e: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        conn.broken = true;
        socket.destroy();
        reject(e instanceof PostgresError ? e : WireConnectionError.from(e));
      };
      const timer = setTimeout(() => fail(connectTimeout(cfg)), remainingMs);
      conn.startup = new Startup(cfg, socket, fail, serverEndPoint(socket));
      conn.waiter = {
        pred: () => conn.startup === null,
        resolve: () => {
          settled = true;
          clearTimeout(timer);
          resolve(conn);
        },
        reject: fail,
      };
      socket.on('data', conn.onData);
      socket.on('error', (e) => (conn.closeReason ??= WireConnectionError.from(e)));
      socket.once('close', conn.onSocketClose);
      conn.startup.begin();
    });
  }

  /** Named prepared statements are in use (false: every exec parses the unnamed statement). */
  get prepares(): boolean {
    return this.opts.prepare;
  }

  /** Queues one statement (Parse and Describe only the first time on this connection). */
  exec(text: string, params: unknown[] = NO_PARAMS): ExecSlot {
    this.openRound();
    const p = (this.opts.prepare ? this.cache.get(text) : undefined) ?? this.queueParse(text);
    if (params.length === 0 && p.name) {
      p.bindExecute ??= Buffer.concat([serialize.bind({ statement: p.name }), serialize.execute()]);
      this.out.push(p.bindExecute);
    } else {
      const values = new Array<string | null>(params.length);
      for (let i = 0; i < params.length; i++) values[i] = toText(params[i]);
      this.out.push(serialize.bind({ statement: p.name, values }), serialize.execute());
    }
    const slot: ExecSlot = { rows: [], command: null, done: false, error: null };
    this.expect({ k: 'bind' });
    this.expect({ k: 'exec', p, slot });
    return slot;
  }

  /**
   * Queues Parse and Describe of a named statement without running it, unless this connection
   * has it or has one queued (prepare mode only). True when a Parse was queued.
   */
  prepare(text: string): boolean {
    if (!this.opts.prepare) throw new Error('prepare() needs named prepared statements');
    this.openRound();
    if (this.cache.get(text)) return false;
    this.queueParse(text);
    return true;
  }

  private queueParse(text: string): Prepared {
    const p = this.opts.prepare ? this.cache.add(text) : { name: '', text, names: null, confirmed: false };
    this.out.push(serialize.parse({ name: p.name, text }), serialize.describe({ type: 'S', name: p.name }));
    this.expect({ k: 'parse', p });
    this.expect({ k: 'describe', p });
    this.parsed.push(p);
    return p;
  }

  /** Queues a simple-protocol Query (its own implicit Sync). */
  query(text: string): ExecSlot {
    this.openRound();
    const slot: ExecSlot = { rows: [], command: null, done: false, error: null };
    this.out.push(serialize.query(text));
    this.expect({ k: 'query', slot });
    this.pendingReady++;
    return slot;
  }

  /** Writes what is queued (a simple Query needs no Sync). */
  send(): void {
    this.write();
  }

  /** Writes what is queued, asking the server to send its answers so far (no Sync). */
  flush(): void {
    this.out.push(serialize.flush());
    this.write();
  }

  /** Writes what is queued, ending the round with a Sync. */
  sync(): SyncSlot {
    const slot = this.queueSync();
    this.write();
    return slot;
  }

  /**
   * Queues a Sync without writing: it ends the group of statements queued since the previous
   * one (outside BEGIN…COMMIT, that group is one implicit transaction). send() writes.
   */
  queueSync(): SyncSlot {
    this.openRound();
    const slot: SyncSlot = { done: false, error: null };
    this.out.push(serialize.sync());
    this.expect({ k: 'sync', slot });
    this.pendingReady++;
    return slot;
  }

  /** Resolves once pred() holds (checked after each chunk read); rejects if the connection dies. */
  until(pred: () => boolean): Promise<void> {
    if (pred()) return Promise.resolve();
    if (this.broken) return Promise.reject(this.closeReason ?? new WireConnectionError('CONNECTION_CLOSED', 'connection closed'));
    if (this.waiter) return Promise.reject(new Error('connection already has a waiter'));
    return new Promise((resolve, reject) => (this.waiter = { pred, resolve, reject }));
  }

  /** No round in progress: every Sync answered. */
  get idle(): boolean {
    return !this.roundOpen;
  }

  get statementCount(): number {
    return this.cache.size;
  }

  /** Cancels the statement running on this connection, if a round is in progress. */
  cancel(): Promise<void> {
    if (!this.roundOpen || this.broken) return Promise.resolve();
    this.cancelRequested = true;
    return sendCancel(this.cfg, this.pid, this.secret);
  }

  /** Graceful close: Terminate, then end the socket. */
  close(): void {
    if (this.broken) return;
    this.broken = true;
    this.socket.end(serialize.end());
  }

  destroy(reason?: WireConnectionError): void {
    if (reason) this.closeReason ??= reason;
    this.broken = true;
    this.socket.destroy();
  }

  private openRound(): void {
    if (this.broken) throw this.closeReason ?? new WireConnectionError('CONNECTION_CLOSED', 'connection closed');
    if (this.roundOpen) return;
    this.roundOpen = true;
    this.roundError = null;
    // Close evicted statements first: nothing before them can fail, so they always run
    for (const name of this.cache.evicted) {
      this.out.push(serialize.close({ type: 'S', name }));
      this.expect({ k: 'close' });
    }
    this.cache.evicted.length = 0;
  }

  private expect(e: Expect): void {
    // after an error with no Sync queued yet, the server discards everything up to the next Sync
    if (this.skipping && e.k !== 'sync') return;
    this.expects.push(e);
  }

  private write(): void {
    const chunk = this.out.length === 1 ? this.out[0] : Buffer.concat(this.out);
    this.out = [];
    this.lastUsed = Date.now();
    this.socket.write(chunk);
  }

  private onData = (buf: Buffer): void => {
    try {
      this.parser.parse(buf, this.onMessage);
    } catch (e) {
      this.destroy(e instanceof WireConnectionError ? e : new ProtocolError((e as Error).message));
      if (this.startup) this.waiter?.reject(e);
      return;
    }
    const w = this.waiter;
    if (w && w.pred()) {
      this.waiter = null;
      w.resolve();
    }
  };

  private onSocketClose = (): void => {
    this.broken = true;
    const reason = this.fatal ?? this.closeReason ?? new WireConnectionError('CONNECTION_CLOSED', 'the database closed the connection');
    this.closeReason = reason;
    const w = this.waiter;
    this.waiter = null;
    w?.reject(reason);
    this.onClose?.(reason);
  };

  private onMessage = (msg: BackendMessage): void => {
    switch (msg.name) {
      case 'notice':
        try {
          this.opts.onNotice?.(msg as NoticeMessage, this);
        } catch {
          // a notice (any role can raise one) must not break the connection
        }
        return;
      case 'parameterStatus': {
        const m = msg as unknown as { parameterName: string; parameterValue: string };
        this.parameters[m.parameterName] = m.parameterValue;
        return;
      }
      case 'backendKeyData': {
        const m = msg as unknown as { processID: number; secretKey: number };
        this.pid = m.processID;
        this.secret = m.secretKey;
        return;
      }
      case 'notification':
        return;
      case 'error':
        return this.onError(new PostgresError(msg as never));
    }
    if (this.startup) {
      if (msg.name === 'readyForQuery') this.startup = null;
      else if (!this.startup.handle(msg)) throw new ProtocolError(`unexpected ${msg.name} during startup`);
      return;
    }
    const e = this.expects[this.head];
    if (!e) throw new ProtocolError(`unexpected ${msg.name}`);
    switch (msg.name) {
      case 'parseComplete':
        if (e.k !== 'parse') break;
        e.p.confirmed = true;
        this.head++;
        return;
      case 'parameterDescription':
        if (e.k !== 'describe') break;
        return;
      case 'rowDescription':
        if (e.k === 'query') return;
        if (e.k !== 'describe') break;
        e.p.names = (msg as RowDescriptionMessage).fields.map((f) => f.name);
        this.head++;
        return;
      case 'noData':
        if (e.k !== 'describe') break;
        e.p.names = [];
        this.head++;
        return;
      case 'bindComplete':
        if (e.k !== 'bind') break;
        this.head++;
        return;
      case 'closeComplete':
        if (e.k !== 'close') break;
        this.head++;
        return;
      case 'dataRow':
        if (e.k === 'query') return;
        if (e.k !== 'exec') break;
        e.slot.rows.push(toRow(e.p.names!, (msg as DataRowMessage).fields));
        return;
      case 'commandComplete':
      case 'emptyQuery':
      case 'portalSuspended':
        if (e.k === 'query') {
          e.slot.command = (msg as CommandCompleteMessage).text ?? null;
          return;
        }
        if (e.k !== 'exec') break;
        e.slot.command = (msg as CommandCompleteMessage).text ?? null;
        e.slot.done = true;
        this.head++;
        return;
      case 'readyForQuery':
        if (e.k !== 'sync' && e.k !== 'query') break;
        if (e.k === 'query') e.slot.done = e.slot.error === null;
        else e.slot.done = true;
        this.head++;
        this.status = (msg as unknown as { status: string }).status;
        this.skipping = false;
        if (--this.pendingReady === 0) this.endRound();
        return;
    }
    throw new ProtocolError(`${msg.name} while expecting the answer to ${e.k}`);
  };

  private onError(err: PostgresError): void {
    if (err.fatal) this.fatal = err;
    if (this.startup) throw err;
    this.roundError ??= err;
    const e = this.expects[this.head];
    if (!e) return; // e.g. a FATAL on an idle connection: the socket closes next
    if (e.k === 'query') {
      e.slot.error ??= err;
      return;
    }
    // the server now discards messages up to the Sync: the error belongs to the first statement
    // among them, and the rest never run
    let owner: ExecSlot | null = null;
    while (this.head < this.expects.length) {
      const x = this.expects[this.head];
      if (x.k === 'sync') {
        x.slot.error ??= err;
        break;
      }
      if (x.k === 'exec' && !owner) {
        owner = x.slot;
        // "cached plan must not change result type": prepare it afresh next time
        if (err.code === '0A000') this.cache.drop(x.p);
      }
      this.head++;
    }
    if (owner) owner.error = err;
    if (this.head === this.expects.length) this.skipping = true;
  }

  private endRound(): void {
    for (const p of this.parsed) if (!p.confirmed) this.cache.forget(p);
    this.parsed = [];
    this.expects = [];
    this.head = 0;
    this.roundOpen = false;
  }
}

function toRow(names: string[], fields: (string | null)[]): Row {
  const row: Row = {};
  for (let i = 0; i < names.length; i++) row[names[i]] = fields[i];
  return row;
}
