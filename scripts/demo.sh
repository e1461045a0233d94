#!/usr/bin/env bash
# The demo on real parts: tether-server on 127.0.0.1 and two devices, each with
# its own SQLite file, syncing over HTTP. Writes while the server is down, the
# server coming back, a lost response that does not duplicate, a conflict, a
# poison record and its reset, a confirmed delete with its cleanup, health.
# Exits 0 only if both devices agree with the server and the server stopped
# cleanly. The in-process version is examples/jobs.cpp (tether_example_jobs).
# Usage: scripts/demo.sh   (as root on a fresh Debian 12 machine: builds first)
#        TETHER_DEMO_BIN=DIR scripts/demo.sh   (DIR holds tether-server and
#        tether_example_http_demo already built; the test suite runs it so)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TETHER_DEMO_BIN:-}" ]; then
  scripts/deps.sh
  cmake -S . -B build/demo -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DTETHER_BUILD_TESTS=OFF -DTETHER_BUILD_BENCHMARKS=OFF -DTETHER_BUILD_EXAMPLES=ON \
    -DTETHER_SQLITE=ON -DTETHER_HTTP=ON
  cmake --build build/demo --target tether-server tether_example_http_demo
  TETHER_DEMO_BIN=build/demo/examples
fi
server_bin=$(find "$TETHER_DEMO_BIN" -name tether-server -type f -perm -u+x | head -1)
demo_bin=$(find "$TETHER_DEMO_BIN" -name tether_example_http_demo -type f -perm -u+x | head -1)
[ -n "$server_bin" ] && [ -n "$demo_bin" ] || { echo "demo: binaries not found under $TETHER_DEMO_BIN" >&2; exit 1; }

dir=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
printf 'phone-token alice\nlaptop-token alice\n' > "$dir/tokens"

# Starts the server on $1 (port 0: a free one); sets server_pid and port.
start_server() {
  "$server_bin" --listen "127.0.0.1:$1" --db "$dir/server.db" --tokens "$dir/tokens" \
    --access-log "$dir/access.log" > "$dir/server.out" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 200); do  # a bounded wait for its "listening on" line
    if grep -q '^listening on ' "$dir/server.out"; then break; fi
    kill -0 "$server_pid" 2>/dev/null || { cat "$dir/server.out" >&2; exit 1; }
    sleep 0.05
  done
  port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$dir/server.out" | head -1)
  [ -n "$port" ] || { echo "demo: the server did not start" >&2; cat "$dir/server.out" >&2; exit 1; }
  echo "== $(head -1 "$dir/server.out") (db $dir/server.db)"
}
stop_server() {
  kill -TERM "$server_pid"
  local rc=0
  wait "$server_pid" || rc=$?
  server_pid=
  echo "== server stopped (SIGTERM), exit code $rc"
  [ "$rc" = 0 ]
}

start_server 0
stop_server
: > "$dir/server.out"
"$demo_bin" offline "http://127.0.0.1:$port" "$dir"
start_server "$port"
rc=0
"$demo_bin" online "http://127.0.0.1:$port" "$dir" || rc=$?
stop_server
echo "== access log: $(wc -l < "$dir/access.log") requests; the last three:"
tail -3 "$dir/access.log"
if [ "$rc" != 0 ]; then echo "demo: the devices do not agree with the server" >&2; exit "$rc"; fi
echo "== both devices agree with the server"
