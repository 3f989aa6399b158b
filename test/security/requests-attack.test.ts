/**
 * Hostile request shapes that cost nothing to send: deeply nested JSON bodies and query strings,
 * and role claims PostgreSQL would reject or silently truncate. Each is sent to every kind of route
 * (rpc, tables, models, embed) by anonymous and authenticated callers while a bystander tenant is
 * probed; each must get a 4xx PostgREST body, never a 5xx, and never run as a different role.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startGateway, token } from '../helpers/gateway.ts';
import { createBystander, expectBystanderServed, underAttack } from './attack.ts';

let db: TestDatabase;
let app: FastifyInstance;
let baseUrl: string;
let auth: Record<string, string>;

const ROUTES = ['/rpc/echo', '/notes', '/models/p/predict', '/models/train', '/models/embed', '/models/p/import'];

beforeAll(async () => {
  db = await createTestDatabase();
  await db.admin.unsafe(`
    create function public.echo(doc jsonb) returns jsonb language sql immutable as $$ select doc $$;
    grant execute on function public.echo(jsonb) to anon, authenticated;
    create table public.notes (id serial primary key, body jsonb);
    grant select, insert on public.notes to anon, authenticated;
    grant usage on sequence public.notes_id_seq to anon, authenticated;
    -- a role whose name is the 63-byte truncation of a 64-byte claim: it must never be used for it
    do $$ begin
      if not exists (select 1 from pg_roles where rolname = '${'r'.repeat(63)}') then create role ${'r'.repeat(63)} nologin; end if;
    end $$;
    grant ${'r'.repeat(63)} to authenticator;
    grant execute on function public.echo(jsonb) to ${'r'.repeat(63)};`);
  await createBystander(db.admin);
  app = await startGateway(db);
  await app.listen({ port: 0, host: '127.0.0.1' });
  baseUrl = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  auth = { authorization: `Bearer ${await token({ role: 'authenticated' })}` };
});

afterAll(async () => {
  await app?.close();
  await db?.drop();
});

const nestedArray = (n: number) => '['.repeat(n) + ']'.repeat(n);
const nestedObject = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
const nestedMixed = (n: number) => '{"x":['.repeat(n) + ']}'.repeat(n);

async function send(url: string, body: string, headers: Record<string, string>) {
  const res = await fetch(baseUrl + url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  return { status: res.status, body: await res.json() as Record<string, unknown> };
}

describe('deeply nested JSON bodies', () => {
  it('are refused with 400 PGRST102 on every route, anonymous and authenticated, while others are served', async () => {
    const shapes = [nestedArray(5000), nestedObject(5000), nestedMixed(3000), `{"doc":${nestedArray(100_000)}}`];
    const { result, report } = await underAttack({ baseUrl }, async () => {
      const out: string[] = [];
      for (const url of ROUTES) {
        for (const headers of [{}, auth]) {
          for (const body of shapes) {
            const r = await send(url, body, headers);
            out.push(`${url} ${headers === auth ? 'auth' : 'anon'} ${body.length}: ${r.status} ${r.body.code}`);
          }
        }
      }
      return out;
    });
    expectBystanderServed(report);
    for (const line of result) expect(line).toMatch(/: 400 PGRST102$/);
  });

  it('nesting up to the limit still works, and brackets inside strings do not count', async () => {
    const deep = nestedArray(500);
    const ok = await send('/rpc/echo', `{"doc":${deep}}`, auth);
    expect(ok.status).toBe(200);
    const text = '['.repeat(10_000);
    const stringy = await send('/rpc/echo', JSON.stringify({ doc: { text } }), auth);
    expect(stringy.status).toBe(200);
    expect((stringy.body as { text: string }).text).toBe(text);
    const escaped = await send('/rpc/echo', JSON.stringify({ doc: { text: '\\"' + '['.repeat(1000) } }), auth);
    expect(escaped.status).toBe(200);
  });
});

describe('deeply nested query strings', () => {
  it('select= and or= nesting is a 400, not a crash', async () => {
    const { result, report } = await underAttack({ baseUrl }, async () => {
      const urls = [
        `/notes?select=${'a('.repeat(3000)}id${')'.repeat(3000)}`,
        `/notes?or=(${'and('.repeat(2000)}id.eq.1${')'.repeat(2000)})`,
        `/notes?select=${'...a('.repeat(2000)}id${')'.repeat(2000)}`,
        `/notes?select=id&order=${'(('.repeat(2000)}id`,
      ];
      return Promise.all(urls.map(async (u) => {
        const res = await fetch(baseUrl + u, { headers: auth });
        return { status: res.status, body: await res.text() };
      }));
    });
    expectBystanderServed(report);
    for (const r of result) {
      expect(r.status, r.body).toBeGreaterThanOrEqual(400);
      expect(r.status, r.body).toBeLessThan(500);
      expect(JSON.parse(r.body)).toHaveProperty('code');
    }
  });
});

describe('role claims PostgreSQL would reject or truncate', () => {
  const claims = [
    ['a NUL byte', 'authenticated\u0000x'],
    ['64 bytes whose 63-byte prefix is a real role', 'r'.repeat(64)],
    ['64 bytes of two-byte characters', 'é'.repeat(32)],
    ['a very long name', 'x'.repeat(5000)],
  ] as const;

  for (const [what, role] of claims) {
    it(`${what}: 401 on every route, no work done`, async () => {
      const headers = { authorization: `Bearer ${await token({ role })}` };
      for (const url of ROUTES) {
        const r = await send(url, '{}', headers);
        expect(r.status, `${url} ${JSON.stringify(r.body)}`).toBe(401);
        expect(r.body.code).toBe('PGRST301');
      }
      const get = await fetch(`${baseUrl}/rpc/echo?doc=1`, { headers });
      expect(get.status).toBe(401);
    });
  }

  it('a 63-byte role name is accepted (the limit is PostgreSQL\'s own)', async () => {
    const headers = { authorization: `Bearer ${await token({ role: 'r'.repeat(63) })}` };
    const r = await send('/rpc/echo', '{"doc": {"ok": true}}', headers);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ ok: true });
  });
});
