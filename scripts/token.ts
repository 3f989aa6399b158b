/**
 * Mints a token for the gateway: `npm run token -- --role authenticated --exp 1h`.
 *
 * The secret is PGRST_JWT_SECRET (with PGRST_JWT_SECRET_IS_BASE64), as the gateway reads it, or,
 * when that is unset, the embedded database's generated secret (inside PGML_DATA_DIR, default
 * .pgdata). The role goes where PGRST_JWT_ROLE_CLAIM_KEY says; PGRST_JWT_AUD becomes "aud".
 * Only HS256/384/512 secrets can be used here: a JWK/JWKS names a public key, and tokens for it
 * are signed by whoever holds the private key (your identity provider).
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';
import { embeddedJwtSecretFile } from '../src/db/embedded.ts';

function fail(message: string): never {
  console.error(`token: ${message}`);
  process.exit(2);
}

const usage = `npm run token -- [--role authenticated] [--exp 1h] [--claims '{"sub":"42"}'] [--alg HS256]
  --role    the database role the token names (default authenticated)
  --exp     lifetime: 30s, 15m, 1h, 7d, 2w, 1y (default 1h); "never" for no exp claim
  --claims  extra claims as a JSON object (e.g. for row-level security: current_setting('request.jwt.claims'))
  --alg     HS256, HS384 or HS512 (default HS256)
Secret: PGRST_JWT_SECRET (PGRST_JWT_SECRET_IS_BASE64=true if base64), else the embedded database's
(PGML_DATA_DIR, default .pgdata). Prints the token alone on stdout: export TOKEN=$(npm run -s token -- --role anon)`;

const { values } = parseArgs({
  options: {
    role: { type: 'string', default: 'authenticated' },
    exp: { type: 'string', default: '1h' },
    claims: { type: 'string' },
    alg: { type: 'string', default: 'HS256' },
    help: { type: 'boolean', short: 'h' },
  },
  strict: true,
});
if (values.help) {
  console.log(usage);
  process.exit(0);
}

let secret: Uint8Array;
const env = process.env.PGRST_JWT_SECRET;
if (env !== undefined && env !== '') {
  if (env.trim().startsWith('{')) fail('PGRST_JWT_SECRET is a JWK/JWKS (a public key): tokens for it are signed with the private key, by your identity provider, not here.');
  secret = /^(1|true|yes|on)$/i.test(process.env.PGRST_JWT_SECRET_IS_BASE64 ?? '') ? new Uint8Array(Buffer.from(env, 'base64')) : new TextEncoder().encode(env);
} else {
  const dataDir = resolve(process.env.PGML_DATA_DIR ?? '.pgdata');
  const file = embeddedJwtSecretFile(dataDir);
  const legacy = join(dataDir, '..', `${basename(dataDir)}.jwt-secret`);
  const found = [file, legacy].find((f) => existsSync(f));
  if (!found) fail(`no PGRST_JWT_SECRET set and no embedded database secret at ${file} (run npm start once, or set PGRST_JWT_SECRET to your gateway's secret)`);
  secret = new TextEncoder().encode(readFileSync(found, 'utf8').trim());
}
if (secret.length < 32) fail('the secret is shorter than 32 bytes; the gateway would refuse it');
if (!['HS256', 'HS384', 'HS512'].includes(values.alg!)) fail(`--alg ${values.alg}: use HS256, HS384 or HS512`);
if (!values.role) fail('--role must name a database role');

let claims: Record<string, unknown> = {};
if (values.claims) {
  try {
    claims = JSON.parse(values.claims);
  } catch (e) {
    fail(`--claims is not JSON: ${(e as Error).message}`);
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) fail('--claims must be a JSON object');
}

// the role where the gateway looks for it: PGRST_JWT_ROLE_CLAIM_KEY, simple .a.b paths
const key = process.env.PGRST_JWT_ROLE_CLAIM_KEY ?? '.role';
const path = key.match(/^(\.[A-Za-z_][A-Za-z0-9_-]*)+$/) ? key.slice(1).split('.') : fail(`PGRST_JWT_ROLE_CLAIM_KEY ${key}: only simple paths like .role or .app_metadata.role are supported here; add the role with --claims`);
let at: Record<string, unknown> = claims;
for (const p of path.slice(0, -1)) {
  if (typeof at[p] !== 'object' || at[p] === null) at[p] = {};
  at = at[p] as Record<string, unknown>;
}
at[path[path.length - 1]] = values.role;

const jwt = new SignJWT(claims).setProtectedHeader({ alg: values.alg!, typ: 'JWT' }).setIssuedAt();
if (process.env.PGRST_JWT_AUD) jwt.setAudience(process.env.PGRST_JWT_AUD);
if (values.exp !== 'never') {
  if (!/^\d+\s*(s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hr|hrs|hour|hours|d|day|days|w|week|weeks|y|yr|yrs|year|years)$/.test(values.exp!)) fail(`--exp ${values.exp}: use e.g. 30s, 15m, 1h, 7d, 2w, 1y, or never`);
  jwt.setExpirationTime(values.exp!);
}
console.log(await jwt.sign(secret));
