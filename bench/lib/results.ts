import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from './proc.ts';
import type { BenchResult } from './types.ts';

export const RESULTS_DIR = join(REPO_ROOT, 'bench', 'results');

export function machine(): { cpus: number; node: string } {
  return { cpus: cpus().length, node: process.version };
}

/** Writes bench/results/<name>.json and returns its path. */
export function writeResult(result: BenchResult, measuredAt = new Date()): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(result.name)) throw new Error(`benchmark name ${JSON.stringify(result.name)} is not a safe file name`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${result.name}.json`);
  const doc = { name: result.name, metrics: result.metrics, measured_at: measuredAt.toISOString(), machine: machine() };
  writeFileSync(file, JSON.stringify(doc, null, 2) + '\n');
  return file;
}

/**
 * `npx tsx bench/<name>.ts`: when `moduleUrl` is the entry file, run the benchmark, write its
 * result as `npm run bench -- <name>` does, and print it.
 */
export function runIfMain(moduleUrl: string, run: () => Promise<BenchResult>): void {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  run().then(
    (r) => {
      console.log(`\nwrote ${writeResult(r)}`);
      console.log(JSON.stringify(r.metrics, null, 2));
    },
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
