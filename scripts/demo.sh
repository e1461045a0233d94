#!/usr/bin/env bash
# Builds and runs the demo: two devices syncing jobs through a loopback server,
# with writes while offline, a lost response, a conflict and a failed record.
# Usage: scripts/demo.sh   (as root on a fresh Debian 12 machine)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build/demo -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DTETHER_BUILD_TESTS=OFF -DTETHER_BUILD_BENCHMARKS=OFF -DTETHER_BUILD_EXAMPLES=ON
cmake --build build/demo --target tether_example_jobs
./build/demo/examples/tether_example_jobs
