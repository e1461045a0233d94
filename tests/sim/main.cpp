// tether_sim: the deterministic simulator (see workload.hpp and invariants.hpp).
//
//   tether_sim [--seeds N] [--first-seed S] [--ops N] [--clock-back]
//   tether_sim --replay SEED [--ops N] [--clock-back] [--verbose]
//   tether_sim --check-determinism SEED [--ops N] [--clock-back]
//
// Prints a summary (seeds, operations, faults fired per kind, violations) and
// ends with the line `N passed, M failed`. Exits non-zero on any violation, or
// when the run was toothless (a fault kind fired fewer than 500 times per 2,000
// seeds, scaled to the number of seeds run).
#include "workload.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

namespace {

using namespace tether_sim;

struct cli {
    std::uint64_t seeds = 2000;
    std::uint64_t first_seed = 1;
    std::optional<std::uint64_t> replay;
    std::optional<std::uint64_t> determinism;
    config cfg;
};

[[noreturn]] void usage(const char* argv0, const std::string& why) {
    std::cerr << argv0 << ": " << why << "\nusage: " << argv0
              << " [--seeds N] [--first-seed S] [--ops N] [--clock-back] [--replay SEED [--verbose]]"
                 " [--check-determinism SEED]\n";
    std::exit(2);
}

std::uint64_t number(const char* argv0, int& i, int argc, char** argv) {
    if (i + 1 >= argc) usage(argv0, std::string{argv[i]} + " needs a number");
    const std::string text = argv[++i];
    char* end = nullptr;
    const auto v = std::strtoull(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0') usage(argv0, "not a number: " + text);
    return v;
}

cli parse(int argc, char** argv) {
    cli c;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--seeds") c.seeds = number(argv[0], i, argc, argv);
        else if (a == "--first-seed") c.first_seed = number(argv[0], i, argc, argv);
        else if (a == "--ops") c.cfg.ops = static_cast<int>(number(argv[0], i, argc, argv));
        else if (a == "--replay") c.replay = number(argv[0], i, argc, argv);
        else if (a == "--check-determinism") c.determinism = number(argv[0], i, argc, argv);
        else if (a == "--verbose") c.cfg.verbose = true;
        else if (a == "--clock-back") c.cfg.clock_back = true;
        else usage(argv[0], "unknown argument " + std::string{a});
    }
    c.cfg.out = &std::cout;
    return c;
}

std::string hex(std::uint64_t h) {
    char buf[19];
    std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(h));
    return buf;
}

/// The command that replays `seed` exactly (same settings).
std::string replay_command(const char* argv0, std::uint64_t seed, const config& cfg) {
    return std::string{argv0} + " --replay " + std::to_string(seed) + " --ops " + std::to_string(cfg.ops) +
           (cfg.clock_back ? " --clock-back" : "") + " --verbose";
}

void print_violations(const seed_result& r, std::size_t limit) {
    std::size_t shown = 0;
    for (const auto& v : r.violations) {
        if (shown++ == limit) {
            std::cout << "  ... " << (r.violations.size() - limit) << " more\n";
            break;
        }
        std::cout << "  [" << v.invariant << " " << invariant_names[static_cast<std::size_t>(v.invariant)] << "] "
                  << v.what << '\n';
    }
}

int run_replay(const char* argv0, std::uint64_t seed, config cfg) {
    auto r = run_seed<classic_types>(seed, cfg);
    std::cout << "seed " << seed << ": " << r.st.operations << " operations, " << r.st.syncs << " syncs, "
              << r.violations.size() << " violations, trace hash " << hex(r.hash) << '\n';
    if (!r.violations.empty()) {
        print_violations(r, 20);
        std::cout << "replay: " << replay_command(argv0, seed, cfg) << '\n';
    }
    std::cout << (r.violations.empty() ? 1 : 0) << " passed, " << (r.violations.empty() ? 0 : 1) << " failed\n";
    return r.violations.empty() ? 0 : 1;
}

int run_determinism(std::uint64_t seed, config cfg) {
    cfg.verbose = false;
    const auto a = run_seed<classic_types>(seed, cfg);
    const auto b = run_seed<classic_types>(seed, cfg);
    const bool same = a.hash == b.hash && a.violations.size() == b.violations.size() &&
                      a.st.operations == b.st.operations && a.st.faults == b.st.faults;
    std::cout << "seed " << seed << ": trace hash " << hex(a.hash) << " then " << hex(b.hash)
              << (same ? " (identical)" : " (DIFFERENT: the run is not deterministic)") << '\n';
    std::cout << (same ? 1 : 0) << " passed, " << (same ? 0 : 1) << " failed\n";
    return same ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    const cli c = parse(argc, argv);
    if (c.replay) return run_replay(argv[0], *c.replay, c.cfg);
    if (c.determinism) return run_determinism(*c.determinism, c.cfg);

    const auto t0 = std::chrono::steady_clock::now();
    stats total;
    std::uint64_t passed = 0;
    std::uint64_t failed = 0;
    std::uint64_t max_quiet_rounds = 0;
    std::int64_t max_quiet_ms = 0;
    std::uint64_t run_hash = 0xcbf29ce484222325ull;
    std::array<std::uint64_t, invariant_names.size()> by_invariant{};
    std::uint64_t violations = 0;
    for (std::uint64_t seed = c.first_seed; seed < c.first_seed + c.seeds; ++seed) {
        const auto r = run_seed<classic_types>(seed, c.cfg);
        run_hash = (run_hash ^ r.hash) * 0x100000001b3ull;
        for (std::size_t k = 0; k < fault_kinds; ++k) total.faults[k] += r.st.faults[k];
        total.operations += r.st.operations;
        total.syncs += r.st.syncs;
        total.conflicts += r.st.conflicts;
        total.crashes += r.st.crashes;
        total.pushed += r.st.pushed;
        total.failed_left += r.st.failed_left;
        max_quiet_rounds = std::max(max_quiet_rounds, r.st.quiet_rounds);
        max_quiet_ms = std::max(max_quiet_ms, r.st.quiet_time_ms);
        if (r.violations.empty()) {
            ++passed;
            continue;
        }
        ++failed;
        violations += r.violations.size();
        std::array<bool, invariant_names.size()> seen{};
        for (const auto& v : r.violations) seen[static_cast<std::size_t>(v.invariant)] = true;
        for (std::size_t k = 0; k < seen.size(); ++k) by_invariant[k] += seen[k] ? 1 : 0;
        std::cout << "seed " << seed << " FAILED (" << r.violations.size() << " violations, trace hash " << hex(r.hash)
                  << "):\n";
        print_violations(r, 5);
        std::cout << "  replay: " << replay_command(argv[0], seed, c.cfg) << '\n';
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    const auto threshold =
        static_cast<std::uint64_t>(std::ceil(500.0 * static_cast<double>(c.seeds) / 2000.0));
    bool toothless = false;
    std::cout << c.seeds << " seeds (" << c.first_seed << ".." << (c.first_seed + c.seeds - 1) << "), "
              << client_count << " clients x " << c.cfg.ops << " ops: " << total.operations << " operations, "
              << total.syncs << " syncs, " << total.pushed << " ops pushed, " << total.conflicts
              << " conflicts/server deletions reported\n";
    std::cout << "faults fired (each must reach " << threshold << " = 500 per 2000 seeds, scaled to " << c.seeds
              << " seeds):\n";
    for (std::size_t k = 0; k < fault_kinds; ++k) {
        const bool low = total.faults[k] < threshold;
        toothless = toothless || low;
        std::cout << "  " << fault_names[k] << ": " << total.faults[k] << (low ? "  << TOOTHLESS" : "") << '\n';
    }
    std::cout << "  (of the restarts, " << total.crashes << " crashed mid-push; clock jumps "
              << (c.cfg.clock_back ? "forward and backward" : "forward only: --clock-back adds backward ones") << ")\n";
    std::cout << "quiet phase: at most " << max_quiet_rounds << " rounds, " << max_quiet_ms / 1000
              << " s of simulated time; " << total.failed_left << " failed records kept at the end\n";
    std::cout << "violations: " << violations;
    for (std::size_t k = 0; k < by_invariant.size(); ++k) {
        if (by_invariant[k]) std::cout << ", " << invariant_names[k] << ": " << by_invariant[k] << " seeds";
    }
    std::cout << '\n';
    std::cout << "run hash " << hex(run_hash) << ", " << secs << " s\n";
    if (toothless) std::cout << "TOOTHLESS: some fault kind fired fewer than " << threshold << " times\n";
    std::cout << passed << " passed, " << failed << " failed\n";
    return failed == 0 && !toothless ? 0 : 1;
}
