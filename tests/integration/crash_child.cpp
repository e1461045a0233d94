// The client process of the SQLite crash test (tests/integration/test_sqlite_crash.cpp).
//
//   tether_crash_child <client.db> <server.db> <seed> <start-ms> [<fault-rate> [<stall-after-push>]]
//
// Opens <client.db> with sqlite_storage (synchronous = FULL) and an engine that
// syncs with the durable server in <server.db>, then runs a seeded loop of
// create / update / remove / sync until it is killed. It reports on stdout, one
// line per write(2) (atomic on a pipe), before and after each operation:
//
//   try create <json>            ack create <local-id> <json>
//   try update <local-id> <json> ack update <local-id> <json>   (or nack update <local-id>)
//   try remove <local-id>        ack remove <local-id>          (or nack remove <local-id>)
//   try sync                     ack sync
//
// An "ack" is written only once the engine has returned success, i.e. once the
// write is committed: the parent holds the store to every ack. A "try" without
// its answer is the operation the kill interrupted. With <stall-after-push> N > 0,
// the process writes "stall" once its N-th push has committed on the server and
// then waits to be killed: the moment when the server has applied a batch whose
// response the client has not yet stored. Errors go to stderr and end the
// process with exit code 2; exit code 3 means it ran out of operations without
// being killed.
#include "crash_server.hpp"
#include "support/entities.hpp"

#include <tether/backoff/exponential.hpp>
#include <tether/clock/manual.hpp>
#include <tether/conflict/client_wins.hpp>
#include <tether/core/entity.hpp>
#include <tether/core/error.hpp>
#include <tether/engine/options.hpp>
#include <tether/engine/sync_engine.hpp>
#include <tether/storage/sqlite.hpp>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

using tether_test::Job;

/// Writes one whole line to stdout with write(2): no buffering, so what the
/// parent reads is exactly what happened before the kill.
void report(const std::string& line) {
    const std::string out = line + '\n';
    std::size_t done = 0;
    while (done < out.size()) {
        const auto n = ::write(STDOUT_FILENO, out.data() + done, out.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) std::_Exit(2);  // the parent is gone
        done += static_cast<std::size_t>(n);
    }
}

[[noreturn]] void die(const std::string& what, const tether::error& e) {
    std::ostringstream why;
    why << e;
    std::fprintf(stderr, "tether_crash_child: %s: %s\n", what.c_str(), why.str().c_str());
    std::exit(2);
}

std::string json_of(const Job& j) { return tether::entity_ops<Job>::to_json(j).dump(); }

}  // namespace

int main(int argc, char** argv) {
    if (argc < 5) {
        std::fprintf(stderr, "usage: %s <client.db> <server.db> <seed> <start-ms> [<fault-rate> [<stall-after-push>]]\n",
                     argv[0]);
        return 2;
    }
    const std::string client_path = argv[1];
    const std::string server_path = argv[2];
    const std::uint64_t seed = std::strtoull(argv[3], nullptr, 10);
    const std::int64_t start_ms = std::strtoll(argv[4], nullptr, 10);
    const double fault_rate = argc > 5 ? std::strtod(argv[5], nullptr) : 0.1;
    const long stall_after = argc > 6 ? std::strtol(argv[6], nullptr, 10) : 0;

    auto db = tether::sqlite_database::open(client_path, {.synchronous = tether::sqlite_options::sync_mode::full});
    if (!db) die("open " + client_path, db.error());

    tether::manual_clock clock{tether::timestamp{std::chrono::milliseconds{start_ms}}};
    tether_test::durable_transport transport{server_path, "alice", fault_rate, seed};
    if (stall_after > 0) {
        transport.on_push_committed([stall_after, pushes = 0L]() mutable {
            if (++pushes != stall_after) return;
            report("stall");
            for (;;) ::pause();  // until the parent's SIGKILL
        });
    }
    auto engine = tether::make_engine<Job>(
        tether::sqlite_storage{*db}, transport, clock,
        tether::client_wins{},
        tether::exponential_backoff{.base = std::chrono::seconds{1}, .cap = std::chrono::seconds{10}, .max_attempts = 0},
        tether::engine_options{.id_seed = seed, .pull_limit = 16});
    engine.on_log([](tether::log_level level, std::string_view message) {
        if (level >= tether::log_level::error) {
            std::fprintf(stderr, "tether_crash_child: engine: %.*s\n", static_cast<int>(message.size()), message.data());
        }
    });

    // The records this process may edit: those alive when it starts, and its own.
    // Half of the edits go to creates an earlier process left unconfirmed (no
    // server id: the server may or may not have them, if that process was killed
    // in the middle of a push), so that such leftovers are edited and removed
    // before a sync has had a chance to tidy them up.
    std::vector<tether::local_id> live;
    std::vector<tether::local_id> leftovers;
    {
        auto all = engine.list();
        if (!all) die("list", all.error());
        for (const auto& r : *all) {
            if (r.deleted) continue;
            live.push_back(r.id);
            if (!r.server_id) leftovers.push_back(r.id);
        }
    }

    std::mt19937_64 rng{seed};
    auto below = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
    auto pick = [&]() -> std::size_t {
        if (!leftovers.empty() && below(2) == 0) {
            const auto it = std::find(live.begin(), live.end(), leftovers[below(leftovers.size())]);
            if (it != live.end()) return static_cast<std::size_t>(it - live.begin());
        }
        return below(live.size());
    };

    for (int op = 0; op < 100000; ++op) {
        clock.advance(std::chrono::seconds{1});
        const auto dice = below(100);
        if (dice < 35 || live.empty()) {
            const Job job{"job-" + std::to_string(seed) + "-" + std::to_string(op), static_cast<int>(below(100)),
                          "/audio/" + std::to_string(below(1000000)) + ".m4a"};
            report("try create " + json_of(job));
            auto r = engine.create(job, static_cast<tether::priority>(below(4)));
            if (!r) die("create", r.error());
            live.push_back(r->id);
            report("ack create " + r->id.to_string() + " " + json_of(r->value));
        } else if (dice < 70) {
            const std::size_t i = pick();
            const auto id = live[i];
            auto cur = engine.get(id);
            if (!cur) {
                if (cur.error().code != tether::errc::not_found) die("get", cur.error());
                live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));  // erased by a sync
                continue;
            }
            Job next = cur->value;
            if (below(2) == 0) next.progress = static_cast<int>(below(1000));
            else next.title = "t" + std::to_string(rng() % 100000);
            report("try update " + id.to_string() + " " + json_of(next));
            auto r = engine.update(id, next);
            if (!r) {
                if (r.error().code != tether::errc::not_found && r.error().code != tether::errc::invalid_state) {
                    die("update", r.error());
                }
                live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
                report("nack update " + id.to_string());
                continue;
            }
            report("ack update " + id.to_string() + " " + json_of(r->value));
        } else if (dice < 82) {
            const std::size_t i = pick();
            const auto id = live[i];
            live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
            report("try remove " + id.to_string());
            auto r = engine.remove(id);
            if (!r) {
                if (r.error().code != tether::errc::not_found) die("remove", r.error());
                report("nack remove " + id.to_string());
                continue;
            }
            report("ack remove " + id.to_string());
        } else {
            report("try sync");
            auto r = engine.sync();
            if (!r) die("sync", r.error());
            report("ack sync");
        }
    }
    return 3;
}
