-- Immutable model artifacts (issue 14).
--
-- A model's artifact is what it was when training or import finished: tenants cannot UPDATE or
-- DELETE rows of pgml.files (deleting the model cascades), cannot add files to a model once it is
-- successful (except in the transaction that made it so), and cannot change the columns that
-- define what a successful model computes. A new artifact is a new model version.
-- The gateway still validates every artifact it loads: a tenant can always INSERT a new model
-- row with any content.

revoke update, delete on pgml.files from public;

create or replace function pgml.refuse_artifact_change() returns trigger language plpgsql as $$
begin
  if current_setting('is_superuser') = 'on' then return coalesce(new, old); end if;
  raise exception 'model artifacts are immutable' using errcode = '42501',
    detail = 'pgml.files rows cannot be updated or deleted',
    hint = 'Train or import a new model version instead';
end $$;
drop trigger if exists files_immutable on pgml.files;
-- deleting a model deletes its files through the foreign key's cascade (a nested trigger)
create trigger files_immutable before update on pgml.files for each row execute function pgml.refuse_artifact_change();
drop trigger if exists files_no_delete on pgml.files;
create trigger files_no_delete before delete on pgml.files for each row
  when (pg_trigger_depth() = 0) execute function pgml.refuse_artifact_change();

-- files of a successful model may only be added by the transaction that made it successful
-- (train and import insert them right after setting the status, in the same transaction)
create or replace function pgml.check_artifact_insert() returns trigger language plpgsql as $$
declare st text; born xid;
begin
  if current_setting('is_superuser') = 'on' then return new; end if;
  select m.status, m.xmin into st, born from pgml.models m where m.id = new.model_id;
  if st = 'successful' and born is distinct from pg_current_xact_id()::xid then
    raise exception 'model % is already trained: its artifacts are immutable', new.model_id using errcode = '42501',
      hint = 'Train or import a new model version instead';
  end if;
  return new;
end $$;
drop trigger if exists files_insert_immutable on pgml.files;
create trigger files_insert_immutable before insert on pgml.files for each row execute function pgml.check_artifact_insert();

-- once successful, what a model computes is fixed; the UPDATE that sets status = 'successful'
-- (from in_progress) may still set these columns
create or replace function pgml.check_model_immutable() returns trigger language plpgsql as $$
begin
  if old.status <> 'successful' or current_setting('is_superuser') = 'on' then return new; end if;
  if new.status is distinct from old.status
     or new.metadata is distinct from old.metadata
     or new.sql_model is distinct from old.sql_model
     or new.num_features is distinct from old.num_features
     or new.algorithm is distinct from old.algorithm
     or new.runtime is distinct from old.runtime
     or new.project_id is distinct from old.project_id then
    raise exception 'model % is already trained: its artifact columns are immutable', old.id using errcode = '42501',
      detail = 'status, metadata, sql_model, num_features, algorithm, runtime and project_id cannot change once status = ''successful''',
      hint = 'Train or import a new model version instead';
  end if;
  return new;
end $$;
drop trigger if exists models_immutable on pgml.models;
create trigger models_immutable before update on pgml.models for each row execute function pgml.check_model_immutable();

-- pgml._evaluate (the SQL interpreter) is bounded against cyclic and oversized sql_model rows in
-- 008_sql_predict.sql, which redefines it.
