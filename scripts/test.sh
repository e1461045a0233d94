#!/usr/bin/env bash
# Builds and runs tether's whole test suite: warnings-as-errors build with every
# test (unit, integration, end to end against tether-server, simulator,
# compile-fail, find_package import, the demo) with GCC, then the same suite
# under ASan+UBSan built with clang (-O0, the simulator -O1), the tests that run threads under TSan (the simulator and the fault
# workload with fewer seeds there), and the fuzzers (clang, ASan+UBSan, 10 s
# each). Each stage prints its wall time.
# Usage: scripts/test.sh            (as root on a fresh Debian 12 machine)
#        TETHER_SANITIZERS=0 scripts/test.sh   (skip the sanitizer builds)
#        TETHER_FUZZ=0 scripts/test.sh         (skip the fuzzers)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
timings=()

# stage NAME COMMAND...: runs the command, remembers its wall time.
stage() {
  local name=$1 start=$SECONDS
  shift
  echo "== $name"
  "$@"
  timings+=("$name: $((SECONDS - start)) s")
  echo "== $name took $((SECONDS - start)) s"
}

preset() {
  local p=$1
  shift
  cmake --preset "$p"
  cmake --build --preset "$p" -j "$jobs"
  if [ "$p" = ci ]; then
    cmake --build --preset ci -j "$jobs" --target all_verify_interface_header_sets  # every header compiles alone
  fi
  ctest --preset "$p" -j "$jobs" "$@"
}

stage deps scripts/deps.sh
stage "ci (-Werror, every test)" preset ci
if [ "${TETHER_SANITIZERS:-1}" != 0 ]; then
  stage "asan (ASan+UBSan)" preset asan -E '^(compile_fail|cmake_import)'
  stage "tsan (threaded tests)" preset tsan
fi
if [ "${TETHER_FUZZ:-1}" != 0 ] && [ -x scripts/fuzz.sh ]; then
  stage "fuzz (libFuzzer)" scripts/fuzz.sh
fi
printf '%s\n' "== wall time per stage:" "${timings[@]}"
