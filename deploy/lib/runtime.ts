/** Checks that execute pieces of the image on this machine: the HEALTHCHECK one-liner and the entrypoint. */
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { DEPLOY, REPO, healthcheckCommand, type CheckResult } from './checks.ts';

/** asynchronously: the test server answers on this process's event loop */
function runHealthcheck(port: number): Promise<number> {
  const [bin, ...args] = healthcheckCommand();
  return new Promise((done) => {
    const child = spawn(bin === 'node' ? process.execPath : bin, args, { env: { ...process.env, PGRST_SERVER_PORT: String(port) }, stdio: 'ignore', timeout: 10_000 });
    child.on('exit', (code) => done(code ?? -1));
  });
}

/** The HEALTHCHECK command exits 0 on 200 from /ready, 1 on 503, 1 when nothing listens. */
export async function checkHealthcheck(): Promise<CheckResult> {
  let status = 200;
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(req.url ?? '');
    res.writeHead(status).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  try {
    const up = await runHealthcheck(port);
    status = 503;
    const draining = await runHealthcheck(port);
    await new Promise((r) => server.close(r));
    const down = await runHealthcheck(port);
    const ok = up === 0 && draining === 1 && down === 1 && seen.every((u) => u === '/ready');
    return { name: 'HEALTHCHECK one-liner: exit 0 on 200, 1 on 503, 1 with nothing listening; requests /ready', ok, detail: ok ? undefined : `exit codes ${up}/${draining}/${down}, paths ${seen}` };
  } finally {
    server.close();
  }
}

/**
 * deploy/docker-entrypoint.sh from `appDir` (the repository, or a rehearsed image layout):
 * without a URI it exits 64; `--help` passes through to the gateway.
 */
export function checkEntrypoint(appDir = REPO, entrypoint = join(DEPLOY, 'docker-entrypoint.sh')): CheckResult {
  const env = { ...process.env };
  delete env.PGRST_DB_URI;
  delete env.DATABASE_URL;
  const refused = spawnSync('sh', [entrypoint], { cwd: appDir, env, encoding: 'utf8', timeout: 30_000 });
  const help = spawnSync('sh', [entrypoint, '--help'], { cwd: appDir, env, encoding: 'utf8', timeout: 60_000 });
  const problems = [
    refused.status === 64 && /PGRST_DB_URI/.test(refused.stderr) ? '' : `no URI: exit ${refused.status} ${refused.stderr}`,
    help.status === 0 && /PGRST_DB_URI/.test(help.stdout) && /PGML_MODEL_DIR/.test(help.stdout) ? '' : `--help: exit ${help.status} ${help.stderr.slice(0, 500)}`,
  ].filter(Boolean);
  return { name: `entrypoint (${appDir === REPO ? 'repository' : appDir}): refuses to start without PGRST_DB_URI, --help runs node --import tsx src/main.ts`, ok: problems.length === 0, detail: problems.join('; ') || undefined };
}
