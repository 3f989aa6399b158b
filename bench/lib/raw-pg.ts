/** Starts raw-pg-server.ts in its own process. */
import { freePort, httpRequest } from './net.ts';
import { cleanEnv, nodeTs, spawnService, type Service } from './proc.ts';
import type { RawFunction } from './raw-pg-server.ts';

export type { RawFunction } from './raw-pg-server.ts';

export interface RunningRawPg {
  url: string;
  service: Service;
  stop(): Promise<void>;
}

export async function startRawPgServer(o: { dbUri: string; jwtSecret: string; functions: RawFunction[]; pool?: number; mode?: 'pipelined' | 'prepared'; name?: string }): Promise<RunningRawPg> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const { command, args } = nodeTs('bench/lib/raw-pg-server.ts');
  const service = await spawnService({
    name: o.name ?? 'raw-pg',
    command,
    args,
    env: cleanEnv({
      RAW_PG_URI: o.dbUri,
      RAW_PG_POOL: String(o.pool ?? 10),
      RAW_PG_PORT: String(port),
      RAW_PG_JWT_SECRET: o.jwtSecret,
      RAW_PG_FUNCTIONS: JSON.stringify(o.functions),
      RAW_PG_MODE: o.mode ?? 'prepared',
      NODE_ENV: 'production',
    }),
    ready: async () => (await httpRequest(`${url}/ready`, { timeoutMs: 1000 })).status === 200,
    readyTimeoutMs: 30_000,
  });
  return { url, service, stop: () => service.stop() };
}
