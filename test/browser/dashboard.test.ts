/**
 * The /dashboard web page in a real browser: playwright-core driving the system's Chromium
 * (Debian's `chromium` package; .ci/install-browser.sh installs it), run by `npm run test:browser`
 * (not by `npm test`). Signs in with a bearer token, opens a classifier and a regressor and checks
 * their plots were drawn, watches a training job finish, rolls a deployment back, and saves
 * screenshots to test/dashboard-screenshots/.
 * The evaluation API the plots are drawn from is tested without a browser in test/dashboard.test.ts.
 *
 * Without Chromium the browser tests fail (they do not skip): set CHROMIUM_PATH or install it.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson, startDashboardFixture, type DashboardFixture } from '../helpers/dashboard.ts';

const SCREENSHOTS = fileURLToPath(new URL('../dashboard-screenshots/', import.meta.url));
const CHROMIUM_CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/lib/chromium/chromium', '/snap/bin/chromium'];
const LAUNCH_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];

let fx: DashboardFixture;
let app: FastifyInstance;
let alice: Record<string, string>;
let bob: Record<string, string>;
let ids: DashboardFixture['ids'];
let aliceToken: string;
let base: string;

const post = (url: string, body: unknown, headers: Record<string, string>) => postJson(app, url, body, headers);

beforeAll(async () => {
  fx = await startDashboardFixture();
  ({ app, alice, bob, ids, aliceToken } = fx);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('the gateway did not listen on a TCP port');
  base = `http://127.0.0.1:${address.port}`;
}, 180_000);

afterAll(async () => {
  await fx?.close();
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
