/**
 * Request groups that arrive in the same event-loop turn share one connection and one socket
 * write. Each group keeps its own implicit transaction: its statements end with their own Sync,
 * so its role, settings, snapshot and errors stay its own, and a failing group only ends itself
 * (the server skips to that group's Sync and runs the next group normally).
 *
 * Why: on loopback and on a LAN the write to PostgreSQL and the server's wake-up to read it cost
 * more CPU than the small statements themselves (bench/predict.ts measures it); k groups in one
 * write pay that once. Only for the gateway's own fixed, fast, read-only statements that need no
 * BEGIN…COMMIT (AsCallerOptions.shareWrite; see runAsCallerPipelined): a slow one would hold up
 * every group queued behind it on the connection.
 *
 * Statements a connection has not prepared yet are parsed first, each in a group of its own: if a
 * statement were parsed inside an earlier group that failed, the server would skip the Parse and
 * a later group's Bind would fail with a confusing error.
 */
import type { SyncSlot, WireConnection } from './connection.ts';
import type { TxOutcome, TxStep } from './transaction.ts';

/** As a transaction's outcome; failure.at = steps.length is the group's implicit commit. */
export type GroupOutcome = Pick<TxOutcome, 'results' | 'failure'>;

/** What the batcher needs of the pool. */
export interface ConnectionSource {
  acquire(): Promise<WireConnection>;
  release(conn: WireConnection): void;
}

interface Job {
  steps: TxStep[];
  resolve: (o: GroupOutcome) => void;
  reject: (e: unknown) => void;
}

export class ImplicitBatcher {
  private pending: Job[] = [];
  private scheduled = false;
  /** batch runners waiting for a connection: each will take up to maxGroups pending jobs */
  private acquiring = 0;
  /** batches sent, groups in them (mean groups per write = groups / batches) */
  readonly stats = { batches: 0, groups: 0 };
  /** false once the database showed it cannot run these groups as asked (callers use BEGIN instead) */
  enabled = true;

  constructor(private readonly source: ConnectionSource, readonly maxGroups: number) {
    if (!(maxGroups >= 1)) throw new Error('maxGroups must be at least 1');
  }

  /** Runs the steps as one implicit transaction, together with other groups of this turn. */
  run(steps: TxStep[]): Promise<GroupOutcome> {
    return new Promise((resolve, reject) => {
      this.pending.push({ steps, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // after the poll phase: every request whose bytes arrived in this turn has queued its group
    setImmediate(this.dispatch);
  }

  private dispatch = (): void => {
    this.scheduled = false;
    const wanted = Math.ceil(this.pending.length / this.maxGroups) - this.acquiring;
    for (let i = 0; i < wanted; i++) void this.runBatch();
  };

  private async runBatch(): Promise<void> {
    this.acquiring++;
    let conn: WireConnection;
    try {
      conn = await this.source.acquire();
    } catch (e) {
      this.acquiring--;
      // the oldest jobs waited as long as the pool allows
      for (const job of this.pending.splice(0, this.maxGroups)) job.reject(e);
      return;
    }
    this.acquiring--;
    // jobs that arrived while this runner waited for a connection ride along
    const jobs = this.pending.splice(0, this.maxGroups);
    try {
      if (jobs.length > 0) await this.send(conn, jobs);
    } finally {
      this.source.release(conn);
      if (this.pending.length > 0) this.schedule();
    }
  }

  private async send(conn: WireConnection, jobs: Job[]): Promise<void> {
    try {
      // each new statement in a group of its own: its Parse error is its own
      const fresh = new Map<string, SyncSlot>();
      if (conn.prepares) for (const job of jobs) for (const s of job.steps) if (conn.prepare(s.text)) fresh.set(s.text, conn.queueSync());
      const groups = jobs.map((job) => ({ slots: job.steps.map((s) => conn.exec(s.text, s.params)), sync: conn.queueSync() }));
      conn.send();
      this.stats.batches++;
      this.stats.groups += jobs.length;
      await conn.until(() => conn.idle);
      for (let j = 0; j < jobs.length; j++) {
        const { slots, sync } = groups[j];
        const steps = jobs[j].steps;
        // a statement that could not be prepared fails the groups using it with the Parse's error
        const unprepared = fresh.size > 0 ? steps.findIndex((s) => fresh.get(s.text)?.error) : -1;
        let failure: GroupOutcome['failure'] = null;
        if (unprepared >= 0) failure = { at: unprepared, error: fresh.get(steps[unprepared].text)!.error! };
        else if (sync.error) {
          const at = slots.findIndex((s) => s.error !== null);
          failure = { at: at >= 0 ? at : slots.length, error: sync.error };
        }
        jobs[j].resolve({ results: slots.map((s) => s.rows), failure });
      }
    } catch (e) {
      for (const job of jobs) job.reject(e);
    }
  }
}
