/**
 * Start-up as documented (issue 15, part 4): the embedded PostgreSQL's failures say what happened
 * and what to do (port taken, a second instance, a 0700 parent as root), an orphan or a stale
 * postmaster.pid is taken over, the binaries are run from a reachable copy when root cannot lend
 * them to the postgres user, migrations need an admin URI only when there is work for one, the
 * JWT secret stays inside the data directory, `npm run token` mints tokens the gateway accepts,
 * and engines agrees with every installed package.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedStartError, embeddedNativeDir, startEmbeddedPostgres } from '../src/db/embedded.ts';
import { migrate, startupWork } from '../src/db/migrate.ts';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { freePort } from './helpers/net.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const isRoot = process.getuid?.() === 0;
const dirs: string[] = [];
function tempDir(mode = 0o755): string {
  const d = mkdtempSync(join(tmpdir(), 'pgml-startup-'));
  chmodSync(d, mode);
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});


/** `npm start` (tsx src/main.ts) with this environment; resolves with its output when it exits or `until` matches. */
function runMain(env: Record<string, string>, until?: RegExp, timeoutMs = 60_000): { done: Promise<{ code: number | null; out: string }>; child: ChildProcess } {
  const clean = { ...process.env };
  for (const k of Object.keys(clean)) if (/^(PGRST_|PGML_|DATABASE_URL$)/.test(k)) delete clean[k];
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/main.ts')], { cwd: ROOT, env: { ...clean, PGRST_LOG_LEVEL: 'warn', PGML_JOB_WORKER: 'false', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const done = new Promise<{ code: number | null; out: string }>((resolveDone) => {
    const timer = setTimeout(() => resolveDone({ code: null, out: out + '\n[timed out]' }), timeoutMs);
    const check = (c: Buffer) => {
      out += c;
      if (until?.test(out)) {
        clearTimeout(timer);
        resolveDone({ code: null, out });
      }
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolveDone({ code, out });
    });
  });
  return { done, child };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await gone;
}

describe('embedded PostgreSQL start-up failures', () => {
  it('a taken port: says which and what to set, and npm start exits 1 without a stack trace', async () => {
    const port = await freePort();
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', () => r()));
    try {
      const dataDir = join(tempDir(), 'data');
      await expect(startEmbeddedPostgres({ dataDir, port, persistent: false })).rejects.toThrow(new RegExp(`Port ${port} on 127.0.0.1 is already in use[\\s\\S]*PGML_EMBEDDED_PORT`));
      const { done } = runMain({ PGML_DATA_DIR: join(tempDir(), 'data'), PGML_EMBEDDED_PORT: String(port), PGRST_SERVER_PORT: String(await freePort()) });
      const { code, out } = await done;
      console.log(`npm start, port taken:\n${out}`);
      expect(code).toBe(1);
      expect(out).toMatch(/The embedded PostgreSQL could not start\.\nPort \d+ on 127\.0\.0\.1 is already in use/);
      expect(out).not.toMatch(/undefined|\n\s+at /);
    } finally {
      blocker.close();
    }
  }, 90_000);

  it('a second instance on the same data directory is refused; an orphan left by a killed gateway is taken over', async () => {
    const dataDir = join(tempDir(), 'data');
    const port = await freePort();
    const first = runMain({ PGML_DATA_DIR: dataDir, PGML_EMBEDDED_PORT: String(port), PGRST_SERVER_PORT: String(await freePort()) }, /export TOKEN=/);
    try {
      expect((await first.done).out).toMatch(/Embedded PostgreSQL is running/);
      // a second instance while the first runs
      const err = await startEmbeddedPostgres({ dataDir, port: await freePort() }).catch((e) => e);
      expect(err).toBeInstanceOf(EmbeddedStartError);
      expect(err.message).toMatch(/Another process already runs the embedded PostgreSQL on .*postmaster PID \d+, port \d+, started by PID \d+[\s\S]*own PGML_DATA_DIR and PGML_EMBEDDED_PORT/);
      console.log(`second instance:\n${err.message}`);
      // the gateway dies without stopping its PostgreSQL: an orphan keeps running on the data dir
      const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      const exited = new Promise((r) => first.child.once('exit', r));
      first.child.kill('SIGKILL');
      await exited;
      expect(() => process.kill(pid, 0)).not.toThrow();
      const lines: string[] = [];
      const db = await startEmbeddedPostgres({ dataDir, port: await freePort(), log: (l) => lines.push(l) });
      try {
        expect(lines.join('\n')).toMatch(new RegExp(`PostgreSQL \\(PID ${pid}, port ${port}\\) was left running on .* by a gateway that is gone; shutting it down`));
        expect(() => process.kill(pid, 0)).toThrow();
        const sql = postgres(db.adminUri, { max: 1 });
        expect((await sql`select 1 as one`)[0].one).toBe(1);
        await sql.end();
      } finally {
        await db.stop();
      }
    } finally {
      await stopChild(first.child);
    }
  }, 120_000);

  it('a stale postmaster.pid (dead PID, or a PID now used by another program) is removed', async () => {
    const dataDir = join(tempDir(), 'data');
    const db = await startEmbeddedPostgres({ dataDir, port: await freePort() });
    await db.stop();
    for (const stalePid of [4194303, 1]) {
      writeFileSync(join(dataDir, 'postmaster.pid'), `${stalePid}\n${dataDir}\n1700000000\n5432\n/tmp\n127.0.0.1\n  0 0\nready\n`);
      const lines: string[] = [];
      const again = await startEmbeddedPostgres({ dataDir, port: await freePort(), log: (l) => lines.push(l) });
      expect(lines.join('\n')).toMatch(new RegExp(`removing the stale .*postmaster.pid \\(PID ${stalePid} is (no longer running|now another program)`));
      await again.stop();
    }
  }, 60_000);
});

describe.runIf(isRoot)('as root, below a directory the postgres user cannot enter', () => {
  it('a data directory there is refused at once, naming the directory and what to do', async () => {
    const closed = tempDir(0o700); // like /root or a mktemp -d folder
    const err = await startEmbeddedPostgres({ dataDir: join(closed, '.pgdata'), port: await freePort() }).catch((e) => e);
    expect(err).toBeInstanceOf(EmbeddedStartError);
    expect(err.message).toContain(`cannot enter ${closed} (mode 0700)`);
    expect(err.message).toMatch(/PGML_DATA_DIR=[\s\S]*chmod o\+x/);
    const { done } = runMain({ PGML_DATA_DIR: join(closed, '.pgdata'), PGML_EMBEDDED_PORT: String(await freePort()) });
    const { code, out } = await done;
    console.log(`npm start, data dir below 0700:\n${out}`);
    expect(code).toBe(1);
    expect(out).not.toMatch(/EACCES|\n\s+at /);
    expect(existsSync(join(closed, '.pgdata', 'PG_VERSION'))).toBe(false);
  }, 60_000);

  it('binaries there (a clone under /root) run from a reachable copy', async () => {
    const closed = tempDir(0o700);
    symlinkSync(embeddedNativeDir(), join(closed, 'native'));
    const lines: string[] = [];
    const db = await startEmbeddedPostgres({ dataDir: join(tempDir(), 'data'), port: await freePort(), persistent: false, nativeDir: join(closed, 'native'), log: (l) => lines.push(l) });
    try {
      const sql = postgres(db.adminUri, { max: 1 });
      expect((await sql`select current_setting('data_directory') is not null as ok`)[0].ok).toBe(true);
      await sql.end();
    } finally {
      await db.stop();
    }
    expect(readdirSync(tmpdir()).some((f) => /^pgml-gateway-postgres-[\w.-]+-linux-x64$/.test(f))).toBe(true);
    // and it really is run from there: the postgres user cannot reach the original
    expect(spawnSync('test', ['-x', join(closed, 'native', 'bin', 'postgres')], { uid: Number(spawnSync('id', ['-u', 'postgres']).stdout), gid: Number(spawnSync('id', ['-g', 'postgres']).stdout) }).status).not.toBe(0);
  }, 60_000);
});

describe('migrations at start: checked as the login role first', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase({ migrate: false });
    await migrate(db.admin, undefined, { workerRole: 'authenticator' });
  });
  afterAll(async () => db?.drop());

  it('startupWork sees pending migrations and a missing pgml_worker grant as the authenticator', async () => {
    const auth = postgres(db.authenticatorUrl, { max: 1, onnotice: () => {} });
    try {
      expect(await startupWork(auth)).toEqual({ pending: [], workerGrantMissing: false });
      expect((await startupWork(auth, [{ version: 9999, name: '9999_future', sql: '' }])).pending).toEqual(['9999_future']);
      await db.admin.unsafe('revoke execute on all functions in schema pgml_worker from authenticator').simple();
      expect((await startupWork(auth)).workerGrantMissing).toBe(true);
    } finally {
      await auth.end();
      await migrate(db.admin, undefined, { workerRole: 'authenticator' });
    }
  });

  it('npm start needs no PGML_MIGRATION_DB_URI when there is nothing to do, and names it when there is', async () => {
    const ok = runMain({ DATABASE_URL: db.authenticatorUrl, PGRST_SERVER_PORT: String(await freePort()), PGRST_JWT_SECRET: 'x'.repeat(32) }, /never-printed/, 8_000);
    const first = await ok.done;
    expect(first.out).not.toMatch(/Migrations failed|PGML_MIGRATION_DB_URI|admin role/);
    expect(first.code).toBeNull(); // still serving
    await stopChild(ok.child);
    await db.admin.unsafe('revoke execute on all functions in schema pgml_worker from authenticator').simple();
    try {
      const { code, out } = await runMain({ DATABASE_URL: db.authenticatorUrl, PGRST_SERVER_PORT: String(await freePort()), PGRST_JWT_SECRET: 'x'.repeat(32) }).done;
      console.log(`npm start, grant missing, no admin URI:\n${out}`);
      expect(code).toBe(1);
      expect(out).toMatch(/authenticator needs usage and execute on schema pgml_worker[\s\S]*Set PGML_MIGRATION_DB_URI/);
    } finally {
      await migrate(db.admin, undefined, { workerRole: 'authenticator' });
    }
  }, 60_000);
});

describe('secrets and tokens', () => {
  it('the JWT secret lives inside the data directory, and npm run token mints tokens the gateway accepts', async () => {
    const parent = tempDir();
    const dataDir = join(parent, 'data');
    const port = await freePort();
    const main = runMain({ PGML_DATA_DIR: dataDir, PGML_EMBEDDED_PORT: String(await freePort()), PGRST_SERVER_PORT: String(port) }, /export TOKEN=/);
    try {
      const started = await main.done;
      expect(started.out).toMatch(/npm run token -- --role anon --exp 1h/);
      expect(existsSync(join(dataDir, 'pgml-gateway.jwt-secret'))).toBe(true);
      expect(existsSync(join(parent, 'data.jwt-secret'))).toBe(false);
      const mint = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/token.ts'), ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, PGRST_JWT_SECRET: '', PGML_DATA_DIR: dataDir } });
      const t = mint('--role', 'authenticated', '--exp', '1h');
      expect(t.status, t.stderr).toBe(0);
      const [, payload] = t.stdout.trim().split('.');
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
      expect(claims.role).toBe('authenticated');
      expect(claims.exp - claims.iat).toBe(3600);
      const call = async (token: string) => {
        for (let i = 0; ; i++) {
          try {
            return (await fetch(`http://127.0.0.1:${port}/`, { headers: { authorization: `Bearer ${token}` } })).status;
          } catch (e) {
            if (i > 300 || main.child.exitCode !== null) throw new Error(`gateway not answering: ${(e as Error).message}\n${started.out}`);
            await new Promise((r) => setTimeout(r, 100));
          }
        }
      };
      expect(await call(t.stdout.trim())).toBe(200);
      expect(await call(t.stdout.trim().slice(0, -2) + 'xx')).toBe(401);
      expect(mint('--exp', 'soon').status).toBe(2);
    } finally {
      await stopChild(main.child);
    }
    expect(readFileSync(join(ROOT, '.gitignore'), 'utf8')).toMatch(/^\*\.jwt-secret$/m);
  }, 90_000);
});

/** Whether version v satisfies an npm engines range (the forms packages use: >=, >, <, <=, ^, ~, x, ||). */
function satisfies(v: string, range: string): boolean {
  const parse = (s: string) => s.replace(/^v/, '').split('.').map((x) => (x === 'x' || x === '*' || x === undefined ? NaN : Number(x)));
  const cmp = (a: number[], b: number[]) => {
    for (let i = 0; i < 3; i++) {
      const x = a[i] ?? 0;
      const y = Number.isNaN(b[i]) || b[i] === undefined ? x : b[i];
      if (x !== y) return x - y;
    }
    return 0;
  };
  const ver = parse(v);
  return range.split('||').some((alt) =>
    alt.trim().replace(/([<>=^~]+)\s+/g, '$1').split(/\s+/).filter(Boolean).every((c) => {
      const m = /^(>=|<=|>|<|\^|~|=)?(.*)$/.exec(c)!;
      if (m[2] === '*' || m[2] === '') return true;
      const b = parse(m[2]);
      const d = cmp(ver, b);
      switch (m[1]) {
        case '>=': return d >= 0;
        case '>': return d > 0;
        case '<=': return d <= 0;
        case '<': return d < 0;
        case '^': return d >= 0 && ver[0] === b[0];
        case '~': return d >= 0 && ver[0] === b[0] && ver[1] === b[1];
        default: return cmp(ver, b.map((x, i) => (Number.isNaN(x) ? ver[i] : x))) === 0;
      }
    }),
  );
}

describe('engines', () => {
  it('the lowest Node that package.json allows satisfies every installed package', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    const lowest = /^>=\s*(\d+\.\d+(\.\d+)?)$/.exec(pkg.engines.node)![1];
    expect(satisfies('22.0.0', '>=22.0.0') && !satisfies('20.19.0', '>=22.0.0') && satisfies('20.19.0', '^20.19.0 || >=22.12.0')).toBe(true);
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));
    const bad = Object.entries(lock.packages as Record<string, { engines?: { node?: string }; version?: string; optional?: boolean }>)
      .filter(([path, p]) => path && p.engines?.node && typeof p.engines.node === 'string' && !satisfies(lowest, p.engines.node))
      .map(([path, p]) => `${path}@${p.version} wants node ${p.engines!.node}`);
    expect(bad).toEqual([]);
  });
});
