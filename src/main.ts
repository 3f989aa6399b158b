#!/usr/bin/env -S npx tsx
/**
 * CLI entry: embedded PostgreSQL when no database URI is configured, migrations, then serve.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import postgres from 'postgres';
import { SignJWT } from 'jose';
import { ConfigError, helpText, loadConfig, type Config } from './config.ts';
import { createDefaultRoles, EMBEDDED_AUTHENTICATOR_PASSWORD } from './db/bootstrap.ts';
import { startEmbeddedPostgres } from './db/embedded.ts';
import { migrate } from './db/migrate.ts';
import { buildServer } from './server.ts';

function withUser(uri: string, user: string, password: string): string {
  const u = new URL(uri);
  u.username = user;
  u.password = password;
  return u.toString();
}

/** The embedded database's JWT secret is generated once and kept beside its data. */
function embeddedJwtSecret(dataDir: string): string {
  const file = join(resolve(dataDir), '..', `${resolve(dataDir).split('/').pop()}.jwt-secret`);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, secret + '\n', { mode: 0o600 });
  return secret;
}

let stopEmbedded: (() => Promise<void>) | null = null;

async function prepareEmbedded(config: Config): Promise<Config> {
  console.log(`Starting embedded PostgreSQL (data in ${resolve(config.embeddedDataDir)}) ...`);
  const db = await startEmbeddedPostgres({ dataDir: config.embeddedDataDir, port: config.embeddedPort });
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
  export TOKEN=${token}`);
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
  if (!config.dbUri) config = await prepareEmbedded(config);
  if (config.dbMigrate) {
    const admin = postgres(config.migrationDbUri ?? config.dbUri!, { max: 1, onnotice: () => {} });
    try {
      const applied = await migrate(admin);
      if (applied.length) console.log(`Applied migrations: ${applied.join(', ')}`);
    } catch (e) {
      console.error(`Migrations failed: ${(e as Error).message}\nSet PGML_MIGRATION_DB_URI to a role that may create the pgml schema, or PGML_MIGRATE=false.`);
      process.exit(1);
    } finally {
      await admin.end();
    }
  }
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
  await app.listen({ host: config.serverHost, port: config.serverPort });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
