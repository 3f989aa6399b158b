#!/usr/bin/env bash
# Best effort: load pg_cron into the system PostgreSQL 15 so the scheduled-retrain test runs
# for real. Any failure leaves the server as it was and the test falls back (see README).
set -u
psql_() { psql -h 127.0.0.1 -U postgres -Atqc "$1" 2>/dev/null; }
[ "$(psql_ "show shared_preload_libraries")" = "pg_cron" ] && exit 0
if ! dpkg -s postgresql-15-cron >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15-cron) >/dev/null 2>&1 || { echo "pg_cron: not installable, skipped"; exit 0; }
fi
current=$(psql_ "show shared_preload_libraries")
[ -n "$current" ] && { echo "pg_cron: shared_preload_libraries already set to '$current', not touched"; exit 0; }
# cron.database_name keeps its default, postgres; jobs target other databases with cron.schedule_in_database
psql_ "alter system set shared_preload_libraries = 'pg_cron'" || exit 0
cluster=$(ls /etc/postgresql | head -1)
pg_ctlcluster --skip-systemctl-redirect "$cluster" main restart >/dev/null 2>&1 || { psql_ "alter system reset shared_preload_libraries"; pg_ctlcluster --skip-systemctl-redirect "$cluster" main restart; exit 0; }
for _ in $(seq 1 30); do psql_ "select 1" >/dev/null && break; sleep 1; done
echo "pg_cron: loaded into the system PostgreSQL ($(psql_ "show shared_preload_libraries"))"
