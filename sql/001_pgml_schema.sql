-- The pgml schema: home of the PostgresML-compatible catalog (models, deployments, ...) that
-- later migrations fill, and of the SQL helpers. Created here so every later migration can rely on it.
create schema if not exists pgml;
comment on schema pgml is 'pgml-gateway: PostgresML-compatible machine learning catalog';
grant usage on schema pgml to public;
