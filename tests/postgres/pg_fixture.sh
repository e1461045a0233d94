#!/usr/bin/env bash
# The CTest fixture of the PostgreSQL tests: a throwaway PostgreSQL 15 cluster.
#
#   pg_fixture.sh start STATE_DIR   initdb into a fresh temporary directory, start
#                                   the server on 127.0.0.1 on a free port (its unix
#                                   socket in that directory too), write the
#                                   conninfo to STATE_DIR/conninfo
#   pg_fixture.sh stop STATE_DIR    stop the server and remove the directory
#
# initdb refuses to run as root, so as root the cluster belongs to the
# `postgres` system user that Debian's package creates (runuser). Durability is
# off (fsync, synchronous_commit): the cluster lives for one test run. A start
# that fails says why and exits non-zero, so the tests that need it do not run
# (ctest reports them as failed, never as passed).
set -euo pipefail
PG_BIN=${TETHER_PG_BIN:-/usr/lib/postgresql/15/bin}
mode=${1:?usage: pg_fixture.sh start|stop STATE_DIR}
state=${2:?usage: pg_fixture.sh start|stop STATE_DIR}

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

stop() {
  [ -f "$state/dir" ] || return 0
  local dir
  dir=$(cat "$state/dir")
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  fi
  rm -rf -- "$dir"
  rm -f -- "$state/dir" "$state/conninfo"
}

start() {
  stop  # a cluster a crashed run left behind
  mkdir -p "$state"
  [ -x "$PG_BIN/initdb" ] || { echo "pg_fixture: no PostgreSQL at $PG_BIN (Debian: postgresql-15)" >&2; exit 1; }
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    echo "pg_fixture: running as root and there is no 'postgres' user to own the cluster" >&2; exit 1
  fi
  local dir
  dir=$(mktemp -d "${TMPDIR:-/tmp}/tether-pg.XXXXXX")
  echo "$dir" >"$state/dir"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
  if ! as_owner "$PG_BIN/initdb" -D "$dir/data" -U tether -A trust -E UTF8 --locale=C.UTF-8 --no-sync \
        >"$dir/initdb.log" 2>&1; then
    echo "pg_fixture: initdb failed:" >&2; cat "$dir/initdb.log" >&2; stop; exit 1
  fi
  local port attempt
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi  # taken
    if as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start \
         -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
         >/dev/null 2>&1; then
      echo "host=127.0.0.1 port=$port user=tether dbname=postgres connect_timeout=10 sslmode=disable gssencmode=disable" >"$state/conninfo"
      echo "pg_fixture: PostgreSQL on 127.0.0.1:$port, data in $dir"
      return 0
    fi
    grep -q "could not bind\|Address already in use" "$dir/server.log" 2>/dev/null || break
  done
  echo "pg_fixture: PostgreSQL did not start:" >&2; cat "$dir/server.log" >&2 2>/dev/null || true; stop; exit 1
}

case "$mode" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: pg_fixture.sh start|stop STATE_DIR" >&2; exit 2 ;;
esac
