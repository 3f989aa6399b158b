/** The pgml.* calls SQL reported to the gateway (NOTICE 'pgml.bridge' from sql/004). */
import { apiError, type ApiError } from '../errors.ts';
import { parseReport, ReportRefused, type BridgeLimits } from './report.ts';

export type BridgeCall =
  | { fn: 'embed'; key: string; model: string; input: string; kwargs: Record<string, unknown> }
  | { fn: 'predict' | 'predict_proba'; key: string; model_id: number; features: (number | null)[] };

export const BRIDGE_NOTICE = 'pgml.bridge';
const ID_KEY = /"bridge_id":\s?"([0-9a-f-]{36})"/;

/** Where a notice came from: the backend pid of the pipeline connection (postgres.js does not say). */
export interface NoticeSource {
  pid: number;
}

/** One attempt of a statement and the calls its stubs reported. */
export interface Round {
  readonly id: string;
  readonly calls: BridgeCall[];
  /** the first refused report: the request fails with it, and the statement is cancelled */
  error: ApiError | null;
  /** aborted when a report is refused (the statement need not run on) */
  readonly refused: AbortController;
  /** the backend the round runs on; reports from any other connection are ignored */
  pid: number | null;
  /** the round runs on the pipeline pool, whose notices name their connection */
  readonly bound: boolean;
  bytes: number;
  readonly keys: Set<string>;
}

/**
 * Routes bridge notices to the round that is waiting for them. Both pools deliver every notice
 * here; a notice reaches a round only if it comes from that round's connection (pipeline pool)
 * and carries the round's random id, and then it is validated (report.ts) within the round's
 * limits. A notice nobody waits for is dropped without being parsed.
 */
export class BridgeNotices {
  private readonly byId = new Map<string, Round>();
  private readonly byPid = new Map<number, Round>();
  /** rounds on postgres.js, found by the id in the notice text */
  private unbound = 0;

  constructor(private readonly limits: () => BridgeLimits) {}

  open(id: string, opts: { bound: boolean }): Round {
    const round: Round = { id, calls: [], error: null, refused: new AbortController(), pid: null, bound: opts.bound, bytes: 0, keys: new Set() };
    this.byId.set(id, round);
    if (!opts.bound) this.unbound++;
    return round;
  }

  /** The round now runs on the connection of this backend. */
  bind(round: Round, pid: number): void {
    if (!round.bound || !this.byId.has(round.id)) return;
    round.pid = pid;
    this.byPid.set(pid, round);
  }

  close(round: Round): void {
    if (this.byId.get(round.id) !== round) return;
    this.byId.delete(round.id);
    if (round.pid !== null && this.byPid.get(round.pid) === round) this.byPid.delete(round.pid);
    if (!round.bound) this.unbound--;
  }

  /** The pools' notice handler: never throws (a throw would break the connection it came from). */
  onNotice = (notice: { message?: string; detail?: string }, source?: NoticeSource): void => {
    try {
      if (notice.message !== BRIDGE_NOTICE) return;
      const round = this.roundFor(notice.detail ?? '', source);
      if (round && !round.error) this.accept(round, notice.detail ?? '');
    } catch {
      // dropped: a notice must not be able to break the connection it arrived on
    }
  };

  private roundFor(detail: string, source: NoticeSource | undefined): Round | undefined {
    if (source) return this.byPid.get(source.pid);
    if (this.unbound === 0) return undefined;
    // one linear scan; inside a JSON string the quotes would be escaped, so a match is the key's
    const m = ID_KEY.exec(detail);
    const round = m ? this.byId.get(m[1]) : undefined;
    return round && !round.bound ? round : undefined;
  }

  private accept(round: Round, detail: string): void {
    const limits = this.limits();
    round.bytes += detail.length;
    try {
      if (round.bytes > limits.maxRoundBytes) {
        throw new ReportRefused(`the statement reported more than ${limits.maxRoundBytes} bytes of pgml.* calls`, 'PGML_BRIDGE_MAX_ROUND_BYTES');
      }
      const call = parseReport(detail, round.id, limits);
      if (round.keys.has(call.key)) return;
      if (round.calls.length >= limits.maxCalls) {
        throw new ReportRefused(`the statement reported more than ${limits.maxCalls} distinct pgml.* calls`, 'PGML_BRIDGE_MAX_CALLS');
      }
      round.keys.add(call.key);
      round.calls.push(call);
    } catch (e) {
      if (!(e instanceof ReportRefused)) throw e;
      round.error = refusal(e);
      round.refused.abort();
    }
  }
}

function refusal(e: ReportRefused): ApiError {
  if (e.setting) {
    return apiError(400, 'PGML400', `Too much work for the gateway in one statement: ${e.message}`, `Limit ${e.setting}`, 'Split the work into smaller statements, or embed in bulk with POST /models/embed');
  }
  return apiError(400, 'PGML400', `Invalid pgml.bridge report: ${e.message}`, "A NOTICE with message 'pgml.bridge' is a request to the gateway; only the pgml.* functions should raise it", null);
}

/** Postgres array literal of a float vector, as the stubs cast it back with ::real[]. */
export function realArrayLiteral(values: ArrayLike<number>): string {
  let s = '{';
  for (let i = 0; i < values.length; i++) {
    if (i) s += ',';
    const v = values[i];
    s += Number.isFinite(v) ? String(v) : Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
  }
  return s + '}';
}
