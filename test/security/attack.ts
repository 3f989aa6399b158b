/**
 * The bystander's view of an attack: while one tenant attacks, `/live` and an unrelated `/rpc`
 * of another tenant are probed over real HTTP every few milliseconds. A crash, a frozen event
 * loop or a starved pool shows up as a failed probe, a slow probe, or a long gap between probe
 * answers (a frozen loop answers nothing, so the gap catches it even if no probe was in flight).
 */
import type { Sql } from 'postgres';
import { expect } from 'vitest';

export interface ProbeReport {
  probes: number;
  failures: string[];
  maxLatencyMs: number;
  /** longest time without any probe answer while probing */
  maxGapMs: number;
}

export interface ProbeTarget {
  /** e.g. http://127.0.0.1:PORT (the gateway must listen on a real socket) */
  baseUrl: string;
  /** headers of the bystander tenant's /rpc call */
  headers?: Record<string, string>;
}

/** Creates `public.bystander_ping()` (returns 'pong'), callable by anon and authenticated. */
export async function createBystander(admin: Sql): Promise<void> {
  await admin.unsafe(`
    create or replace function public.bystander_ping() returns text language sql stable as $$ select 'pong' $$;
    grant execute on function public.bystander_ping() to anon, authenticated;
    notify pgrst, 'reload schema';`);
}

async function once(url: string, headers: Record<string, string>, check: (status: number, body: string) => boolean, timeoutMs: number): Promise<string | null> {
  try {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
    const body = await res.text();
    return check(res.status, body) ? null : `${url} answered ${res.status} ${body.slice(0, 200)}`;
  } catch (e) {
    return `${url} failed: ${(e as Error).message}`;
  }
}

/** Starts probing; stop() ends it and returns what the bystander saw. */
export function probe(target: ProbeTarget, opts: { everyMs?: number; timeoutMs?: number } = {}): { stop(): Promise<ProbeReport> } {
  const every = opts.everyMs ?? 50;
  const timeout = opts.timeoutMs ?? 10_000;
  const report: ProbeReport = { probes: 0, failures: [], maxLatencyMs: 0, maxGapMs: 0 };
  let running = true;
  let lastAnswer = performance.now();
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      const results = await Promise.all([
        once(`${target.baseUrl}/live`, {}, (s) => s === 200, timeout),
        once(`${target.baseUrl}/rpc/bystander_ping`, target.headers ?? {}, (s, b) => s === 200 && b.includes('pong'), timeout),
      ]);
      const now = performance.now();
      report.probes++;
      report.maxLatencyMs = Math.max(report.maxLatencyMs, now - started);
      report.maxGapMs = Math.max(report.maxGapMs, now - lastAnswer);
      lastAnswer = now;
      for (const r of results) if (r) report.failures.push(r);
      await new Promise((r) => setTimeout(r, every));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return report;
    },
  };
}

/** Runs `attack` while probing; the attack's own outcome is returned for the caller to check. */
export async function underAttack<T>(target: ProbeTarget, attack: () => Promise<T>, opts: { everyMs?: number } = {}): Promise<{ result: T; report: ProbeReport }> {
  const p = probe(target, opts);
  // let at least one probe answer before the attack starts, so a dead gateway is not blamed on it
  await new Promise((r) => setTimeout(r, 20));
  let result: T;
  try {
    result = await attack();
  } finally {
    // one more round after the attack: the gateway must still answer once it is over
    await new Promise((r) => setTimeout(r, (opts.everyMs ?? 50) * 2));
  }
  const report = await p.stop();
  return { result, report };
}

/**
 * The bystander was served throughout: every probe answered correctly, none took longer than
 * `limitMs`, and answers never stopped for longer than that. The limit is generous because the
 * machines are shared; a freeze or crash is seconds to forever.
 */
export function expectBystanderServed(report: ProbeReport, limitMs = 2000): void {
  expect(report.failures, report.failures.join('\n')).toEqual([]);
  expect(report.probes).toBeGreaterThan(0);
  expect(report.maxLatencyMs).toBeLessThan(limitMs);
  expect(report.maxGapMs).toBeLessThan(limitMs);
}
