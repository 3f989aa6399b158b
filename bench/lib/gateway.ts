/** This gateway under test: as a separate process (for load tests) or in-process (for simple timings). */
import type { FastifyInstance } from 'fastify';
import postgres from 'postgres';
import { migrate } from '../../src/db/migrate.ts';
import { buildServer } from '../../routes/server.ts';
import { loadConfig } from '../../src/config.ts';
import { onCleanup } from './cleanup.ts';
import { freePort, httpRequest } from './net.ts';
import { cleanEnv, nodeTs, spawnService, type Service } from './proc.ts';

export interface GatewayOptions {
  /** URI of the authenticator role */
  dbUri: string;
  /** superuser URI for migrations */
  migrationDbUri: string;
  jwtSecret: string;
  anonRole?: string;
  pool?: number;
  port?: number;
  logLevel?: string;
  /** further PGRST_* / PGML_* variables */
  env?: Record<string, string>;
}

function gatewayEnv(o: GatewayOptions, port: number): Record<string, string> {
  return {
    PGRST_DB_URI: o.dbUri,
    PGML_MIGRATION_DB_URI: o.migrationDbUri,
    PGRST_JWT_SECRET: o.jwtSecret,
    PGRST_DB_ANON_ROLE: o.anonRole ?? 'anon',
    PGRST_DB_POOL: String(o.pool ?? 10),
    PGRST_SERVER_HOST: '127.0.0.1',
    PGRST_SERVER_PORT: String(port),
    LOG_LEVEL: o.logLevel ?? 'error',
    ...o.env,
  };
}

export interface RunningGateway {
  url: string;
  /** the process (separate-process mode only) */
  service?: Service;
  stop(): Promise<void>;
}

/**
 * `node --import tsx src/main.ts` in its own process group, ready once /ready answers 200.
 * `nodeArgs` go to node (e.g. ['--cpu-prof', '--cpu-prof-dir=/tmp/prof']).
 */
export async function startGatewayProcess(o: GatewayOptions & { nodeArgs?: string[] }): Promise<RunningGateway> {
  const port = o.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const { command, args } = nodeTs('src/main.ts', o.nodeArgs);
  const service = await spawnService({
    name: 'gateway',
    command,
    args,
    env: cleanEnv({ ...gatewayEnv(o, port), NODE_ENV: 'production' }),
    ready: async () => (await httpRequest(`${url}/ready`, { timeoutMs: 1000 })).status === 200,
    readyTimeoutMs: 60_000,
    killTimeoutMs: 10_000,
  });
  return { url, service, stop: () => service.stop() };
}

/**
 * Migrations, then buildServer() in this process (shares the caller's event loop: fine for
 * timings, not for load).
 */
export async function startGatewayInProcess(o: GatewayOptions): Promise<RunningGateway & { app: FastifyInstance }> {
  const config = loadConfig(gatewayEnv(o, 0));
  const admin = postgres(o.migrationDbUri, { max: 1, onnotice: () => {} });
  try {
    await migrate(admin);
  } finally {
    await admin.end();
  }
  const app = await buildServer(config, { logger: false, waitForDatabase: true });
  await app.listen({ host: '127.0.0.1', port: o.port ?? 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : o.port;
  const stop = async () => {
    unregister();
    await app.close();
  };
  const unregister = onCleanup('in-process gateway', stop);
  return { url: `http://127.0.0.1:${port}`, app, stop };
}
