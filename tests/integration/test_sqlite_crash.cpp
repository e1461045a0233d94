// The SQLite crash test: a client process (tether_crash_child, crash_child.cpp)
// writes and syncs against a durable server (crash_server.hpp) and reports
// every acknowledged write over a pipe; this test SIGKILLs it again and again on
// the same files, and after each kill checks that
// - `PRAGMA integrity_check` is ok on client.db and server.db;
// - every acknowledged write is in client.db (the last acked value of each
//   record, or its acked removal), the one interrupted operation either done or
//   not, and no record is in a state it could never leave (failed, or deleted
//   but not pending deletion);
// - a fresh engine over a copy of both files syncs until quiet within a bounded
//   number of rounds, after which every record is synced and equal to the
//   server's copy, the server has at most one record per local id and no live
//   record the client lacks, and the acked writes are on the server.
// The next child then carries on from the files the kill left (not the copy),
// so leftovers of every crash meet the next process.
//
// Kills land at random (after a seeded number of answered operations, plus a
// seeded delay), or, one time in four, right after the child's N-th push has
// committed on the server and before the client has stored its response (the
// child stops there and says "stall"). The kill points are seeded, but where
// exactly a random SIGKILL lands is up to the scheduler: what is checked does
// not depend on it.
//
// Environment: TETHER_CRASH_SEED (default 20240611), TETHER_CRASH_KILLS
// (default 200), TETHER_CRASH_CHILD (the child executable; default: the one
// built with this test, passed as the TETHER_CRASH_CHILD macro by crash.cmake).
#include "crash_server.hpp"
#include "support/entities.hpp"
#include "support/temp_dir.hpp"

#include <tether/backoff/exponential.hpp>
#include <tether/clock/manual.hpp>
#include <tether/conflict/client_wins.hpp>
#include <tether/core/entity.hpp>
#include <tether/core/record.hpp>
#include <tether/core/status.hpp>
#include <tether/engine/options.hpp>
#include <tether/engine/sync_engine.hpp>
#include <tether/storage/sqlite.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

extern char** environ;  // NOLINT: POSIX, for posix_spawn

namespace {

namespace fs = std::filesystem;
using tether_test::Job;
using namespace std::chrono_literals;

/// A fresh directory, removed with everything in it at the end.
struct crash_dir : tether_test::temp_dir {
    crash_dir() : tether_test::temp_dir("tether-crash") {}
};

std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') return fallback;
    return std::strtoull(v, nullptr, 10);
}

std::string child_executable() {
    if (const char* v = std::getenv("TETHER_CRASH_CHILD"); v != nullptr && *v != '\0') return v;
#ifdef TETHER_CRASH_CHILD
    return TETHER_CRASH_CHILD;
#else
    return {};
#endif
}

std::uint64_t splitmix64(std::uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// ---- running and killing a child ------------------------------------------------

struct child_outcome {
    std::vector<std::string> lines;  ///< every complete line it reported
    bool killed = false;             ///< ended by our SIGKILL (as planned)
    std::string problem;             ///< why not, if it was not
};

/// Runs the child, SIGKILLs it once it has answered `kill_after` operations
/// (ack or nack) plus `delay`, or `delay` after the start when `kill_after` is
/// 0, or as soon as it reports "stall", and collects what it reported until the
/// pipe closes.
child_outcome run_and_kill(const std::vector<std::string>& argv, std::size_t kill_after,
                           std::chrono::microseconds delay) {
    child_outcome out;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error{"pipe2 failed"};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = 0;
    const int rc = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    if (rc != 0) {
        ::close(fds[0]);
        out.problem = "posix_spawn " + argv[0] + " failed: " + std::strerror(rc);
        return out;
    }

    bool sent = false;
    auto kill_now = [&] {
        if (sent) return;
        if (delay.count() > 0) std::this_thread::sleep_for(delay);
        ::kill(pid, SIGKILL);
        sent = true;
    };
    if (kill_after == 0) kill_now();

    std::string pending;
    std::size_t answered = 0;
    char buf[4096];
    for (;;) {
        pollfd p{fds[0], POLLIN, 0};
        const int ready = ::poll(&p, 1, 30000);
        if (ready == 0) {  // a liveness guard, not a timing assertion
            out.problem = "the child reported nothing for 30 s";
            ::kill(pid, SIGKILL);
            sent = true;
            continue;
        }
        if (ready < 0) {
            if (errno == EINTR) continue;
            throw std::runtime_error{"poll failed"};
        }
        const auto n = ::read(fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // EOF: the child is gone
        pending.append(buf, static_cast<std::size_t>(n));
        std::size_t start = 0;
        for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n', start)) {
            out.lines.push_back(pending.substr(start, nl - start));
            const auto& l = out.lines.back();
            if (l.starts_with("ack ") || l.starts_with("nack ")) ++answered;
            if (l == "stall" && !sent) {
                ::kill(pid, SIGKILL);
                sent = true;
            }
            start = nl + 1;
        }
        pending.erase(0, start);
        if (!sent && answered >= kill_after) kill_now();
    }
    ::close(fds[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && sent && out.problem.empty()) {
        out.killed = true;
    } else if (out.problem.empty()) {
        out.problem = WIFEXITED(status) ? "the child exited by itself with code " + std::to_string(WEXITSTATUS(status))
                                        : "the child died of signal " + std::to_string(WTERMSIG(status));
    }
    return out;
}

// ---- what the acks promise ----------------------------------------------------

/// The state of one record as the acks (and earlier checks) promise it.
struct promise {
    bool removed = false;
    std::string json;  ///< the value (when not removed), as entity_ops<Job>::to_json(...).dump()
};

/// The operation a kill interrupted: its "try" line was written, its answer not.
struct in_doubt {
    std::string kind;  ///< create, update, remove, sync
    std::string id;    ///< update, remove
    std::string json;  ///< create, update
};

struct ack_log {
    std::map<std::string, promise> acked;  ///< by local id, in the order the acks came
    std::optional<in_doubt> interrupted;
    std::size_t acks = 0;
};

/// Splits "word rest" into ("word", "rest").
std::pair<std::string, std::string> head(const std::string& s) {
    const auto sp = s.find(' ');
    if (sp == std::string::npos) return {s, {}};
    return {s.substr(0, sp), s.substr(sp + 1)};
}

/// Folds the child's lines into `log.acked`, and returns the interrupted op.
void fold(const std::vector<std::string>& lines, ack_log& log, std::vector<std::string>& violations) {
    log.interrupted.reset();
    for (const auto& line : lines) {
        auto [verb, rest] = head(line);
        auto [kind, args] = head(rest);
        if (verb == "try") {
            in_doubt d{kind, {}, {}};
            if (kind == "create") d.json = args;
            if (kind == "update" || kind == "remove") std::tie(d.id, d.json) = head(args);
            log.interrupted = d;
        } else if (verb == "ack") {
            log.interrupted.reset();
            ++log.acks;
            auto [id, json] = head(args);
            if (kind == "create" || kind == "update") log.acked[id] = promise{false, json};
            else if (kind == "remove") log.acked[id] = promise{true, {}};
        } else if (verb == "nack") {
            log.interrupted.reset();
        } else if (verb == "stall") {
            // the push of the interrupted sync has applied on the server
        } else {
            violations.push_back("unexpected line from the child: '" + line + "'");
        }
    }
}

// ---- checks ---------------------------------------------------------------------

std::string integrity(const std::string& path) {
    sqlite3* db = nullptr;
    std::string out;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
        out = std::string{"cannot open: "} + sqlite3_errmsg(db);
    } else {
        sqlite3_stmt* st = nullptr;
        if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, nullptr) != SQLITE_OK) {
            out = std::string{"cannot prepare: "} + sqlite3_errmsg(db);
        } else {
            while (sqlite3_step(st) == SQLITE_ROW) {
                const auto* t = sqlite3_column_text(st, 0);
                if (!out.empty()) out += "; ";
                out += t == nullptr ? "" : reinterpret_cast<const char*>(t);
            }
        }
        sqlite3_finalize(st);
    }
    sqlite3_close_v2(db);
    return out;
}

std::string json_of(const Job& j) { return tether::entity_ops<Job>::to_json(j).dump(); }

/// What the server file holds for alice's jobs.
struct server_row {
    std::string server_id;
    std::optional<std::string> local_id;
    std::uint64_t version = 0;
    std::string value;
    bool deleted = false;
};

std::vector<server_row> server_rows(const std::string& path) {
    std::vector<server_row> rows;
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
        sqlite3_stmt* st = nullptr;
        if (sqlite3_prepare_v2(db,
                               "SELECT server_id, local_id, version, value, deleted FROM records"
                               " WHERE user = 'alice' AND collection = 'jobs' ORDER BY version",
                               -1, &st, nullptr) == SQLITE_OK) {
            auto text = [&](int i) {
                const auto* t = sqlite3_column_text(st, i);
                return t == nullptr ? std::string{} : std::string{reinterpret_cast<const char*>(t)};
            };
            while (sqlite3_step(st) == SQLITE_ROW) {
                server_row r;
                r.server_id = text(0);
                if (sqlite3_column_type(st, 1) != SQLITE_NULL) r.local_id = text(1);
                r.version = static_cast<std::uint64_t>(sqlite3_column_int64(st, 2));
                r.value = text(3);
                r.deleted = sqlite3_column_int(st, 4) != 0;
                rows.push_back(std::move(r));
            }
        }
        sqlite3_finalize(st);
    }
    sqlite3_close_v2(db);
    return rows;
}

/// The client's records, read through a fresh `sqlite_store` (which also checks
/// that the file opens and every row decodes).
std::optional<std::vector<tether::record<Job>>> client_records(const std::string& path,
                                                               std::vector<std::string>& violations) {
    auto db = tether::sqlite_database::open(path);
    if (!db) {
        violations.push_back("client.db does not open: " + db.error().message);
        return std::nullopt;
    }
    tether::sqlite_store<Job> store{tether::sqlite_storage{*db}};
    auto all = store.list();
    if (!all) {
        violations.push_back("client.db does not list: " + all.error().message);
        return std::nullopt;
    }
    return std::move(*all);
}

/// The acks against the client file as the kill left it; then the promises
/// follow what is there (the interrupted op may or may not have happened).
void check_crash_state(const std::string& client, ack_log& log, std::vector<std::string>& violations) {
    auto records = client_records(client, violations);
    if (!records) return;
    std::map<std::string, const tether::record<Job>*> by_id;
    for (const auto& r : *records) by_id[r.id.to_string()] = &r;
    const auto& doubt = log.interrupted;

    for (const auto& r : *records) {
        const auto id = r.id.to_string();
        const std::string where = "record " + id + " (" + std::string{to_string(r.status)} + ")";
        if (r.status == tether::sync_status::failed) {
            violations.push_back(where + " is failed: " + (r.last_error ? r.last_error->message : std::string{}));
        }
        if (r.status == tether::sync_status::pending_deletion && !r.deleted) {
            violations.push_back(where + " is pending deletion but not deleted");
        }
        if (r.deleted && r.status != tether::sync_status::pending_deletion && r.status != tether::sync_status::error) {
            violations.push_back(where + " is deleted but its deletion is not on its way");
        }
        if (r.status == tether::sync_status::synced && (!r.server_id || !r.dirty.empty())) {
            violations.push_back(where + " is synced without a server id or with dirty fields");
        }
        if (!log.acked.contains(id)) {
            // Only the interrupted create may have left a record nobody acked.
            const bool ok = doubt && doubt->kind == "create" && doubt->json == json_of(r.value) && !r.deleted;
            if (!ok) violations.push_back(where + " was never acknowledged: " + json_of(r.value));
        }
    }
    for (const auto& [id, p] : log.acked) {
        const auto it = by_id.find(id);
        const tether::record<Job>* r = it == by_id.end() ? nullptr : it->second;
        const bool doubted = doubt && doubt->id == id;
        if (p.removed) {
            if (r != nullptr && !r->deleted) {
                violations.push_back("acked remove of " + id + " undone: the record is back, " +
                                     std::string{to_string(r->status)} + " " + json_of(r->value));
            }
            continue;
        }
        if (r == nullptr || r->deleted) {
            if (doubted && doubt->kind == "remove") continue;
            violations.push_back("acked write of " + id + " lost: the record is " + (r == nullptr ? "gone" : "deleted") +
                                 " (acked " + p.json + ")");
            continue;
        }
        const auto have = json_of(r->value);
        if (have != p.json && !(doubted && doubt->kind == "update" && have == doubt->json)) {
            violations.push_back("acked value of " + id + " lost: have " + have + ", acked " + p.json);
        }
    }
    // What is there is what the next process starts from: promise exactly that.
    for (auto& [id, p] : log.acked) {
        if (!by_id.contains(id)) p = promise{true, {}};
    }
    for (const auto& r : *records) {
        log.acked[r.id.to_string()] = r.deleted ? promise{true, {}} : promise{false, json_of(r.value)};
    }
}

using resume_engine = tether::sync_engine<Job, tether::sqlite_storage, tether_test::durable_transport,
                                          tether::manual_clock, tether::client_wins, tether::exponential_backoff,
                                          tether::engine_options>;

/// A copy of both databases as the kill left them (file and WAL; the shared
/// memory index is rebuilt from the WAL by whoever opens the copy), in `to`.
/// The checks run on the copy, so the next child finds the files exactly as its
/// killed predecessor left them, hot WAL and all.
void snapshot(const fs::path& from, const fs::path& to) {
    std::error_code ec;
    fs::remove_all(to, ec);
    fs::create_directory(to);
    for (const char* f : {"client.db", "client.db-wal", "server.db", "server.db-wal"}) {
        if (fs::exists(from / f)) fs::copy_file(from / f, to / f);
    }
}

/// Resumes on the snapshot: syncs until quiet, then compares client, server and
/// promises. Returns the number of sync rounds it took.
int check_resume(const fs::path& snap, const ack_log& log, std::uint64_t seed, tether::timestamp at,
                 std::vector<std::string>& violations) {
    const auto client = (snap / "client.db").string();
    const auto server = (snap / "server.db").string();

    int rounds = 0;
    {
        auto db = tether::sqlite_database::open(client);
        if (!db) {
            violations.push_back("resume: client.db does not open: " + db.error().message);
            return 0;
        }
        tether::manual_clock clock{at};
        resume_engine engine{tether::sqlite_storage{*db}, tether_test::durable_transport{server, "alice", 0.0, seed},
                             clock, tether::client_wins{},
                             tether::exponential_backoff{.base = 1s, .cap = 10s, .max_attempts = 0},
                             tether::engine_options{.id_seed = seed, .pull_limit = 16}};
        engine.on_log([&](tether::log_level level, std::string_view m) {
            if (level >= tether::log_level::warning) violations.push_back("resume: engine: " + std::string{m});
        });
        bool quiet = false;
        for (rounds = 1; rounds <= 12 && !quiet; ++rounds) {
            auto rep = engine.sync();
            if (!rep) {
                violations.push_back("resume: sync failed: " + rep.error().message);
                return rounds;
            }
            auto h = engine.health();
            if (!h) {
                violations.push_back("resume: health failed: " + h.error().message);
                return rounds;
            }
            quiet = !rep->failure && h->pending == 0 && h->pending_deletion == 0 && h->error == 0 && h->failed == 0 &&
                    rep->pushed == 0 && rep->pulled == 0;
            clock.advance(1h);
        }
        if (!quiet) {
            auto h = engine.health().value();
            violations.push_back("resume: not quiet after 12 sync rounds: " + std::to_string(h.pending) + " pending, " +
                                 std::to_string(h.pending_deletion) + " pending deletion, " + std::to_string(h.error) +
                                 " error, " + std::to_string(h.failed) + " failed");
        }
    }

    auto records = client_records(client, violations);
    if (!records) return rounds;
    const auto rows = server_rows(server);
    std::map<std::string, const server_row*> by_sid;
    std::map<std::string, int> per_local_id;
    for (const auto& row : rows) {
        by_sid[row.server_id] = &row;
        if (!row.local_id) violations.push_back("server record " + row.server_id + " has no local id");
        else if (++per_local_id[*row.local_id] > 1) violations.push_back("server holds two records of " + *row.local_id);
    }
    std::set<std::string> client_sids;
    std::map<std::string, const tether::record<Job>*> by_id;
    for (const auto& r : *records) {
        const auto id = r.id.to_string();
        by_id[id] = &r;
        const std::string where = "resume: record " + id + " (" + std::string{to_string(r.status)} + ")";
        if (r.status != tether::sync_status::synced || r.deleted || !r.dirty.empty()) {
            violations.push_back(where + " is not synced");
            continue;
        }
        if (!r.server_id) {
            violations.push_back(where + " has no server id");
            continue;
        }
        client_sids.insert(*r.server_id);
        const auto it = by_sid.find(*r.server_id);
        if (it == by_sid.end() || it->second->deleted) {
            violations.push_back(where + " is " + (it == by_sid.end() ? "missing" : "deleted") + " on the server");
            continue;
        }
        const auto& row = *it->second;
        if (row.local_id != id) violations.push_back(where + " has server id " + row.server_id + " of another record");
        if (row.version != r.version) {
            violations.push_back(where + " is at version " + std::to_string(r.version) + ", the server at " +
                                 std::to_string(row.version));
        }
        const auto server_value = tether::entity_ops<Job>::from_json(nlohmann::json::parse(row.value));
        if (!server_value || !(*server_value == r.value)) {
            violations.push_back(where + " differs from the server: " + json_of(r.value) + " vs " + row.value);
        }
    }
    for (const auto& row : rows) {
        if (!row.deleted && !client_sids.contains(row.server_id)) {
            violations.push_back("resume: server record " + row.server_id + " (local id " + row.local_id.value_or("-") +
                                 ") is live but the client does not have it: " + row.value);
        }
    }
    for (const auto& [id, p] : log.acked) {
        const auto it = by_id.find(id);
        if (p.removed && it != by_id.end()) violations.push_back("resume: removed record " + id + " is back");
        if (!p.removed && it == by_id.end()) violations.push_back("resume: acked record " + id + " is gone");
        if (!p.removed && it != by_id.end() && json_of(it->second->value) != p.json) {
            violations.push_back("resume: acked value of " + id + " lost: have " + json_of(it->second->value) +
                                 ", acked " + p.json);
        }
    }
    return rounds;
}

}  // namespace

TEST_CASE("a client SIGKILLed at random moments loses no acked write and resyncs", "[sqlite][crash]") {
    const std::string child = child_executable();
    if (child.empty()) {
        FAIL("no crash child: build tether_crash_child (tests/integration/crash.cmake) or set TETHER_CRASH_CHILD");
    }
    const std::uint64_t seed = env_u64("TETHER_CRASH_SEED", 20240611);
    const std::uint64_t kills = env_u64("TETHER_CRASH_KILLS", 200);
    std::printf("crash test: seed %llu, %llu kills (TETHER_CRASH_SEED, TETHER_CRASH_KILLS)\n",
                static_cast<unsigned long long>(seed), static_cast<unsigned long long>(kills));
    std::fflush(stdout);

    crash_dir dir;
    const auto client = dir.file("client.db");
    const auto server = dir.file("server.db");
    std::mt19937_64 rng{seed};
    ack_log log;
    const auto started = std::chrono::steady_clock::now();
    std::size_t in_doubt_ops = 0;
    std::size_t max_rounds = 0;
    std::map<std::string, std::size_t> interrupted_kinds;
    std::size_t stalls = 0;

    for (std::uint64_t i = 0; i < kills; ++i) {
        const std::uint64_t child_seed = splitmix64(seed + i);
        const auto start = tether::manual_clock::default_start + std::chrono::hours{2} * static_cast<int>(i);
        std::size_t kill_after = static_cast<std::size_t>(rng() % 31);
        std::chrono::microseconds delay{0};
        std::uint64_t stall_after = 0;
        if (rng() % 4 == 0) {
            stall_after = 1 + rng() % 3;
            kill_after = 60;  // in case it never gets that far
        } else if (kill_after == 0) {
            delay = std::chrono::microseconds{rng() % 20000};
        } else if (rng() % 2 == 0) {
            delay = std::chrono::microseconds{rng() % 3000};
        }

        const auto run = run_and_kill({child, client, server, std::to_string(child_seed),
                                       std::to_string(start.time_since_epoch().count()), "0.1",
                                       std::to_string(stall_after)},
                                      kill_after, delay);
        if (!run.lines.empty() && run.lines.back() == "stall") ++stalls;
        std::vector<std::string> violations;
        if (!run.killed) violations.push_back(run.problem);
        fold(run.lines, log, violations);
        if (log.interrupted) {
            ++in_doubt_ops;
            ++interrupted_kinds[log.interrupted->kind];
        }

        const fs::path snap = dir.path / "check";
        snapshot(dir.path, snap);
        const auto snap_client = (snap / "client.db").string();
        const auto snap_server = (snap / "server.db").string();
        const auto ci = fs::exists(snap_client) ? integrity(snap_client) : std::string{"ok"};
        if (ci != "ok") violations.push_back("client.db integrity_check: " + ci);
        const auto si = fs::exists(snap_server) ? integrity(snap_server) : std::string{"ok"};
        if (si != "ok") violations.push_back("server.db integrity_check: " + si);
        if (violations.empty() && fs::exists(snap_client)) check_crash_state(snap_client, log, violations);
        if (violations.empty() && fs::exists(snap_client)) {
            const auto rounds = check_resume(snap, log, child_seed, start + 1h, violations);
            max_rounds = std::max(max_rounds, static_cast<std::size_t>(rounds));
        }

        if (!violations.empty()) {
            std::string report = "kill " + std::to_string(i + 1) + " of " + std::to_string(kills) + " (seed " +
                                 std::to_string(seed) + ", child seed " + std::to_string(child_seed) + ", killed ";
            if (!run.lines.empty() && run.lines.back() == "stall") {
                report += "after push " + std::to_string(stall_after) + " committed on the server";
            } else {
                report += "after " + std::to_string(kill_after) + " answers + " + std::to_string(delay.count()) + " us";
            }
            if (log.interrupted) report += ", interrupting '" + log.interrupted->kind + " " + log.interrupted->id + "'";
            report += "):";
            for (std::size_t k = 0; k < violations.size() && k < 25; ++k) report += "\n  " + violations[k];
            if (violations.size() > 25) report += "\n  ... " + std::to_string(violations.size() - 25) + " more";
            report += "\n  last lines of the child:";
            const auto& lines = run.lines;
            for (std::size_t k = lines.size() > 6 ? lines.size() - 6 : 0; k < lines.size(); ++k) {
                report += "\n    " + lines[k].substr(0, 160);
            }
            FAIL(report);
        }
    }

    const auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const auto rows = server_rows((dir.path / "check" / "server.db").string());  // after the last resume
    std::size_t live = 0;
    for (const auto& r : rows) live += r.deleted ? 0 : 1;
    std::printf("crash test: %llu kills (%zu right after a push committed on the server), %zu acked ops, %zu"
                " interrupted mid-op (create %zu, update %zu, remove %zu, sync %zu), server %zu records (%zu live),"
                " resume took at most %zu sync rounds, %.1f s\n",
                static_cast<unsigned long long>(kills), stalls, log.acks, in_doubt_ops, interrupted_kinds["create"],
                interrupted_kinds["update"], interrupted_kinds["remove"], interrupted_kinds["sync"], rows.size(), live,
                max_rounds, secs);
    std::fflush(stdout);
    REQUIRE(log.acks > kills);  // the children did work between kills
}
