#!/usr/bin/env bash
# Builds and runs tether's whole test suite: warnings-as-errors build with every
# test (unit, integration, simulator, compile-fail, find_package import), then the
# same suite under ASan+UBSan, and the tests that run threads under TSan (the
# simulator with fewer seeds there). Each stage prints its wall time.
# Usage: scripts/test.sh            (as root on a fresh Debian 12 machine)
#        TETHER_SANITIZERS=0 scripts/test.sh   (skip the sanitizer builds)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)

echo "== ci: -Wall -Wextra -Wpedantic -Werror, all tests"
cmake --preset ci
cmake --build --preset ci -j "$jobs"
cmake --build --preset ci -j "$jobs" --target all_verify_interface_header_sets  # every header compiles alone
ctest --preset ci -j "$jobs"

if [ "${TETHER_SANITIZERS:-1}" != 0 ]; then
  for preset in asan tsan; do
    echo "== $preset"
    cmake --preset "$preset"
    cmake --build --preset "$preset" -j "$jobs"
    ctest --preset "$preset" -j "$jobs" -E '^(compile_fail|cmake_import)'
  done
fi
