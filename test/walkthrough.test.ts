/**
 * The README's two walkthroughs (Tembo's clickbait classifier, PostgresML's iris classifier), run
 * as a new user runs them: the sh blocks are read out of README.md and run with bash, psql and
 * curl against a gateway started with `npm start`. Only what a test must change is changed
 * (ports, URLs, temp paths, the minilm-l6 stand-in made tiny, 2,000 headlines instead of 32,000).
 *
 * Twice: on the embedded PostgreSQL that `npm start` starts itself, and on the suite's PostgreSQL
 * (the system PostgreSQL 15 in CI) with a login role that is neither a superuser nor called
 * authenticator, with $TOKEN minted by `npm run token`.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { dataCsv } from './fixtures/index.ts';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { SECRET } from './helpers/gateway.ts';
import { freePort } from './helpers/net.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const README = readFileSync(join(REPO, 'README.md'), 'utf8');
const HEADLINES = 2000;

/** The first ```sh block after a heading. */
function block(heading: string): string {
  const at = README.indexOf(heading);
  if (at < 0) throw new Error(`README has no "${heading}"`);
  const m = /```sh\n([\s\S]*?)```/.exec(README.slice(at));
  if (!m) throw new Error(`no sh block after "${heading}"`);
  return m[1];
}


interface Started {
  proc: ChildProcess;
  output: () => string;
  port: number;
}

async function npmStart(env: Record<string, string>, port: number): Promise<Started> {
  const clean = { ...process.env };
  for (const k of ['DATABASE_URL', 'PGRST_DB_URI', 'PGML_MIGRATION_DB_URI', 'PGRST_JWT_SECRET', 'PGRST_DB_ANON_ROLE']) delete clean[k];
  const proc = spawn('npm', ['start'], { cwd: REPO, env: { ...clean, PGRST_SERVER_PORT: String(port), LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  proc.stdout!.on('data', (b) => (out += b));
  proc.stderr!.on('data', (b) => (out += b));
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`npm start exited ${proc.exitCode}:\n${out}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/ready`);
      if (r.status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`npm start did not become ready:\n${out}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return { proc, output: () => out, port };
}

async function stop(s: Started | undefined): Promise<void> {
  if (!s || s.proc.exitCode !== null) return;
  const exited = new Promise((r) => s.proc.once('exit', r));
  process.kill(-s.proc.pid!, 'SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
  if (s.proc.exitCode === null) process.kill(-s.proc.pid!, 'SIGKILL');
}

/** Runs a README block with the test's substitutions; returns its output. */
function runBlock(script: string, env: Record<string, string>): string {
  try {
    // stderr too: psql reports a failed statement there and goes on, as it does for a user
    return execFileSync('bash', ['-euo', 'pipefail', '-c', `{\n${script}\n} 2>&1`], { cwd: REPO, env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`README block failed: ${err.message}\n--- stdout\n${err.stdout}\n--- stderr\n${err.stderr}\n--- script\n${script}`);
  }
}

function substitute(script: string, o: { psqlUrl: string; port: number; dir: string }): string {
  const out = script
    .split('\n')
    .filter((l) => !/^npm start\b/.test(l))
    .join('\n')
    .replaceAll('postgres://postgres:postgres@127.0.0.1:54329/postgres', o.psqlUrl)
    .replaceAll('localhost:3000', `localhost:${o.port}`)
    .replaceAll('--arch minilm-l6', '--arch tiny')
    .replaceAll('--out models', `--out ${o.dir}/models`)
    .replaceAll("'../shared/data/clickbait/clickbait_data.csv'", `'${o.dir}/clickbait.csv'`);
  return out;
}

/** Walks both blocks against a started gateway; checks what a user would look at. */
function walk(o: { psqlUrl: string; port: number; dir: string; token: string }): void {
  // half of each class, whatever order the file (real or generated) lists them in
  const [header, ...rows] = dataCsv('clickbait/clickbait_data.csv').trimEnd().split('\n');
  const byLabel = (l: string) => rows.filter((r) => r.trimEnd().endsWith(`,${l}`)).slice(0, HEADLINES / 2);
  const sample = [...byLabel('1'), ...byLabel('0')];
  expect(sample).toHaveLength(HEADLINES);
  writeFileSync(join(o.dir, 'clickbait.csv'), [header, ...sample].join('\n') + '\n');
  const env = { TOKEN: o.token, PGML_MODEL_DIR: join(o.dir, 'models') };

  const clickbait = runBlock(substitute(block("### Walkthrough: Tembo's clickbait classifier"), o), env);
  // embed_headlines answers the row count; CALL prints PostgresML's result row
  expect(clickbait).toContain(String(HEADLINES));
  expect(clickbait).toMatch(/classification\s*\|\s*xgboost\s*\|\s*clickbait_classifier\s*\|\s*t\s*\|\s*\{/);
  expect(clickbait).toMatch(/\[\{"is_clickbait":\s*[01]\}\]/);
  expect(clickbait).toMatch(/clickbait_classifier\s*\|\s*xgboost/);

  // the iris block runs in the same shell session as a user's: $PSQL and $TOKEN are still set
  const iris = runBlock(substitute(block("### Walkthrough: PostgresML's iris classifier"), o), { ...env, PSQL: o.psqlUrl });
  const accuracy = /^\s*150\s*\|\s*([0-9.]+)\s*$/m.exec(iris);
  expect(accuracy, iris).not.toBeNull();
  expect(Number(accuracy![1])).toBeGreaterThan(0.9);
  const rpc = JSON.parse(iris.slice(iris.lastIndexOf('[{'))) as { target: number; predicted: number }[];
  expect(rpc).toHaveLength(150);
  expect(rpc.filter((r) => r.predicted === r.target).length).toBeGreaterThan(135);
}

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgml-walk-'));
  chmodSync(dir, 0o755); // the embedded PostgreSQL runs as the postgres OS user when we are root
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('the README walkthroughs, as a new user runs them', () => {
  it('on the embedded PostgreSQL of npm start', async () => {
    const dir = tempDir();
    const [port, pgPort] = [await freePort(), await freePort()];
    let started: Started | undefined;
    try {
      started = await npmStart({ PGML_DATA_DIR: join(dir, 'pgdata'), PGML_EMBEDDED_PORT: String(pgPort), PGML_MODEL_DIR: join(dir, 'models') }, port);
      const out = started.output();
      const token = /export TOKEN=(\S+)/.exec(out)?.[1];
      const psqlUrl = /psql "([^"]+)"/.exec(out)?.[1];
      expect(token, out).toBeTruthy();
      expect(psqlUrl, out).toBeTruthy();
      walk({ psqlUrl: psqlUrl!, port, dir, token: token! });
    } finally {
      await stop(started);
    }
  }, 300_000);

  it('on the suite\'s PostgreSQL, logging in as a non-superuser role not called authenticator', async () => {
    const dir = tempDir();
    const port = await freePort();
    let db: TestDatabase | undefined;
    let started: Started | undefined;
    const login = `walk_gw_${randomBytes(4).toString('hex')}`;
    try {
      db = await createTestDatabase({ migrate: false });
      await db.admin.unsafe(`create role ${login} login noinherit nosuperuser password 'walk-pw'; grant anon, authenticated to ${login};`);
      const gwUrl = new URL(db.adminUrl);
      gwUrl.username = login;
      gwUrl.password = 'walk-pw';
      const env = { DATABASE_URL: gwUrl.toString(), PGML_MIGRATION_DB_URI: db.adminUrl, PGRST_JWT_SECRET: SECRET, PGRST_DB_ANON_ROLE: 'anon', PGML_MODEL_DIR: join(dir, 'models') };
      started = await npmStart(env, port);
      const token = execFileSync('npm', ['run', '-s', 'token', '--', '--role', 'authenticated'], { cwd: REPO, env: { ...process.env, PGRST_JWT_SECRET: SECRET }, encoding: 'utf8' }).trim();
      walk({ psqlUrl: db.adminUrl, port, dir, token });
      // the jobs ran under the login role's grant, not a role called authenticator
      const [{ n }] = await db.admin`select count(*)::int as n from pgml.jobs where status = 'succeeded'`;
      expect(n).toBeGreaterThanOrEqual(2);
    } finally {
      await stop(started);
      await db?.drop();
      const server = postgres(inject('adminUrl'), { max: 1, onnotice: () => {} });
      await server.unsafe(`drop role if exists ${login}`).catch(() => {});
      await server.end();
    }
  }, 300_000);
});
