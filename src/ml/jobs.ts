/**
 * Asynchronous training: jobs live in pgml.jobs (owned by the role that asked, guarded by RLS).
 * Any gateway replica claims them with FOR UPDATE SKIP LOCKED (pgml.claim_job), woken by NOTIFY,
 * runs them as their owner, and heart-beats progress; a cancel request stops the training
 * within a heartbeat. A replica that dies mid-job stops heart-beating and the job is retried once
 * by another replica, then marked failed.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Sql } from 'postgres';
import { withCaller, type CallerContext } from '../db/as-caller.ts';
import { apiError } from '../rest/errors.ts';
import { toApiError } from '../rest/failure.ts';
import { train, type MlDeps, type TrainRequest } from './service.ts';

export const JOBS_CHANNEL = 'pgml_jobs';
const HEARTBEAT_MS = 250;

export async function enqueueTraining(deps: MlDeps, ctx: CallerContext, req: TrainRequest): Promise<{ id: number; status: string }> {
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
      update pgml.jobs set cancel_requested = true,
        status = case when status = 'queued' then 'cancelled' else status end,
        finished_at = case when status = 'queued' then clock_timestamp() else finished_at end
      where id = ${id} returning id::int, status, cancel_requested`;
    if (rows.length === 0) throw apiError(404, 'PGML404', `Job ${id} not found`);
    return rows[0];
  });
}

export interface JobWorkerOptions {
  deps: MlDeps;
  /** the authenticator connection (claims run here, without a role switch) */
  sql: Sql;
  contextFor(role: string, jobId: number): CallerContext;
  log: { info(o: unknown, m?: string): void; error(o: unknown, m?: string): void };
  pollMs?: number;
  staleSeconds?: number;
}

/** Claims and runs queued jobs one at a time. */
export class JobWorker {
  readonly id = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private running: Promise<void> | null = null;
  private wake = false;
  private timer: NodeJS.Timeout | null = null;
  private unlisten: (() => Promise<void>) | null = null;
  private stopped = false;
  current: { id: number; abort: AbortController } | null = null;
  completed = 0;

  constructor(private readonly o: JobWorkerOptions) {}

  async start(): Promise<void> {
    const sub = await this.o.sql.listen(JOBS_CHANNEL, () => this.kick(), () => this.kick());
    this.unlisten = sub.unlisten;
    this.timer = setInterval(() => this.kick(), this.o.pollMs ?? 5000);
    this.kick();
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
    while (!this.stopped) {
      let claimed;
      try {
        claimed = await this.o.sql`select id::int, owner from pgml.claim_job(${this.id}, make_interval(secs => ${this.o.staleSeconds ?? 60}))`;
      } catch (e) {
        this.o.log.error({ err: e }, 'claiming a job failed');
        return;
      }
      if (claimed.length === 0) return;
      await this.run(claimed[0].id as number, claimed[0].owner as string);
    }
  }

  private async run(id: number, owner: string): Promise<void> {
    const { deps } = this.o;
    const ctx = this.o.contextFor(owner, id);
    const abort = new AbortController();
    this.current = { id, abort };
    let progress = 0;
    let beating = false;
    const beat = setInterval(async () => {
      if (beating) return;
      beating = true;
      try {
        const r = await withCaller(deps.pool, ctx, { readOnly: false }, (tx) => tx`update pgml.jobs set heartbeat_at = clock_timestamp(), progress = ${progress} where id = ${id} returning cancel_requested`);
        if (r[0]?.cancel_requested) abort.abort();
      } catch {
        /* the next beat retries */
      } finally {
        beating = false;
      }
    }, HEARTBEAT_MS);
    try {
      const params = await withCaller(deps.pool, ctx, { readOnly: true }, (tx) => tx`select params, cancel_requested from pgml.jobs where id = ${id}`);
      if (params[0]?.cancel_requested) abort.abort();
      const result = await train(deps, ctx, params[0].params as TrainRequest, {
        signal: abort.signal,
        onProgress: (f) => (progress = f),
        onModel: (modelId) => void withCaller(deps.pool, ctx, { readOnly: false }, (tx) => tx`update pgml.jobs set model_id = ${modelId} where id = ${id}`).catch(() => {}),
      });
      await withCaller(deps.pool, ctx, { readOnly: false }, (tx) => tx`update pgml.jobs set status = 'succeeded', progress = 1, result = ${tx.json(result as never)}, model_id = ${result.model_id}, finished_at = clock_timestamp() where id = ${id}`);
      this.o.log.info({ job: id, model: result.model_id }, 'training job succeeded');
    } catch (e) {
      const err = toApiError(e, true);
      const status = abort.signal.aborted ? 'cancelled' : 'failed';
      await withCaller(deps.pool, ctx, { readOnly: false }, (tx) => tx`update pgml.jobs set status = ${status}, error = ${tx.json(err.body as never)}, finished_at = clock_timestamp() where id = ${id}`).catch(() => {});
      this.o.log.info({ job: id, status, error: err.body.message }, 'training job ended');
    } finally {
      clearInterval(beat);
      this.current = null;
      this.completed++;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.current?.abort.abort();
    await this.unlisten?.().catch(() => {});
    await this.running?.catch(() => {});
  }
}
