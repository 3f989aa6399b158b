import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';

/** A random HS256 secret (PostgREST wants at least 32 characters). */
export function randomSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** An HS256 bearer token, valid for `ttlSeconds`. */
export function signToken(secret: string, claims: Record<string, unknown>, ttlSeconds = 3600): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(new TextEncoder().encode(secret));
}
