#!/usr/bin/env bash
# Compile-time probe: how long one TU with a full engine takes to compile
# (benchmarks/compile_probe/engine_tu.cpp), as a ratio of a TU that only uses
# nlohmann_json (benchmarks/compile_probe/json_tu.cpp), with the project's flags.
#
# usage: benchmarks/compile_probe.sh [max_ratio]
#   CXX                             compiler (default: c++)
#   TETHER_COMPILE_PROBE_MAX_RATIO  threshold if no argument is given (default below)
#   TETHER_COMPILE_PROBE_RUNS       compiles per TU, the best counts (default 3)
#
# Times are CPU seconds (user + sys) of the compiler, which a busy machine
# disturbs less than wall time. Exits 1 if the ratio exceeds the threshold,
# 2 if a TU does not compile.
set -euo pipefail

# Measured on the 2-core build VM (GCC 12.2, -O0): 2.8-3.0x (engine ~6.0 s,
# json ~2.0-2.2 s of CPU); clang 14: 2.3x. The threshold leaves ~50% headroom
# for noise and small growth; a new heavy include (e.g. <boost/hana.hpp>, ~0.3 s
# each) or Hana-heavy type selection in the engine (~8 ms per lookup) adds up.
default_max_ratio=4.5

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cxx=${CXX:-c++}
max_ratio=${1:-${TETHER_COMPILE_PROBE_MAX_RATIO:-$default_max_ratio}}
runs=${TETHER_COMPILE_PROBE_RUNS:-3}
flags=(-std=c++20 -O0 "-I$repo/include" -Wall -Wextra -Wpedantic -Werror)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# best_cpu_seconds <source>: the lowest user+sys time of $runs compiles.
best_cpu_seconds() {
    local src=$1 best="" t i
    for ((i = 0; i < runs; ++i)); do
        local TIMEFORMAT='%3U %3S'
        if ! { time "$cxx" "${flags[@]}" -c "$src" -o "$tmp/probe.o" 2>"$tmp/errors"; } 2>"$tmp/time"; then
            echo "compile_probe: $src does not compile:" >&2
            cat "$tmp/errors" >&2
            exit 2
        fi
        t=$(awk '{ printf "%.3f", $1 + $2 }' "$tmp/time")
        if [[ -z $best ]] || awk -v a="$t" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$t; fi
    done
    echo "$best"
}

echo "compile_probe: $("$cxx" --version | head -n 1); flags: ${flags[*]}; best of $runs"
engine=$(best_cpu_seconds "$here/compile_probe/engine_tu.cpp")
json=$(best_cpu_seconds "$here/compile_probe/json_tu.cpp")
ratio=$(awk -v e="$engine" -v j="$json" 'BEGIN { printf "%.2f", e / j }')

echo "engine TU (full engine, memory + loopback):  ${engine} s"
echo "json TU   (nlohmann_json parse + dump):      ${json} s"
echo "ratio engine/json = ${ratio}x (threshold ${max_ratio}x)"
if awk -v r="$ratio" -v m="$max_ratio" 'BEGIN { exit !(r > m) }'; then
    echo "compile_probe: FAILED: the engine TU costs ${ratio}x a JSON TU, above ${max_ratio}x" >&2
    exit 1
fi
echo "compile_probe: ok"
