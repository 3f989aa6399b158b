-- PostgresML-compatible catalog, owned per role and guarded by row-level security.
-- Every row has an `owner` role; a role sees and changes only rows whose owner it is or is a
-- member of (pgml.is_member). The gateway always reads and writes these tables as the caller.

do $$ begin
  create type pgml.task as enum ('regression', 'classification', 'clustering');
exception when duplicate_object then null; end $$;
do $$ begin
  create type pgml.sampling as enum ('random', 'first', 'last', 'stratified');
exception when duplicate_object then null; end $$;
do $$ begin
  create type pgml.strategy as enum ('new_score', 'best_score', 'most_recent', 'rollback', 'specific');
exception when duplicate_object then null; end $$;

-- true when the current role is `owner` or a member of it; false for a dropped owner role
create or replace function pgml.is_member(owner text) returns boolean
language sql stable parallel safe as $$
  select exists (select 1 from pg_catalog.pg_roles r where r.rolname = owner and pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER'))
$$;

create or replace function pgml.set_updated_at() returns trigger language plpgsql as $$
begin
  new.updated_at := clock_timestamp();
  return new;
end $$;

create table pgml.projects (
  id bigserial primary key,
  name text not null check (name <> ''),
  task pgml.task not null,
  owner text not null default current_user,
  created_at timestamp not null default clock_timestamp(),
  updated_at timestamp not null default clock_timestamp(),
  unique (owner, name)
);

create table pgml.snapshots (
  id bigserial primary key,
  relation_name text not null,
  y_column_name text[],
  test_size float4 not null,
  test_sampling pgml.sampling not null,
  status text not null,
  columns jsonb,
  analysis jsonb,
  materialized boolean default false,
  owner text not null default current_user,
  created_at timestamp not null default clock_timestamp(),
  updated_at timestamp not null default clock_timestamp()
);

create table pgml.models (
  id bigserial primary key,
  project_id bigint not null references pgml.projects(id) on delete cascade,
  snapshot_id bigint references pgml.snapshots(id) on delete set null,
  num_features int not null,
  algorithm text not null,
  runtime text not null default 'typescript',
  hyperparams jsonb not null,
  status text not null check (status in ('in_progress', 'successful', 'failed')),
  metrics jsonb,
  search text,
  search_params jsonb not null default '{}',
  search_args jsonb not null default '{}',
  search_results jsonb,
  -- preprocessing, feature names, classes: everything serving needs besides the model itself
  metadata jsonb,
  error text,
  owner text not null default current_user,
  created_at timestamp not null default clock_timestamp(),
  updated_at timestamp not null default clock_timestamp()
);
create index models_project_id_idx on pgml.models(project_id);

-- append-only: no UPDATE or DELETE is granted; rollback is a new row
create table pgml.deployments (
  id bigserial primary key,
  project_id bigint not null references pgml.projects(id) on delete cascade,
  model_id bigint not null references pgml.models(id) on delete cascade,
  strategy pgml.strategy not null,
  owner text not null default current_user,
  created_at timestamp not null default clock_timestamp()
);
create index deployments_project_id_idx on pgml.deployments(project_id, id desc);

create table pgml.files (
  id bigserial primary key,
  model_id bigint not null references pgml.models(id) on delete cascade,
  path text not null,
  part int not null default 0,
  data bytea not null,
  owner text not null default current_user,
  created_at timestamp not null default clock_timestamp(),
  updated_at timestamp not null default clock_timestamp(),
  unique (model_id, path, part)
);

create table pgml.logs (
  id bigserial primary key,
  model_id bigint references pgml.models(id) on delete cascade,
  project_id bigint references pgml.projects(id) on delete cascade,
  logs jsonb not null,
  owner text not null default current_user,
  created_at timestamp not null default clock_timestamp()
);

-- asynchronous work (training) claimed by gateway workers with FOR UPDATE SKIP LOCKED
create table pgml.jobs (
  id bigserial primary key,
  kind text not null default 'train',
  status text not null default 'queued' check (status in ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  params jsonb not null,
  progress float8 not null default 0,
  result jsonb,
  error jsonb,
  attempts int not null default 0,
  cancel_requested boolean not null default false,
  claimed_by text,
  heartbeat_at timestamptz,
  model_id bigint,
  owner text not null default current_user,
  created_at timestamptz not null default clock_timestamp(),
  started_at timestamptz,
  finished_at timestamptz
);
create index jobs_queued_idx on pgml.jobs(id) where status = 'queued';

create trigger projects_updated_at before update on pgml.projects for each row execute function pgml.set_updated_at();
create trigger snapshots_updated_at before update on pgml.snapshots for each row execute function pgml.set_updated_at();
create trigger models_updated_at before update on pgml.models for each row execute function pgml.set_updated_at();
create trigger files_updated_at before update on pgml.files for each row execute function pgml.set_updated_at();

do $$
declare t text;
begin
  foreach t in array array['projects', 'snapshots', 'models', 'deployments', 'files', 'logs', 'jobs'] loop
    execute format('alter table pgml.%I enable row level security', t);
    -- the plain comparison decides most rows without calling the (non-inlinable) membership check
    execute format('create policy owner_access on pgml.%I using (owner = current_user or pgml.is_member(owner)) with check (owner = current_user or pgml.is_member(owner))', t);
  end loop;
end $$;

-- rows must point at rows the same role may see: a role cannot attach a model to another's project
create or replace function pgml.check_project_visible() returns trigger language plpgsql as $$
begin
  if new.project_id is not null and not exists (select 1 from pgml.projects p where p.id = new.project_id) then
    raise exception 'project % does not exist', new.project_id using errcode = '23503';
  end if;
  return new;
end $$;
create or replace function pgml.check_model_visible() returns trigger language plpgsql as $$
begin
  if new.model_id is not null and not exists (select 1 from pgml.models m where m.id = new.model_id) then
    raise exception 'model % does not exist', new.model_id using errcode = '23503';
  end if;
  return new;
end $$;
create trigger models_project_visible before insert or update on pgml.models for each row execute function pgml.check_project_visible();
create trigger deployments_project_visible before insert on pgml.deployments for each row execute function pgml.check_project_visible();
create trigger deployments_model_visible before insert on pgml.deployments for each row execute function pgml.check_model_visible();
create trigger files_model_visible before insert or update on pgml.files for each row execute function pgml.check_model_visible();
create trigger logs_project_visible before insert on pgml.logs for each row execute function pgml.check_project_visible();
create trigger logs_model_visible before insert on pgml.logs for each row execute function pgml.check_model_visible();

create view pgml.deployed_models with (security_invoker = true) as
select m.id, p.name, p.task, m.algorithm, m.runtime, d.created_at as deployed_at, p.owner
from pgml.projects p
join (select distinct on (project_id) project_id, model_id, created_at from pgml.deployments order by project_id, id desc) d on d.project_id = p.id
join pgml.models m on m.id = d.model_id
order by p.name;

create view pgml.trained_models with (security_invoker = true) as
select m.id, p.name, p.task, m.algorithm, m.runtime, m.created_at, s.test_sampling, s.test_size,
       d.model_id is not null as deployed, m.status, m.metrics, p.owner
from pgml.projects p
join pgml.models m on p.id = m.project_id
left join pgml.snapshots s on s.id = m.snapshot_id
left join (select distinct on (project_id) project_id, model_id from pgml.deployments order by project_id, id desc) d on d.model_id = m.id
order by m.created_at desc;

create view pgml.overview with (security_invoker = true) as
select p.name, d.created_at as deployed_at, p.task, m.algorithm, m.runtime, s.relation_name, s.y_column_name, s.test_sampling, s.test_size, p.owner
from pgml.projects p
join pgml.models m on p.id = m.project_id
join pgml.deployments d on d.project_id = p.id and d.model_id = m.id
left join pgml.snapshots s on s.id = m.snapshot_id
order by d.created_at desc;

grant usage on schema pgml to public;
grant select, insert, update, delete on pgml.projects, pgml.snapshots, pgml.models, pgml.files, pgml.logs to public;
grant select, insert on pgml.deployments to public;
grant select, insert, update on pgml.jobs to public;
grant select on pgml.deployed_models, pgml.trained_models, pgml.overview to public;
grant usage on all sequences in schema pgml to public;

-- Workers claim queued jobs of every owner, so claiming cannot run as a tenant: this function runs
-- as the catalog owner, returns only the claimed job's id and owner, and is granted to the
-- gateway's connecting role (authenticator) alone. The job itself then runs as its owner.
create or replace function pgml.claim_job(worker text, stale_after interval default '60 seconds')
returns table (id bigint, owner text)
language plpgsql security definer set search_path = pg_catalog, pgml as $$
begin
  -- a running job whose worker stopped heart-beating is failed once, then retried once
  update pgml.jobs j set status = case when j.attempts >= 2 then 'failed' else 'queued' end,
         error = case when j.attempts >= 2 then jsonb_build_object('message', 'worker stopped responding') else j.error end,
         finished_at = case when j.attempts >= 2 then clock_timestamp() else null end,
         claimed_by = null
   where j.status = 'running' and j.heartbeat_at < clock_timestamp() - stale_after;
  -- a model whose training died with its worker is never deployable
  update pgml.models m set status = 'failed', error = 'training worker stopped responding'
   where m.status = 'in_progress' and m.id in (select j.model_id from pgml.jobs j where j.model_id is not null and j.status in ('queued', 'failed'));
  return query
  update pgml.jobs j set status = 'running', claimed_by = worker, attempts = j.attempts + 1,
         started_at = clock_timestamp(), heartbeat_at = clock_timestamp()
   where j.id = (select q.id from pgml.jobs q where q.status = 'queued' and not q.cancel_requested order by q.id for update skip locked limit 1)
  returning j.id, j.owner;
end $$;
revoke all on function pgml.claim_job(text, interval) from public;
do $$ begin
  if exists (select 1 from pg_roles where rolname = 'authenticator') then
    grant execute on function pgml.claim_job(text, interval) to authenticator;
  end if;
end $$;

-- a job added in SQL wakes the gateway workers
create or replace function pgml.notify_job() returns trigger language plpgsql as $$
begin
  perform pg_notify('pgml_jobs', new.id::text);
  return new;
end $$;
create trigger jobs_notify after insert on pgml.jobs for each row execute function pgml.notify_job();
