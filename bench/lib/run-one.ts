/**
 * Child entry of bench/run.ts: imports one bench/*.ts, calls its run() and sends the outcome to the
 * parent over IPC. One process per benchmark, so a crash, a leaked handle or a native library
 * (onnxruntime, Python) in one cannot disturb the others.
 */
import { pathToFileURL } from 'node:url';
import { cleanupAll } from './cleanup.ts';
import { isSkip, type BenchResult } from './types.ts';

export type Outcome =
  | { status: 'ok'; result: BenchResult }
  | { status: 'skipped'; reason: string }
  | { status: 'not-a-benchmark' }
  | { status: 'failed'; error: string };

function missingModule(e: unknown): string | null {
  const err = e as { code?: string; message?: string };
  if (err?.code === 'ERR_MODULE_NOT_FOUND' || err?.code === 'MODULE_NOT_FOUND') {
    const m = /Cannot find (?:package|module) '([^']+)'/.exec(err.message ?? '');
    return m ? m[1] : (err.message ?? 'a module');
  }
  return null;
}

async function main(file: string): Promise<Outcome> {
  let mod: { run?: unknown };
  try {
    mod = (await import(pathToFileURL(file).href)) as { run?: unknown };
  } catch (e) {
    if (isSkip(e)) return { status: 'skipped', reason: (e as { reason?: string }).reason ?? (e as Error).message };
    const missing = missingModule(e);
    if (missing) return { status: 'skipped', reason: `cannot load: missing ${missing}` };
    return { status: 'failed', error: `import failed: ${(e as Error)?.stack ?? String(e)}` };
  }
  if (typeof mod.run !== 'function') return { status: 'not-a-benchmark' };
  try {
    const result = (await (mod.run as () => Promise<unknown>)()) as BenchResult & { skipped?: unknown };
    if (result && typeof result === 'object' && typeof result.skipped === 'string') return { status: 'skipped', reason: result.skipped };
    if (!result || typeof result !== 'object' || typeof result.name !== 'string' || !result.metrics || typeof result.metrics !== 'object') {
      return { status: 'failed', error: `run() must resolve to {name, metrics}, got ${JSON.stringify(result)?.slice(0, 200)}` };
    }
    for (const [k, v] of Object.entries(result.metrics)) {
      if (!(v === null || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)))) {
        return { status: 'failed', error: `metric ${k} is ${String(v)}: metrics must be finite numbers, strings or null` };
      }
    }
    return { status: 'ok', result: { name: result.name, metrics: result.metrics } };
  } catch (e) {
    if (isSkip(e)) return { status: 'skipped', reason: (e as { reason?: string }).reason ?? (e as Error).message };
    return { status: 'failed', error: (e as Error)?.stack ?? String(e) };
  } finally {
    await cleanupAll();
  }
}

const file = process.argv[2];
if (!file || !process.send) {
  console.error('usage: forked by bench/run.ts with the benchmark file as argument');
  process.exit(2);
}
main(file).then((outcome) => {
  process.send!(outcome, () => process.exit(0));
});
