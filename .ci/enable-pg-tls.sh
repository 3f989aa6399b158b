#!/usr/bin/env bash
# TLS on the system PostgreSQL 15, for the suite's TLS run: Debian's ssl-cert snakeoil pair as
# the server certificate, and one SCRAM login over TLS (pgml_scram_test) for the channel binding
# test (test/wire/tls.test.ts reads its URI from PGML_TEST_TLS_SCRAM_URL). Idempotent.
set -euo pipefail
conf=/etc/postgresql/15/main
psql_() { psql -h 127.0.0.1 -U postgres -d postgres -v ON_ERROR_STOP=1 -Atq "$@"; }

if [ ! -f /etc/ssl/private/ssl-cert-snakeoil.key ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ssl-cert >/dev/null
  [ -f /etc/ssl/private/ssl-cert-snakeoil.key ] || make-ssl-cert generate-default-snakeoil --force-overwrite
fi
# the running server reads its key on reload: a copy it owns (the snakeoil key is root:ssl-cert 0640)
install -o postgres -g postgres -m 0644 /etc/ssl/certs/ssl-cert-snakeoil.pem "$conf/pgml-server.crt"
install -o postgres -g postgres -m 0600 /etc/ssl/private/ssl-cert-snakeoil.key "$conf/pgml-server.key"
psql_ -c "alter system set ssl_cert_file = '$conf/pgml-server.crt'" \
      -c "alter system set ssl_key_file = '$conf/pgml-server.key'" \
      -c "alter system set ssl = on"

hba=$(psql_ -c 'show hba_file')
line='hostssl all pgml_scram_test 127.0.0.1/32 scram-sha-256'
if ! grep -qxF "$line" "$hba"; then
  { echo "$line"; cat "$hba"; } > "$hba.new" && cat "$hba.new" > "$hba" && rm -f "$hba.new"
fi
psql_ -c "do \$\$ begin
  if not exists (select 1 from pg_roles where rolname = 'pgml_scram_test') then create role pgml_scram_test login; end if;
end \$\$" -c "set password_encryption = 'scram-sha-256'" -c "alter role pgml_scram_test password 'pgml-scram-test'"
psql_ -c 'select pg_reload_conf()' >/dev/null
sleep 1
[ "$(psql_ -c 'show ssl')" = on ] || { echo "enable-pg-tls: ssl did not turn on" >&2; exit 1; }
echo "enable-pg-tls: ssl on (snakeoil), SCRAM login pgml_scram_test over hostssl"
