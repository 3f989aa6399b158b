-- pgml.* callable from any SQL, computed by the gateway (collect and replay).
--
-- Inside a gateway request the transaction has `pgml.bridge_id` set. A stub first looks for a
-- result the gateway supplied for this transaction (session temp table pgml_bridge_results,
-- emptied at every commit/rollback), then in the caller's embeddings cache. A miss is reported
-- to the gateway as a NOTICE (message 'pgml.bridge', detail = the call as JSON) and answered with
-- NULL; the gateway rolls the attempt back, computes every reported call in one batch, supplies
-- the results and runs the statement again. Outside the gateway (psql) a miss is an error whose
-- hint says how to get the value, except pgml.predict of linear and tree models, which is
-- evaluated here in SQL from the model's sql_model.

alter table pgml.models add column if not exists sql_model jsonb;

create or replace function pgml._bridge_id() returns text language sql stable as $$
  select nullif(current_setting('pgml.bridge_id', true), '')
$$;

-- Results supplied by the gateway live in a temp table with a random per-transaction name
-- (pgml.bridge_table), created by the connecting role before the role switch and dropped at
-- commit. Only a temp table of this session owned by the session user (the gateway's login role)
-- is trusted: a tenant cannot create one, so it cannot plant or read another tenant's results.
create or replace function pgml._supplied(k text) returns text language plpgsql stable as $$
declare
  t text := nullif(current_setting('pgml.bridge_table', true), '');
  v text;
begin
  if t is null then return null; end if;
  if not exists (select 1 from pg_catalog.pg_class c
                 where c.relname = t and c.relnamespace = pg_catalog.pg_my_temp_schema()
                   and c.relowner = (select r.oid from pg_catalog.pg_roles r where r.rolname = session_user)) then
    return null;
  end if;
  execute format('select value from pg_temp.%I where key = $1', t) into v using k;
  return v;
end $$;

create or replace function pgml._report(call jsonb) returns void language plpgsql stable as $$
begin
  raise notice using message = 'pgml.bridge', detail = (call || jsonb_build_object('bridge_id', pgml._bridge_id()))::text;
end $$;

-- ---------------------------------------------------------------- embed

create or replace function pgml._embed_key(transformer text, input text, kwargs jsonb) returns text language sql immutable as $$
  select 'e:' || md5(transformer || chr(1) || coalesce(kwargs, '{}')::text || chr(1) || input)
$$;

create or replace function pgml.embed(transformer text, text text, kwargs jsonb default '{}') returns real[]
language plpgsql stable as $$
declare
  k text;
  v text;
  cached real[];
  v_variant text := coalesce(kwargs->>'pooling', 'mean') || '/' || case when coalesce((kwargs->>'normalize')::boolean, true) then 'normalized' else 'raw' end;
begin
  if transformer is null or text is null then return null; end if;
  k := pgml._embed_key(transformer, text, kwargs);
  v := pgml._supplied(k);
  if v is not null then return v::real[]; end if;
  select e.embedding into cached from pgml.embeddings e
   where e.owner = current_user and e.model = transformer and e.variant = v_variant
     and e.input_hash = encode(sha256(convert_to(text, 'UTF8')), 'hex');
  if found then return cached; end if;
  if pgml._bridge_id() is not null then
    perform pgml._report(jsonb_build_object('fn', 'embed', 'key', k, 'model', transformer, 'input', text, 'kwargs', coalesce(kwargs, '{}')));
    return null;
  end if;
  raise exception 'pgml.embed(%, ...): this input is not in the embeddings cache of role %', transformer, current_user
    using errcode = '55000',
          hint = 'Embeddings are computed by pgml-gateway: call this SQL through the gateway (POST /rpc/<function>) or POST /models/embed once, and the result is cached for psql.';
end $$;

create or replace function pgml.embed(transformer text, inputs text[], kwargs jsonb default '{}') returns setof real[]
language sql stable as $$
  select pgml.embed(transformer, t, kwargs) from unnest(inputs) with ordinality as u(t, i) order by i
$$;

-- ---------------------------------------------------------------- predict

-- the deployed model of a project visible to the caller (own project first), or null
create or replace function pgml._deployed_model(project_name text) returns bigint language sql stable as $$
  select d.model_id from pgml.projects p
  cross join lateral (select model_id from pgml.deployments where project_id = p.id order by id desc limit 1) d
  where p.name = project_name order by (p.owner = current_user) desc limit 1
$$;

create or replace function pgml._require_model(project_name text) returns bigint language plpgsql stable as $$
declare id bigint;
begin
  id := pgml._deployed_model(project_name);
  if id is null then
    if not exists (select 1 from pgml.projects where name = project_name) then
      raise exception 'project "%" not found', project_name using errcode = 'PT404', hint = 'List the projects you can see: SELECT * FROM pgml.projects';
    end if;
    raise exception 'project "%" has no deployed model', project_name using errcode = 'PT404', hint = 'Deploy one: SELECT * FROM pgml.deploy(''' || project_name || ''', ''most_recent'')';
  end if;
  return id;
end $$;

-- Evaluates a model's sql_model on raw numeric features (column order, array columns expanded).
-- Returns the model outputs: [value] for regression, class probabilities for classification.
create or replace function pgml._evaluate(m jsonb, features float8[]) returns float8[]
language plpgsql immutable as $$
declare
  cols jsonb := m->'columns';
  x float8[] := '{}';
  pos int := 1;
  c jsonb;
  w int;
  v float8;
  i int;
  j int;
  k int;
  outputs int;
  acc float8[];
  node int;
  t jsonb;
  feat int[];
  thr float8[];
  lft int[];
  rgt int[];
  mis boolean[];
  val float8[];
  s float8;
  mx float8;
  ntrees int;
  tout int[];
begin
  if m is null then return null; end if;
  if features is null then return null; end if;
  if cardinality(features) <> (m->>'raw_width')::int then
    raise exception 'expected % features, got %', m->>'raw_width', cardinality(features) using errcode = '22023',
      hint = 'Columns in order: ' || (select string_agg(e->>'name', ', ') from jsonb_array_elements(cols) e);
  end if;
  for c in select * from jsonb_array_elements(cols) loop
    w := (c->>'width')::int;
    for i in 0 .. w - 1 loop
      v := features[pos];
      pos := pos + 1;
      if v is null or v = 'NaN'::float8 then
        if c->>'impute' = 'error' then
          raise exception 'column "%" is NULL and the model imputes no value', c->>'name' using errcode = '22004', hint = 'Train with preprocess {"' || (c->>'name') || '": {"impute": "mean"}}';
        end if;
        v := (c->'impute_value'->>i)::float8;
      end if;
      x := x || ((v - (c->'offset'->>i)::float8) * (c->'factor'->>i)::float8);
    end loop;
  end loop;
  outputs := (m->>'outputs')::int;
  if m->>'kind' = 'linear' then
    acc := array_fill(0::float8, array[outputs]);
    for k in 1 .. outputs loop
      s := (m->'intercepts'->>(k - 1))::float8;
      for j in 1 .. cardinality(x) loop
        s := s + x[j] * (m->'coefficients'->>((k - 1) * cardinality(x) + j - 1))::float8;
      end loop;
      acc[k] := s;
    end loop;
  elsif m->>'kind' = 'trees' then
    acc := array(select (e)::float8 from jsonb_array_elements_text(m->'base') e);
    if cardinality(acc) = 0 then acc := array_fill(0::float8, array[outputs]); end if;
    ntrees := jsonb_array_length(m->'trees');
    tout := case when m ? 'tree_output' then array(select (e)::int from jsonb_array_elements_text(m->'tree_output') e) end;
    for i in 0 .. ntrees - 1 loop
      t := m->'trees'->i;
      feat := array(select (e)::int from jsonb_array_elements_text(t->'f') e);
      thr := array(select (e)::float8 from jsonb_array_elements_text(t->'t') e);
      lft := array(select (e)::int from jsonb_array_elements_text(t->'l') e);
      rgt := array(select (e)::int from jsonb_array_elements_text(t->'r') e);
      mis := array(select (e)::boolean from jsonb_array_elements_text(t->'m') e);
      val := array(select (e)::float8 from jsonb_array_elements_text(t->'v') e);
      node := 0;
      while feat[node + 1] >= 0 loop
        v := x[feat[node + 1] + 1];
        if v is null or v = 'NaN'::float8 then
          node := case when mis[node + 1] then lft[node + 1] else rgt[node + 1] end;
        elsif v < thr[node + 1] then node := lft[node + 1];
        else node := rgt[node + 1];
        end if;
      end loop;
      if tout is not null then
        acc[tout[i + 1] + 1] := acc[tout[i + 1] + 1] + val[node * outputs + 1];
      else
        for k in 1 .. outputs loop acc[k] := acc[k] + val[node * outputs + k]; end loop;
      end if;
    end loop;
    if m->>'aggregate' = 'average' then
      for k in 1 .. outputs loop acc[k] := acc[k] / ntrees; end loop;
    end if;
  else
    raise exception 'model kind % cannot be evaluated in SQL', m->>'kind' using errcode = '0A000', hint = 'Call it through pgml-gateway';
  end if;
  if m->>'post' = 'logistic' then
    return array[1 - 1 / (1 + exp(-acc[1])), 1 / (1 + exp(-acc[1]))];
  elsif m->>'post' = 'softmax' then
    mx := (select max(a) from unnest(acc) a);
    s := (select sum(exp(a - mx)) from unnest(acc) a);
    return array(select exp(a - mx) / s from unnest(acc) with ordinality u(a, n) order by n);
  end if;
  return acc;
end $$;

-- the prediction PostgresML returns: the value for regression; for classification the class
-- label when labels are numeric (or boolean, as 0/1), else the class index
create or replace function pgml._to_prediction(m jsonb, outputs float8[]) returns real language sql immutable as $$
  select case when m->>'task' = 'classification' then
    (select coalesce((m->'classes'->>(n - 1)::int)::real, (n - 1)::real) from unnest(outputs) with ordinality u(p, n) order by p desc, n limit 1)
    else outputs[1]::real end
$$;

create or replace function pgml._predict(model_id bigint, features real[], proba boolean) returns real[]
language plpgsql stable as $$
declare
  k text;
  v text;
  m record;
begin
  if features is null then return null; end if;
  k := 'p:' || model_id || ':' || md5(features::text) || case when proba then ':proba' else '' end;
  v := pgml._supplied(k);
  if v is not null then return v::real[]; end if;
  if pgml._bridge_id() is not null then
    perform pgml._report(jsonb_build_object('fn', case when proba then 'predict_proba' else 'predict' end, 'key', k, 'model_id', model_id, 'features', to_jsonb(features)));
    return null;
  end if;
  select p.task::text as task, mo.sql_model into m from pgml.models mo join pgml.projects p on p.id = mo.project_id where mo.id = model_id;
  if not found then
    raise exception 'model % not found', model_id using errcode = 'PT404';
  end if;
  if m.sql_model is null then
    raise exception 'model % cannot be evaluated in SQL', model_id using errcode = '0A000', hint = 'Call this SQL through pgml-gateway (POST /rpc/<function>), which evaluates every model type';
  end if;
  if proba then return pgml._evaluate(m.sql_model, features::float8[])::real[]; end if;
  return array[pgml._to_prediction(m.sql_model, pgml._evaluate(m.sql_model, features::float8[]))];
end $$;

create or replace function pgml.predict(project_name text, features real[]) returns real language sql stable as $$
  select (pgml._predict(pgml._require_model(project_name), features, false))[1]
$$;
create or replace function pgml.predict(project_name text, features double precision[]) returns real language sql stable as $$
  select pgml.predict(project_name, features::real[])
$$;
create or replace function pgml.predict(project_name text, features integer[]) returns real language sql stable as $$
  select pgml.predict(project_name, features::real[])
$$;
create or replace function pgml.predict(project_name text, features bigint[]) returns real language sql stable as $$
  select pgml.predict(project_name, features::real[])
$$;
create or replace function pgml.predict(model_id bigint, features real[]) returns real language sql stable as $$
  select (pgml._predict(model_id, features, false))[1]
$$;
create or replace function pgml.predict_proba(project_name text, features real[]) returns real[] language sql stable as $$
  select pgml._predict(pgml._require_model(project_name), features, true)
$$;
create or replace function pgml.predict_proba(model_id bigint, features real[]) returns real[] language sql stable as $$
  select pgml._predict(model_id, features, true)
$$;

-- a row's columns by name, in the model's training column order (numeric columns only in SQL)
create or replace function pgml._row_features(model_id bigint, row_json jsonb) returns real[] language plpgsql stable as $$
declare
  cols jsonb;
  c jsonb;
  out real[] := '{}';
  val jsonb;
begin
  select sql_model->'columns' into cols from pgml.models where id = model_id;
  if cols is null then
    select metadata->'columns' into cols from pgml.models where id = model_id;
  end if;
  for c in select * from jsonb_array_elements(cols) loop
    if not row_json ? (c->>'name') then
      raise exception 'the row has no column "%"', c->>'name' using errcode = '42703';
    end if;
    val := row_json->(c->>'name');
    if jsonb_typeof(val) = 'array' then
      out := out || array(select (e)::real from jsonb_array_elements_text(val) e);
    elsif jsonb_typeof(val) = 'null' then
      out := out || array_fill(null::real, array[coalesce((c->>'width')::int, 1)]);
    elsif jsonb_typeof(val) = 'boolean' then
      out := out || (case when val::text = 'true' then 1 else 0 end)::real;
    elsif jsonb_typeof(val) = 'number' then
      out := out || (val::text)::real;
    else
      raise exception 'column "%" is not numeric; text features are predicted through the gateway', c->>'name' using errcode = '0A000',
        hint = 'Use POST /models/<project>/predict with {"rows": [...]}';
    end if;
  end loop;
  return out;
end $$;

create or replace function pgml.predict(project_name text, "row" anyelement) returns real language plpgsql stable as $$
declare id bigint := pgml._require_model(project_name);
begin
  return pgml.predict(id, pgml._row_features(id, to_jsonb($2)));
end $$;

create or replace function pgml.predict_batch(project_name text, features real[]) returns setof real language plpgsql stable as $$
declare
  mid bigint := pgml._require_model(project_name);
  width int;
  n int;
  i int;
begin
  select (m.sql_model->>'raw_width')::int into width from pgml.models m where m.id = mid;
  if width is null then select m.num_features into width from pgml.models m where m.id = mid; end if;
  if cardinality(features) % width <> 0 then
    raise exception 'predict_batch: % features is not a multiple of the model width %', cardinality(features), width using errcode = '22023';
  end if;
  n := cardinality(features) / width;
  for i in 0 .. n - 1 loop
    return next pgml.predict(mid, features[i * width + 1 : (i + 1) * width]);
  end loop;
end $$;

-- ---------------------------------------------------------------- train / deploy

-- OUT columns cannot share names with parameters in SQL, so the results are composite types
create type pgml.train_result as (project text, task text, algorithm text, deployed boolean, job_id bigint, status text);
create type pgml.deploy_result as (project text, strategy text, algorithm text, deployed boolean);

-- PostgresML's signature. Training runs in a gateway worker as the calling role: this enqueues
-- a job in pgml.jobs and returns at once (see the job: SELECT * FROM pgml.jobs WHERE id = ...).
create or replace function pgml.train(
  project_name text,
  task text default null,
  relation_name text default null,
  y_column_name text default null,
  algorithm text default 'linear',
  hyperparams jsonb default '{}',
  search text default null,
  search_params jsonb default '{}',
  search_args jsonb default '{}',
  test_size real default 0.25,
  test_sampling text default 'stratified',
  runtime text default null,
  automatic_deploy boolean default true,
  materialize_snapshot boolean default false,
  preprocess jsonb default '{}'
) returns setof pgml.train_result
language plpgsql volatile as $$
declare
  params jsonb;
  job bigint;
  t text := task;
begin
  if t is null then
    select p.task::text into t from pgml.projects p where p.name = project_name order by (p.owner = current_user) desc limit 1;
    if t is null then
      raise exception 'project "%" does not exist yet: pass task', project_name using errcode = '22023';
    end if;
  end if;
  params := jsonb_strip_nulls(jsonb_build_object(
    'project_name', project_name, 'task', t, 'relation_name', relation_name, 'y_column_name', y_column_name,
    'algorithm', algorithm, 'hyperparams', hyperparams, 'search', search, 'search_params', search_params,
    'search_args', search_args, 'test_size', test_size,
    -- PostgresML defaults to stratified; regression cannot stratify, so fall back to random
    'test_sampling', case when test_sampling = 'stratified' and t <> 'classification' then 'random' else test_sampling end,
    'automatic_deploy', automatic_deploy, 'preprocess', preprocess));
  insert into pgml.jobs (kind, params) values ('train', params) returning id into job;
  return query select project_name, t, train.algorithm, false, job, 'queued'::text;
end $$;

create or replace function pgml.deploy(project_name text, strategy text default 'best_score', algorithm text default null)
returns setof pgml.deploy_result
language plpgsql volatile as $$
declare
  p record;
  mid bigint;
  metric text;
  current bigint;
begin
  select pr.id, pr.task::text as task, pr.owner into p from pgml.projects pr where pr.name = project_name order by (pr.owner = current_user) desc limit 1;
  if not found then raise exception 'project "%" not found', project_name using errcode = 'PT404'; end if;
  metric := case p.task when 'regression' then 'r2' when 'classification' then 'f1' else 'silhouette' end;
  if strategy = 'most_recent' then
    select id into mid from pgml.models m where m.project_id = p.id and m.status = 'successful' and (deploy.algorithm is null or m.algorithm = deploy.algorithm) order by id desc limit 1;
  elsif strategy = 'best_score' then
    select id into mid from pgml.models m where m.project_id = p.id and m.status = 'successful' and (deploy.algorithm is null or m.algorithm = deploy.algorithm)
      and m.metrics ? metric order by (m.metrics->>metric)::float8 desc, id desc limit 1;
  elsif strategy = 'rollback' then
    select model_id into current from pgml.deployments d where d.project_id = p.id order by id desc limit 1;
    select model_id into mid from pgml.deployments d where d.project_id = p.id and d.model_id <> current order by id desc limit 1;
  else
    raise exception 'unknown strategy "%"', strategy using errcode = '22023', hint = 'most_recent, best_score or rollback';
  end if;
  if mid is null then
    return query select project_name, strategy, algorithm, false;
    return;
  end if;
  insert into pgml.deployments (project_id, model_id, strategy, owner) values (p.id, mid, strategy::pgml.strategy, p.owner);
  perform pg_notify('pgml_deploy', jsonb_build_object('project_id', p.id, 'model_id', mid)::text);
  return query select project_name, strategy, (select m.algorithm from pgml.models m where m.id = mid), true;
end $$;

grant execute on all functions in schema pgml to public;
revoke execute on function pgml.claim_job(text, interval) from public;
