#pragma once

// A main() for benchmarks that report a ratio against a baseline measured in
// the same run. Include it from exactly one bench_<area>.cpp and call
// `tether_bench::run_with_ratios` from that file's main(); the target links
// benchmark::benchmark (not benchmark_main), see benchmarks/CMakeLists.txt.
#include "runs.hpp"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

namespace tether_bench {

/// One ratio to print: `subject`'s CPU time per item over `baseline`'s, for
/// every argument both were run with (names are the registered names, without
/// the "/<arg>" suffix).
struct ratio_spec {
    std::string label;     ///< e.g. "create engine/floor"
    std::string subject;   ///< e.g. "create/engine"
    std::string baseline;  ///< e.g. "create/floor"
    double target = 0;     ///< print "over target" above this (0: no target)
};

/// The console reporter, remembering every benchmark's CPU time per item.
class capturing_reporter : public benchmark::ConsoleReporter {
public:
    using benchmark::ConsoleReporter::ConsoleReporter;

    /// CPU seconds per item, by registered name then argument string.
    [[nodiscard]] const std::map<std::string, std::map<std::string, double>>& seconds_per_item() const noexcept {
        return seconds_per_item_;
    }

    void ReportRuns(const std::vector<Run>& runs) override {
        benchmark::ConsoleReporter::ReportRuns(runs);
        for (const auto& run : runs) {
            const auto weight = weigh(run);
            if (weight == run_weight::none) continue;
            const auto items = run.counters.find("items_per_second");
            if (items == run.counters.end() || items->second.value <= 0) continue;
            auto& slot = seconds_per_item_[run.run_name.function_name][run.run_name.args];
            if (weight == run_weight::median || slot == 0) slot = 1.0 / items->second.value;
        }
    }

private:
    std::map<std::string, std::map<std::string, double>> seconds_per_item_;
};

/// Runs the benchmarks selected on the command line, then prints each ratio of
/// `ratios` whose two sides ran. Returns main()'s exit code (benchmarks never
/// fail on a ratio: the figures are for people; see docs/benchmarks.md).
inline int run_with_ratios(int argc, char** argv, const std::vector<ratio_spec>& ratios) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    capturing_reporter reporter{isatty(STDOUT_FILENO) != 0 ? benchmark::ConsoleReporter::OO_ColorTabular
                                                           : benchmark::ConsoleReporter::OO_Tabular};
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();

    bool printed_header = false;
    for (const auto& spec : ratios) {
        const auto& measured = reporter.seconds_per_item();
        const auto subject = measured.find(spec.subject);
        const auto baseline = measured.find(spec.baseline);
        if (subject == measured.end() || baseline == measured.end()) continue;
        for (const auto& [arg, seconds] : subject->second) {
            const auto base = baseline->second.find(arg);
            if (base == baseline->second.end()) continue;
            if (!printed_header) {
                std::printf("\nratios (CPU time per item, measured in this run):\n");
                printed_header = true;
            }
            const double ratio = seconds / base->second;
            std::printf("ratio %s%s%s = %.2fx  (%.0f ns vs %.0f ns per item)", spec.label.c_str(),
                        arg.empty() ? "" : " n=", arg.c_str(), ratio, seconds * 1e9, base->second * 1e9);
            if (spec.target > 0) {
                std::printf("  target <= %.1fx: %s", spec.target, ratio <= spec.target ? "met" : "MISSED");
            }
            std::printf("\n");
        }
    }
    std::fflush(stdout);
    return 0;
}

}  // namespace tether_bench
