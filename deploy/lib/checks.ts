/**
 * Structural checks of deploy/: every YAML file parses (subset parser), the Kubernetes manifests
 * have only known fields and agree with each other, the app (probe paths, env names, values that
 * loadConfig accepts) and the Dockerfile; the compose file agrees with the Dockerfile; the
 * Dockerfile's COPY sources exist and pass the .dockerignore. Cheap: no network, no npm ci.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseYamlDocuments } from './yaml-subset.ts';
import { copyArgs, DockerIgnore, parseDockerfile, parseEnv, type Dockerfile } from './dockerfile.ts';

export interface CheckResult {
  name: string;
  ok: boolean;
  detail?: string;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const asObj = (v: unknown): Obj => (isObj(v) ? v : {});
const asArr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

export const REPO = resolve(import.meta.dirname, '..', '..');
export const DEPLOY = join(REPO, 'deploy');

export function yamlFiles(dir = DEPLOY): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules') continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...yamlFiles(p));
    else if (/\.ya?ml$/.test(e.name)) out.push(p);
  }
  return out.sort();
}

export function loadYaml(file: string): unknown[] {
  return parseYamlDocuments(readFileSync(file, 'utf8'), relative(REPO, file));
}

// ---------------------------------------------------------------- app facts

/** GET routes of routes/health.ts */
export function healthPaths(): string[] {
  const src = readFileSync(join(REPO, 'routes', 'health.ts'), 'utf8');
  return [...src.matchAll(/app\.get\(\s*['"`]([^'"`]+)['"`]/g)].map((m) => m[1]);
}

/** Every env name the gateway reads: src/config.ts OPTIONS plus src/embed/config.ts */
export async function appEnvNames(): Promise<Set<string>> {
  const { OPTIONS } = await import('../../src/config.ts');
  const names = new Set<string>(OPTIONS.flatMap((o) => o.env));
  const embed = readFileSync(join(REPO, 'src', 'embed', 'config.ts'), 'utf8');
  for (const m of embed.matchAll(/env\.([A-Z][A-Z0-9_]+)|env,\s*'([A-Z][A-Z0-9_]+)'|'(PGML_[A-Z0-9_]+)'/g)) names.add(m[1] ?? m[2] ?? m[3]);
  for (const n of ['NODE_ENV', 'NODE_OPTIONS', 'TZ', 'UV_THREADPOOL_SIZE']) names.add(n);
  return names;
}

async function configAccepts(env: Record<string, string>): Promise<string | null> {
  const { loadConfig } = await import('../../src/config.ts');
  const { embedConfigFromEnv } = await import('../../src/embed/config.ts');
  try {
    loadConfig(env, []);
    embedConfigFromEnv(env);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

// ---------------------------------------------------------------- Kubernetes field schema

type Schema = 'str' | 'int' | 'bool' | 'intOrStr' | 'strMap' | 'any' | { [k: string]: Schema } | [Schema];
const meta: Schema = { name: 'str', namespace: 'str', labels: 'strMap', annotations: 'strMap' };
const selector: Schema = { matchLabels: 'strMap' };
const probe: Schema = {
  httpGet: { path: 'str', port: 'intOrStr', scheme: 'str' },
  initialDelaySeconds: 'int', periodSeconds: 'int', timeoutSeconds: 'int', failureThreshold: 'int', successThreshold: 'int', terminationGracePeriodSeconds: 'int',
};
const quantities: Schema = { cpu: 'intOrStr', memory: 'intOrStr', 'ephemeral-storage': 'intOrStr' };
const container: Schema = {
  name: 'str', image: 'str', imagePullPolicy: 'str', command: ['str'], args: ['str'], workingDir: 'str',
  ports: [{ name: 'str', containerPort: 'int', protocol: 'str' }],
  env: [{ name: 'str', value: 'str', valueFrom: 'any' }],
  envFrom: [{ configMapRef: { name: 'str', optional: 'bool' }, secretRef: { name: 'str', optional: 'bool' }, prefix: 'str' }],
  resources: { requests: quantities, limits: quantities },
  startupProbe: probe, livenessProbe: probe, readinessProbe: probe,
  lifecycle: { preStop: { exec: { command: ['str'] }, httpGet: probe, sleep: { seconds: 'int' } } },
  securityContext: {
    allowPrivilegeEscalation: 'bool', readOnlyRootFilesystem: 'bool', runAsNonRoot: 'bool', runAsUser: 'int', runAsGroup: 'int',
    privileged: 'bool', capabilities: { drop: ['str'], add: ['str'] }, seccompProfile: { type: 'str' },
  },
  volumeMounts: [{ name: 'str', mountPath: 'str', readOnly: 'bool', subPath: 'str' }],
};
const podSpec: Schema = {
  automountServiceAccountToken: 'bool', serviceAccountName: 'str', terminationGracePeriodSeconds: 'int',
  securityContext: { runAsNonRoot: 'bool', runAsUser: 'int', runAsGroup: 'int', fsGroup: 'int', seccompProfile: { type: 'str' } },
  topologySpreadConstraints: [{ maxSkew: 'int', topologyKey: 'str', whenUnsatisfiable: 'str', labelSelector: selector }],
  containers: [container], initContainers: [container],
  volumes: [{
    name: 'str',
    emptyDir: { sizeLimit: 'intOrStr', medium: 'str' },
    persistentVolumeClaim: { claimName: 'str', readOnly: 'bool' },
    configMap: { name: 'str' }, secret: { secretName: 'str' },
  }],
};
const KINDS: Record<string, { apiVersion: string; schema: Schema }> = {
  Namespace: { apiVersion: 'v1', schema: { apiVersion: 'str', kind: 'str', metadata: meta } },
  ConfigMap: { apiVersion: 'v1', schema: { apiVersion: 'str', kind: 'str', metadata: meta, data: 'strMap' } },
  Secret: { apiVersion: 'v1', schema: { apiVersion: 'str', kind: 'str', metadata: meta, type: 'str', stringData: 'strMap', data: 'strMap' } },
  Service: {
    apiVersion: 'v1',
    schema: { apiVersion: 'str', kind: 'str', metadata: meta, spec: { type: 'str', selector: 'strMap', ports: [{ name: 'str', port: 'int', targetPort: 'intOrStr', protocol: 'str' }] } },
  },
  Deployment: {
    apiVersion: 'apps/v1',
    schema: {
      apiVersion: 'str', kind: 'str', metadata: meta,
      spec: {
        replicas: 'int', revisionHistoryLimit: 'int', selector,
        strategy: { type: 'str', rollingUpdate: { maxSurge: 'intOrStr', maxUnavailable: 'intOrStr' } },
        template: { metadata: meta, spec: podSpec },
      },
    },
  },
  HorizontalPodAutoscaler: {
    apiVersion: 'autoscaling/v2',
    schema: {
      apiVersion: 'str', kind: 'str', metadata: meta,
      spec: {
        scaleTargetRef: { apiVersion: 'str', kind: 'str', name: 'str' }, minReplicas: 'int', maxReplicas: 'int',
        metrics: [{ type: 'str', resource: { name: 'str', target: { type: 'str', averageUtilization: 'int', averageValue: 'intOrStr' } } }],
        behavior: {
          scaleDown: { stabilizationWindowSeconds: 'int', selectPolicy: 'str', policies: [{ type: 'str', value: 'int', periodSeconds: 'int' }] },
          scaleUp: { stabilizationWindowSeconds: 'int', selectPolicy: 'str', policies: [{ type: 'str', value: 'int', periodSeconds: 'int' }] },
        },
      },
    },
  },
  PodDisruptionBudget: {
    apiVersion: 'policy/v1',
    schema: { apiVersion: 'str', kind: 'str', metadata: meta, spec: { minAvailable: 'intOrStr', maxUnavailable: 'intOrStr', selector } },
  },
  Kustomization: {
    apiVersion: 'kustomize.config.k8s.io/v1beta1',
    schema: { apiVersion: 'str', kind: 'str', namespace: 'str', resources: ['str'], images: [{ name: 'str', newName: 'str', newTag: 'str' }] },
  },
};

function schemaErrors(v: unknown, s: Schema, path: string, out: string[]): void {
  if (s === 'any') return;
  if (s === 'str') {
    if (typeof v !== 'string') out.push(`${path}: expected a string, got ${JSON.stringify(v)}`);
  } else if (s === 'int') {
    if (!Number.isInteger(v)) out.push(`${path}: expected an integer, got ${JSON.stringify(v)}`);
  } else if (s === 'bool') {
    if (typeof v !== 'boolean') out.push(`${path}: expected a boolean, got ${JSON.stringify(v)}`);
  } else if (s === 'intOrStr') {
    if (!Number.isInteger(v) && typeof v !== 'string') out.push(`${path}: expected an integer or string`);
  } else if (s === 'strMap') {
    if (!isObj(v)) out.push(`${path}: expected a map of strings`);
    else for (const [k, x] of Object.entries(v)) if (typeof x !== 'string') out.push(`${path}.${k}: expected a string (quote it), got ${JSON.stringify(x)}`);
  } else if (Array.isArray(s)) {
    if (!Array.isArray(v)) out.push(`${path}: expected a list`);
    else v.forEach((x, i) => schemaErrors(x, s[0], `${path}[${i}]`, out));
  } else if (!isObj(v)) out.push(`${path}: expected a mapping`);
  else for (const [k, x] of Object.entries(v)) {
    if (!(k in s)) out.push(`${path}.${k}: unknown field`);
    else schemaErrors(x, s[k], `${path}.${k}`, out);
  }
}

// ---------------------------------------------------------------- checks

function check(results: CheckResult[], name: string, problems: string[] | string | null | false | undefined): void {
  const list = Array.isArray(problems) ? problems : problems ? [problems] : [];
  results.push({ name, ok: list.length === 0, detail: list.join('; ') || undefined });
}

export function dockerfile(): Dockerfile {
  return parseDockerfile(readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8'));
}

export function healthcheckCommand(df = dockerfile()): string[] {
  const hc = df.stages.at(-1)!.instructions.find((i) => i.cmd === 'HEALTHCHECK');
  if (!hc?.json) throw new Error('no exec-form HEALTHCHECK in the final stage');
  return hc.json;
}

function matchesSelector(selectorLabels: Obj, labels: Obj): boolean {
  return Object.keys(selectorLabels).length > 0 && Object.entries(selectorLabels).every(([k, v]) => labels[k] === v);
}

export async function runStructuralChecks(): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const envNames = await appEnvNames();
  const paths = healthPaths();

  // 1. every YAML file parses
  const parsed = new Map<string, unknown[]>();
  for (const f of yamlFiles()) {
    try {
      parsed.set(f, loadYaml(f));
      check(results, `yaml parses: ${relative(REPO, f)}`, null);
    } catch (e) {
      check(results, `yaml parses: ${relative(REPO, f)}`, (e as Error).message);
    }
  }

  // 2. Dockerfile
  const df = dockerfile();
  const final = df.stages.at(-1)!;
  const all = df.stages.flatMap((s) => s.instructions);
  const finalEnv = Object.assign({}, ...final.instructions.filter((i) => i.cmd === 'ENV').map((i) => parseEnv(i.args))) as Record<string, string>;
  const user = final.instructions.filter((i) => i.cmd === 'USER').at(-1)?.args ?? '';
  const uid = Number(user.split(':')[0]);
  const exposed = final.instructions.filter((i) => i.cmd === 'EXPOSE').flatMap((i) => i.args.split(/\s+/).map((p) => Number(p.split('/')[0])));
  check(results, 'Dockerfile: multi-stage, every stage FROM node:20-bookworm-slim', [
    ...(df.stages.length < 2 ? ['only one stage'] : []),
    ...df.stages.filter((s) => s.base !== 'node:20-bookworm-slim').map((s) => `stage ${s.name} is FROM ${s.base}`),
  ]);
  const ci = all.filter((i) => i.cmd === 'RUN' && /\bnpm (ci|install)\b/.test(i.args));
  check(results, 'Dockerfile: npm ci --omit=dev, install scripts enabled, .npmrc copied first', [
    ...(ci.length !== 1 || !/npm ci\b.*--omit=dev/.test(ci[0]?.args ?? '') ? ['expected exactly one `npm ci --omit=dev`'] : []),
    ...all.filter((i) => /ignore-scripts/.test(i.args)).map((i) => `line ${i.line}: ignore-scripts`),
    ...(readFileSync(join(REPO, '.npmrc'), 'utf8').includes('onnxruntime-node-install=skip') ? [] : ['.npmrc lacks onnxruntime-node-install=skip']),
    ...(df.stages.some((s) => {
      const copyIdx = s.instructions.findIndex((i) => i.cmd === 'COPY' && copyArgs(i).sources.includes('.npmrc'));
      const ciIdx = s.instructions.findIndex((i) => i === ci[0]);
      return ciIdx >= 0 && (copyIdx < 0 || copyIdx > ciIdx);
    }) ? ['.npmrc is not copied before npm ci'] : []),
  ]);
  check(results, 'Dockerfile: non-root numeric USER', Number.isInteger(uid) && uid > 0 ? null : `USER ${user}`);
  check(results, 'Dockerfile: VOLUME /models with PGML_MODEL_DIR=/models', [
    ...(final.instructions.some((i) => i.cmd === 'VOLUME' && (i.json ?? i.args.split(/\s+/)).includes('/models')) ? [] : ['no VOLUME /models']),
    ...(finalEnv.PGML_MODEL_DIR === '/models' ? [] : [`PGML_MODEL_DIR=${finalEnv.PGML_MODEL_DIR}`]),
    // setting PGRST_SERVER_PORT in the image would shadow PORT (first match wins in src/config.ts)
    ...(finalEnv.PGRST_SERVER_PORT ? ['PGRST_SERVER_PORT set in the image shadows PORT'] : []),
  ]);
  check(results, 'Dockerfile: EXPOSE 3000 (the default PGRST_SERVER_PORT)', exposed.includes(3000) ? null : `EXPOSE ${exposed}`);
  const hc = (() => {
    try {
      return healthcheckCommand(df);
    } catch (e) {
      return (e as Error).message;
    }
  })();
  check(results, 'Dockerfile: HEALTHCHECK fetches /ready with node', typeof hc === 'string' ? hc : hc[0] === 'node' && hc.join(' ').includes("'/ready'") && paths.includes('/ready') ? null : `HEALTHCHECK ${hc.join(' ')}`);
  const cmd = final.instructions.filter((i) => i.cmd === 'CMD').at(-1)?.json;
  const entry = final.instructions.filter((i) => i.cmd === 'ENTRYPOINT').at(-1)?.json;
  check(results, 'Dockerfile: CMD node --import tsx src/main.ts; exec-form ENTRYPOINT that execs it', [
    ...(JSON.stringify(cmd) === JSON.stringify(['node', '--import', 'tsx', 'src/main.ts']) ? [] : [`CMD ${JSON.stringify(cmd)}`]),
    ...(entry ? [] : ['ENTRYPOINT missing or in shell form (node would not be PID 1)']),
    ...(/exec "\$@"/.test(readFileSync(join(DEPLOY, 'docker-entrypoint.sh'), 'utf8')) ? [] : ['docker-entrypoint.sh does not exec "$@"']),
  ]);

  // COPY sources: exist, and pass .dockerignore (context = repository root)
  const ignore = new DockerIgnore(existsSync(join(REPO, '.dockerignore')) ? readFileSync(join(REPO, '.dockerignore'), 'utf8') : '');
  const copyProblems: string[] = [];
  for (const ins of all.filter((i) => i.cmd === 'COPY' && !i.flags.from)) {
    for (const src of copyArgs(ins).sources) {
      const abs = join(REPO, src);
      if (!existsSync(abs)) copyProblems.push(`line ${ins.line}: ${src} does not exist`);
      else if (!ignore.includes(src)) copyProblems.push(`line ${ins.line}: ${src} is excluded by .dockerignore`);
      else if (statSync(abs).isDirectory()) {
        const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [relative(REPO, join(d, e.name))]));
        for (const f of walk(abs)) if (!ignore.includes(f)) copyProblems.push(`${f} is excluded by .dockerignore`);
      }
    }
  }
  check(results, 'Dockerfile: every COPY source exists and is in the build context', copyProblems);
  const mustStayOut = ['node_modules/fastify/package.json', '.git/HEAD', '.pgdata/PG_VERSION', 'models/tiny-bert/config.json', 'test/config.test.ts', 'deploy/.env', '.env', 'bench/run.ts', '.tmp/x'];
  check(results, '.dockerignore keeps node_modules, .git, data, models, tests, .env out of the context', mustStayOut.filter((p) => ignore.includes(p)).map((p) => `${p} would be sent`));
  const runtimeDirs = ['src', 'routes', 'sql', 'openapi'];
  const finalCopies = final.instructions.filter((i) => i.cmd === 'COPY').flatMap((i) => copyArgs(i).sources);
  check(results, 'Dockerfile: runtime stage has node_modules, package.json and the directories the app reads', [
    ...[...runtimeDirs, 'package.json', '/app/node_modules'].filter((d) => !finalCopies.includes(d)).map((d) => `${d} not copied`),
    // directories the source reads at run time (import.meta.url joins)
    ...runtimeDirs.filter((d) => !existsSync(join(REPO, d))).map((d) => `${d} missing in the repository`),
  ]);

  // 3. docker compose
  const compose = asObj(parsed.get(join(DEPLOY, 'docker-compose.yml'))?.[0]);
  const services = asObj(compose.services);
  const composeProblems: string[] = [];
  const interpolate = (s: string) =>
    s.replace(/\$\{(\w+)(?::?-([^}]*)|:\?[^}]*)?\}/g, (_, name: string, def: string | undefined) => def ?? (name === 'PGRST_JWT_SECRET' ? 'x'.repeat(40) : `dummy-${name}`));
  const shutdownOf = (env: Obj) => Number(env.PGML_SHUTDOWN_TIMEOUT ?? 20);
  const duration = (v: unknown) => {
    const m = String(v).match(/^(\d+)(s|m)$/);
    return m ? Number(m[1]) * (m[2] === 'm' ? 60 : 1) : NaN;
  };
  for (const name of ['postgres', 'gateway', 'postgres-cron', 'gateway-cron']) if (!services[name]) composeProblems.push(`service ${name} missing`);
  for (const [name, svc] of Object.entries(services).map(([n, s]) => [n, asObj(s)] as const)) {
    for (const [dep, cond] of Object.entries(asObj(svc.depends_on))) {
      if (asObj(cond).condition !== 'service_healthy') composeProblems.push(`${name}: depends_on ${dep} without condition service_healthy`);
      if (!asObj(services[dep]).healthcheck) composeProblems.push(`${name}: depends on ${dep}, which has no healthcheck`);
      const depProfiles = asArr(asObj(services[dep]).profiles);
      if (depProfiles.length && !depProfiles.every((p) => asArr(svc.profiles).includes(p))) composeProblems.push(`${name}: depends on ${dep} of profile ${depProfiles}`);
    }
    for (const v of asArr(svc.volumes)) {
      const src = String(v).split(':')[0];
      if (src.startsWith('.') && !existsSync(join(DEPLOY, src))) composeProblems.push(`${name}: volume source ${src} does not exist`);
      if (!src.startsWith('.') && !(src in asObj(compose.volumes))) composeProblems.push(`${name}: named volume ${src} not declared`);
    }
    const build = asObj(svc.build);
    if (svc.build) {
      const dockerfilePath = join(DEPLOY, String(build.context), String(build.dockerfile ?? 'Dockerfile'));
      if (!existsSync(dockerfilePath)) composeProblems.push(`${name}: build ${relative(REPO, dockerfilePath)} does not exist`);
    }
    if (String(svc.image ?? '').startsWith('postgres') || String(build.context ?? '').includes('postgres')) {
      const base = svc.build ? readFileSync(join(DEPLOY, String(build.context), 'Dockerfile'), 'utf8').match(/^FROM\s+(\S+)/m)?.[1] : svc.image;
      if (base !== 'postgres:16') composeProblems.push(`${name}: PostgreSQL image ${base}, expected postgres:16`);
    }
  }
  for (const name of ['gateway', 'gateway-cron']) {
    const svc = asObj(services[name]);
    const env = Object.fromEntries(Object.entries(asObj(svc.environment)).map(([k, v]) => [k, interpolate(String(v))]));
    const unknown = Object.keys(env).filter((k) => !envNames.has(k));
    if (unknown.length) composeProblems.push(`${name}: unknown env ${unknown.join(', ')}`);
    for (const k of ['PGRST_DB_URI', 'PGML_MIGRATION_DB_URI', 'PGRST_JWT_SECRET', 'PGRST_DB_ANON_ROLE']) if (!env[k]) composeProblems.push(`${name}: ${k} not set`);
    const rejected = await configAccepts(env);
    if (rejected) composeProblems.push(`${name}: loadConfig rejects its environment: ${rejected}`);
    if (!(duration(svc.stop_grace_period) > shutdownOf(env))) composeProblems.push(`${name}: stop_grace_period ${svc.stop_grace_period} not above PGML_SHUTDOWN_TIMEOUT`);
    if (typeof hc !== 'string' && JSON.stringify(asArr(asObj(svc.healthcheck).test)) !== JSON.stringify(['CMD', ...hc])) composeProblems.push(`${name}: healthcheck differs from the Dockerfile's`);
    const containerPorts = asArr(svc.ports).map((p) => Number(String(p).split(':').at(-1)));
    if (!containerPorts.every((p) => exposed.includes(p))) composeProblems.push(`${name}: publishes ${containerPorts}, image exposes ${exposed}`);
    if (!asArr(svc.volumes).some((v) => String(v).endsWith(':/models'))) composeProblems.push(`${name}: no volume on /models`);
  }
  const cronDockerfile = readFileSync(join(DEPLOY, 'postgres-cron', 'Dockerfile'), 'utf8');
  if (!/postgresql-16-cron/.test(cronDockerfile) || !/shared_preload_libraries=pg_cron/.test(cronDockerfile)) composeProblems.push('postgres-cron/Dockerfile: no postgresql-16-cron or shared_preload_libraries=pg_cron');
  if (asArr(asObj(services['postgres-cron']).profiles).join() !== 'cron') composeProblems.push('postgres-cron is not in profile cron');
  check(results, 'compose: services, depends_on service_healthy, mounts, gateway env accepted by loadConfig, grace > shutdown timeout', composeProblems);

  const initSql = readFileSync(join(DEPLOY, 'compose', 'initdb', '10-roles.sql'), 'utf8');
  check(results, 'compose init SQL: roles authenticator (login noinherit), anon, authenticated; grant to authenticator', [
    /create role anon nologin/.test(initSql) ? '' : 'anon',
    /create role authenticated nologin/.test(initSql) ? '' : 'authenticated',
    /create role authenticator login noinherit/.test(initSql) ? '' : 'authenticator',
    /grant anon, authenticated to authenticator/.test(initSql) ? '' : 'grant',
  ].filter(Boolean).map((r) => `missing ${r}`));

  // 4. Kubernetes
  const k8sDir = join(DEPLOY, 'k8s');
  const kust = asObj(loadYaml(join(k8sDir, 'kustomization.yaml'))[0]);
  const docs: Obj[] = [];
  const k8sProblems: string[] = [];
  for (const f of asArr(kust.resources).map(String)) {
    if (!existsSync(join(k8sDir, f))) {
      k8sProblems.push(`kustomization lists ${f}, which does not exist`);
      continue;
    }
    docs.push(...(parsed.get(join(k8sDir, f)) ?? []).map(asObj));
  }
  for (const f of readdirSync(k8sDir).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml')) {
    if (!asArr(kust.resources).includes(f)) k8sProblems.push(`${f} is not listed in kustomization.yaml`);
  }
  for (const d of [kust, ...docs]) {
    const spec = KINDS[String(d.kind)];
    const id = `${d.kind}/${asObj(d.metadata).name ?? '(kustomization)'}`;
    if (!spec) {
      k8sProblems.push(`${id}: kind not known to this validator`);
      continue;
    }
    if (d.apiVersion !== spec.apiVersion) k8sProblems.push(`${id}: apiVersion ${d.apiVersion}, expected ${spec.apiVersion}`);
    if (d.kind !== 'Kustomization' && !asObj(d.metadata).name) k8sProblems.push(`${id}: metadata.name missing`);
    if (d.kind !== 'Kustomization' && d.kind !== 'Namespace' && asObj(d.metadata).namespace !== kust.namespace) k8sProblems.push(`${id}: namespace differs from the kustomization's`);
    schemaErrors(d, spec.schema, id, k8sProblems);
  }
  check(results, 'k8s: every manifest listed, known apiVersion/kind, only known fields (strict schema of the fields used)', k8sProblems);

  const byKind = (kind: string) => docs.filter((d) => d.kind === kind);
  const dep = byKind('Deployment')[0] ?? {};
  const depSpec = asObj(dep.spec);
  const pod = asObj(asObj(depSpec.template).spec);
  const podLabels = asObj(asObj(asObj(depSpec.template).metadata).labels);
  const c = asObj(asArr(pod.containers)[0]);
  const ports = asArr(c.ports).map(asObj);
  const portOk = (p: unknown) => ports.some((cp) => cp.name === p || cp.containerPort === p);
  const cm = asObj(byKind('ConfigMap')[0]?.data) as Record<string, string>;
  const secret = asObj(byKind('Secret')[0]?.stringData) as Record<string, string>;
  const env = { ...cm, ...secret };
  const shutdown = Number(env.PGML_SHUTDOWN_TIMEOUT ?? 20);
  const preStop = asArr(asObj(asObj(asObj(c.lifecycle).preStop).exec).command).map(String);
  const preStopSeconds = preStop[0] === 'sleep' ? Number(preStop[1]) : 0;
  const svc = asObj(byKind('Service')[0]?.spec);
  const hpa = asObj(byKind('HorizontalPodAutoscaler')[0]?.spec);
  const pdb = asObj(byKind('PodDisruptionBudget')[0]?.spec);
  const sc = { ...asObj(pod.securityContext), ...asObj(c.securityContext) };

  check(results, 'k8s Deployment: 3 replicas, selector matches the pod labels, container port 3000 = EXPOSE', [
    depSpec.replicas === 3 ? '' : `replicas ${depSpec.replicas}`,
    matchesSelector(asObj(asObj(depSpec.selector).matchLabels), podLabels) ? '' : 'selector does not match the template labels',
    ports.some((p) => p.containerPort === 3000 && exposed.includes(3000)) ? '' : 'no container port 3000',
  ].filter(Boolean));
  const probes = (['livenessProbe', 'readinessProbe', 'startupProbe'] as const).map((k) => [k, asObj(asObj(c[k]).httpGet)] as const);
  check(results, 'k8s probes: liveness /live, readiness /ready, paths served by routes/health.ts, ports exist', [
    asObj(asObj(c.livenessProbe).httpGet).path === '/live' ? '' : 'liveness is not /live',
    asObj(asObj(c.readinessProbe).httpGet).path === '/ready' ? '' : 'readiness is not /ready',
    ...probes.filter(([, g]) => g.path !== undefined && !paths.includes(String(g.path))).map(([k, g]) => `${k} path ${g.path} is not a route in routes/health.ts (${paths})`),
    ...probes.filter(([, g]) => g.port !== undefined && !portOk(g.port)).map(([k, g]) => `${k} port ${g.port} is not a container port`),
  ].filter(Boolean));
  check(results, 'k8s resources: requests and limits for cpu and memory', ['requests', 'limits'].flatMap((k) => ['cpu', 'memory'].filter((r) => asObj(asObj(c.resources)[k])[r] === undefined).map((r) => `${k}.${r} missing`)));
  check(results, 'k8s securityContext: runAsNonRoot, runAsUser = Dockerfile USER, no privilege escalation', [
    sc.runAsNonRoot === true ? '' : 'runAsNonRoot not true',
    sc.runAsUser === uid ? '' : `runAsUser ${sc.runAsUser} != Dockerfile USER ${uid}`,
    sc.allowPrivilegeEscalation === false ? '' : 'allowPrivilegeEscalation not false',
    // a read-only root filesystem needs a writable /tmp (tsx's cache) and /models
    sc.readOnlyRootFilesystem === true && !['/tmp', '/models'].every((m) => asArr(c.volumeMounts).some((v) => asObj(v).mountPath === m)) ? 'readOnlyRootFilesystem without /tmp and /models mounts' : '',
  ].filter(Boolean));
  check(results, 'k8s: terminationGracePeriodSeconds > preStop pause + PGML_SHUTDOWN_TIMEOUT',
    Number(pod.terminationGracePeriodSeconds) > shutdown + preStopSeconds ? null : `${pod.terminationGracePeriodSeconds} <= ${preStopSeconds} + ${shutdown}`);
  check(results, 'k8s Secret holds PGRST_JWT_SECRET, PGRST_DB_URI, PGML_MIGRATION_DB_URI; ConfigMap the rest', [
    ...['PGRST_JWT_SECRET', 'PGRST_DB_URI', 'PGML_MIGRATION_DB_URI'].filter((k) => !secret[k]).map((k) => `${k} not in the Secret`),
    ...Object.keys(cm).filter((k) => k in secret || /SECRET|PASSWORD|_URI$|DATABASE_URL/.test(k)).map((k) => `${k} in the ConfigMap`),
    ...asArr(c.envFrom).map(asObj).flatMap((e) => {
      const ref = asObj(e.configMapRef).name ?? asObj(e.secretRef).name;
      const kind = e.configMapRef ? 'ConfigMap' : 'Secret';
      return byKind(kind).some((d) => asObj(d.metadata).name === ref) ? [] : [`envFrom ${kind} ${ref} not defined`];
    }),
  ]);
  const unknownEnv = Object.keys(env).filter((k) => !envNames.has(k));
  const rejected = await configAccepts(env);
  check(results, 'k8s env names exist in src/config.ts OPTIONS or src/embed/config.ts, and loadConfig accepts the values', [
    ...unknownEnv.map((k) => `unknown env ${k}`),
    ...(rejected ? [`loadConfig: ${rejected}`] : []),
    ...(env.PGML_MODEL_DIR && env.PGML_MODEL_DIR !== '/models' ? ['PGML_MODEL_DIR is not /models'] : []),
  ]);
  check(results, 'k8s Service: selector matches the pods, targetPort is a container port', [
    matchesSelector(asObj(svc.selector), podLabels) ? '' : 'selector does not match the pod labels',
    ...asArr(svc.ports).map(asObj).filter((p) => !portOk(p.targetPort)).map((p) => `targetPort ${p.targetPort} is not a container port`),
  ].filter(Boolean));
  const target = asObj(hpa.scaleTargetRef);
  const cpu = asArr(hpa.metrics).map(asObj).find((m) => m.type === 'Resource' && asObj(m.resource).name === 'cpu');
  check(results, 'k8s HPA (autoscaling/v2, CPU) targets the Deployment, which has CPU requests', [
    target.kind === 'Deployment' && target.name === asObj(dep.metadata).name && target.apiVersion === 'apps/v1' ? '' : 'scaleTargetRef does not name the Deployment',
    cpu ? '' : 'no CPU metric',
    Number(hpa.minReplicas) >= 2 && Number(hpa.maxReplicas) >= Number(hpa.minReplicas) ? '' : 'minReplicas < 2 or maxReplicas < minReplicas',
    Number(hpa.minReplicas) === depSpec.replicas ? '' : 'minReplicas differs from the Deployment replicas',
  ].filter(Boolean));
  const minAvailable = pdb.minAvailable;
  check(results, 'k8s PDB (policy/v1) selects the pods and still allows a voluntary disruption at minReplicas', [
    matchesSelector(asObj(asObj(pdb.selector).matchLabels), podLabels) ? '' : 'selector does not match the pod labels',
    (minAvailable === undefined ? Number(pdb.maxUnavailable) >= 1 : Number(minAvailable) < Number(hpa.minReplicas)) ? '' : 'PDB would block node drains',
  ].filter(Boolean));
  return results;
}
