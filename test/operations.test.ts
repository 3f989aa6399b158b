import { spawn } from 'node:child_process';
import { request } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { eventually, SECRET, startGateway } from './helpers/gateway.ts';
import { CuttableProxy, viaProxy } from './helpers/proxy.ts';
import { freePort } from './helpers/net.ts';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.admin.unsafe(`
    create function slow(seconds float8) returns int language sql as $$ select 1 from pg_sleep(seconds) $$;
    create function ok() returns int language sql as $$ select 1 $$;
    grant execute on all functions in schema public to anon;
    create table writes (id int primary key);
    grant insert, select on writes to anon;
    create function write_one(id int) returns int language sql as $$ insert into writes values (id) returning id $$;
    grant execute on function write_one(int) to anon;
  `).simple();
});
afterAll(async () => db?.drop());

const activeSlowQueries = async () =>
  (await db.admin`select count(*)::int as n from pg_stat_activity where datname = ${db.name} and state = 'active' and query like '%"slow"(%' and pid <> pg_backend_pid()`)[0].n as number;

describe('health', () => {
  it('/live and /ready', async () => {
    const app = await startGateway(db);
    try {
      expect((await app.inject('/live')).statusCode).toBe(200);
      const ready = await app.inject('/ready');
      expect(ready.statusCode).toBe(200);
      expect(ready.json()).toMatchObject({ database: true, schemaCache: true });
    } finally {
      await app.close();
    }
  });
});

describe('faults', () => {
  it('a client that disconnects mid-request has its query cancelled', async () => {
    const app = await startGateway(db);
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const port = (app.server.address() as { port: number }).port;
      const req = request({ host: '127.0.0.1', port, path: '/rpc/slow?seconds=30', method: 'GET' });
      req.on('error', () => {});
      req.end();
      await eventually(async () => expect(await activeSlowQueries()).toBe(1), 3000);
      const t0 = Date.now();
      req.destroy();
      await eventually(async () => expect(await activeSlowQueries()).toBe(0), 2000, 20);
      expect(Date.now() - t0).toBeLessThan(1000);
      expect((await app.inject('/rpc/ok')).json()).toBe(1);
    } finally {
      await app.close();
    }
  });

  it('an exhausted pool → 504 PGRST003 after the acquisition timeout', async () => {
    const app = await startGateway(db, { PGRST_DB_POOL: '1', PGRST_DB_POOL_ACQUISITION_TIMEOUT: '1' });
    try {
      const blocker = app.inject('/rpc/slow?seconds=2.5');
      await eventually(async () => expect(await activeSlowQueries()).toBe(1), 2000);
      const t0 = Date.now();
      const res = await app.inject('/rpc/ok');
      expect(res.statusCode).toBe(504);
      expect(res.json().code).toBe('PGRST003');
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
      expect((await blocker).statusCode).toBe(200);
      expect((await app.inject('/rpc/ok')).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('database down → 503 with Retry-After; requests succeed again once it returns', async () => {
    const target = new URL(db.authenticatorUrl);
    const proxy = new CuttableProxy(target.hostname, Number(target.port || 5432));
    const port = await proxy.start();
    const app = await startGateway(db, { PGRST_DB_URI: viaProxy(db.authenticatorUrl, port), PGRST_DB_POOL_ACQUISITION_TIMEOUT: '1' });
    try {
      expect((await app.inject('/rpc/ok')).statusCode).toBe(200);
      await proxy.cut();
      const t0 = Date.now();
      const down = await app.inject('/rpc/ok');
      expect(down.statusCode).toBe(503);
      expect(down.headers['retry-after']).toBeDefined();
      expect(Object.keys(down.json()).sort()).toEqual(['code', 'details', 'hint', 'message']);
      expect(Date.now() - t0).toBeLessThan(3000);
      expect((await app.inject('/ready')).statusCode).toBe(503);
      await proxy.restore();
      const back = Date.now();
      await eventually(async () => expect((await app.inject('/rpc/ok')).statusCode).toBe(200), 3000, 50);
      expect(Date.now() - back).toBeLessThan(2000);
      // the listener came back too: a published function appears after a NOTIFY
      await db.admin.unsafe(`create function after_outage() returns int language sql as $$ select 2 $$; grant execute on function after_outage() to anon; notify pgrst, 'reload schema';`).simple();
      await eventually(async () => expect((await app.inject('/rpc/after_outage')).json()).toBe(2), 5000, 50);
    } finally {
      await app.close();
      await proxy.stop();
    }
  });
});

describe('aborts under load', () => {
  it('requests aborted before their statement is sent leave no connection idle in transaction', async () => {
    // without prepared statements each statement waits for its Describe, so aborts often land on unsent ones
    const app = await startGateway(db, { PGRST_DB_POOL: '2', PGRST_DB_PREPARED_STATEMENTS: 'false' });
    try {
      const { runAsCaller } = await import('../src/db/as-caller.ts');
      const ctx = { role: 'anon', claims: {}, method: 'GET', path: '/', headers: {}, cookies: {}, settings: [] as [string, string][] };
      const runs = Array.from({ length: 200 }, (_, i) => {
        const ac = new AbortController();
        // abort while the transaction is being set up: after BEGIN, before the statement is sent
        setTimeout(() => ac.abort(), i % 7);
        return runAsCaller(app.gateway.pool, ctx, { text: 'select pg_sleep(0.005) as x, $1::int as i', params: [i] }, { readOnly: true, signal: ac.signal }).catch(() => null);
      });
      await Promise.all(runs);
      await eventually(async () => {
        const stuck = await db.admin`select count(*)::int as n from pg_stat_activity where datname = ${db.name} and state like 'idle in transaction%'`;
        expect(stuck[0].n).toBe(0);
      }, 3000, 50);
      for (let i = 0; i < 5; i++) expect((await app.inject('/rpc/ok')).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});

describe('SIGTERM', () => {
  it('drains: in-flight requests finish, new connections are refused, exit code 0', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: { ...process.env, PGRST_DB_URI: db.authenticatorUrl, PGML_MIGRATE: 'false', PGRST_JWT_SECRET: SECRET, PGRST_DB_ANON_ROLE: 'anon', PGRST_SERVER_PORT: String(port), PGRST_SERVER_HOST: '127.0.0.1', LOG_LEVEL: 'error' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const get = (path: string) => fetch(`http://127.0.0.1:${port}${path}`).then(async (r) => ({ status: r.status, body: await r.text() }));
    try {
      await eventually(async () => expect((await get('/ready')).status).toBe(200), 20000, 100);
      const inFlight = get('/rpc/slow?seconds=1.5');
      await eventually(async () => expect(await activeSlowQueries()).toBe(1), 3000);
      child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 200));
      await expect(get('/rpc/ok')).rejects.toThrow();
      const done = await inFlight;
      expect(done).toEqual({ status: 200, body: '1' });
      expect(await exited).toBe(0);
    } catch (e) {
      throw new Error(`${(e as Error).message}\nstderr: ${stderr}`);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('PGRST_ADMIN_SERVER_PORT, started as npm start starts it', () => {
  it('serves /metrics (with per-project series), /live and /ready on the admin port, and the API on the main one', async () => {
    const [port, adminPort] = [await freePort(), await freePort()];
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: { ...process.env, PGRST_DB_URI: db.authenticatorUrl, PGML_MIGRATE: 'false', PGRST_JWT_SECRET: SECRET, PGRST_DB_ANON_ROLE: 'anon', PGRST_SERVER_PORT: String(port), PGRST_ADMIN_SERVER_PORT: String(adminPort), PGRST_SERVER_HOST: '127.0.0.1', LOG_LEVEL: 'error' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const get = (p: number, path: string) => fetch(`http://127.0.0.1:${p}${path}`).then(async (r) => ({ status: r.status, body: await r.text() }));
    try {
      await eventually(async () => expect((await get(adminPort, '/ready')).status).toBe(200), 20000, 100);
      expect((await get(port, '/rpc/ok')).status).toBe(200);
      const metrics = await get(adminPort, '/metrics');
      expect(metrics.status).toBe(200);
      expect(metrics.body).toContain('pgml_http_requests_total');
      expect(metrics.body).toContain('pgml_predictions_total');
      expect((await get(port, '/metrics')).status).toBe(404);
      expect((await get(adminPort, '/live')).status).toBe(200);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } catch (e) {
      throw new Error(`${(e as Error).message}\nstderr: ${stderr}`);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

