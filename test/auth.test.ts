import type { FastifyInstance } from 'fastify';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { bearer, SECRET, startGateway, token } from './helpers/gateway.ts';

let db: TestDatabase;
let app: FastifyInstance;
const now = () => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  db = await createTestDatabase();
  await db.admin.unsafe(`
    create function whoami() returns text language sql stable as $$ select current_user::text $$;
    grant execute on function whoami() to anon, authenticated;
    do $$ begin if not exists (select from pg_roles where rolname = 'pgml_outsider') then create role pgml_outsider nologin; end if; end $$;
  `).simple();
  app = await startGateway(db);
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

const who = (a: FastifyInstance, headers: Record<string, string> = {}) => a.inject({ url: '/rpc/whoami', headers });

function expectInvalidToken(res: { statusCode: number; headers: Record<string, unknown>; json(): unknown }, code = 'PGRST301') {
  expect(res.statusCode).toBe(401);
  expect(String(res.headers['www-authenticate'])).toMatch(/^Bearer/);
  expect((res.json() as { code: string }).code).toBe(code);
}

describe('HS256/384/512 secrets', () => {
  it('no token → the anonymous role', async () => {
    expect((await who(app)).json()).toBe('anon');
  });

  it('a valid token → its role', async () => {
    for (const alg of ['HS256', 'HS384', 'HS512']) {
      const res = await who(app, bearer(await token({ role: 'authenticated' }, { alg })));
      expect(res.json(), alg).toBe('authenticated');
    }
  });

  it('expired beyond 30 s of skew → 401 PGRST303; within the skew → accepted', async () => {
    expectInvalidToken(await who(app, bearer(await token({ role: 'authenticated', exp: now() - 60 }))), 'PGRST303');
    expect((await who(app, bearer(await token({ role: 'authenticated', exp: now() - 10 })))).json()).toBe('authenticated');
  });

  it('not yet valid (nbf) beyond the skew → 401', async () => {
    expectInvalidToken(await who(app, bearer(await token({ role: 'authenticated', nbf: now() + 120 }))), 'PGRST303');
    expect((await who(app, bearer(await token({ role: 'authenticated', nbf: now() + 10 })))).json()).toBe('authenticated');
  });

  it('issued in the future (iat) beyond the skew → 401 PGRST303; within the skew → accepted', async () => {
    expectInvalidToken(await who(app, bearer(await token({ role: 'authenticated', iat: now() + 3600 }))), 'PGRST303');
    expect((await who(app, bearer(await token({ role: 'authenticated', iat: now() + 10 })))).json()).toBe('authenticated');
  });

  it('a wrong key → 401', async () => {
    expectInvalidToken(await who(app, bearer(await token({ role: 'authenticated' }, { secret: 'another-secret-that-is-also-32-chars-long!!' }))));
  });

  it('alg: none is refused', async () => {
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    const payload = Buffer.from(JSON.stringify({ role: 'postgres' })).toString('base64url');
    expectInvalidToken(await who(app, bearer(`${header}.${payload}.`)));
  });

  it('garbled, truncated, empty and oversized tokens → 401', async () => {
    const good = await token({ role: 'authenticated' });
    expectInvalidToken(await who(app, bearer(good.slice(0, -5))));
    expectInvalidToken(await who(app, bearer('not.a.jwt')));
    expectInvalidToken(await who(app, bearer('garbage')));
    expectInvalidToken(await who(app, { authorization: 'Bearer ' }));
    expectInvalidToken(await who(app, bearer(await token({ role: 'authenticated', pad: 'x'.repeat(20000) }))));
  });

  it('a role that does not exist → 401; a role the authenticator cannot become → 403', async () => {
    const missing = await who(app, bearer(await token({ role: 'no_such_role_xyz' })));
    expect(missing.statusCode).toBe(401);
    const outsider = await who(app, bearer(await token({ role: 'pgml_outsider' })));
    expect(outsider.statusCode).toBe(403);
    const superuser = await who(app, bearer(await token({ role: 'postgres' })));
    expect(superuser.statusCode).toBe(403);
  });

  it('claims cannot inject settings: the claims are one JSON value', async () => {
    const t = await token({ role: 'authenticated', "x', true); set role postgres; --": 1 });
    const res = await app.inject({ url: '/rpc/whoami', headers: bearer(t) });
    expect(res.json()).toBe('authenticated');
  });

  it('without an anonymous role: no token → 401 PGRST302; a token without role claim → 401', async () => {
    const strict = await startGateway(db, { PGRST_DB_ANON_ROLE: '' });
    try {
      const res = await who(strict);
      expect(res.statusCode).toBe(401);
      expect(res.json().code).toBe('PGRST302');
      expectInvalidToken(await who(strict, bearer(await token({ sub: 'x' }))), 'PGRST303');
      expect((await who(strict, bearer(await token({ role: 'authenticated' })))).json()).toBe('authenticated');
    } finally {
      await strict.close();
    }
  });

  it('with an anonymous role, a token without role claim → the anonymous role', async () => {
    expect((await who(app, bearer(await token({ sub: 'x' })))).json()).toBe('anon');
  });

  it('audience is checked when configured', async () => {
    const gw = await startGateway(db, { PGRST_JWT_AUD: 'my-api' });
    try {
      expect((await who(gw, bearer(await token({ role: 'authenticated', aud: 'my-api' })))).json()).toBe('authenticated');
      expectInvalidToken(await who(gw, bearer(await token({ role: 'authenticated', aud: 'other' }))), 'PGRST303');
    } finally {
      await gw.close();
    }
  });

  it('the role claim key is configurable as a JSPath', async () => {
    const gw = await startGateway(db, { PGRST_JWT_ROLE_CLAIM_KEY: '.app_metadata.roles[1]' });
    try {
      const t = await token({ app_metadata: { roles: ['x', 'authenticated'] } });
      expect((await who(gw, bearer(t))).json()).toBe('authenticated');
    } finally {
      await gw.close();
    }
  });
});

describe('asymmetric keys from a JWK or JWKS', () => {
  it('RS256 via a JWK; an HS256 token signed with the public key is refused (no alg confusion)', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const jwk = await exportJWK(publicKey);
    const gw = await startGateway(db, { PGRST_JWT_SECRET: JSON.stringify(jwk) });
    try {
      const good = await new SignJWT({ role: 'authenticated' }).setProtectedHeader({ alg: 'RS256' }).sign(privateKey);
      expect((await who(gw, bearer(good))).json()).toBe('authenticated');
      const confused = await new SignJWT({ role: 'authenticated' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(JSON.stringify(jwk)));
      expectInvalidToken(await who(gw, bearer(confused)));
      const hs = await token({ role: 'authenticated' });
      expectInvalidToken(await who(gw, bearer(hs)));
    } finally {
      await gw.close();
    }
  });

  it('ES256 via a JWKS with key ids', async () => {
    const a = await generateKeyPair('ES256');
    const b = await generateKeyPair('ES256');
    const jwks = { keys: [{ ...(await exportJWK(a.publicKey)), kid: 'a', alg: 'ES256' }, { ...(await exportJWK(b.publicKey)), kid: 'b', alg: 'ES256' }] };
    const gw = await startGateway(db, { PGRST_JWT_SECRET: JSON.stringify(jwks) });
    try {
      const t = await new SignJWT({ role: 'authenticated' }).setProtectedHeader({ alg: 'ES256', kid: 'b' }).sign(b.privateKey);
      expect((await who(gw, bearer(t))).json()).toBe('authenticated');
      const wrongKid = await new SignJWT({ role: 'authenticated' }).setProtectedHeader({ alg: 'ES256', kid: 'a' }).sign(b.privateKey);
      expectInvalidToken(await who(gw, bearer(wrongKid)));
    } finally {
      await gw.close();
    }
  });

  it('a token sent to a gateway without a secret → 500 PGRST300', async () => {
    const gw = await startGateway(db, {}, { jwtSecret: undefined });
    try {
      const res = await who(gw, bearer(await token({ role: 'authenticated' }, { secret: SECRET })));
      expect(res.statusCode).toBe(500);
      expect(res.json().code).toBe('PGRST300');
    } finally {
      await gw.close();
    }
  });
});
