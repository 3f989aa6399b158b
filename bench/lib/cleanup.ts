/**
 * Teardown registry: every child process, database and temp dir a benchmark creates registers its
 * cleanup here, so Ctrl-C, SIGTERM (bench/run.ts timeout) or a crash still leaves nothing behind.
 */
type Cleanup = { name: string; run: () => Promise<void> | void; sync?: () => void };

const cleanups: Cleanup[] = [];
let installed = false;
let exiting = false;

export function onCleanup(name: string, run: () => Promise<void> | void, sync?: () => void): () => void {
  install();
  const entry: Cleanup = { name, run, sync };
  cleanups.push(entry);
  return () => {
    const i = cleanups.indexOf(entry);
    if (i >= 0) cleanups.splice(i, 1);
  };
}

/** Runs all registered cleanups, newest first (services before the database they use). */
export async function cleanupAll(): Promise<void> {
  while (cleanups.length) {
    const c = cleanups.pop()!;
    try {
      await c.run();
    } catch (e) {
      console.error(`cleanup of ${c.name} failed: ${(e as Error).message}`);
    }
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  const onSignal = (signal: NodeJS.Signals) => {
    if (exiting) return;
    exiting = true;
    console.error(`\n${signal}: cleaning up ...`);
    const force = setTimeout(() => process.exit(130), 20_000);
    force.unref();
    void cleanupAll().finally(() => process.exit(130));
  };
  // `on`, not `once`: Ctrl-C reaches a benchmark both from the terminal and forwarded by bench/run.ts
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // last resort when the process exits without awaiting cleanupAll: kill child process groups
  process.once('exit', () => {
    for (const c of cleanups) {
      try {
        c.sync?.();
      } catch {
        /* best effort */
      }
    }
  });
}
