-- Roles the gateway expects (see src/db/bootstrap.ts and README "Roles and grants"):
--   authenticator  LOGIN NOINHERIT, the gateway's connection (PGRST_DB_URI); can only switch roles
--   anon           NOLOGIN, requests without a token (PGRST_DB_ANON_ROLE=anon)
--   authenticated  NOLOGIN, tokens with {"role": "authenticated"}
-- Run once by the postgres image at initdb, as POSTGRES_USER in POSTGRES_DB. Idempotent, so it can
-- also be run by hand against an existing server:
--   AUTHENTICATOR_PASSWORD=... psql "$ADMIN_URI" -f deploy/compose/initdb/10-roles.sql
-- Must run before the gateway's first start: migration 002 grants pgml.claim_job to authenticator
-- only if that role exists then.
\set ON_ERROR_STOP on
\getenv authenticator_password AUTHENTICATOR_PASSWORD
\if :{?authenticator_password}
\else
do $$ begin raise exception 'AUTHENTICATOR_PASSWORD is not set in the environment of psql'; end $$;
\endif

do $$
begin
  if not exists (select from pg_roles where rolname = 'anon') then create role anon nologin; end if;
  if not exists (select from pg_roles where rolname = 'authenticated') then create role authenticated nologin; end if;
  if not exists (select from pg_roles where rolname = 'authenticator') then create role authenticator login noinherit; end if;
end $$;

alter role authenticator with login noinherit password :'authenticator_password';
grant anon, authenticated to authenticator;
grant usage on schema public to anon, authenticated;
