#!/usr/bin/env -S npx tsx
/**
 * CLI entry: embedded PostgreSQL when no database URI is configured, migrations, then serve.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import postgres from 'postgres';
import { SignJWT } from 'jose';
import { ConfigError, helpText, loadConfig, type Config } from './config.ts';
import { createDefaultRoles, EMBEDDED_AUTHENTICATOR_PASSWORD } from './db/bootstrap.ts';
import { EmbeddedStartError, embeddedJwtSecretFile, startEmbeddedPostgres } from './db/embedded.ts';
import { connectPostgresJs } from './db/pool.ts';
import { loginRoleOf, migrate, startupWork, type StartupWork } from './db/migrate.ts';
import { buildAdminServer, buildServer } from '../routes/server.ts';
import cluster from 'node:cluster';

function withUser(uri: string, user: string, password: string): string {
  const u = new URL(uri);
  u.username = user;
  u.password = password;
  return u.toString();
}

/**
 * The embedded database's JWT secret is generated once and kept inside its data directory (never
 * in the project root). A secret an older version left beside the data directory is moved in.
 */
function embeddedJwtSecret(dataDir: string): string {
  const file = embeddedJwtSecretFile(dataDir);
  const legacy = join(resolve(dataDir), '..', `${basename(resolve(dataDir))}.jwt-secret`);
  if (!existsSync(file) && existsSync(legacy)) renameSync(legacy, file);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, secret + '\n', { mode: 0o600 });
  return secret;
}

let stopEmbedded: (() => Promise<void>) | null = null;

async function prepareEmbedded(config: Config): Promise<Config> {
  console.log(`Starting embedded PostgreSQL (data in ${resolve(config.embeddedDataDir)}) ...`);
  let db: Awaited<ReturnType<typeof startEmbeddedPostgres>>;
  try {
    db = await startEmbeddedPostgres({ dataDir: config.embeddedDataDir, port: config.embeddedPort });
  } catch (e) {
    if (!(e instanceof EmbeddedStartError)) throw e;
    console.error(`The embedded PostgreSQL could not start.\n${e.message}`);
    process.exit(1);
  }
  stopEmbedded = db.stop;
  const admin = postgres(db.adminUri, { max: 1, onnotice: () => {} });
  try {
    await createDefaultRoles(admin, EMBEDDED_AUTHENTICATOR_PASSWORD);
  } finally {
    await admin.end();
  }
  const jwtSecret = config.jwtSecret ?? embeddedJwtSecret(config.embeddedDataDir);
  const token = await new SignJWT({ role: 'authenticated' }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('30d').sign(new TextEncoder().encode(jwtSecret));
  console.log(`Embedded PostgreSQL is running.
  psql "${db.adminUri}"
  A token for the "authenticated" role (30 days):
  export TOKEN=${token}
  Other roles and lifetimes: npm run token -- --role anon --exp 1h`);
  return {
    ...config,
    dbUri: withUser(db.adminUri, 'authenticator', EMBEDDED_AUTHENTICATOR_PASSWORD),
    migrationDbUri: config.migrationDbUri ?? db.adminUri,
    dbAnonRole: config.dbAnonRole ?? 'anon',
    jwtSecret,
  };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(helpText());
    return;
  }
  let config: Config;
  try {
    config = loadConfig(process.env, argv);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`Invalid configuration: ${e.message}`);
      process.exit(2);
    }
    throw e;
  }
  if (cluster.isWorker) return serve(config);
  if (!config.dbUri) config = await prepareEmbedded(config);
  if (config.dbMigrate) await migrateAtStart(config);
  if (config.workers > 1) return superviseWorkers(config);
  return serve(config);
}

/**
 * Pending migrations and the pgml_worker grant, checked first as the gateway's own login role:
 * only when there is something to do is PGML_MIGRATION_DB_URI (or a login role that may do it)
 * needed.
 */
async function migrateAtStart(config: Config): Promise<void> {
  const loginRole = loginRoleOf(config.dbUri!);
  let work: StartupWork;
  const auth = connectPostgresJs(config.dbUri!, { max: 1, onnotice: () => {}, connect_timeout: 15 });
  try {
    work = await startupWork(auth);
  } catch (e) {
    console.error(`Cannot check the database as ${loginRole} (PGRST_DB_URI / DATABASE_URL): ${(e as Error).message}`);
    process.exit(1);
  } finally {
    await auth.end();
  }
  if (work.pending.length === 0 && !work.workerGrantMissing) return;
  const todo = [
    ...(work.pending.length ? [`migrations to apply: ${work.pending.join(', ')}`] : []),
    ...(work.workerGrantMissing ? [`${loginRole} needs usage and execute on schema pgml_worker (training jobs)`] : []),
  ].join('; ');
  const admin = connectPostgresJs(config.migrationDbUri ?? config.dbUri!, { max: 1, onnotice: () => {}, connect_timeout: 15 });
  try {
    // the gateway's login role, whatever it is called, may claim jobs and beat trainings
    const applied = await migrate(admin, undefined, { workerRole: loginRole });
    if (applied.length) console.log(`Applied migrations: ${applied.join(', ')}`);
  } catch (e) {
    const who = config.migrationDbUri ? `PGML_MIGRATION_DB_URI (${loginRoleOf(config.migrationDbUri)})` : `${loginRole}, the login role (PGML_MIGRATION_DB_URI is not set)`;
    console.error(
      `Start-up has work for an admin role — ${todo} — and ${who} could not do it: ${(e as Error).message}\n` +
        'Set PGML_MIGRATION_DB_URI to the URI of a role that may create schemas in this database (the one that ran the earlier migrations, or a superuser); it is needed only while there is such work.\n' +
        'Or apply the migrations and grants yourself and start with PGML_MIGRATE=false (README: Roles and grants).',
    );
    process.exit(1);
  } finally {
    await admin.end();
  }
}

/**
 * Forks the HTTP workers. They share the listening port (node:cluster), each gets its share of
 * the pool, and the resolved database settings (embedded URI, JWT secret) through the environment.
 */
function superviseWorkers(config: Config): void {
  const perWorker = Math.max(1, Math.floor(config.dbPool / config.workers));
  const env: Record<string, string> = {
    PGRST_DB_URI: config.dbUri!,
    PGRST_DB_POOL: String(perWorker),
    PGML_MIGRATE: 'false',
    ...(config.jwtSecret ? { PGRST_JWT_SECRET: config.jwtSecret } : {}),
    ...(config.dbAnonRole ? { PGRST_DB_ANON_ROLE: config.dbAnonRole } : {}),
  };
  let stopping = false;
  const fork = () => cluster.fork(env);
  for (let i = 0; i < config.workers; i++) fork();
  cluster.on('exit', (worker, code) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) void stopEmbedded?.().then(() => process.exit(0));
      return;
    }
    console.error(`worker ${worker.process.pid} exited with code ${code}; starting another`);
    fork();
  });
  const stop = () => {
    if (stopping) return;
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function serve(config: Config): Promise<void> {
  const app = await buildServer(config, { waitForDatabase: false });
  let shuttingDown = false;
  const shutdown = async (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    app.log.info({ signal }, 'draining');
    app.gateway.draining = true;
    const force = setTimeout(() => {
      app.log.warn('in-flight requests did not finish in time; exiting');
      process.exit(1);
    }, config.shutdownTimeout * 1000);
    force.unref();
    await app.close();
    await stopEmbedded?.();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  // with PGML_WORKERS the first worker serves the admin port (its own metrics); its hook is added
  // before the main server listens (Fastify refuses hooks after listen)
  const admin = config.adminPort !== undefined && (!cluster.isWorker || cluster.worker?.id === 1) ? await buildAdminServer(app) : null;
  if (admin) app.addHook('onClose', async () => admin.close());
  await app.listen({ host: config.serverHost, port: config.serverPort });
  if (admin) await admin.listen({ host: config.serverHost, port: config.adminPort });
}

/**
 * postgres.js 3.4.9 can run a write it scheduled after its socket closed when the database goes
 * away under load (TypeError at connection.js nextWrite); that connection is already being torn
 * down and reconnected, so this one error is logged instead of taking the process down.
 */
process.on('uncaughtException', (err) => {
  if (err instanceof TypeError && /reading 'write'/.test(err.message) && /postgres\/src\/connection\.js/.test(err.stack ?? '')) {
    console.error(`ignored postgres.js write on a closed socket: ${err.message}`);
    return;
  }
  console.error(err);
  process.exit(1);
});

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
