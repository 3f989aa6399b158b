/**
 * `npm run bench`            runs every bench/*.ts that exports run()
 * `npm run bench -- rpc ...` runs only the named ones (file names without .ts)
 *
 * Each benchmark runs in its own child process (bench/lib/run-one.ts); its result goes to
 * bench/results/<name>.json as {name, metrics, measured_at, machine: {cpus, node}}. A benchmark
 * that cannot run here (throws BenchSkipped from bench/lib/types.ts, returns {skipped: reason},
 * or imports a package that is not installed) is reported as skipped and its previous result file
 * is kept; a failing one is reported and does not stop the others (the exit code is then 1).
 * BENCH_TIMEOUT_S (default 1200) bounds each benchmark.
 */
import { fork } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { REPO_ROOT } from './lib/proc.ts';
import { writeResult } from './lib/results.ts';
import type { Outcome } from './lib/run-one.ts';
import { formatTable, type Cell } from './lib/table.ts';

const BENCH_DIR = join(REPO_ROOT, 'bench');
const EXPORTS_RUN = /export\s+(async\s+)?function\s+run\b|export\s+(const|let|var)\s+run\b|export\s*\{[^}]*\brun\b[^}]*\}/;

function discover(): { name: string; file: string }[] {
  return readdirSync(BENCH_DIR)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && f !== 'run.ts')
    .sort()
    .map((f) => ({ name: basename(f, '.ts'), file: join(BENCH_DIR, f) }))
    .filter((b) => EXPORTS_RUN.test(readFileSync(b.file, 'utf8')));
}

function runOne(file: string, timeoutS: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = fork(join(BENCH_DIR, 'lib', 'run-one.ts'), [file], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let outcome: Outcome | null = null;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM'); // run-one's cleanup handler stops the services it started
      setTimeout(() => child.kill('SIGKILL'), 30_000).unref();
    }, timeoutS * 1000);
    const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
    const onInt = forward('SIGINT');
    const onTerm = forward('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    child.on('message', (m: Outcome) => (outcome = m));
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      if (outcome) resolve(outcome);
      else if (timedOut) resolve({ status: 'failed', error: `timed out after ${timeoutS} s (BENCH_TIMEOUT_S)` });
      else resolve({ status: 'failed', error: `benchmark process exited (code ${code}, signal ${signal}) without a result` });
    });
  });
}

async function main(): Promise<void> {
  const all = discover();
  const asked = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const unknown = asked.filter((a) => !all.some((b) => b.name === a));
  if (unknown.length) {
    console.error(`Unknown benchmark(s): ${unknown.join(', ')}. Available: ${all.map((b) => b.name).join(', ') || 'none'}`);
    process.exit(2);
  }
  const selected = asked.length ? all.filter((b) => asked.includes(b.name)) : all;
  if (!selected.length) {
    console.error('No benchmarks found (bench/*.ts exporting run()).');
    process.exit(2);
  }
  const timeoutS = Number(process.env.BENCH_TIMEOUT_S ?? 1200);
  const summary: { name: string; status: string; seconds: number; detail: string; result?: { name: string; metrics: Record<string, unknown> } }[] = [];
  for (const b of selected) {
    console.log(`\n=== ${b.name} (${relative(REPO_ROOT, b.file)}) ===`);
    const started = Date.now();
    const outcome = await runOne(b.file, timeoutS);
    const seconds = (Date.now() - started) / 1000;
    switch (outcome.status) {
      case 'ok': {
        const file = writeResult(outcome.result);
        summary.push({ name: outcome.result.name, status: 'ok', seconds, detail: relative(REPO_ROOT, file), result: outcome.result });
        break;
      }
      case 'skipped':
        console.log(`${b.name}: skipped: ${outcome.reason}`);
        summary.push({ name: b.name, status: 'skipped', seconds, detail: outcome.reason });
        break;
      case 'not-a-benchmark':
        summary.push({ name: b.name, status: 'skipped', seconds, detail: 'no run() export' });
        break;
      case 'failed':
        console.error(`${b.name}: FAILED: ${outcome.error}`);
        summary.push({ name: b.name, status: 'failed', seconds, detail: outcome.error.split('\n')[0] });
        break;
    }
  }

  console.log('\n=== summary ===');
  console.log(formatTable(['benchmark', 'status', 'seconds', 'result / reason'], summary.map((s) => [s.name, s.status, Math.round(s.seconds), s.detail])));
  for (const s of summary) {
    if (!s.result) continue;
    console.log(`\n${s.name}:`);
    console.log(formatTable(['metric', 'value'], Object.entries(s.result.metrics).map(([k, v]) => [k, v as Cell])));
  }
  if (summary.some((s) => s.status === 'failed')) process.exitCode = 1;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
