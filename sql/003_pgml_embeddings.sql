-- Embeddings cache, written and read by the gateway as the caller. Strictly per role: a role
-- sees only rows it wrote itself (owner = current_user), so it cannot learn what another role
-- embedded, not even one it is a member of. The input is stored only as its SHA-256.
create table pgml.embeddings (
  owner text not null default current_user,
  model text not null,
  -- pooling and normalisation: "mean/normalized", "cls/raw", ...
  variant text not null,
  input_hash text not null,
  embedding real[] not null,
  truncated boolean not null default false,
  created_at timestamptz not null default clock_timestamp(),
  primary key (owner, model, variant, input_hash)
);
alter table pgml.embeddings enable row level security;
create policy own_rows on pgml.embeddings using (owner = current_user) with check (owner = current_user);
grant select, insert, delete on pgml.embeddings to public;

-- Vector helpers for real[] under PostgresML's names. With pgvector installed, cast with
-- embedding::vector (and back with ::real[]) to use its operators and indexes.
-- true, or an error for vectors of different lengths (used in WHERE so it is always evaluated)
create or replace function pgml._same_dims(a real[], b real[]) returns boolean language plpgsql immutable as $$
begin
  if cardinality(a) <> cardinality(b) then
    raise exception 'vectors have different dimensions: % and %', cardinality(a), cardinality(b) using errcode = '22000';
  end if;
  return true;
end $$;

create or replace function pgml.dot_product(a real[], b real[]) returns real language sql immutable parallel safe as $$
  select sum(x::float8 * y)::real from unnest(a, b) as t(x, y) where pgml._same_dims(a, b)
$$;
create or replace function pgml.norm_l2(a real[]) returns real language sql immutable parallel safe as $$
  select sqrt(sum(x::float8 * x))::real from unnest(a) as t(x)
$$;
create or replace function pgml.norm_l1(a real[]) returns real language sql immutable parallel safe as $$
  select sum(abs(x::float8))::real from unnest(a) as t(x)
$$;
create or replace function pgml.cosine_similarity(a real[], b real[]) returns real language sql immutable parallel safe as $$
  select (s.dot / nullif(sqrt(s.aa) * sqrt(s.bb), 0))::real
  from (select sum(x::float8 * y) as dot, sum(x::float8 * x) as aa, sum(y::float8 * y) as bb from unnest(a, b) as t(x, y) where pgml._same_dims(a, b)) s
$$;
create or replace function pgml.distance_l1(a real[], b real[]) returns real language sql immutable parallel safe as $$
  select sum(abs(x::float8 - y))::real from unnest(a, b) as t(x, y) where pgml._same_dims(a, b)
$$;
create or replace function pgml.distance_l2(a real[], b real[]) returns real language sql immutable parallel safe as $$
  select sqrt(sum((x::float8 - y) ^ 2))::real from unnest(a, b) as t(x, y) where pgml._same_dims(a, b)
$$;
create or replace function pgml.normalize_l2(a real[]) returns real[] language sql immutable parallel safe as $$
  select coalesce(array_agg((x / nullif(n.norm, 0))::real order by i), '{}') from unnest(a) with ordinality as t(x, i), (select sqrt(sum(y::float8 * y)) as norm from unnest(a) y) n
$$;
create or replace function pgml.add(a real[], b real[]) returns real[] language sql immutable parallel safe as $$
  select coalesce(array_agg((x + y)::real order by i), '{}') from unnest(a, b) with ordinality as t(x, y, i) where pgml._same_dims(a, b)
$$;
create or replace function pgml.subtract(a real[], b real[]) returns real[] language sql immutable parallel safe as $$
  select coalesce(array_agg((x - y)::real order by i), '{}') from unnest(a, b) with ordinality as t(x, y, i) where pgml._same_dims(a, b)
$$;
create or replace function pgml.multiply(a real[], b real[]) returns real[] language sql immutable parallel safe as $$
  select coalesce(array_agg((x * y)::real order by i), '{}') from unnest(a, b) with ordinality as t(x, y, i) where pgml._same_dims(a, b)
$$;
create or replace function pgml.divide(a real[], b real[]) returns real[] language sql immutable parallel safe as $$
  select coalesce(array_agg((x / y)::real order by i), '{}') from unnest(a, b) with ordinality as t(x, y, i) where pgml._same_dims(a, b)
$$;
create or replace function pgml.add(a real[], s real) returns real[] language sql immutable parallel safe as $$
  select coalesce(array_agg((x + s)::real order by i), '{}') from unnest(a) with ordinality as t(x, i)
$$;
create or replace function pgml.subtract(a real[], s real) returns real[] language sql immutable parallel safe as $$
  select coalesce(array_agg((x - s)::real order by i), '{}') from unnest(a) with ordinality as t(x, i)
$$;
create or replace function pgml.multiply(a real[], s real) returns real[] language sql immutable parallel safe as $$
  select coalesce(array_agg((x * s)::real order by i), '{}') from unnest(a) with ordinality as t(x, i)
$$;
create or replace function pgml.divide(a real[], s real) returns real[] language sql immutable parallel safe as $$
  select coalesce(array_agg((x / s)::real order by i), '{}') from unnest(a) with ordinality as t(x, i)
$$;
grant execute on all functions in schema pgml to public;
revoke execute on function pgml.claim_job(text, interval) from public;
