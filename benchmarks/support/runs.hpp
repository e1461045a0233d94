#pragma once

// Which of Google Benchmark's reported runs stand for a benchmark, for the
// reporters that print ratios (ratio_main.hpp, bench_sqlite.cpp).
#include <benchmark/benchmark.h>

namespace tether_bench {

/// How a reported run counts for its benchmark.
enum class run_weight {
    none,    ///< an error, or an aggregate other than the median: ignore it
    sample,  ///< a single run: use it unless a median of repetitions comes
    median,  ///< the median of `--benchmark_repetitions`: it stands for the benchmark
};

/// How `run` counts (see `run_weight`).
inline run_weight weigh(const benchmark::BenchmarkReporter::Run& run) {
    using Run = benchmark::BenchmarkReporter::Run;
    if (run.error_occurred) return run_weight::none;
    if (run.run_type != Run::RT_Aggregate) return run_weight::sample;
    return run.aggregate_name == "median" ? run_weight::median : run_weight::none;
}

}  // namespace tether_bench
