/** HTTP load with autocannon, run in a forked child process (load-worker.ts). */
import { fork } from 'node:child_process';
import { resolve } from 'node:path';
import { onCleanup } from './cleanup.ts';
import { REPO_ROOT } from './proc.ts';

export interface LoadOptions {
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  connections: number;
  /**
   * Requests to send in total (spread evenly over the connections). Each connection stops after
   * its share once its last answer arrived, so the run ends with no request in flight: a
   * duration-bound run closes its sockets mid-request, which is a client abort for the server.
   */
  amount: number;
  /** every response body must equal this; others count as mismatches */
  expectBody?: string;
}

export interface LoadSummary {
  durationSeconds: number;
  /** 2xx responses */
  ok: number;
  /** 2xx responses per second */
  rps: number;
  latencyMs: { p50: number; p90: number; p99: number; mean: number; max: number };
  /** socket errors and timeouts */
  errors: number;
  /** socket errors by code or message */
  errorKinds: Record<string, number>;
  timeouts: number;
  non2xx: number;
  /** responses whose body differed from expectBody */
  mismatches: number;
  /** CPU seconds the load generator used */
  loadCpuSeconds: number;
  wallSeconds: number;
}

/**
 * About `seconds` of load ending with no request in flight: a short probe (10 requests per
 * connection) estimates the rate, then `amount` is sized from it. Returns the measured run.
 */
export async function runLoadFor(o: Omit<LoadOptions, 'amount'>, seconds: number): Promise<{ probe: LoadSummary; run: LoadSummary }> {
  const probe = await runLoad({ ...o, amount: o.connections * 10 });
  const rate = probe.ok > 0 ? probe.ok / Math.max(0.05, probe.durationSeconds) : 10;
  const amount = Math.max(o.connections * 5, Math.round(rate * seconds));
  return { probe, run: await runLoad({ ...o, amount }) };
}

/** Failed requests of any kind: socket errors, timeouts, non-2xx answers, wrong bodies. */
export function failures(s: LoadSummary): number {
  return s.errors + s.non2xx + s.mismatches;
}

export function runLoad(o: LoadOptions): Promise<LoadSummary> {
  return runInChild<LoadSummary>(resolve(REPO_ROOT, 'bench/lib/load-worker.ts'), [], 'load generator', o);
}

/**
 * Forks `file` (a .ts module run under tsx) with `args`, sends it `message`, and resolves with the
 * `summary` it sends back: load generators run in their own process so their event loop and CPU
 * time stay apart from the orchestrator's. Killed on cleanup.
 */
export function runInChild<T>(file: string, args: string[], label: string, message: unknown): Promise<T> {
  return new Promise((resolvePromise, reject) => {
    const child = fork(file, args, {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    const unregister = onCleanup(label, () => {
      child.kill('SIGKILL');
    }, () => child.kill('SIGKILL'));
    let settled = false;
    child.once('message', (m: { summary?: T; error?: string }) => {
      settled = true;
      if (m.summary) resolvePromise(m.summary);
      else reject(new Error(`${label} failed: ${m.error}`));
    });
    child.once('exit', (code, signal) => {
      unregister();
      if (!settled) reject(new Error(`${label} exited (code ${code}, signal ${signal}) without a result`));
    });
    child.once('error', (e) => {
      unregister();
      if (!settled) reject(e);
    });
    child.send(message as object);
  });
}
