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

-- pgml._evaluate of 004, bounded: a sql_model is data a row owner wrote, so its declared sizes
-- are checked against the real ones before any loop runs, and a tree walk that takes more steps
-- than the tree has nodes (a cycle) or leaves the tree ends with an error instead of spinning.
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
  steps int;
begin
  if m is null then return null; end if;
  if features is null then return null; end if;
  if cardinality(features) <> (m->>'raw_width')::int then
    raise exception 'expected % features, got %', m->>'raw_width', cardinality(features) using errcode = '22023',
      hint = 'Columns in order: ' || (select string_agg(e->>'name', ', ') from jsonb_array_elements(cols) e);
  end if;
  if jsonb_typeof(cols) is distinct from 'array'
     or (select coalesce(sum(case when jsonb_typeof(e->'width') = 'number' and (e->>'width')::numeric between 1 and cardinality(features)
                                  then (e->>'width')::numeric else 'NaN' end), 0) from jsonb_array_elements(cols) e) <> cardinality(features) then
    raise exception 'malformed sql_model: the column widths do not add up to % features', cardinality(features) using errcode = '22023',
      hint = 'Retrain or re-import the model';
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
  if outputs is null or outputs < 1 or outputs > 100000 then
    raise exception 'malformed sql_model: % outputs', coalesce(m->>'outputs', 'no') using errcode = '22023', hint = 'Retrain or re-import the model';
  end if;
  if m->>'kind' = 'linear' and jsonb_array_length(m->'coefficients') <> outputs * cardinality(x) then
    raise exception 'malformed sql_model: % coefficients for % outputs × % features', jsonb_array_length(m->'coefficients'), outputs, cardinality(x)
      using errcode = '22023', hint = 'Retrain or re-import the model';
  end if;
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
      steps := 0;
      while feat[node + 1] >= 0 loop
        steps := steps + 1;
        if steps > cardinality(feat) then
          raise exception 'malformed sql_model: tree % does not end (a cycle)', i using errcode = '22023', hint = 'Retrain or re-import the model';
        end if;
        v := x[feat[node + 1] + 1];
        if v is null or v = 'NaN'::float8 then
          node := case when mis[node + 1] then lft[node + 1] else rgt[node + 1] end;
        elsif v < thr[node + 1] then node := lft[node + 1];
        else node := rgt[node + 1];
        end if;
        if node is null or node < 0 or node >= cardinality(feat) then
          raise exception 'malformed sql_model: tree % points outside its % nodes', i, cardinality(feat) using errcode = '22023', hint = 'Retrain or re-import the model';
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
