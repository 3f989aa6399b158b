/**
 * One result line per reliability/security test, shared by test/reliability/** and test/security/**.
 *
 *   report(name, ok, figures, issues?)
 *
 * - prints `RELIABILITY|<name>|PASS|FAIL|KNOWN-ISSUE|k=v k=v ...` on stdout (console.log), and
 * - appends one JSON line {name, ok, result, figures, issues, at, pid} to the report file:
 *   $PGML_RELIABILITY_REPORT, or <repo>/.tmp/reliability.jsonl.
 *
 * `name` is "<category>/<test>"; the summary (test/reliability/summary.ts) groups by category:
 * load, fault, limit, security, fuzz (any other word works and gets its own group). Figures with
 * these keys are totalled by the summary: requests, errors, lost, doubled, attacks, refused,
 * fuzz_cases. `issues` are known bugs found by the test (reported instead of failing it): the
 * line then says KNOWN-ISSUE, and the summary lists them.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type Figures = Record<string, number | string>;

export interface ReportLine {
  name: string;
  ok: boolean;
  result: 'PASS' | 'FAIL' | 'KNOWN-ISSUE';
  figures: Figures;
  issues: string[];
  at: string;
  pid: number;
}

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The JSON-lines file the tests append to. */
export function reportFile(): string {
  return resolve(REPO_ROOT, process.env.PGML_RELIABILITY_REPORT || '.tmp/reliability.jsonl');
}

function show(v: number | string): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) >= 100 ? 0 : 2);
  return /[\s|]/.test(v) ? JSON.stringify(v) : v;
}

export function report(name: string, ok: boolean, figures: Figures, issues: string[] = []): ReportLine {
  const result: ReportLine['result'] = !ok ? 'FAIL' : issues.length ? 'KNOWN-ISSUE' : 'PASS';
  const line: ReportLine = { name, ok, result, figures, issues, at: new Date().toISOString(), pid: process.pid };
  const text = Object.entries(figures).map(([k, v]) => `${k}=${show(v)}`).join(' ');
  console.log(`RELIABILITY|${name}|${result}|${text}${issues.length ? ` issues=${JSON.stringify(issues)}` : ''}`);
  try {
    const file = reportFile();
    mkdirSync(dirname(file), { recursive: true });
    appendFileSync(file, JSON.stringify(line) + '\n');
  } catch (e) {
    console.error(`reliability report not written: ${(e as Error).message}`);
  }
  return line;
}
