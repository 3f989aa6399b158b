-- Jobs and training hardening (issue 14).
--
-- * Tenants write only what they need in pgml.jobs: INSERT (kind, params) and UPDATE
--   (cancel_requested). Status, progress, heartbeat, result, model_id and owner are written by
--   the gateway's worker functions alone.
-- * The worker functions live in schema pgml_worker, which PUBLIC cannot use: a later
--   `grant execute on all functions in schema pgml to public` cannot expose them, and a request
--   role (which the login role is a member of, not the reverse) cannot reach them. The gateway's
--   login role, whatever it is called, gets USAGE and EXECUTE from the migration step
--   (src/db/migrate.ts grantWorker) or from an operator:
--     grant usage on schema pgml_worker to <login role>;
--     grant execute on all functions in schema pgml_worker to <login role>;
-- * A job touches only models of its own owner; claiming is fair across owners and caps each
--   owner's running jobs.
-- * Synchronous trainings heart-beat their model row; a model whose heartbeat stopped (its
--   gateway was killed) is failed by the sweep of any live replica.

create schema if not exists pgml_worker;
revoke all on schema pgml_worker from public;

-- ------------------------------------------------------------------ tenant privileges on jobs

revoke insert, update, delete, truncate on pgml.jobs from public;
grant insert (kind, params) on pgml.jobs to public;
grant update (cancel_requested) on pgml.jobs to public;

-- only what a worker can run, and bounded; existing rows are left as they are
alter table pgml.jobs add constraint jobs_kind_known check (kind = 'train') not valid;
alter table pgml.jobs add constraint jobs_params_bounded
  check (jsonb_typeof(params) = 'object' and pg_column_size(params) <= 262144) not valid;

-- A cancel request is one-way; a queued job it hits is cancelled at once (no worker will claim
-- it). Runs for the worker functions too, which never clear the flag.
create or replace function pgml.jobs_cancel_request() returns trigger language plpgsql as $$
begin
  new.cancel_requested := old.cancel_requested or new.cancel_requested;
  if new.cancel_requested and not old.cancel_requested and old.status = 'queued' then
    new.status := 'cancelled';
    new.finished_at := clock_timestamp();
  end if;
  return new;
end $$;
create trigger jobs_cancel_request before update of cancel_requested on pgml.jobs
  for each row execute function pgml.jobs_cancel_request();

create index if not exists jobs_queued_owner_idx on pgml.jobs(owner, id) where status = 'queued';
create index if not exists jobs_running_owner_idx on pgml.jobs(owner) where status = 'running';

-- ------------------------------------------------------------------ model heartbeat

-- added without a default, then given one, so existing rows are not rewritten
alter table pgml.models add column if not exists heartbeat_at timestamptz;
alter table pgml.models alter column heartbeat_at set default clock_timestamp();
update pgml.models set heartbeat_at = clock_timestamp() where status = 'in_progress' and heartbeat_at is null;
create index if not exists models_in_progress_idx on pgml.models(heartbeat_at) where status = 'in_progress';

-- ------------------------------------------------------------------ worker functions

-- Fails models whose training stopped heart-beating: their gateway died (kill -9, OOM, lost
-- host). A live replica beats every stale_after / 4, so this never fails a live training.
-- A training's final transaction locks its model row (status successful), deploys and compiles
-- it, which can take seconds: a locked model is being written by a live transaction, so beat and
-- sweep skip it and see it again at the next interval (if its transaction dies, the lock goes and
-- the row is in_progress again, stale, and swept). Waiting for the lock instead left every other
-- model of the replica (one statement beats them all) unbeaten meanwhile.
create or replace function pgml_worker.beat_trainings(ids bigint[], owners text[])
returns void
language sql security definer set search_path = pg_catalog, pgml as $$
  update pgml.models m set heartbeat_at = clock_timestamp()
   where m.id in (
     select l.id from pgml.models l join unnest(ids, owners) as t(id, owner) on l.id = t.id and l.owner = t.owner
      where l.status = 'in_progress'
      for update of l skip locked)
$$;

create or replace function pgml_worker.sweep_stale_trainings(stale_after interval)
returns int
language plpgsql security definer set search_path = pg_catalog, pgml as $$
declare n int;
begin
  update pgml.models m set status = 'failed', error = 'training stopped: its gateway stopped responding'
   where m.id in (
     select l.id from pgml.models l
      where l.status = 'in_progress' and coalesce(l.heartbeat_at, l.created_at::timestamptz) < clock_timestamp() - stale_after
      for update of l skip locked);
  get diagnostics n = row_count;
  return n;
end $$;
revoke all on function pgml_worker.beat_trainings(bigint[], text[]) from public;
revoke all on function pgml_worker.sweep_stale_trainings(interval) from public;

-- Claims one queued job fairly: among owners with a queued job and fewer than
-- max_running_per_owner running jobs, the one with the fewest running jobs, then the oldest
-- queued job. A transaction-level advisory lock per owner makes the cap hold across replicas
-- claiming at the same moment.
create or replace function pgml_worker.claim_job(worker text, stale_after interval, max_running_per_owner int)
returns table (id bigint, owner text)
language plpgsql security definer set search_path = pg_catalog, pgml as $$
declare
  c record;
  n int;
begin
  -- a running job whose worker stopped heart-beating is requeued once, then failed
  update pgml.jobs j set status = case when j.attempts >= 2 then 'failed' else 'queued' end,
         error = case when j.attempts >= 2 then jsonb_build_object('message', 'worker stopped responding') else j.error end,
         finished_at = case when j.attempts >= 2 then clock_timestamp() else null end,
         claimed_by = null
   where j.status = 'running' and j.heartbeat_at < clock_timestamp() - stale_after;
  -- the model of such a job is never deployable; only a model of the job's own owner is touched
  update pgml.models m set status = 'failed', error = 'training worker stopped responding'
    from pgml.jobs j
   where j.model_id = m.id and m.owner = j.owner and m.status = 'in_progress' and j.status in ('queued', 'failed');

  for c in
    with recursive owners(o) as (
      (select q.owner from pgml.jobs q where q.status = 'queued' order by q.owner limit 1)
      union all
      select (select q.owner from pgml.jobs q where q.status = 'queued' and q.owner > owners.o order by q.owner limit 1)
        from owners where owners.o is not null
    )
    select owners.o, (select count(*) from pgml.jobs r where r.status = 'running' and r.owner = owners.o) as running,
           (select min(q.id) from pgml.jobs q where q.status = 'queued' and q.owner = owners.o) as oldest
      from owners where owners.o is not null
     order by 2, 3
  loop
    continue when c.running >= max_running_per_owner;
    continue when not pg_try_advisory_xact_lock(hashtext('pgml-gateway:job-owner'), hashtext(c.o));
    -- another replica may have claimed for this owner since the list was read
    select count(*) into n from pgml.jobs r where r.status = 'running' and r.owner = c.o;
    continue when n >= max_running_per_owner;
    return query
    update pgml.jobs j set status = 'running', claimed_by = worker, attempts = j.attempts + 1,
           started_at = clock_timestamp(), heartbeat_at = clock_timestamp()
     where j.id = (select q.id from pgml.jobs q where q.status = 'queued' and q.owner = c.o and not q.cancel_requested and q.kind = 'train'
                    order by q.id for update skip locked limit 1)
    returning j.id, j.owner;
    if found then return; end if;
  end loop;
end $$;

-- Heartbeat and progress of a job this worker holds. Returns cancel_requested, or null when the
-- job is no longer this worker's (swept and requeued): the worker then stops.
create or replace function pgml_worker.job_heartbeat(job bigint, worker text, progress float8)
returns boolean
language sql security definer set search_path = pg_catalog, pgml as $$
  update pgml.jobs j set heartbeat_at = clock_timestamp(), progress = greatest(0, least(1, job_heartbeat.progress))
   where j.id = job and j.claimed_by = worker and j.status = 'running'
  returning j.cancel_requested
$$;

-- Links the job to the model it is training: only a model of the job's owner.
create or replace function pgml_worker.job_model(job bigint, worker text, model bigint)
returns boolean
language sql security definer set search_path = pg_catalog, pgml as $$
  with u as (
    update pgml.jobs j set model_id = model
     where j.id = job and j.claimed_by = worker and j.status = 'running'
       and exists (select 1 from pgml.models m where m.id = model and m.owner = j.owner)
    returning 1)
  select exists (select 1 from u)
$$;

-- Ends a job this worker holds.
create or replace function pgml_worker.finish_job(job bigint, worker text, status text, result jsonb, error jsonb)
returns boolean
language plpgsql security definer set search_path = pg_catalog, pgml as $$
begin
  if status not in ('succeeded', 'failed', 'cancelled') then
    raise exception 'finish_job: status must be succeeded, failed or cancelled, not %', status using errcode = '22023';
  end if;
  update pgml.jobs j set status = finish_job.status, result = finish_job.result, error = finish_job.error,
         progress = case when finish_job.status = 'succeeded' then 1 else j.progress end, finished_at = clock_timestamp()
   where j.id = job and j.claimed_by = worker and j.status = 'running';
  return found;
end $$;

revoke all on all functions in schema pgml_worker from public;

-- The function of 002 (granted to a role named authenticator) now claims through the safe one.
create or replace function pgml.claim_job(worker text, stale_after interval default '60 seconds')
returns table (id bigint, owner text)
language sql security definer set search_path = pg_catalog, pgml as $$
  select * from pgml_worker.claim_job(worker, stale_after, 1)
$$;
revoke all on function pgml.claim_job(text, interval) from public;

-- PostgREST's conventional login role keeps working without the migration step's grant
do $$ begin
  if exists (select 1 from pg_roles where rolname = 'authenticator') then
    grant usage on schema pgml_worker to authenticator;
    grant execute on all functions in schema pgml_worker to authenticator;
  end if;
end $$;
