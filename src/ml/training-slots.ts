/**
 * The trainings of one gateway process: a bounded number at once, per process and per role
 * (synchronous requests beyond either get 429; the job worker claims only when a slot is free),
 * and a heartbeat on the model row of each, so that a replica killed mid-training leaves no
 * model in_progress forever: any live replica's sweep fails models whose heartbeat stopped.
 */
import postgres, { type Sql } from 'postgres';
import { ApiError } from '../errors.ts';

/**
 * A small connection pool of its own, with the login settings of `sql` (host, credentials, TLS,
 * application name), for the liveness work of trainings and jobs: model and job heartbeats,
 * sweeps, claims. On the shared catalog pool (with the pipeline client only 30% of
 * PGRST_DB_POOL, a single connection at PGRST_DB_POOL=4) these queued behind tenant
 * transactions (a training's final transaction, which deploys and compiles a model, takes
 * seconds), so a live training or job looked dead to the other replicas' sweeps, and cancel
 * requests went unseen. These connections are outside PGRST_DB_POOL, like the LISTEN one.
 */
export function livenessConnection(sql: Sql, name: string, max = 1): Sql {
  const o = sql.options;
  return postgres({
    host: o.host as unknown as string,
    port: o.port as unknown as number,
    path: o.path || undefined,
    database: o.database,
    user: o.user,
    pass: o.pass ?? undefined,
    ssl: o.ssl,
    target_session_attrs: o.target_session_attrs ?? undefined,
    connect_timeout: o.connect_timeout,
    keep_alive: o.keep_alive,
    prepare: o.prepare,
    max,
    idle_timeout: 60,
    max_lifetime: 60 * 30,
    onnotice: () => {},
    connection: { ...o.connection, application_name: `${o.connection?.application_name ?? 'pgml-gateway'} ${name}` },
    types: {},
    transform: { undefined: null },
  } as postgres.Options<Record<string, postgres.PostgresType>>);
}

export interface TrainingLimits {
  perProcess: number;
  perRole: number;
}

/** Seconds a refused caller is told to wait: trainings take seconds to an hour. */
const RETRY_AFTER_S = 5;

export class TrainingSlot {
  private released = false;
  constructor(private readonly slots: TrainingSlots, readonly role: string) {}

  /** The model row this slot is training; beaten until released. */
  track(modelId: string, owner: string): void {
    if (!this.released) this.slots.training.set(this, { id: modelId, owner });
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.slots.free(this);
  }
}

export class TrainingSlots {
  private used = 0;
  private readonly byRole = new Map<string, number>();
  /** models in training here, beaten by the heartbeat */
  readonly training = new Map<TrainingSlot, { id: string; owner: string }>();
  /** called when a training ends here and frees its slot (the job worker may claim again) */
  onTrainingEnd: (() => void) | null = null;

  constructor(readonly limits: TrainingLimits) {}

  get inUse(): number {
    return this.used;
  }

  roleCount(role: string): number {
    return this.byRole.get(role) ?? 0;
  }

  /** A slot for `role`, or a 429 ApiError saying which limit is reached. */
  acquire(role: string): TrainingSlot {
    if (this.used >= this.limits.perProcess) {
      throw tooMany(`This gateway is already running ${this.used} trainings, its limit`, 'PGML_TRAIN_CONCURRENCY');
    }
    if (this.roleCount(role) >= this.limits.perRole) {
      throw tooMany(`Role "${role}" already has ${this.roleCount(role)} trainings running on this gateway, its limit`, 'PGML_TRAIN_CONCURRENCY_PER_ROLE');
    }
    return this.take(role);
  }

  /** Whether the job worker may claim a job now (it holds no slot while claiming). */
  hasRoom(): boolean {
    return this.used < this.limits.perProcess;
  }

  /**
   * The slot of a job just claimed for `owner`: taken even when a synchronous request took the
   * last one during the claim, so the process may briefly run one training per job runner over
   * the limit rather than refuse synchronous requests while a claim is in flight.
   */
  acquireClaimed(owner: string): TrainingSlot {
    return this.take(owner);
  }

  private take(role: string): TrainingSlot {
    this.used++;
    this.addRole(role, 1);
    return new TrainingSlot(this, role);
  }

  addRole(role: string, d: number): void {
    const n = this.roleCount(role) + d;
    if (n <= 0) this.byRole.delete(role);
    else this.byRole.set(role, n);
  }

  free(slot: TrainingSlot): void {
    this.used--;
    this.addRole(slot.role, -1);
    if (this.training.delete(slot)) this.onTrainingEnd?.();
  }
}

function tooMany(message: string, setting: string): ApiError {
  return new ApiError(
    429,
    { code: 'PGML429', message, details: `The limit is set by ${setting}`, hint: 'Retry later, or queue the training with the header "Prefer: respond-async"' },
    { 'Retry-After': String(RETRY_AFTER_S) },
  );
}

/**
 * Beats the models in training in this process (one statement per interval, whatever their
 * number) and sweeps models whose heartbeat stopped, at start and every interval. Both run on
 * the login role's connection through pgml_worker functions.
 */
export class TrainingHeartbeat {
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  private warned = false;
  /** its own connection (livenessConnection): a beat never waits for a tenant's transaction */
  private readonly sql: Sql;

  constructor(
    sql: Sql,
    private readonly slots: TrainingSlots,
    private readonly staleSeconds: number,
    private readonly log: { warn(o: unknown, m?: string): void },
  ) {
    this.sql = livenessConnection(sql, 'training heartbeat');
  }

  async start(): Promise<void> {
    await this.tick();
    this.timer = setInterval(() => void this.tick(), Math.max(250, (this.staleSeconds * 1000) / 4));
    this.timer.unref();
  }

  async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const beating = [...this.slots.training.values()];
      if (beating.length > 0) {
        await this.sql`select pgml_worker.beat_trainings(${beating.map((b) => b.id)}::bigint[], ${beating.map((b) => b.owner)}::text[])`;
      }
      await this.sql`select pgml_worker.sweep_stale_trainings(make_interval(secs => ${this.staleSeconds}))`;
      this.warned = false;
    } catch (e) {
      // once per outage, not every tick (a missing grant would otherwise flood the log)
      if (!this.warned) this.log.warn({ err: (e as Error).message }, 'training heartbeat failed');
      this.warned = true;
    } finally {
      this.busy = false;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    void this.sql.end({ timeout: 1 }).catch(() => {});
  }
}
