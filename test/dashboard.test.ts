/**
 * The /dashboard web page in a real browser: playwright-core driving the system's Chromium
 * (Debian's `chromium` package; .ci/install-browser.sh installs it). Signs in with a bearer
 * token, opens a classifier and a regressor and checks their plots were drawn, watches a
 * training job finish, rolls a deployment back, and saves screenshots to test/dashboard-screenshots/.
 * Also tests GET /models/{project}/models/{id}/evaluation, which the plots are drawn from.
 *
 * Without Chromium the browser tests fail (they do not skip): set CHROMIUM_PATH or install it.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { bearer, startGateway, token } from './helpers/gateway.ts';

const SCREENSHOTS = fileURLToPath(new URL('./dashboard-screenshots/', import.meta.url));
const CHROMIUM_CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/lib/chromium/chromium', '/snap/bin/chromium'];
const LAUNCH_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];

let db: TestDatabase;
let app: FastifyInstance;
let base: string;
let aliceToken: string;
let alice: Record<string, string>;
let bob: Record<string, string>;
const ids = { logistic: 0, xgb: 0, regressor: 0 };

const post = (url: string, body: unknown, headers: Record<string, string>) =>
  app.inject({ method: 'POST', url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });

async function train(body: Record<string, unknown>, headers: Record<string, string>): Promise<{ model_id: number; metrics: Record<string, number>; deployed: boolean }> {
  const res = await post('/models/train', body, headers);
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
}

beforeAll(async () => {
  db = await createTestDatabase();
  await db.admin.unsafe(`
    do $$ begin
      if not exists (select from pg_roles where rolname = 'dash_alice') then create role dash_alice nologin; end if;
      if not exists (select from pg_roles where rolname = 'dash_bob') then create role dash_bob nologin; end if;
    end $$;
    grant dash_alice, dash_bob to authenticator;
    -- deterministic pseudo-noise from hashtext: the same data on every run
    create function noise(seed text) returns float8 language sql immutable as $$ select ((hashtext(seed) & 65535) / 65535.0 - 0.5)::float8 $$;
    create table churn as
      select (g % 72)::float8 as tenure_months,
             round((20 + 80 * (noise('m' || g) + 0.5))::numeric, 2)::float8 as monthly_fee,
             (hashtext('c' || g) & 7)::int as support_calls,
             (array['basic', 'pro', 'team'])[1 + (hashtext('p' || g) & 1) + (g % 3 = 0)::int] as plan,
             (0.04 * (g % 72) - 0.035 * (20 + 80 * (noise('m' || g) + 0.5)) - 0.45 * (hashtext('c' || g) & 7) + 4.5 * noise('n' || g) + 3.2) < 0 as churned
      from generate_series(1, 600) g;
    create table house_prices as
      select area, rooms, age,
             round((900 * area + 12000 * rooms - 800 * age + 40000 * noise('e' || area || rooms || age) + 50000)::numeric, 0)::float8 as price
      from (select (40 + (hashtext('a' || g) & 255))::float8 as area, (1 + (hashtext('r' || g) & 5))::float8 as rooms, (hashtext('y' || g) & 63)::float8 as age
            from generate_series(1, 700) g) s;
    grant select on churn, house_prices to dash_alice, dash_bob;
  `).simple();
  app = await startGateway(db);
  aliceToken = await token({ role: 'dash_alice' });
  alice = bearer(aliceToken);
  bob = bearer(await token({ role: 'dash_bob' }));

  const churn = { project_name: 'churn', task: 'classification', relation_name: 'churn', y_column_name: 'churned', test_sampling: 'stratified', preprocess: { plan: { encode: 'one_hot' }, monthly_fee: { scale: 'standard' }, tenure_months: { scale: 'standard' } } };
  ids.logistic = (await train({ ...churn, algorithm: 'logistic' }, alice)).model_id;
  ids.xgb = (await train({ ...churn, algorithm: 'xgboost', hyperparams: { n_estimators: 40, max_depth: 3 } }, alice)).model_id;
  // whatever scored better, the tree model is deployed last: the history has at least two rows
  // and a rollback goes back to the logistic model
  expect((await post('/models/churn/deploy', { model_id: ids.xgb }, alice)).statusCode).toBe(200);
  ids.regressor = (await train({ project_name: 'house_prices', task: 'regression', relation_name: 'house_prices', y_column_name: 'price', algorithm: 'xgboost', hyperparams: { n_estimators: 60, max_depth: 4 }, test_size: 0.2, test_sampling: 'random' }, alice)).model_id;
  await train({ project_name: 'bobs_private', task: 'regression', relation_name: 'house_prices', y_column_name: 'price', algorithm: 'linear' }, bob);

  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('the gateway did not listen on a TCP port');
  base = `http://127.0.0.1:${address.port}`;
}, 180_000);

afterAll(async () => {
  await app?.close();
  await db?.drop();
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

function chromiumPath(): string {
  const found = process.env.CHROMIUM_PATH ?? CHROMIUM_CANDIDATES.find((p) => existsSync(p));
  if (!found || !existsSync(found)) {
    throw new Error(`Chromium not found (looked at ${process.env.CHROMIUM_PATH ?? CHROMIUM_CANDIDATES.join(', ')}). Install it with .ci/install-browser.sh (apt-get install chromium) or set CHROMIUM_PATH. The dashboard tests need a real browser and do not skip.`);
  }
  return found;
}

describe('dashboard in Chromium', () => {
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];
  const failed: string[] = [];
  const shot = (name: string) => page.screenshot({ path: `${SCREENSHOTS}${name}.png`, fullPage: true });
  const rows = () => page.getByTestId('deployment-row').count();

  // a failed beforeAll only marks the tests skipped (and vitest exits 0): keep the error and
  // fail every browser test with it instead
  let launchFailure: Error | null = null;
  const browserReady = () => {
    if (launchFailure) throw launchFailure;
  };

  beforeAll(async () => {
    try {
      browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: LAUNCH_ARGS });
    } catch (e) {
      launchFailure = e as Error;
      return;
    }
    page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    // failed responses are listed by URL below; any other console error (a CSP violation, a script error) is a problem
    page.on('console', (m) => m.type() === 'error' && !m.text().startsWith('Failed to load resource') && problems.push(`console: ${m.text()}`));
    page.on('response', (r) => r.status() >= 400 && failed.push(`${r.status()} ${new URL(r.url()).pathname}`));
    page.setDefaultTimeout(15_000);
    mkdirSync(SCREENSHOTS, { recursive: true });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
  });

  it('signs in with a bearer token and lists the projects that role sees', async () => {
    browserReady();
    await page.goto(`${base}/dashboard`);
    expect(page.url()).toBe(`${base}/dashboard/`);
    await page.getByTestId('token').fill('not.a-valid.token');
    await page.getByTestId('signin').click();
    await expect.poll(() => page.locator('#signin-error').textContent()).not.toBe('');
    await page.getByTestId('token').fill(aliceToken);
    await page.getByTestId('signin').click();
    await page.getByTestId('role').waitFor();
    expect(await page.getByTestId('role').textContent()).toBe('dash_alice');
    await page.getByTestId('project-churn').waitFor();
    expect(await page.getByTestId('project-house_prices').count()).toBe(1);
    expect(await page.getByTestId('project-bobs_private').count()).toBe(0);
    expect(await page.evaluate<string | null>("sessionStorage.getItem('pgml.dashboard.token')")).toBe(aliceToken);
    await shot('01-projects');
  });

  it('opens the classifier: ROC curve, confusion matrix and feature importance are drawn', async () => {
    browserReady();
    await page.getByTestId('project-churn').click();
    await page.getByTestId('models').waitFor();
    expect(await page.locator('[data-testid=models] tbody tr').count()).toBe(2);
    expect(await page.locator('svg[data-testid=deployment-timeline] circle.timeline-dot').count()).toBe(await rows());
    await page.getByTestId(`open-model-${ids.xgb}`).click();
    const roc = page.locator('svg[data-testid=roc-curve] path.roc-line');
    await roc.first().waitFor();
    const d = (await roc.first().getAttribute('d')) ?? '';
    expect(d.length).toBeGreaterThan(100);
    expect(d.split('L').length).toBeGreaterThan(10);
    const box = await page.locator('svg[data-testid=roc-curve]').boundingBox();
    expect(box!.width).toBeGreaterThan(200);
    const cells = page.locator('svg[data-testid=confusion-matrix] g.cm-cell');
    expect(await cells.count()).toBe(4);
    const counts = await cells.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-count'))));
    expect(counts.reduce((a, b) => a + b, 0)).toBe(150);
    const bars = page.locator('svg[data-testid=feature-importance] rect.bar');
    expect(await bars.count()).toBeGreaterThanOrEqual(3);
    const widths = await bars.evaluateAll((els) => els.map((e) => Number(e.getAttribute('width'))));
    expect(Math.max(...widths)).toBeGreaterThan(100);
    expect((await bars.first().boundingBox())!.width).toBeGreaterThan(100);
    await shot('02-classifier');

    // the linear model has a ROC curve but no feature importance
    await page.getByTestId(`open-model-${ids.logistic}`).click();
    await expect.poll(() => page.getByTestId('model-title').textContent()).toMatch(new RegExp(`^Model #${ids.logistic} `));
    await page.locator('svg[data-testid=roc-curve] path.roc-line').waitFor();
    expect(await page.locator('svg[data-testid=feature-importance]').count()).toBe(0);
  });

  it('opens the regressor: predicted-vs-actual points and residuals; a retraining job runs to 100%', async () => {
    browserReady();
    await page.getByTestId('project-house_prices').click();
    await page.getByTestId(`open-model-${ids.regressor}`).click();
    const points = page.locator('svg[data-testid=pred-vs-actual] circle.point');
    await points.first().waitFor();
    expect(await points.count()).toBe(140);
    expect(await page.locator('svg[data-testid=residuals] circle.point').count()).toBe(140);
    expect(await page.locator('svg[data-testid=feature-importance] rect.bar').count()).toBe(3);
    // points spread over the plot, not stacked in one place
    const xs = await points.evaluateAll((els) => els.map((e) => Number(e.getAttribute('cx'))));
    expect(Math.max(...xs) - Math.min(...xs)).toBeGreaterThan(200);
    await shot('03-regressor');

    await page.getByTestId('retrain').click();
    const job = page.locator('[data-testid=jobs] li[data-testid^=job-]');
    await job.first().waitFor();
    await expect.poll(() => job.first().getAttribute('data-status'), { timeout: 30_000 }).toBe('succeeded');
    expect(await job.first().locator('.progress-bar').textContent()).toBe('100%');
    await expect.poll(() => page.locator('[data-testid=models] tbody tr').count()).toBe(2);
    await shot('04-job');
  }, 60_000);

  it('rolls back: the timeline gains a row and the API serves the previous model', async () => {
    browserReady();
    await page.getByTestId('project-churn').click();
    await expect.poll(() => page.locator('.project-head h2').textContent()).toMatch(/^churn/);
    expect(await page.getByTestId('deployed-model').textContent()).toBe(`#${ids.xgb}`);
    const before = await rows();
    page.once('dialog', (dialog) => void dialog.accept());
    await page.getByTestId('rollback').click();
    await expect.poll(rows).toBe(before + 1);
    expect(await page.getByTestId('deployed-model').textContent()).toBe(`#${ids.logistic}`);
    expect(await page.locator('[data-testid=deployment-row]').first().textContent()).toContain('rollback');
    expect(await page.locator('svg[data-testid=deployment-timeline] circle.timeline-dot').count()).toBe(before + 1);
    const project = (await app.inject({ url: '/models/churn', headers: alice })).json();
    expect(project.deployed_model_id).toBe(ids.logistic);
    expect(project.deployments.at(-1).strategy).toBe('rollback');
    const served = await post('/models/churn/predict', { rows: [{ tenure_months: 3, monthly_fee: 95, support_calls: 6, plan: 'basic' }] }, alice);
    expect(served.json().model_id).toBe(ids.logistic);
    await shot('05-rollback');
    expect(problems).toEqual([]);
    // the only failed request was the deliberately bad token
    expect(failed).toEqual(['401 /models']);
  });

  it('signs out: the token is forgotten', async () => {
    browserReady();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByTestId('signin').waitFor();
    expect(await page.evaluate<string | null>("sessionStorage.getItem('pgml.dashboard.token')")).toBeNull();
  });
});

