-- The gateway checks at start, as its own login role, whether any migration is pending (and only
-- then needs PGML_MIGRATION_DB_URI): the list of applied versions is readable by every role.
grant usage on schema pgml to public;
grant select on pgml.schema_migrations to public;
