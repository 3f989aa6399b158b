/**
 * Shared set-up of the jobs and training attack files: a gateway login role that is NOT named
 * authenticator (LOGIN, NOINHERIT, not superuser, granted the request roles), tenants, data.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import postgres from 'postgres';
import { inject } from 'vitest';
import { migrate } from '../../src/db/migrate.ts';
import type { TestDatabase } from '../helpers/db.ts';

export interface LoginRole {
  name: string;
  /** URI of the test database as this role */
  url: string;
  drop(): Promise<void>;
}

/** A login role for the gateway, member of `tenants`; migrate() grants it the worker functions. */
export async function createLoginRole(db: TestDatabase, tenants: string[]): Promise<LoginRole> {
  const name = `gw_login_${randomBytes(4).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  await db.admin.unsafe(`
    do $$ begin
      ${tenants.map((r) => `if not exists (select from pg_roles where rolname = '${r}') then create role "${r}" nologin; end if;`).join('\n')}
    end $$;
    create role "${name}" login noinherit nosuperuser password '${password}';
    grant ${['anon', 'authenticated', ...tenants].map((r) => `"${r}"`).join(', ')} to "${name}";`).simple();
  // what main.ts does at start: migrate (nothing pending) and grant the worker functions
  await migrate(db.admin, undefined, { workerRole: name });
  const u = new URL(db.adminUrl);
  u.username = name;
  u.password = password;
  return {
    name,
    url: u.toString(),
    async drop() {
      const s = postgres(inject('adminUrl'), { max: 1, onnotice: () => {} });
      await s.unsafe(`drop role if exists "${name}"`).catch(() => {});
      await s.end();
    },
  };
}

export function baseUrl(app: FastifyInstance): string {
  const a = app.server.address() as AddressInfo;
  return `http://127.0.0.1:${a.port}`;
}

export interface Http {
  status: number;
  body: string;
  headers: Headers;
  json(): any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export async function http(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Http> {
  const res = await fetch(base + path, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text, headers: res.headers, json: () => JSON.parse(text) };
}

/** `rows` rows of y = 3 x1 - 2 x2 + noise, readable by the tenants. */
export async function createTrainingTable(db: TestDatabase, name: string, rows: number, readers: string[]): Promise<void> {
  await db.admin.unsafe(`
    create table ${name} as select i, (i % 97)::float8 / 97 as x1, (i % 89)::float8 / 89 as x2, ((i * 7919) % 101)::float8 / 101 as x3,
      3 * ((i % 97)::float8 / 97) - 2 * ((i % 89)::float8 / 89) + ((i * 7919) % 13)::float8 / 100 as y
    from generate_series(1, ${rows}) i;
    alter table ${name} drop column i;
    grant select on ${name} to ${readers.map((r) => `"${r}"`).join(', ')};`).simple();
}
