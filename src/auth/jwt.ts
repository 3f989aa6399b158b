import { createLocalJWKSet, errors as joseErrors, importJWK, jwtVerify, type JWK, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { KeyObject } from 'node:crypto';
import { ApiError } from '../errors.ts';

export interface JwtSettings {
  secret?: string;
  secretIsBase64: boolean;
  audience?: string;
  roleClaimKey: string;
  anonRole?: string;
}

export interface Identity {
  role: string;
  claims: Record<string, unknown>;
  /** true when a valid token was presented (decides 401 vs 403 on permission errors) */
  authenticated: boolean;
}

type Verifier = (token: string) => Promise<JWTPayload>;

const HS = ['HS256', 'HS384', 'HS512'];
const RS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
const ES = ['ES256', 'ES384', 'ES512'];
const CLOCK_SKEW_SECONDS = 30;
/** tokens larger than this are refused before any parsing (PostgREST has no limit; headers do) */
const MAX_TOKEN_BYTES = 16 * 1024;

function algorithmsFor(jwk: JWK): string[] {
  if (jwk.alg) return [jwk.alg];
  switch (jwk.kty) {
    case 'oct': return HS;
    case 'RSA': return RS;
    case 'EC': return ES;
    case 'OKP': return ['EdDSA'];
    default: throw new Error(`unsupported JWK key type ${String(jwk.kty)}`);
  }
}

async function buildVerifier(s: JwtSettings): Promise<Verifier | null> {
  if (!s.secret) return null;
  const options = { audience: s.audience, clockTolerance: CLOCK_SKEW_SECONDS };
  const trimmed = s.secret.trim();
  if (trimmed.startsWith('{')) {
    const doc = JSON.parse(trimmed) as JWK & { keys?: JWK[] };
    if (Array.isArray(doc.keys)) {
      const set = createLocalJWKSet({ keys: doc.keys });
      const algorithms = [...new Set(doc.keys.flatMap(algorithmsFor))];
      // a JWKS without kid matching still resolves when it has one key of the token's type
      const getKey: JWTVerifyGetKey = (header, token) => set(header, token);
      return async (t) => (await jwtVerify(t, getKey, { ...options, algorithms })).payload;
    }
    const key = (await importJWK(doc, doc.alg ?? algorithmsFor(doc)[0])) as KeyObject | Uint8Array;
    const algorithms = algorithmsFor(doc);
    return async (t) => (await jwtVerify(t, key, { ...options, algorithms })).payload;
  }
  const key = s.secretIsBase64 ? new Uint8Array(Buffer.from(s.secret, 'base64')) : new TextEncoder().encode(s.secret);
  return async (t) => (await jwtVerify(t, key, { ...options, algorithms: HS })).payload;
}

/** Reads a claim by PostgREST's JSPath syntax: .role, .app_metadata.role, ."https://x".role, .roles[0] */
export function claimAt(claims: unknown, path: string): unknown {
  const re = /\.(?:"([^"]+)"|([A-Za-z0-9_$-]+))|\[(\d+)\]/g;
  let cur: unknown = claims;
  for (const m of path.matchAll(re)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = m[3] !== undefined ? (cur as unknown[])[Number(m[3])] : (cur as Record<string, unknown>)[m[1] ?? m[2]];
  }
  return cur;
}

function invalidToken(message: string, code = 'PGRST301'): ApiError {
  return new ApiError(401, { code, message, details: null, hint: null }, {
    'WWW-Authenticate': `Bearer error="invalid_token", error_description="${message.replace(/"/g, "'")}"`,
  });
}

function describeJoseError(e: unknown): ApiError {
  if (e instanceof joseErrors.JWTExpired) return invalidToken('JWT expired', 'PGRST303');
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    if (e.claim === 'aud') return invalidToken('JWT not in audience', 'PGRST303');
    if (e.claim === 'nbf') return invalidToken('JWT not yet valid', 'PGRST303');
    if (e.claim === 'iat') return invalidToken('JWT issued in the future', 'PGRST303');
    return invalidToken(`JWT claim "${e.claim}" is invalid`, 'PGRST303');
  }
  if (e instanceof joseErrors.JOSEAlgNotAllowed) return invalidToken('Wrong or unsupported encoding algorithm');
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return invalidToken('JWSError JWSInvalidSignature');
  if (e instanceof joseErrors.JWKSNoMatchingKey) return invalidToken('No suitable key or wrong key type');
  if (e instanceof joseErrors.JWTInvalid || e instanceof joseErrors.JWSInvalid) return invalidToken('Expected 3 parts in JWT; got an invalid token');
  return invalidToken('JWT cryptographic operation failed');
}

/**
 * Turns an Authorization header into the caller's identity. Verified tokens are cached until their
 * expiry (bounded LRU), since the same token usually arrives many times in a row.
 */
export class Authenticator {
  private cache = new Map<string, { identity: Identity; expiresAt: number }>();
  private static readonly CACHE_SIZE = 1000;

  private constructor(private readonly settings: JwtSettings, private readonly verify: Verifier | null) {}

  static async create(settings: JwtSettings): Promise<Authenticator> {
    return new Authenticator(settings, await buildVerifier(settings));
  }

  async identify(authorization: string | undefined): Promise<Identity> {
    const token = bearerToken(authorization);
    if (token === null) {
      if (!this.settings.anonRole) {
        throw new ApiError(401, { code: 'PGRST302', message: 'Anonymous access is disabled', details: null, hint: null }, { 'WWW-Authenticate': 'Bearer' });
      }
      return { role: this.settings.anonRole, claims: { role: this.settings.anonRole }, authenticated: false };
    }
    if (token === '') throw invalidToken('Empty JWT is sent in Authorization header');
    if (token.length > MAX_TOKEN_BYTES) throw invalidToken('JWT is too large');
    const cached = this.cache.get(token);
    const now = Date.now();
    if (cached && cached.expiresAt > now) {
      this.cache.delete(token);
      this.cache.set(token, cached);
      return cached.identity;
    }
    if (!this.verify) {
      throw new ApiError(500, { code: 'PGRST300', message: 'Server lacks JWT secret', details: null, hint: 'Set PGRST_JWT_SECRET' });
    }
    let claims: JWTPayload;
    try {
      claims = await this.verify(token);
    } catch (e) {
      throw describeJoseError(e);
    }
    // jose checks exp and nbf; a token issued in the future is refused here, with the same skew
    if (typeof claims.iat === 'number' && claims.iat > now / 1000 + CLOCK_SKEW_SECONDS) {
      throw invalidToken('JWT issued at future', 'PGRST303');
    }
    const identity = this.identityFromClaims(claims as Record<string, unknown>);
    const expSeconds = typeof claims.exp === 'number' ? claims.exp + CLOCK_SKEW_SECONDS : Infinity;
    // nbf-bearing tokens are not cached: they become valid later and must be re-checked
    if (claims.nbf === undefined) {
      this.cache.set(token, { identity, expiresAt: Math.min(expSeconds * 1000, now + 5 * 60_000) });
      if (this.cache.size > Authenticator.CACHE_SIZE) this.cache.delete(this.cache.keys().next().value!);
    }
    return identity;
  }

  private identityFromClaims(claims: Record<string, unknown>): Identity {
    const role = claimAt(claims, this.settings.roleClaimKey);
    if (role === undefined || role === null || role === '') {
      if (!this.settings.anonRole) {
        throw invalidToken('JWT has no role claim and anonymous access is disabled', 'PGRST303');
      }
      return { role: this.settings.anonRole, claims, authenticated: true };
    }
    if (typeof role !== 'string') throw invalidToken('JWT role claim must be a string', 'PGRST303');
    return { role, claims, authenticated: true };
  }
}

function bearerToken(header: string | undefined): string | null {
  if (header === undefined) return null;
  const m = /^\s*bearer(?:\s+(.*?))?\s*$/is.exec(header);
  if (!m) return null;
  return m[1] ?? '';
}
