#!/bin/sh
# Entrypoint of the pgml-gateway image. Node stays PID 1 (exec) and handles SIGTERM itself:
# /ready turns 503, in-flight requests finish within PGML_SHUTDOWN_TIMEOUT, exit 0.
set -eu

# `docker run IMAGE --server-port 3001` or `docker run IMAGE --help`: flags go to the gateway
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
  set -- node --import tsx src/main.ts "$@"
fi

case " $* " in
  *" src/main.ts "*)
    # Without a database URI the gateway would start an embedded PostgreSQL inside the container
    # (data lost with the container, one database per replica). The image does not ship it.
    needs_uri=1
    for arg in "$@"; do
      case "$arg" in
        --help|-h|--db-uri|--db-uri=*) needs_uri=0 ;;
      esac
    done
    if [ "$needs_uri" = 1 ] && [ -z "${PGRST_DB_URI:-}" ] && [ -z "${DATABASE_URL:-}" ]; then
      echo "pgml-gateway: set PGRST_DB_URI (or DATABASE_URL) to the authenticator role's connection URI;" >&2
      echo "  the embedded PostgreSQL of 'npm start' is not available in the container image." >&2
      exit 64
    fi
    ;;
esac

exec "$@"
