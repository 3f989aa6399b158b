-- cron profile only: pg_cron in the application database (cron.database_name=app).
-- Schedule retraining as the role that owns the data; pgml.train() queues a job that a gateway
-- replica runs (FOR UPDATE SKIP LOCKED), e.g.
--   select cron.schedule('weekly-retrain', '0 0 * * 0', $$select pgml.train('my_project', 'classification', 'my_table', 'label')$$);
-- (the pgml schema exists once the gateway has applied its migrations).
\set ON_ERROR_STOP on
create extension if not exists pg_cron;
