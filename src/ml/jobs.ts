/**
 * Asynchronous training: jobs live in pgml.jobs (owned by the role that asked, guarded by RLS;
 * a tenant writes only kind, params and the cancel request). Any gateway replica claims them
 * with pgml_worker.claim_job (FOR UPDATE SKIP LOCKED, fair across owners, at most
 * PGML_JOB_MAX_RUNNING_PER_OWNER running per owner), woken by NOTIFY, runs them as their owner,
 * and heart-beats progress through pgml_worker functions on its login connection; a cancel
 * request stops the training within a heartbeat. A replica that dies mid-job stops
 * heart-beating and the job is retried once by another replica, then marked failed.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Sql } from 'postgres';
import { withCaller, type CallerContext } from '../db/as-caller.ts';
import { apiError } from '../errors.ts';
import { toHttp } from '../errors.ts';
import { train, type MlDeps, type TrainRequest } from './service.ts';
import { checkTrainingCaps } from './hyperparams.ts';
import { livenessConnection, type TrainingSlot, type TrainingSlots } from './training-slots.ts';

export const JOBS_CHANNEL = 'pgml_jobs';
const HEARTBEAT_MS = 250;

export async function enqueueTraining(deps: MlDeps, ctx: CallerContext, req: TrainRequest): Promise<{ id: number; status: string }> {
  // refused now, as a synchronous training would be, rather than failing later in the queue
  checkTrainingCaps(req, deps.limits);
  return withCaller(deps.pool, ctx, { readOnly: false }, async (tx) => {
    const [row] = await tx`insert into pgml.jobs (kind, params) values ('train', ${tx.json(req as never)}) returning id::int, status`;
    return row as { id: number; status: string };
  });
}

export async function getJob(deps: MlDeps, ctx: CallerContext, id: string): Promise<Record<string, unknown>> {
  if (!/^\d+$/.test(id)) throw apiError(404, 'PGML404', `Job ${id} not found`);
  return withCaller(deps.pool, ctx, { readOnly: true }, async (tx) => {
    const rows = await tx`select id::int, kind, status, progress, params, result, error, attempts, model_id::int, owner, created_at, started_at, finished_at from pgml.jobs where id = ${id}`;
    if (rows.length === 0) throw apiError(404, 'PGML404', `Job ${id} not found`);
    return rows[0];
  });
}

export async function cancelJob(deps: MlDeps, ctx: CallerContext, id: string): Promise<Record<string, unknown>> {
  if (!/^\d+$/.test(id)) throw apiError(404, 'PGML404', `Job ${id} not found`);
  return withCaller(deps.pool, ctx, { readOnly: false }, async (tx) => {
    const rows = await tx`
      update pgml.jobs set cancel_requested = true where id = ${id} returning id::int, status, cancel_requested`;
    if (rows.length === 0) throw apiError(404, 'PGML404', `Job ${id} not found`);
    return rows[0];
  });
}

export interface JobWorkerOptions {
  deps: MlDeps;
  /**
   * the login role's pool: LISTEN runs on it; claims, heartbeats and finishes run without a role
   * switch on connections of their own with its settings (livenessConnection), so that they never
   * wait behind a tenant's transaction
   */
  sql: Sql;
  slots: TrainingSlots;
  contextFor(role: string, jobId: number): CallerContext;
  log: { info(o: unknown, m?: string): void; error(o: unknown, m?: string): void };
  pollMs?: number;
  staleSeconds?: number;
  /** jobs run at once by this process */
  concurrency?: number;
  /** running jobs of one owner across all replicas */
  maxRunningPerOwner?: number;
}

/** Claims queued jobs while this process has a free job and training slot, and runs them. */
export class JobWorker {
  readonly id = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private running: Promise<void> | null = null;
  private wake = false;
  private timer: NodeJS.Timeout | null = null;
  private unlisten: (() => Promise<void>) | null = null;
  private stopped = false;
  private lastClaimError: string | null = null;
  readonly active = new Map<number, { abort: AbortController; done: Promise<void> }>();
  completed = 0;
  /**
   * claims, heartbeats, model links and finishes (two connections: a claim waiting on a row lock
   * does not hold up the heartbeats)
   */
  private readonly sql: Sql;

  constructor(private readonly o: JobWorkerOptions) {
    this.sql = livenessConnection(o.sql, 'job worker', 2);
  }

  async start(): Promise<void> {
    await this.registerLogin();
    const sub = await this.o.sql.listen(JOBS_CHANNEL, () => this.kick(), () => this.kick());
    this.unlisten = sub.unlisten;
    this.timer = setInterval(() => this.kick(), this.o.pollMs ?? 5000);
    this.kick();
  }

  /**
   * Records the role this gateway logs in as (sql/009), so that a job queued from SQL by a role
   * it cannot SET ROLE to is refused at once, naming the missing GRANT. Without the grant (or
   * before migration 009) the job simply is not checked: logged, not fatal.
   */
  private async registerLogin(): Promise<void> {
    try {
      await this.sql`select pgml_worker.register_login()`;
    } catch (e) {
      const err = e as Error & { code?: string };
      this.o.log.error({ error: err.message, code: err.code, hint: 'grant execute on all functions in schema pgml_worker to <login role> (PGML_MIGRATE does it)' }, 'recording the login role failed: jobs queued from SQL are not checked for a role this gateway cannot switch to');
    }
  }

  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.wake = true;
      return;
    }
    this.running = this.drain().finally(() => {
      this.running = null;
      if (this.wake) {
        this.wake = false;
        this.kick();
      }
    });
  }

  private async drain(): Promise<void> {
    while (!this.stopped && this.active.size < (this.o.concurrency ?? 1)) {
      if (!this.o.slots.hasRoom()) return;
      let claimed;
      try {
        claimed = await this.sql`select id::int, owner from pgml_worker.claim_job(${this.id}, make_interval(secs => ${this.o.staleSeconds ?? 60}), ${this.o.maxRunningPerOwner ?? 1})`;
        this.lastClaimError = null;
      } catch (e) {
        this.claimFailed(e as Error & { code?: string });
        return;
      }
      if (claimed.length === 0) return;
      const { id, owner } = claimed[0] as { id: number; owner: string };
      const slot = this.o.slots.acquireClaimed(owner);
      const abort = new AbortController();
      const done = this.run(id, owner, slot, abort).finally(() => {
        slot.release();
        this.active.delete(id);
        this.completed++;
        this.kick();
      });
      this.active.set(id, { abort, done });
    }
  }

  /** Logged once per distinct failure, with what to do when it is a missing grant. */
  private claimFailed(e: Error & { code?: string }): void {
    if (this.lastClaimError === e.message) return;
    this.lastClaimError = e.message;
    const hint = e.code === '42501' || e.code === '3F000' || e.code === '42883'
      ? 'the login role may not run the worker functions: apply the migrations with PGML_MIGRATE (it grants them), or run: grant usage on schema pgml_worker to <login role>; grant execute on all functions in schema pgml_worker to <login role>'
      : undefined;
    this.o.log.error({ error: e.message, code: e.code, hint }, 'claiming a job failed (retrying every poll; logged again only if the error changes)');
  }

  private async run(id: number, owner: string, slot: TrainingSlot, abort: AbortController): Promise<void> {
    const { deps } = this.o;
    const sql = this.sql;
    const ctx = this.o.contextFor(owner, id);
    let progress = 0;
    let beating = false;
    const beat = setInterval(async () => {
      if (beating) return;
      beating = true;
      try {
        const r = await sql`select pgml_worker.job_heartbeat(${id}, ${this.id}, ${progress}) as cancel`;
        // null: the job is no longer ours (it was swept and requeued); stop
        if (r[0]?.cancel !== false) abort.abort();
      } catch {
        /* the next beat retries */
      } finally {
        beating = false;
      }
    }, HEARTBEAT_MS);
    try {
      const params = await withCaller(deps.pool, ctx, { readOnly: true }, (tx) => tx`select params, cancel_requested from pgml.jobs where id = ${id}`);
      if (params.length === 0) throw apiError(404, 'PGML404', `Job ${id} is not visible to its owner ${owner}`);
      if (params[0].cancel_requested) abort.abort();
      const result = await train(deps, ctx, params[0].params as TrainRequest, {
        signal: abort.signal,
        slot,
        onProgress: (f) => (progress = f),
        onModel: (modelId) => void sql`select pgml_worker.job_model(${id}, ${this.id}, ${modelId})`.catch(() => {}),
      });
      await sql`select pgml_worker.job_model(${id}, ${this.id}, ${result.model_id})`;
      await sql`select pgml_worker.finish_job(${id}, ${this.id}, 'succeeded', ${sql.json(result as never)}, null)`;
      this.o.log.info({ job: id, model: result.model_id }, 'training job succeeded');
    } catch (e) {
      const err = toHttp(e, true);
      const status = abort.signal.aborted ? 'cancelled' : 'failed';
      await sql`select pgml_worker.finish_job(${id}, ${this.id}, ${status}, null, ${sql.json(err.body as never)})`.catch(() => {});
      this.o.log.info({ job: id, status, error: err.body.message }, 'training job ended');
    } finally {
      clearInterval(beat);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    for (const a of this.active.values()) a.abort.abort();
    await this.unlisten?.().catch(() => {});
    await this.running?.catch(() => {});
    await Promise.all([...this.active.values()].map((a) => a.done.catch(() => {})));
    await this.sql.end({ timeout: 1 }).catch(() => {});
  }
}
