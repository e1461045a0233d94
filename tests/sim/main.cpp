// tether_sim: the deterministic simulator (see workload.hpp and invariants.hpp).
//
//   tether_sim [--seeds N] [--first-seed S] [--ops N] [--clock-back] [--mode M[,M...]] [--knobs K[,K...]]
//   tether_sim --replay SEED [--ops N] [--clock-back] [--mode M] [--knobs K,...] [--verbose]
//   tether_sim --check-determinism SEED [--ops N] [--clock-back] [--mode M]
//
// Each seed runs one mode: the only one given, or one drawn per seed from the
// list. Prints a summary per mode (seeds, operations, faults fired per kind,
// violations) and ends with the line `N passed, M failed`. Exits non-zero on
// any violation, or when the run was toothless (a fault kind fired fewer times
// than its threshold, scaled to the number of seeds of the mode: 500 per 2,000
// seeds for the network faults, 200 per 1,000 hostile seeds for the hostile kinds).
#include "sim.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace tether_sim;

struct cli {
    std::uint64_t seeds = 2000;
    std::uint64_t first_seed = 1;
    std::optional<std::uint64_t> replay;
    std::optional<std::uint64_t> determinism;
    std::vector<mode> modes{mode::classic};
    config cfg;
};

[[noreturn]] void usage(const char* argv0, const std::string& why) {
    std::cerr << argv0 << ": " << why << "\nusage: " << argv0
              << " [--seeds N] [--first-seed S] [--ops N] [--clock-back] [--mode M[,M...]] [--knobs K[,K...]]"
                 " [--strict-restore] [--replay SEED [--verbose]] [--check-determinism SEED]\n"
                 "  modes: classic hostile policies sqlite rich threaded live live-nopoll; knobs (hostile): filler omit-ids bad-pages value-limit admin restore,"
                 " all, none\n";
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

std::vector<std::string> list(const char* argv0, int& i, int argc, char** argv) {
    if (i + 1 >= argc) usage(argv0, std::string{argv[i]} + " needs a list");
    std::vector<std::string> out;
    std::string text = argv[++i];
    std::size_t at = 0;
    while (at <= text.size()) {
        const auto comma = std::min(text.find(',', at), text.size());
        out.push_back(text.substr(at, comma - at));
        at = comma + 1;
    }
    return out;
}

std::vector<mode> parse_modes(const char* argv0, int& i, int argc, char** argv) {
    std::vector<mode> out;
    for (const auto& name : list(argv0, i, argc, argv)) {
        bool known = false;
        for (std::size_t m = 0; m < mode_count; ++m) {
            if (mode_names[m] == name) {
                out.push_back(static_cast<mode>(m));
                known = true;
            }
        }
        if (!known) usage(argv0, "unknown mode " + name);
    }
    return out;
}

unsigned parse_knobs(const char* argv0, int& i, int argc, char** argv) {
    unsigned out = 0;
    for (const auto& name : list(argv0, i, argc, argv)) {
        if (name == "all") {
            out |= knob_all;
            continue;
        }
        if (name == "none") continue;
        bool known = false;
        for (std::size_t k = 0; k < knob_names.size(); ++k) {
            if (knob_names[k] == name) {
                out |= 1u << k;
                known = true;
            }
        }
        if (!known) usage(argv0, "unknown knob " + name);
    }
    return out;
}

std::string knob_list(unsigned knobs) {
    if (knobs == knob_all) return "all";
    std::string out;
    for (std::size_t k = 0; k < knob_names.size(); ++k)
        if (knobs & (1u << k)) out += (out.empty() ? "" : ",") + std::string{knob_names[k]};
    return out.empty() ? "none" : out;
}

/// The mode seed `seed` runs: the only one given, or one drawn from the list.
mode mode_of(const std::vector<mode>& modes, std::uint64_t seed) {
    if (modes.size() == 1) return modes.front();
    return modes[mix64(seed ^ 0x30DE5ull) % modes.size()];
}

/// The rich mode's entity for `seed`: 0 Survey (Hana), 1 Reading (its own JSON).
std::size_t rich_entity(std::uint64_t seed) { return mix64(seed ^ 0x41C4ull) & 1; }
inline constexpr std::array<std::string_view, 2> rich_entity_names{"Survey (Hana)", "Reading (own to_json/from_json)"};

seed_result run(std::uint64_t seed, const config& cfg, mode m) {
    switch (m) {
        case mode::classic:
        case mode::hostile: return run_classic(seed, cfg, m);
        case mode::policies: return run_policies(seed, cfg);
        case mode::sqlite: return run_sqlite(seed, cfg);
        case mode::rich: return run_rich(seed, cfg, rich_entity(seed));
        case mode::threaded: return run_threaded(seed, cfg);
        case mode::live:
        case mode::live_nopoll: return run_live(seed, cfg, m);
    }
    return {};
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
        else if (a == "--mode") c.modes = parse_modes(argv[0], i, argc, argv);
        else if (a == "--knobs") c.cfg.knobs = parse_knobs(argv[0], i, argc, argv);
        else if (a == "--strict-restore") c.cfg.strict_restore = true;
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
std::string replay_command(const char* argv0, std::uint64_t seed, const config& cfg, mode m) {
    std::string cmd = std::string{argv0} + " --replay " + std::to_string(seed) + " --ops " + std::to_string(cfg.ops) +
                      (cfg.clock_back ? " --clock-back" : "");
    if (m != mode::classic) cmd += " --mode " + std::string{mode_names[static_cast<std::size_t>(m)]};
    if (m == mode::hostile && cfg.knobs != knob_all) cmd += " --knobs " + knob_list(cfg.knobs);
    if (m == mode::hostile && cfg.strict_restore) cmd += " --strict-restore";
    return cmd + " --verbose";
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

int run_replay(const char* argv0, std::uint64_t seed, config cfg, mode m) {
    auto r = run(seed, cfg, m);
    std::cout << "seed " << seed << ": " << r.st.operations << " operations, " << r.st.syncs << " syncs, "
              << r.violations.size() << " violations, trace hash " << hex(r.hash) << '\n';
    if (!r.violations.empty()) {
        print_violations(r, 20);
        std::cout << "replay: " << replay_command(argv0, seed, cfg, m) << '\n';
    }
    std::cout << (r.violations.empty() ? 1 : 0) << " passed, " << (r.violations.empty() ? 0 : 1) << " failed\n";
    return r.violations.empty() ? 0 : 1;
}

int run_determinism(std::uint64_t seed, config cfg, mode m) {
    cfg.verbose = false;
    const auto a = run(seed, cfg, m);
    const auto b = run(seed, cfg, m);
    const bool same = a.hash == b.hash && a.violations.size() == b.violations.size() &&
                      a.st.operations == b.st.operations && a.st.faults == b.st.faults;
    std::cout << "seed " << seed << ": trace hash " << hex(a.hash) << " then " << hex(b.hash)
              << (same ? " (identical)" : " (DIFFERENT: the run is not deterministic)") << '\n';
    std::cout << (same ? 1 : 0) << " passed, " << (same ? 0 : 1) << " failed\n";
    return same ? 0 : 1;
}



/// What the seeds of one mode did.
struct mode_total {
    std::uint64_t seeds = 0;
    std::uint64_t passed = 0;
    std::uint64_t failed = 0;
    stats st;
    std::uint64_t max_quiet_rounds = 0;
    std::int64_t max_quiet_ms = 0;
    std::array<std::uint64_t, invariant_names.size()> by_invariant{};
    std::uint64_t violations = 0;
    std::array<std::uint64_t, policy_count> policy_seeds{};
    std::array<std::uint64_t, policy_count> policy_failed{};
    std::array<std::uint64_t, policy_count> policy_conflicts{};
    std::array<std::array<std::uint64_t, 3>, policy_count> policy_decisions{};
    std::array<std::uint64_t, 2> entity_seeds{};
};

/// The toothless threshold of fault kind `k` for `seeds` seeds of mode `m`
/// (0: the kind is not expected in that mode).
std::uint64_t threshold(mode m, std::size_t k, std::uint64_t seeds, unsigned knobs) {
    const bool live = m == mode::live || m == mode::live_nopoll;
    if (static_cast<fault>(k) == fault::refused_page_item) {  // the hostile server's, with bad pages
        if (m != mode::hostile || !(knobs & knob_bad_pages)) return 0;
        return static_cast<std::uint64_t>(std::ceil(200.0 * static_cast<double>(seeds) / 1000.0));
    }
    if (k >= threaded_fault_end) {  // the live modes' kinds; no periodic runs without polling
        if (!live || (m == mode::live_nopoll && static_cast<fault>(k) == fault::run_scheduled)) return 0;
        return static_cast<std::uint64_t>(std::ceil(200.0 * static_cast<double>(seeds) / 1000.0));
    }
    if (live && k >= classic_fault_kinds) return 0;
    if (m == mode::threaded) {  // network faults and clock jumps only, and its own kind
        const auto f = static_cast<fault>(k);
        if (f == fault::reject_op || f == fault::restart || f == fault::edit_in_flight) return 0;
        if (k >= classic_fault_kinds && f != fault::racing_write) return 0;
    }
    if (k < classic_fault_kinds) return static_cast<std::uint64_t>(std::ceil(500.0 * static_cast<double>(seeds) / 2000.0));
    if (k >= rich_fault_end) {
        if (m != mode::threaded) return 0;
        return static_cast<std::uint64_t>(std::ceil(200.0 * static_cast<double>(seeds) / 1000.0));
    }
    if (k >= sqlite_fault_end) {
        if (m != mode::rich) return 0;
        return static_cast<std::uint64_t>(std::ceil(200.0 * static_cast<double>(seeds) / 1000.0));
    }
    if (k >= hostile_fault_end) {
        if (m != mode::sqlite) return 0;
        return static_cast<std::uint64_t>(std::ceil(200.0 * static_cast<double>(seeds) / 1000.0));
    }
    if (m != mode::hostile) return 0;
    static constexpr std::array<unsigned, hostile_fault_end - classic_fault_kinds> needs{
        0, knob_filler, knob_omit_ids, knob_bad_pages, knob_value_limit, knob_admin, knob_restore, knob_restore};
    const unsigned need = needs[k - classic_fault_kinds];
    if (need != 0 && !(knobs & need)) return 0;
    return static_cast<std::uint64_t>(std::ceil(200.0 * static_cast<double>(seeds) / 1000.0));
}

}  // namespace

int main(int argc, char** argv) {
    const cli c = parse(argc, argv);
    if (c.replay) return run_replay(argv[0], *c.replay, c.cfg, mode_of(c.modes, *c.replay));
    if (c.determinism) return run_determinism(*c.determinism, c.cfg, mode_of(c.modes, *c.determinism));

    const auto t0 = std::chrono::steady_clock::now();
    std::array<mode_total, mode_count> totals{};
    std::uint64_t run_hash = 0xcbf29ce484222325ull;
    for (std::uint64_t seed = c.first_seed; seed < c.first_seed + c.seeds; ++seed) {
        const mode m = mode_of(c.modes, seed);
        auto& t = totals[static_cast<std::size_t>(m)];
        const auto r = run(seed, c.cfg, m);
        ++t.seeds;
        run_hash = (run_hash ^ r.hash) * 0x100000001b3ull;
        for (std::size_t k = 0; k < fault_kinds; ++k) t.st.faults[k] += r.st.faults[k];
        t.st.operations += r.st.operations;
        t.st.syncs += r.st.syncs;
        t.st.conflicts += r.st.conflicts;
        t.st.crashes += r.st.crashes;
        t.st.pushed += r.st.pushed;
        t.st.failed_left += r.st.failed_left;
        t.st.sqlite_clients += r.st.sqlite_clients;
        t.st.rollbacks += r.st.rollbacks;
        t.st.live_applied += r.st.live_applied;
        t.st.live_fetches += r.st.live_fetches;
        t.st.live_duplicates += r.st.live_duplicates;
        t.st.append_chains += r.st.append_chains;
        t.max_quiet_rounds = std::max(t.max_quiet_rounds, r.st.quiet_rounds);
        t.max_quiet_ms = std::max(t.max_quiet_ms, r.st.quiet_time_ms);
        if (m == mode::rich) ++t.entity_seeds[rich_entity(seed)];
        const auto p = static_cast<std::size_t>(r.policy);
        ++t.policy_seeds[p];
        t.policy_conflicts[p] += r.st.conflicts;
        for (std::size_t d = 0; d < 3; ++d) t.policy_decisions[p][d] += r.st.decisions[d];
        if (!r.violations.empty()) ++t.policy_failed[p];
        if (r.violations.empty()) {
            ++t.passed;
            continue;
        }
        ++t.failed;
        t.violations += r.violations.size();
        std::array<bool, invariant_names.size()> seen{};
        for (const auto& v : r.violations) seen[static_cast<std::size_t>(v.invariant)] = true;
        for (std::size_t k = 0; k < seen.size(); ++k) t.by_invariant[k] += seen[k] ? 1 : 0;
        std::cout << "seed " << seed << " (" << mode_names[static_cast<std::size_t>(m)] << ") FAILED ("
                  << r.violations.size() << " violations, trace hash " << hex(r.hash) << "):\n";
        print_violations(r, 5);
        std::cout << "  replay: " << replay_command(argv[0], seed, c.cfg, m) << '\n';
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    bool toothless = false;
    std::uint64_t passed = 0;
    std::uint64_t failed = 0;
    std::cout << c.seeds << " seeds (" << c.first_seed << ".." << (c.first_seed + c.seeds - 1) << "), "
              << client_count << " clients x " << c.cfg.ops << " ops, clock jumps "
              << (c.cfg.clock_back ? "forward and backward" : "forward only (--clock-back adds backward ones)")
              << "\n";
    for (std::size_t mi = 0; mi < mode_count; ++mi) {
        const auto& t = totals[mi];
        if (t.seeds == 0) continue;
        const auto m = static_cast<mode>(mi);
        passed += t.passed;
        failed += t.failed;
        std::cout << "mode " << mode_names[mi] << (m == mode::hostile ? " (knobs " + knob_list(c.cfg.knobs) + ")" : "")
                  << ": " << t.seeds << " seeds, " << t.st.operations << " operations ("
                  << t.st.operations / (t.seeds * client_count) << " per device), " << t.st.syncs << " syncs, "
                  << t.st.pushed << " ops pushed, " << t.st.conflicts << " conflicts/server deletions reported\n";
        std::cout << "  faults fired (threshold for " << t.seeds << " seeds in brackets):\n";
        for (std::size_t k = 0; k < fault_kinds; ++k) {
            const auto need = threshold(m, k, t.seeds, c.cfg.knobs);
            if (need == 0 && t.st.faults[k] == 0) continue;
            const bool low = t.st.faults[k] < need;
            toothless = toothless || low;
            std::cout << "    " << fault_names[k] << ": " << t.st.faults[k] << " [" << need << "]"
                      << (low ? "  << TOOTHLESS" : "") << '\n';
        }
        std::cout << "  (of the restarts, " << t.st.crashes << " crashed mid-push)\n";
        if (m == mode::rich) {
            std::cout << "  entities: " << rich_entity_names[0] << " " << t.entity_seeds[0] << " seeds, "
                      << rich_entity_names[1] << " " << t.entity_seeds[1] << " seeds\n";
        }
        if (m == mode::sqlite) {
            std::cout << "  " << t.st.sqlite_clients << " of " << t.seeds * client_count << " devices on SQLite; "
                      << t.st.rollbacks << " db.transact batches rolled back\n";
        }
        if (m == mode::live || m == mode::live_nopoll) {
            std::cout << "  live events: " << t.st.live_applied << " applied as they came, " << t.st.live_duplicates
                      << " dropped as duplicates, " << t.st.live_fetches << " records fetched for gaps; "
                      << t.st.append_chains << " chains of appends checked after quiet\n";
        }
        if (m == mode::policies) {
            std::cout << "  per policy (seeds, failed, conflicts/server deletions, decisions take_server/keep_local/merged):\n";
            for (std::size_t p = 0; p < policy_count; ++p) {
                const bool low = t.policy_decisions[p][0] + t.policy_decisions[p][1] + t.policy_decisions[p][2] <
                                 threshold(m, 0, t.seeds, c.cfg.knobs) / policy_count;
                toothless = toothless || low;
                std::cout << "    " << policy_names[p] << ": " << t.policy_seeds[p] << " seeds, " << t.policy_failed[p]
                          << " failed, " << t.policy_conflicts[p] << " conflicts, decisions " << t.policy_decisions[p][0]
                          << "/" << t.policy_decisions[p][1] << "/" << t.policy_decisions[p][2]
                          << (low ? "  << TOOTHLESS" : "") << '\n';
            }
        }
        std::cout << "  quiet phase: at most " << t.max_quiet_rounds << " rounds, " << t.max_quiet_ms / 1000
                  << " s of simulated time; " << t.st.failed_left << " failed records kept at the end\n";
        std::cout << "  violations: " << t.violations;
        for (std::size_t k = 0; k < t.by_invariant.size(); ++k) {
            if (t.by_invariant[k]) std::cout << ", " << invariant_names[k] << ": " << t.by_invariant[k] << " seeds";
        }
        std::cout << "; " << t.passed << " passed, " << t.failed << " failed\n";
    }
    std::cout << "run hash " << hex(run_hash) << ", " << secs << " s\n";
    if (toothless) std::cout << "TOOTHLESS: some fault kind fired fewer times than its threshold\n";
    std::cout << passed << " passed, " << failed << " failed\n";
    return failed == 0 && !toothless ? 0 : 1;
}
