import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAdminServer } from '../routes/server.ts';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { loadCsv } from './helpers/data.ts';
import { bearer, startGateway, token } from './helpers/gateway.ts';

let db: TestDatabase;
let app: FastifyInstance;
let auth: Record<string, string>;

beforeAll(async () => {
  db = await createTestDatabase();
  await loadCsv(db.admin, 'iris', 'sepal_length float8, sepal_width float8, petal_length float8, petal_width float8, species text', 'iris/iris.csv');
  await db.admin.unsafe(`
    create function hello() returns text language sql as $$ select 'hi' $$;
    grant execute on function hello() to authenticated;
    grant select on iris to authenticated;`).simple();
  app = await startGateway(db);
  auth = bearer(await token({ role: 'authenticated' }));
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

/** The value of one sample line of the Prometheus text format, 0 when absent. */
async function sample(gw: FastifyInstance, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = (await gw.inject('/metrics')).body;
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    if (want.every((w) => line.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

describe('GET /metrics', () => {
  it('is Prometheus text with process metrics', async () => {
    const res = await app.inject('/metrics');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/plain/);
    expect(res.body).toContain('# TYPE pgml_http_requests_total counter');
    expect(await sample(app, 'pgml_process_resident_memory_bytes')).toBeGreaterThan(1e6);
  });

  it('counts requests and latency by route pattern and status', async () => {
    const before = await sample(app, 'pgml_http_requests_total', { route: '/rpc/:name', status: '200' });
    const missingBefore = await sample(app, 'pgml_http_requests_total', { route: '/rpc/:name', status: '404' });
    for (let i = 0; i < 3; i++) expect((await app.inject({ url: '/rpc/hello', headers: auth })).statusCode).toBe(200);
    expect((await app.inject({ url: '/rpc/nope', headers: auth })).statusCode).toBe(404);
    expect(await sample(app, 'pgml_http_requests_total', { route: '/rpc/:name', status: '200' })).toBe(before + 3);
    expect(await sample(app, 'pgml_http_requests_total', { route: '/rpc/:name', status: '404' })).toBe(missingBefore + 1);
    expect(await sample(app, 'pgml_http_request_duration_seconds_count', { route: '/rpc/:name', status: '200' })).toBe(before + 3);
  });

  it('reports the pool, schema reloads, trainings, predictions and model loads', async () => {
    expect(await sample(app, 'pgml_db_pool_connections', { state: 'max' })).toBe(4);
    const reloads = await sample(app, 'pgml_schema_cache_reloads');
    await app.gateway.reloadSchema();
    expect(await sample(app, 'pgml_schema_cache_reloads')).toBe(reloads + 1);
    const post = (url: string, body: unknown) => app.inject({ method: 'POST', url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json', ...auth } });
    const trained = await post('/models/train', { project_name: 'm_iris', task: 'classification', relation_name: 'iris', y_column_name: 'species', algorithm: 'logistic' });
    expect(trained.statusCode).toBe(200);
    expect(await sample(app, 'pgml_training_total', { status: 'succeeded' })).toBe(1);
    await post('/models/m_iris/predict', { features: [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]] });
    await post('/models/m_iris/predict', { features: [5.1, 3.5, 1.4, 0.2] });
    const modelId = String(trained.json().model_id);
    expect(await sample(app, 'pgml_predicted_rows_total')).toBe(3);
    // the public port names no project or model: an anonymous caller learns nothing about tenants
    const publicText = (await app.inject('/metrics')).body;
    expect(publicText).not.toContain('m_iris');
    expect(publicText).not.toMatch(/model_id="/);
    // the admin port has the per-project series
    const admin = await buildAdminServer(app);
    try {
      const adminText = (await admin.inject('/metrics')).body;
      expect(adminText).toContain(`pgml_predictions_total{project="m_iris",model_id="${modelId}"} 3`);
      expect(adminText).toContain('pgml_predicted_rows_total 3');
    } finally {
      await admin.close();
    }
    expect(await sample(app, 'pgml_prediction_batch_rows_count')).toBe(2);
    expect(await sample(app, 'pgml_model_loads_total')).toBe(1);
    expect(await sample(app, 'pgml_models_cached', { unit: 'count' })).toBe(1);
    // concurrent predicts share writes to PostgreSQL (each its own implicit transaction)
    const writes = await sample(app, 'pgml_db_request_batches', { what: 'writes' });
    const requests = await sample(app, 'pgml_db_request_batches', { what: 'requests' });
    expect(requests).toBeGreaterThanOrEqual(2);
    const answers = await Promise.all(Array.from({ length: 10 }, () => post('/models/m_iris/predict', { features: [5.1, 3.5, 1.4, 0.2] })));
    expect(answers.map((a) => a.statusCode)).toEqual(Array(10).fill(200));
    expect(await sample(app, 'pgml_db_request_batches', { what: 'requests' })).toBe(requests + 10);
    expect(await sample(app, 'pgml_db_request_batches', { what: 'writes' })).toBeLessThan(writes + 10);
  });

  it('the request id of the logs is the transaction-local request.id, so slow queries match requests', async () => {
    await db.admin.unsafe(`create function my_request_id() returns text language sql stable as $$ select current_setting('request.id', true) $$;
      grant execute on function my_request_id() to authenticated;`).simple();
    await app.gateway.reloadSchema();
    const given = await app.inject({ url: '/rpc/my_request_id', headers: { ...auth, 'x-request-id': 'req-abc-123' } });
    expect(given.json()).toBe('req-abc-123');
    const generated = await app.inject({ url: '/rpc/my_request_id', headers: auth });
    expect(generated.json()).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('can move to an admin port, off the public one', async () => {
    const gw = await startGateway(db, { PGRST_ADMIN_SERVER_PORT: '39999' });
    try {
      expect((await gw.inject('/metrics')).statusCode).toBe(404);
      const admin = await buildAdminServer(gw);
      const res = await admin.inject('/metrics');
      expect(res.statusCode).toBe(200);
      expect(res.body).toContain('pgml_http_requests_total');
      expect((await admin.inject('/ready')).statusCode).toBe(200);
      await admin.close();
    } finally {
      await gw.close();
    }
  });
});
