#!/usr/bin/env bash
# Builds the libFuzzer targets (the `fuzz` preset: clang, ASan + UBSan, only
# tether_fuzz) and runs each target for FUZZ_SECONDS (default 10), FUZZ_JOBS
# at a time (default: one per core), starting
# from its committed seeds (tests/fuzz/corpus/<target>/). Fails on the first
# target that crashes or breaks its property; the input that did is left in
# build/fuzz/artifacts/<target>/ (replay it: build/fuzz/tests/fuzz/tether_fuzz
# --target=<target> <file>). New inputs found go to build/fuzz/corpus/, never
# into the source tree.
# Usage: scripts/fuzz.sh                  every target
#        scripts/fuzz.sh page entity      only these
#        FUZZ_SECONDS=300 scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-10}
jobs=${FUZZ_JOBS:-$(nproc)}

start=$(date +%s)
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$jobs"
echo "== build: $(( $(date +%s) - start )) s"

bin=build/fuzz/tests/fuzz/tether_fuzz
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <("$bin" --list); fi

# One leak report on a decoder is a bug too; the RSS cap catches a decoder that
# allocates without bound.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# One target: its run, its line of figures; fails if it crashed or broke its property.
run_target() {
  local t=$1 seeds=tests/fuzz/corpus/$1 work=build/fuzz/corpus/$1 artifacts=build/fuzz/artifacts/$1 t0 result runs
  mkdir -p "$work" "$artifacts"
  t0=$(date +%s)
  if "$bin" --target="$t" -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=2048 -timeout=10 \
       -dict=tests/fuzz/json.dict -print_final_stats=1 -artifact_prefix="$artifacts/" "$work" "$seeds" >"build/fuzz/$t.log" 2>&1; then
    result=ok
  else
    result=FAILED
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "build/fuzz/$t.log" | grep -o '[0-9]*$' | tail -1 || echo "?")
  printf '== %-14s %-6s %3d s  %s runs\n' "$t" "$result" "$(( $(date +%s) - t0 ))" "$runs"
  if [ "$result" = FAILED ]; then
    grep -E 'tether_fuzz:|ERROR|SUMMARY|runtime error|Test unit written' "build/fuzz/$t.log" | head -20 || true
    return 1
  fi
}

# The targets run $jobs at a time (each is single-threaded), each for its full time.
status=0
pids=()
for t in "${targets[@]}"; do
  run_target "$t" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$jobs" ]; then
    wait "${pids[0]}" || status=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
echo "== total: $(( $(date +%s) - start )) s"
exit "$status"
