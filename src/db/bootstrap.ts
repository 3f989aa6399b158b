import type { Sql } from 'postgres';

/** Password of the authenticator role created for the embedded database (local use only). */
export const EMBEDDED_AUTHENTICATOR_PASSWORD = 'authenticator';

/**
 * Creates PostgREST's conventional roles when they do not exist: `authenticator` (LOGIN,
 * NOINHERIT, can switch to the others), `anon` and `authenticated` (NOLOGIN). Idempotent and safe
 * when several processes run it at once (serialised by an advisory lock; roles are cluster-wide).
 */
export async function createDefaultRoles(admin: Sql, authenticatorPassword: string | null): Promise<void> {
  await admin.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtext('pgml-gateway:roles'))`;
    for (const role of ['anon', 'authenticated']) {
      const exists = await tx`select 1 from pg_roles where rolname = ${role}`;
      if (exists.length === 0) await tx.unsafe(`create role ${quoteIdent(role)} nologin`);
    }
    const auth = await tx`select 1 from pg_roles where rolname = 'authenticator'`;
    if (auth.length === 0) {
      await tx.unsafe(`create role authenticator login noinherit`);
    }
    if (authenticatorPassword !== null) {
      // ALTER ROLE ... PASSWORD takes no bind parameters; the value is a fixed local constant.
      await tx.unsafe(`alter role authenticator password ${quoteLiteral(authenticatorPassword)}`);
    }
    await tx.unsafe(`grant anon, authenticated to authenticator`);
  });
}

export function quoteIdent(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new Error('NUL byte in SQL literal');
  return "'" + value.replace(/'/g, "''") + "'";
}
