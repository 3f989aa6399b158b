/**
 * GET /models/{project}/models/{id}/evaluation (what the dashboard's plots are drawn from) and the
 * /dashboard static files, without a browser. The page itself, in a real Chromium, is
 * test/browser/dashboard.test.ts (npm run test:browser).
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson, startDashboardFixture, type DashboardFixture } from './helpers/dashboard.ts';

let fx: DashboardFixture;
let app: FastifyInstance;
let alice: Record<string, string>;
let bob: Record<string, string>;
let ids: DashboardFixture['ids'];

const post = (url: string, body: unknown, headers: Record<string, string>) => postJson(app, url, body, headers);

beforeAll(async () => {
  fx = await startDashboardFixture();
  ({ app, alice, bob, ids } = fx);
}, 180_000);

afterAll(async () => {
  await fx?.close();
});

describe('GET /models/{project}/models/{id}/evaluation', () => {
  it('classifier: rebuilds the training test split (same metrics), ROC, confusion matrix, tree feature importance', async () => {
    const res = await app.inject({ url: `/models/churn/models/${ids.xgb}/evaluation`, headers: alice });
    expect(res.statusCode, res.body).toBe(200);
    const ev = res.json();
    const stored = (await app.inject({ url: '/models/churn', headers: alice })).json().models.find((m: { id: number }) => m.id === ids.xgb).metrics;
    expect(ev).toMatchObject({ project: 'churn', model_id: ids.xgb, task: 'classification', algorithm: 'xgboost', relation_name: 'churn', y_column_name: 'churned', rows: 600, test_rows: 150, evaluated_rows: 150, data_changed: false, classes: [false, true] });
    // the same test rows as training: the recomputed metrics are the stored ones
    for (const k of ['accuracy', 'f1', 'roc_auc', 'log_loss']) expect(ev.metrics[k], k).toBeCloseTo(stored[k], 10);
    expect(ev.roc_auc).toBeCloseTo(stored.roc_auc, 10);
    expect(ev.roc[0]).toEqual({ fpr: 0, tpr: 0 });
    expect(ev.roc.at(-1)).toEqual({ fpr: 1, tpr: 1 });
    expect(ev.roc.length).toBeGreaterThan(10);
    for (let i = 1; i < ev.roc.length; i++) expect(ev.roc[i].fpr >= ev.roc[i - 1].fpr && ev.roc[i].tpr >= ev.roc[i - 1].tpr).toBe(true);
    expect(ev.confusion.labels).toEqual([false, true]);
    const cm = ev.confusion.matrix as number[][];
    expect(cm.flat().reduce((a, b) => a + b, 0)).toBe(150);
    expect((cm[0][0] + cm[1][1]) / 150).toBeCloseTo(stored.accuracy, 10);
    const names = (ev.feature_importance as { name: string; importance: number }[]).map((f) => f.name);
    expect(names).toEqual(expect.arrayContaining(['tenure_months', 'monthly_fee', 'support_calls']));
    expect(ev.feature_importance.reduce((a: number, f: { importance: number }) => a + f.importance, 0)).toBeCloseTo(1, 6);
    expect(ev.train_request).toMatchObject({ project_name: 'churn', relation_name: 'churn', y_column_name: 'churned', algorithm: 'xgboost', test_sampling: 'stratified', preprocess: { plan: { encode: 'one_hot' } } });

    const linear = (await app.inject({ url: `/models/churn/models/${ids.logistic}/evaluation`, headers: alice })).json();
    expect(linear.feature_importance).toBeNull();
    expect(linear.roc.length).toBeGreaterThan(10);
  });

  it('regressor: predicted vs actual and residuals on the rebuilt test split', async () => {
    const ev = (await app.inject({ url: `/models/house_prices/models/${ids.regressor}/evaluation`, headers: alice })).json();
    const stored = (await app.inject({ url: '/models/house_prices', headers: alice })).json().models[0].metrics;
    expect(ev).toMatchObject({ task: 'regression', rows: 700, test_rows: 140, evaluated_rows: 140 });
    expect(ev.metrics.r2).toBeCloseTo(stored.r2, 10);
    expect(ev.metrics.r2).toBeGreaterThan(0.8);
    expect(ev.scatter).toHaveLength(140);
    expect(ev.residuals).toHaveLength(140);
    expect(ev.residuals[0].residual).toBeCloseTo(ev.scatter[0].actual - ev.scatter[0].predicted, 6);
    expect(ev.feature_importance[0].name).toBe('area');
    expect(ev.roc).toBeUndefined();
  });

  it('runs as the caller: another role sees no such project; unknown models are 404', async () => {
    expect((await app.inject({ url: `/models/churn/models/${ids.xgb}/evaluation`, headers: bob })).statusCode).toBe(404);
    expect((await app.inject({ url: `/models/churn/models/999999/evaluation`, headers: alice })).statusCode).toBe(404);
    expect((await app.inject({ url: `/models/churn/models/abc/evaluation`, headers: alice })).statusCode).toBe(404);
    expect((await app.inject({ url: `/models/churn/models/${ids.regressor}/evaluation`, headers: alice })).statusCode).toBe(404);
    const doc = (await app.inject({ url: '/' })).json();
    expect(doc.paths['/models/{project}/models/{id}/evaluation'].get.operationId).toBe('models_evaluation');
  });
});

describe('static files', () => {
  it('serves the page with a strict CSP and only files of dashboard/', async () => {
    const redirect = await app.inject({ url: '/dashboard' });
    expect(redirect.statusCode).toBe(302);
    expect(redirect.headers.location).toBe('dashboard/');
    const page = await app.inject({ url: '/dashboard/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.body).toContain('<script type="module" src="app.js">');
    const js = await app.inject({ url: '/dashboard/app.js' });
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect((await app.inject({ url: '/dashboard/style.css' })).headers['content-type']).toBe('text/css; charset=utf-8');
    for (const url of ['/dashboard/nope.js', '/dashboard/..%2Fpackage.json', '/dashboard/%2e%2e%2fpackage.json']) expect((await app.inject({ url })).statusCode, url).toBe(404);
  });
});
