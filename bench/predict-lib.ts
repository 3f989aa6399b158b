/**
 * Helpers of bench/predict.ts that bench/lib does not have:
 *   - HTTP load where every request differs (a list of paths or bodies, taken in turn by all
 *     connections through autocannon's setupRequest), in a forked child like bench/lib/load.ts;
 *   - finding (or apt-installing) the Python side: Flask, xgboost, psycopg2, gunicorn;
 *   - starting the Flask + xgboost service (bench/flask_predict.py);
 *   - percentiles of repeated timings.
 * Not a benchmark itself (no run() export); bench/run.ts skips it.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runInChild, type LoadSummary } from './lib/load.ts';
import type { Autocannon } from './lib/load-worker.ts';
import { freePort, httpRequest } from './lib/net.ts';
import { cleanEnv, REPO_ROOT, spawnService, type Service } from './lib/proc.ts';

export interface VariedLoadOptions {
  /** scheme, host and port: http://127.0.0.1:3000 */
  origin: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  /** request i uses paths[i % paths.length] (or `path` when absent) */
  paths?: string[];
  path?: string;
  /** request i sends bodies[i % bodies.length] */
  bodies?: string[];
  connections: number;
  /** requests in total; the run ends with no request in flight */
  amount: number;
  /** the first request uses entry `offset` of the lists (so consecutive runs use different rows) */
  offset?: number;
}

/** Runs one varied-request load in a child process (its own event loop and CPU account). */
export function runVariedLoad(o: VariedLoadOptions): Promise<LoadSummary> {
  return runInChild<LoadSummary>(fileURLToPath(import.meta.url), ['--predict-load-worker'], 'predict load generator', o);
}

/** About `seconds` of load: a probe (10 requests per connection) sizes the measured run. */
export async function runVariedLoadFor(o: Omit<VariedLoadOptions, 'amount'>, seconds: number): Promise<{ probe: LoadSummary; run: LoadSummary }> {
  const probe = await runVariedLoad({ ...o, amount: o.connections * 10 });
  const rate = probe.ok > 0 ? probe.ok / Math.max(0.05, probe.durationSeconds) : 10;
  const amount = Math.max(o.connections * 5, Math.round(rate * seconds));
  return { probe, run: await runVariedLoad({ ...o, offset: (o.offset ?? 0) + probe.ok, amount }) };
}

// ---------------------------------------------------------------------------------------------
// the load worker (this file forked with --predict-load-worker)


function percentileOf(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  return n ? sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))] : NaN;
}

function measureVaried(o: VariedLoadOptions): Promise<LoadSummary> {
  const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
  return new Promise((resolvePromise, reject) => {
    const cpu = process.cpuUsage();
    const started = process.hrtime.bigint();
    let latencies = new Float64Array(1 << 16);
    let n = 0;
    let lastAnswer = 0;
    let next = o.offset ?? 0;
    const paths = o.paths;
    const bodies = o.bodies;
    const errorKinds: Record<string, number> = {};
    const instance = autocannon(
      {
        url: o.origin,
        method: o.method,
        headers: o.headers,
        connections: o.connections,
        amount: o.amount,
        pipelining: 1,
        timeout: 10,
        requests: [
          {
            method: o.method,
            setupRequest: (req: Record<string, unknown>) => {
              const i = next++;
              req.path = paths ? paths[i % paths.length] : (o.path ?? '/');
              if (bodies) req.body = bodies[i % bodies.length];
              return req;
            },
          },
        ],
      },
      (err, r) => {
        if (err) return reject(err);
        const used = process.cpuUsage(cpu);
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        const active = lastAnswer ? (lastAnswer - Number(started)) / 1e9 : r.duration;
        const sorted = latencies.subarray(0, n).sort();
        let sum = 0;
        for (const v of sorted) sum += v;
        resolvePromise({
          durationSeconds: active,
          ok: r['2xx'],
          rps: r['2xx'] / active,
          latencyMs: { p50: percentileOf(sorted, 0.5), p90: percentileOf(sorted, 0.9), p99: percentileOf(sorted, 0.99), mean: n ? sum / n : NaN, max: n ? sorted[n - 1] : NaN },
          errors: r.errors,
          errorKinds,
          timeouts: r.timeouts,
          non2xx: r.non2xx,
          mismatches: 0,
          loadCpuSeconds: (used.user + used.system) / 1e6,
          wallSeconds: seconds,
        });
      },
    );
    instance.on('reqError', (err) => {
      const kind = err.code ?? err.message;
      errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
    });
    instance.on('response', (_client, status, _bytes, ms) => {
      lastAnswer = Number(process.hrtime.bigint());
      if (status >= 200 && status < 300) {
        if (n === latencies.length) {
          const grown = new Float64Array(latencies.length * 2);
          grown.set(latencies);
          latencies = grown;
        }
        latencies[n++] = ms;
      }
    });
  });
}

if (process.argv.includes('--predict-load-worker') && process.send) {
  process.once('message', (o: VariedLoadOptions) => {
    measureVaried(o).then(
      (summary) => process.send!({ summary }, () => process.exit(0)),
      (e: unknown) => process.send!({ error: String((e as Error)?.stack ?? e) }, () => process.exit(1)),
    );
  });
}

// ---------------------------------------------------------------------------------------------
// timings

export interface Timing {
  runs: number;
  p50: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

/** Nearest-rank percentiles of samples (ms). With fewer than 100 runs p99 is the maximum. */
export function timing(samples: number[]): Timing {
  const s = Float64Array.from(samples).sort();
  const mean = samples.reduce((a, b) => a + b, 0) / Math.max(1, samples.length);
  return { runs: s.length, p50: percentileOf(s, 0.5), p99: percentileOf(s, 0.99), mean, min: s[0], max: s[s.length - 1] };
}

/** `warmup` untimed calls, then `runs` timed ones (ms each). */
export async function timeRuns(warmup: number, runs: number, fn: () => Promise<unknown> | unknown): Promise<Timing> {
  for (let i = 0; i < warmup; i++) await fn();
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return timing(samples);
}

// ---------------------------------------------------------------------------------------------
// the Python side

export const PYTHON = '/usr/bin/python3';
const FLASK_APP = resolve(REPO_ROOT, 'bench', 'flask_predict.py');
const APT_PACKAGES = ['python3-flask', 'python3-xgboost', 'python3-psycopg2', 'python3-gunicorn'];

export interface PythonSide {
  python: string;
  gunicorn: boolean;
  versions: string;
  /** what was installed by this run, if anything */
  installed: string[];
}

function probe(python: string): { ok: boolean; gunicorn: boolean; versions: string } {
  const code =
    'import flask, xgboost, psycopg2, numpy\n' +
    'try:\n import gunicorn; g = gunicorn.__version__\nexcept Exception:\n g = None\n' +
    'print(flask.__version__, xgboost.__version__, psycopg2.__version__.split()[0], numpy.__version__, g)';
  const r = spawnSync(python, ['-c', code], { encoding: 'utf8' });
  if (r.status !== 0) return { ok: false, gunicorn: false, versions: '' };
  const [flask, xgboost, psycopg2, numpy, gunicorn] = r.stdout.trim().split(' ');
  return { ok: true, gunicorn: gunicorn !== 'None', versions: `flask ${flask}, xgboost ${xgboost}, psycopg2 ${psycopg2}, numpy ${numpy}${gunicorn !== 'None' ? `, gunicorn ${gunicorn}` : ''}` };
}

/**
 * The Debian python with Flask, xgboost and psycopg2 (gunicorn when available). Missing packages
 * are installed with apt-get when BENCH_PREDICT_APT is not 0 and we may (root); otherwise the
 * reason to skip the Flask side.
 */
export function pythonSide(): PythonSide | { reason: string } {
  let found = probe(PYTHON);
  const installed: string[] = [];
  if ((!found.ok || !found.gunicorn) && process.env.BENCH_PREDICT_APT !== '0' && process.getuid?.() === 0) {
    const missing = APT_PACKAGES.filter((p) => spawnSync('dpkg', ['-s', p], { stdio: 'ignore' }).status !== 0);
    if (missing.length) {
      console.log(`predict: installing ${missing.join(' ')} with apt-get (BENCH_PREDICT_APT=0 to prevent) ...`);
      let r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
      if (r.status !== 0) {
        spawnSync('apt-get', ['update'], { stdio: 'ignore' });
        r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
      }
      if (r.status === 0) installed.push(...missing);
      found = probe(PYTHON);
    }
  }
  if (!found.ok) {
    return { reason: `${PYTHON} cannot import flask, xgboost, psycopg2 and numpy (Debian: apt-get install -y ${APT_PACKAGES.join(' ')})` };
  }
  return { python: PYTHON, gunicorn: found.gunicorn, versions: found.versions, installed };
}

/** Trains python xgboost on the table (bench/flask_predict.py train); returns its report. */
export function trainFlaskModel(py: PythonSide, dsn: string, table: string, modelFile: string, trees: number, depth: number, nthread: number): { seconds: number; rows: number; version: string } {
  const r = spawnSync(py.python, [FLASK_APP, 'train', dsn, table, modelFile, String(trees), String(depth), String(nthread)], { encoding: 'utf8', env: cleanEnv({}) });
  if (r.status !== 0) throw new Error(`flask_predict.py train failed (${r.status}):\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as { seconds: number; rows: number; version: string };
}

export interface FlaskOptions {
  dsn: string;
  table: string;
  modelFile: string;
  /** gunicorn gthread workers (processes) and threads per worker */
  workers: number;
  threads: number;
}

export interface RunningFlask {
  url: string;
  service: Service;
  /** e.g. "gunicorn gthread 2 workers × 16 threads" */
  server: string;
  stop(): Promise<void>;
}

/** gunicorn (gthread workers) serving flask_predict:app, or Flask's threaded dev server without gunicorn. */
export async function startFlask(py: PythonSide, o: FlaskOptions): Promise<RunningFlask> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = cleanEnv({ PREDICT_DSN: o.dsn, PREDICT_TABLE: o.table, PREDICT_MODEL: o.modelFile, PYTHONUNBUFFERED: '1', OMP_NUM_THREADS: '1' });
  const args = py.gunicorn
    ? ['-m', 'gunicorn', '--chdir', resolve(REPO_ROOT, 'bench'), '--workers', String(o.workers), '--worker-class', 'gthread', '--threads', String(o.threads),
       '--bind', `127.0.0.1:${port}`, '--keep-alive', '60', '--backlog', '2048', '--log-level', 'warning', 'flask_predict:app']
    : [FLASK_APP, 'serve', String(port)];
  const service = await spawnService({
    name: 'flask',
    command: py.python,
    args,
    env,
    ready: async () => (await httpRequest(`${url}/ready`, { timeoutMs: 1000 })).status === 200,
    readyTimeoutMs: 60_000,
    killTimeoutMs: 10_000,
  });
  const server = py.gunicorn ? `gunicorn gthread, ${o.workers} workers × ${o.threads} threads` : 'Flask threaded dev server (gunicorn not installed)';
  return { url, service, server, stop: () => service.stop() };
}
