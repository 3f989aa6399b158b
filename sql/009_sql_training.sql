-- Training from SQL as PostgresML users write it (issue 15, part 3).
--
-- * A job is refused at once (SQLSTATE 42501, naming the missing GRANT) when no gateway login
--   role can switch to its owner: the worker runs a job with SET ROLE <owner>, so a job queued
--   by a role the gateway cannot become (e.g. postgres from psql) would otherwise wait, fail
--   after the stale timeout and leave the real cause in the gateway's log only. The login roles
--   are the ones registered by running gateways (pgml_worker.register_login, called by every job
--   worker at start) plus those granted USAGE on pgml_worker (the migration step's grantWorker).
-- * pgml.train('project') alone reuses the project's last snapshot (relation, y column, test
--   split, preprocessing) and its last model's algorithm and hyperparameters; everything a
--   later failure would reveal (unknown project, no earlier training, wrong task, missing
--   relation or column, a temp table) is refused at once, before anything is queued.
-- * Omitted settings are left out of the job, so SQL and HTTP training share one set of defaults
--   (src/ml/service.ts): test_size 0.25, test_sampling stratified for classification and random
--   otherwise, algorithm linear, automatic deploy.
-- * CALL pgml.train_and_wait(...) queues, commits and waits, returning PostgresML's result.
-- * pgml.predict on a project whose first training is still queued or running says so.

-- the preprocessing a snapshot was trained with, as requested (reused by project-only retrains)
alter table pgml.snapshots add column if not exists preprocess jsonb;

-- ------------------------------------------------------------------ gateway login roles

create table if not exists pgml_worker.login_roles (
  role text primary key,
  seen_at timestamptz not null default clock_timestamp()
);
revoke all on pgml_worker.login_roles from public;

-- Called by every job worker at start: records the role it logs in as.
create or replace function pgml_worker.register_login()
returns void
language sql security definer set search_path = pg_catalog, pgml_worker as $$
  insert into pgml_worker.login_roles (role) values (session_user)
  on conflict (role) do update set seen_at = excluded.seen_at
$$;
revoke all on function pgml_worker.register_login() from public;

-- Null when a gateway login role can run a job as `owner` (or none is known yet: the job then
-- waits for a gateway); otherwise the login role to name in the error (the most recently seen).
create or replace function pgml._job_owner_unreachable(owner text)
returns text
language plpgsql stable security definer set search_path = pg_catalog as $$
declare
  r record;
  first text;
  can boolean;
  pg16 boolean := current_setting('server_version_num')::int >= 160000;
begin
  if owner is null or not exists (select 1 from pg_roles where rolname = owner) then return null; end if;
  for r in
    select c.role from (
      select l.role, 0 as src, l.seen_at from pgml_worker.login_roles l
      union all
      select g.rolname::text, 1, null from pg_namespace n
        cross join lateral aclexplode(n.nspacl) a
        join pg_roles g on g.oid = a.grantee
       where n.nspname = 'pgml_worker' and a.privilege_type = 'USAGE' and a.grantee <> n.nspowner
    ) c
    where exists (select 1 from pg_roles x where x.rolname = c.role)
    order by c.src, c.seen_at desc nulls last, c.role
  loop
    first := coalesce(first, r.role);
    -- PostgreSQL 16 separates membership from the right to SET ROLE (GRANT ... WITH SET)
    if pg16 then
      can := pg_has_role(r.role, owner, 'SET');
    else
      can := pg_has_role(r.role, owner, 'MEMBER');
    end if;
    if can then return null; end if;
  end loop;
  return first;
end $$;

create or replace function pgml.jobs_check_owner() returns trigger language plpgsql as $$
declare
  login text := pgml._job_owner_unreachable(new.owner);
  su boolean;
begin
  if login is null then return new; end if;
  select rolsuper into su from pg_roles where rolname = new.owner;
  raise exception 'pgml-gateway cannot train as role "%": missing GRANT "%" TO "%"', new.owner, new.owner, login
    using errcode = '42501',
      detail = format('A queued training runs in a gateway worker, which logs in as "%s" and switches to the role that queued it (SET ROLE "%s"); "%s" is not a member of "%s". Nothing was queued.', login, new.owner, login, new.owner),
      hint = case when su then
        format('"%s" is a superuser: do not grant it to the gateway''s login role (every token naming it would be a superuser). Train as a role the gateway serves instead, e.g. SET ROLE authenticated; (it must be able to read the training relation).', new.owner)
      else
        format('As a superuser or a role with ADMIN OPTION on "%s": GRANT "%s" TO "%s"; or train as a role the gateway already serves (SET ROLE ...).', new.owner, new.owner, login)
      end;
end $$;

drop trigger if exists jobs_check_owner on pgml.jobs;
create trigger jobs_check_owner before insert on pgml.jobs for each row execute function pgml.jobs_check_owner();

-- ------------------------------------------------------------------ pgml.train

-- The parameters of a training job, resolved and checked as the caller. Settings left null are
-- left out of the job (the gateway applies the defaults HTTP training uses).
create or replace function pgml._train_params(
  project_name text, task text, relation_name text, y_column_name text, algorithm text, hyperparams jsonb,
  search text, search_params jsonb, search_args jsonb, test_size real, test_sampling text,
  automatic_deploy boolean, preprocess jsonb
) returns jsonb
language plpgsql stable as $$
declare
  t text := task;
  rel text := relation_name;
  y text := y_column_name;
  algo text := algorithm;
  hp jsonb := hyperparams;
  srch text := search;
  sp jsonb := search_params;
  sa jsonb := search_args;
  tsize real := test_size;
  tsamp text := test_sampling;
  pre jsonb := preprocess;
  p record;
  s record;
  m record;
  c record;
  rel_oid oid;
  params jsonb;
begin
  if project_name is null or project_name = '' then
    raise exception 'pgml.train: project_name is required' using errcode = '22023';
  end if;
  select pr.id, pr.task::text as task into p from pgml.projects pr
   where pr.name = project_name order by (pr.owner = current_user) desc, pr.id limit 1;
  if t is null then
    if p.id is null then
      raise exception 'project "%" does not exist yet: pass task', project_name using errcode = '22023',
        hint = format('The first training names the task, the data and the label: pgml.train(%L, ''classification'', ''my_table'', ''my_label'')', project_name);
    end if;
    t := p.task;
  elsif t not in ('regression', 'classification', 'clustering') then
    raise exception 'unknown task "%"', t using errcode = '22023', hint = 'regression, classification or clustering';
  elsif p.id is not null and p.task <> t then
    raise exception 'project "%" has task %, not %', project_name, p.task, t using errcode = '22023', hint = 'Use another project_name for another task';
  end if;

  if rel is null then
    -- PostgresML: the project's last snapshot is trained again
    select sn.relation_name, sn.y_column_name, sn.test_size, sn.test_sampling::text as test_sampling, sn.preprocess into s
      from pgml.models mo join pgml.snapshots sn on sn.id = mo.snapshot_id
     where mo.project_id = p.id order by mo.id desc limit 1;
    if p.id is null or s.relation_name is null then
      raise exception 'project "%" has no earlier training to repeat: pass relation_name and y_column_name', project_name using errcode = '22023',
        hint = 'pgml.train(project_name) alone trains the last data again; the first training names it: pgml.train(project_name, task, relation_name, y_column_name)';
    end if;
    rel := s.relation_name;
    y := coalesce(y, s.y_column_name[1]);
    tsize := coalesce(tsize, s.test_size);
    tsamp := coalesce(tsamp, s.test_sampling);
    pre := coalesce(pre, s.preprocess);
    -- and, unless another algorithm is named, the last model's algorithm and hyperparameters
    if algo is null then
      select mo.algorithm, mo.hyperparams, mo.search, mo.search_params, mo.search_args into m
        from pgml.models mo where mo.project_id = p.id order by (mo.status = 'successful') desc, mo.id desc limit 1;
      algo := m.algorithm;
      hp := coalesce(hp, m.hyperparams);
      srch := coalesce(srch, m.search);
      sp := coalesce(sp, nullif(m.search_params, '{}'));
      sa := coalesce(sa, nullif(m.search_args, '{}'));
    end if;
  end if;

  -- the relation as the caller sees it now, schema-qualified so the worker reads the same one
  begin
    rel_oid := to_regclass(rel);
  exception when others then
    rel_oid := null; -- not a valid name
  end;
  select n.nspname, cl.relname, cl.relpersistence, cl.oid into c
    from pg_class cl join pg_namespace n on n.oid = cl.relnamespace
   where cl.oid = rel_oid and cl.relkind in ('r', 'v', 'm', 'f', 'p');
  if not found then
    raise exception 'relation "%" does not exist', rel using errcode = '42P01',
      hint = 'Check relation_name (schema-qualify it if it is not on your search_path)';
  end if;
  if c.relpersistence = 't' then
    raise exception 'relation "%" is a temporary table, which the gateway''s worker cannot read', rel using errcode = '0A000',
      hint = 'Train from a regular table or a view';
  end if;
  if not has_any_column_privilege(c.oid, 'SELECT') then
    raise exception 'permission denied for relation %', rel using errcode = '42501',
      hint = format('The training data is read as %s: GRANT SELECT ON %s TO %s', current_user, rel, current_user);
  end if;
  rel := format('%I.%I', c.nspname, c.relname);
  if t <> 'clustering' and y is null then
    raise exception '% needs y_column_name', t using errcode = '22023';
  end if;
  if y is not null and not exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = y and a.attnum > 0 and not a.attisdropped) then
    raise exception 'column "%" does not exist in %', y, rel using errcode = '42703',
      hint = 'Columns: ' || (select string_agg(quote_ident(a.attname), ', ' order by a.attnum) from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped);
  end if;

  params := jsonb_build_object(
    'project_name', project_name, 'task', t, 'relation_name', rel, 'y_column_name', y,
    'algorithm', algo, 'hyperparams', hp, 'search', srch, 'search_params', sp, 'search_args', sa,
    'test_size', tsize, 'test_sampling', tsamp, 'automatic_deploy', automatic_deploy, 'preprocess', pre);
  -- omitted settings (top-level nulls) are left out; values inside hyperparams are kept as given
  return (select jsonb_object_agg(e.key, e.value) from jsonb_each(params) e where jsonb_typeof(e.value) <> 'null');
end $$;

-- PostgresML's signature. Training runs in a gateway worker as the calling role: this enqueues
-- a job in pgml.jobs and returns at once. Defaults are null: an omitted setting is the gateway's
-- default (the same as POST /models/train) or, for pgml.train(project_name) alone, the last
-- training's.
create or replace function pgml.train(
  project_name text,
  task text default null,
  relation_name text default null,
  y_column_name text default null,
  algorithm text default null,
  hyperparams jsonb default null,
  search text default null,
  search_params jsonb default null,
  search_args jsonb default null,
  test_size real default null,
  test_sampling text default null,
  runtime text default null,
  automatic_deploy boolean default true,
  materialize_snapshot boolean default false,
  preprocess jsonb default null
) returns setof pgml.train_result
language plpgsql volatile as $$
declare
  params jsonb;
  job bigint;
begin
  params := pgml._train_params(project_name, task, relation_name, y_column_name, algorithm, hyperparams, search,
                               search_params, search_args, test_size, test_sampling, automatic_deploy, preprocess);
  insert into pgml.jobs (kind, params) values ('train', params) returning id into job;
  return query select project_name, params->>'task', coalesce(params->>'algorithm', 'linear'), false, job, 'queued'::text;
end $$;

-- ------------------------------------------------------------------ CALL pgml.train_and_wait

-- Queues the training, commits (so a gateway worker can claim it), then polls the job (a new
-- transaction per poll, which sees the worker's progress) until it ends or `timeout` passes.
-- Returns PostgresML's result row (project, task, algorithm, deployed) plus metrics, model_id
-- and job_id; a failed job raises its error. A procedure with the same argument types as
-- pgml.train would make every SELECT pgml.train(...) ambiguous, hence the name.
create or replace procedure pgml.train_and_wait(
  project_name text,
  inout task text default null,
  relation_name text default null,
  y_column_name text default null,
  inout algorithm text default null,
  hyperparams jsonb default null,
  search text default null,
  search_params jsonb default null,
  search_args jsonb default null,
  test_size real default null,
  test_sampling text default null,
  runtime text default null,
  automatic_deploy boolean default true,
  materialize_snapshot boolean default false,
  preprocess jsonb default null,
  timeout interval default '1 hour',
  inout project text default null,
  inout deployed boolean default null,
  inout metrics jsonb default null,
  inout model_id bigint default null,
  inout job_id bigint default null
)
language plpgsql as $$
declare
  q record;
  j record;
  started timestamptz;
  last_status text := 'queued';
  pause float8 := 0.05;
  warned boolean := false;
  code text;
begin
  if timeout is null or timeout <= interval '0' then
    raise exception 'timeout must be a positive interval, not %', coalesce(timeout::text, 'NULL') using errcode = '22023',
      hint = 'e.g. timeout => ''10 minutes''';
  end if;
  -- A transaction block (BEGIN ... COMMIT, or a function calling this) cannot be committed from
  -- inside: an explicit BEGIN is recognised by its earlier start; other atomic contexts end with
  -- PostgreSQL's "invalid transaction termination" at the COMMIT below, before anything is queued.
  if statement_timestamp() - transaction_timestamp() > interval '1 second' then
    raise exception 'CALL pgml.train_and_wait(...) cannot run inside a transaction block' using errcode = '25001',
      detail = 'It commits the queued job so that a gateway worker can claim it, then waits for it in new transactions.',
      hint = 'Run it on its own (autocommit; in psql outside BEGIN ... COMMIT), or queue with SELECT * FROM pgml.train(...) and watch pgml.jobs.';
  end if;
  select * into q from pgml.train(project_name, task, relation_name, y_column_name, algorithm, hyperparams, search,
                                  search_params, search_args, test_size, test_sampling, runtime, automatic_deploy,
                                  materialize_snapshot, preprocess);
  job_id := q.job_id;
  task := q.task;
  algorithm := q.algorithm;
  project := q.project;
  commit;
  started := clock_timestamp();
  loop
    select jb.status, jb.progress, jb.result, jb.error into j from pgml.jobs jb where jb.id = job_id;
    if not found then
      raise exception 'training job % disappeared', job_id using errcode = 'PT404';
    end if;
    exit when j.status in ('succeeded', 'failed', 'cancelled');
    if j.status <> last_status then
      raise notice 'pgml.train_and_wait: job % is %', job_id, j.status;
      last_status := j.status;
    end if;
    if not warned and j.status = 'queued' and clock_timestamp() - started > interval '10 seconds' then
      raise notice 'pgml.train_and_wait: job % is still queued after 10 seconds', job_id
        using hint = 'Jobs are trained by pgml-gateway: is one running against this database (with PGML_JOB_WORKER on)?';
      warned := true;
    end if;
    if clock_timestamp() - started > timeout then
      raise exception 'training job % did not finish within %', job_id, timeout using errcode = '57014',
        detail = format('It is %s (progress %s%%) and keeps going.', j.status, round((j.progress * 100)::numeric)),
        hint = format('Watch it: SELECT status, progress, error FROM pgml.jobs WHERE id = %s; cancel it: UPDATE pgml.jobs SET cancel_requested = true WHERE id = %s', job_id, job_id);
    end if;
    commit;
    perform pg_sleep(pause);
    pause := least(pause * 2, 0.5);
  end loop;
  if j.status = 'succeeded' then
    project := coalesce(j.result->>'project', project);
    task := coalesce(j.result->>'task', task);
    algorithm := coalesce(j.result->>'algorithm', algorithm);
    deployed := coalesce((j.result->>'deployed')::boolean, false);
    metrics := j.result->'metrics';
    model_id := (j.result->>'model_id')::bigint;
    return;
  end if;
  if j.status = 'cancelled' then
    raise exception 'training job % was cancelled', job_id using errcode = '57014';
  end if;
  code := j.error->>'code';
  code := case when code ~ '^PGML[0-9]{3}$' then 'PT' || substr(code, 5)
               when code ~ '^[0-9A-Z]{5}$' then code
               else 'P0001' end;
  raise exception 'training job % failed: %', job_id, coalesce(j.error->>'message', 'unknown error') using errcode = code,
    detail = coalesce(j.error->>'details', format('project %s, job %s', project, job_id)),
    hint = coalesce(j.error->>'hint', format('SELECT * FROM pgml.jobs WHERE id = %s', job_id));
end $$;

-- ------------------------------------------------------------------ predict before the first model

create or replace function pgml._require_model(project_name text) returns bigint language plpgsql stable as $$
declare
  id bigint;
  j record;
  has_job boolean;
begin
  id := pgml._deployed_model(project_name);
  if id is not null then return id; end if;
  -- a training of this project that has not deployed anything yet (the caller's own first)
  select jb.id, jb.status, jb.progress, jb.error into j from pgml.jobs jb
   where jb.params->>'project_name' = project_name
   order by (jb.owner = current_user) desc, (jb.status in ('queued', 'running')) desc, jb.id desc limit 1;
  has_job := found;
  if has_job and j.status in ('queued', 'running') then
    raise exception 'project "%" has no deployed model yet: its training (job %) is %', project_name, j.id,
      case when j.status = 'queued' then 'queued' else format('running (%s%%)', round((j.progress * 100)::numeric)) end
      using errcode = 'PT404',
        hint = format('Wait for it: SELECT status, progress, error FROM pgml.jobs WHERE id = %s', j.id);
  end if;
  if not exists (select 1 from pgml.projects where name = project_name) then
    if has_job and j.status = 'failed' then
      raise exception 'project "%" not found: its training (job %) failed: %', project_name, j.id, coalesce(j.error->>'message', 'unknown error')
        using errcode = 'PT404', hint = format('SELECT error FROM pgml.jobs WHERE id = %s', j.id);
    end if;
    raise exception 'project "%" not found', project_name using errcode = 'PT404', hint = 'List the projects you can see: SELECT * FROM pgml.projects';
  end if;
  if exists (select 1 from pgml.models m join pgml.projects p on p.id = m.project_id where p.name = project_name and m.status = 'in_progress') then
    raise exception 'project "%" has no deployed model yet: its first model is still training', project_name using errcode = 'PT404',
      hint = 'SELECT id, status FROM pgml.models shows it; it deploys itself when it finishes';
  end if;
  raise exception 'project "%" has no deployed model', project_name using errcode = 'PT404', hint = 'Deploy one: SELECT * FROM pgml.deploy(''' || project_name || ''', ''most_recent'')';
end $$;

grant execute on function pgml._train_params(text, text, text, text, text, jsonb, text, jsonb, jsonb, real, text, boolean, jsonb) to public;
grant execute on function pgml._job_owner_unreachable(text) to public;
grant execute on procedure pgml.train_and_wait(text, text, text, text, text, jsonb, text, jsonb, jsonb, real, text, text, boolean, boolean, jsonb, interval, text, boolean, jsonb, bigint, bigint) to public;

-- PostgREST's conventional login role keeps working without the migration step's grant
do $$ begin
  if exists (select 1 from pg_roles where rolname = 'authenticator') then
    grant execute on all functions in schema pgml_worker to authenticator;
  end if;
end $$;
