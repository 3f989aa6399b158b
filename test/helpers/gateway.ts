import type { FastifyInstance } from 'fastify';
import { SignJWT, type JWTPayload } from 'jose';
import { loadConfig, type Config } from '../../src/config.ts';
import { buildServer } from '../../routes/server.ts';
import type { TestDatabase } from './db.ts';

export const SECRET = 'test-secret-that-is-at-least-32-characters-long';

export function testConfig(db: TestDatabase, env: Record<string, string> = {}, overrides: Partial<Config> = {}): Config {
  return {
    ...loadConfig({ PGRST_DB_URI: db.authenticatorUrl, PGRST_JWT_SECRET: SECRET, PGRST_DB_ANON_ROLE: 'anon', PGRST_DB_POOL: '4', LOG_LEVEL: 'silent', ...env }),
    ...overrides,
  };
}

export async function startGateway(db: TestDatabase, env: Record<string, string> = {}, overrides: Partial<Config> = {}): Promise<FastifyInstance> {
  return buildServer(testConfig(db, env, overrides), { logger: false });
}

export async function token(claims: JWTPayload, opts: { secret?: string; alg?: string; expiresIn?: string | number } = {}): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: opts.alg ?? 'HS256' });
  if (opts.expiresIn !== undefined) jwt.setExpirationTime(opts.expiresIn);
  return jwt.sign(new TextEncoder().encode(opts.secret ?? SECRET));
}

export const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

/** Resolves when fn() stops throwing, or rejects after timeoutMs with its last error. */
export async function eventually<T>(fn: () => Promise<T>, timeoutMs = 3000, stepMs = 25): Promise<T> {
  const start = Date.now();
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() - start > timeoutMs) throw e;
      await new Promise((r) => setTimeout(r, stepMs));
    }
  }
}
