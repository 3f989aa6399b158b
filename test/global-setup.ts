/**
 * Starts one embedded PostgreSQL for the whole run, or uses PGML_TEST_DATABASE_URL (for example
 * the system PostgreSQL 15). Each test file makes its own database inside it (test/helpers/db.ts).
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import postgres from 'postgres';
import { startEmbeddedPostgres } from '../src/db/embedded.ts';
import { createDefaultRoles } from '../src/db/bootstrap.ts';
import { fixtureSummary } from './fixtures/index.ts';
import { freePort } from './helpers/net.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    adminUrl: string;
    embedded: boolean;
  }
}


export default async function setup(project: TestProject) {
  // which data sets are the full ones of ../shared and which the repository's or generated stand-ins
  console.log(fixtureSummary());
  let adminUrl = process.env.PGML_TEST_DATABASE_URL;
  let stop: (() => Promise<void>) | undefined;
  let dir: string | undefined;
  if (!adminUrl) {
    dir = mkdtempSync(join(tmpdir(), 'pgml-test-pg-'));
    chmodSync(dir, 0o755); // the postgres OS user must reach its data directory
    const db = await startEmbeddedPostgres({ dataDir: join(dir, 'data'), port: await freePort(), persistent: false });
    adminUrl = db.adminUri;
    stop = db.stop;
  }
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await createDefaultRoles(admin, 'authenticator');
  await admin.end();
  project.provide('adminUrl', adminUrl);
  project.provide('embedded', !process.env.PGML_TEST_DATABASE_URL);
  return async () => {
    await stop?.();
    if (dir) rmSync(dir, { recursive: true, force: true });
  };
}
