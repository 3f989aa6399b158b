/**
 * The data and models of the dashboard tests (test/dashboard.test.ts for the evaluation API and
 * static files, test/browser/dashboard.test.ts for the page in Chromium): two roles, a churn
 * classifier (logistic, then xgboost deployed last), a house-price regressor and another role's
 * private project. Generated in SQL: the same rows on every run, no data files.
 */
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import { createTestDatabase, type TestDatabase } from './db.ts';
import { bearer, startGateway, token } from './gateway.ts';

export interface DashboardFixture {
  db: TestDatabase;
  app: FastifyInstance;
  aliceToken: string;
  alice: Record<string, string>;
  bob: Record<string, string>;
  ids: { logistic: number; xgb: number; regressor: number };
  close: () => Promise<void>;
}

export const postJson = (app: FastifyInstance, url: string, body: unknown, headers: Record<string, string>) =>
  app.inject({ method: 'POST', url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });

export async function startDashboardFixture(): Promise<DashboardFixture> {
  const ids = { logistic: 0, xgb: 0, regressor: 0 };
  async function train(body: Record<string, unknown>, headers: Record<string, string>): Promise<{ model_id: number; metrics: Record<string, number>; deployed: boolean }> {
    const res = await post('/models/train', body, headers);
    expect(res.statusCode, res.body).toBe(200);
    return res.json();
  }
  const db = await createTestDatabase();
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
  const app = await startGateway(db);
  const post = (url: string, body: unknown, headers: Record<string, string>) => postJson(app, url, body, headers);
  const aliceToken = await token({ role: 'dash_alice' });
  const alice = bearer(aliceToken);
  const bob = bearer(await token({ role: 'dash_bob' }));

  const churn = { project_name: 'churn', task: 'classification', relation_name: 'churn', y_column_name: 'churned', test_sampling: 'stratified', preprocess: { plan: { encode: 'one_hot' }, monthly_fee: { scale: 'standard' }, tenure_months: { scale: 'standard' } } };
  ids.logistic = (await train({ ...churn, algorithm: 'logistic' }, alice)).model_id;
  ids.xgb = (await train({ ...churn, algorithm: 'xgboost', hyperparams: { n_estimators: 40, max_depth: 3 } }, alice)).model_id;
  // whatever scored better, the tree model is deployed last: the history has at least two rows
  // and a rollback goes back to the logistic model
  expect((await post('/models/churn/deploy', { model_id: ids.xgb }, alice)).statusCode).toBe(200);
  ids.regressor = (await train({ project_name: 'house_prices', task: 'regression', relation_name: 'house_prices', y_column_name: 'price', algorithm: 'xgboost', hyperparams: { n_estimators: 60, max_depth: 4 }, test_size: 0.2, test_sampling: 'random' }, alice)).model_id;
  await train({ project_name: 'bobs_private', task: 'regression', relation_name: 'house_prices', y_column_name: 'price', algorithm: 'linear' }, bob);
  return {
    db, app, aliceToken, alice, bob, ids,
    close: async () => {
      await app.close();
      await db.drop();
    },
  };
}
