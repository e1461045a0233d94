// The engine's local writes on sqlite_storage against raw SQLite doing the same
// commits, and due() on a table of 1,000,000 records (1% pending).
//
// Writes: `create` and `update` through the engine, each beside a raw SQLite
// baseline that commits the same row to the same table: the store's own CREATE
// TABLE / CREATE INDEX and upsert text (tether::detail::sqlite_table_sql), the
// same pragmas (WAL, synchronous FULL or NORMAL), prepared statements, the same
// ids, timestamps and column values, the entity serialized to JSON the same way
// (entity_ops<Job>::to_json(...).dump(), inside the timed loop on both sides).
// What the raw side leaves out is the engine: finding the record before an
// update (the store's record cache, or a read), status and dirty-field
// bookkeeping, hooks, and the store's transaction machinery.
// - single: one commit per write (BEGIN IMMEDIATE, upsert, COMMIT; the engine's
//   transaction also asks PRAGMA data_version, for its record cache);
// - batch100: 100 writes per commit, the engine's inside sqlite_database::transact
//   (each write joins it, no savepoint), the raw ones between one
//   BEGIN IMMEDIATE and COMMIT.
// The engine makes one read outside any transaction before timing (as an app
// does), so its store knows its table. Files live in a fresh directory under the
// system temp dir (on disk, not :memory:).
//
// Times are wall-clock (UseRealTime): with FULL a commit waits for fsync, which
// CPU time does not show. By default every benchmark runs 10 times, interleaved
// at random, and the medians count (flags on the command line override that).
// At the end the program prints, for FULL/NORMAL x single/batch100, both rates
// and engine/raw time per write (target: <= 1.15x), with the CPU-time ratio
// beside it: on a shared machine fsync latency swings, and the CPU ratio shows
// the engine's own cost.
//
// due: builds (once, untimed, about 10 s) a table of 1,000,000 records of which
// every 100th is pending, then times store.due(now, 100).
#include "support/job.hpp"
#include "support/runs.hpp"
#include "support/temp_dir.hpp"

#include <tether/clock/manual.hpp>
#include <tether/core/entity.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/record.hpp>
#include <tether/core/result.hpp>
#include <tether/engine/options.hpp>
#include <tether/engine/sync_engine.hpp>
#include <tether/storage/sqlite.hpp>
#include <tether/transport/loopback.hpp>

#include <benchmark/benchmark.h>
#include <sqlite3.h>

#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

namespace fs = std::filesystem;
using tether_bench::Job;
using sync_mode = tether::sqlite_options::sync_mode;

constexpr std::uint64_t id_seed = 42;
constexpr std::int64_t batch_size = 100;       // writes per commit in the batch benchmarks
constexpr std::size_t update_records = 1000;   // records the update benchmarks cycle through
constexpr std::int64_t due_records = 1000000;  // rows of the due() table
constexpr std::int64_t due_pending_every = 100;  // 1% pending
constexpr std::size_t due_limit = 100;

// ---- files -------------------------------------------------------------------------

/// The benchmarks' directory: a fresh one under the temp dir, removed at exit.
const fs::path& bench_dir() {
    static const tether_test::temp_dir d{"tether-bench-sqlite"};
    return d.path;
}

/// A fresh database file name in the benchmarks' directory (old files removed).
std::string fresh_file(const std::string& name) {
    const auto p = bench_dir() / (name + ".db");
    for (const char* suffix : {"", "-wal", "-shm"}) {
        std::error_code ec;
        fs::remove(p.string() + suffix, ec);
    }
    return p.string();
}

const char* mode_name(sync_mode m) { return m == sync_mode::full ? "full" : "normal"; }

// ---- the engine side ----------------------------------------------------------------

using sqlite_engine = tether::sync_engine<Job, tether::sqlite_storage, tether::loopback_transport,
                                          tether::manual_clock, tether::engine_options>;

/// An engine over a fresh database file (never syncs: the loopback server is unused).
struct engine_side {
    tether::sqlite_database db;
    std::unique_ptr<sqlite_engine> engine;

    engine_side(const std::string& name, sync_mode mode, const tether::manual_clock& clock)
        : db(tether::sqlite_database::open(fresh_file(name), {.synchronous = mode}).value()),
          engine(std::make_unique<sqlite_engine>(tether::sqlite_storage{db}, tether::loopback_transport{}, clock,
                                                 tether::engine_options{.id_seed = id_seed})) {
        // A read outside any transaction first, as an app makes: the store then
        // knows its table and stops probing sqlite_master on every call.
        (void)engine->health().value();
    }
};

// ---- the raw side ----------------------------------------------------------------------

/// Raw SQLite on the store's table layout: the same statements, prepared once.
class raw_side {
public:
    raw_side(const std::string& name, sync_mode mode) {
        const auto path = fresh_file(name);
        if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                            nullptr) != SQLITE_OK) {
            throw std::runtime_error{"raw: cannot open " + path};
        }
        sqlite3_extended_result_codes(db_, 1);
        sqlite3_busy_timeout(db_, 5000);
        const tether::detail::sqlite_table_sql sql{"jobs"};
        exec("PRAGMA journal_mode = WAL");
        exec(mode == sync_mode::full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
        exec(sql.create_table);
        exec(sql.create_due_index);
        exec(sql.create_status_index);
        begin_ = prepare("BEGIN IMMEDIATE");
        commit_ = prepare("COMMIT");
        upsert_ = prepare(sql.upsert);
    }
    raw_side(const raw_side&) = delete;
    raw_side& operator=(const raw_side&) = delete;
    ~raw_side() {
        for (auto* st : {begin_, commit_, upsert_}) sqlite3_finalize(st);
        sqlite3_close_v2(db_);
    }

    void begin() { run(begin_); }
    void commit() { run(commit_); }

    /// Writes the row the engine writes for a pending record never sent.
    void put(const tether::local_id& id, const Job& job, std::int64_t local_rev, std::string_view dirty,
             tether::timestamp created, tether::timestamp updated) {
        const std::string value = tether::entity_ops<Job>::to_json(job).dump();
        static constexpr std::string_view status = "pending";
        sqlite3_stmt* st = upsert_;
        sqlite3_bind_blob(st, 1, id.bytes().data(), 16, SQLITE_STATIC);
        sqlite3_bind_null(st, 2);
        sqlite3_bind_text(st, 3, status.data(), static_cast<int>(status.size()), SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, 0);
        sqlite3_bind_int64(st, 5, 0);
        sqlite3_bind_int64(st, 6, local_rev);
        sqlite3_bind_text(st, 7, dirty.data(), static_cast<int>(dirty.size()), SQLITE_STATIC);
        sqlite3_bind_int64(st, 8, 0);
        sqlite3_bind_null(st, 9);
        sqlite3_bind_null(st, 10);
        sqlite3_bind_int64(st, 11, static_cast<std::int64_t>(tether::priority::medium));
        sqlite3_bind_int64(st, 12, created.time_since_epoch().count());
        sqlite3_bind_int64(st, 13, updated.time_since_epoch().count());
        for (int i = 14; i <= 17; ++i) sqlite3_bind_null(st, i);
        sqlite3_bind_text(st, 18, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
        run(st);
    }

private:
    void exec(const std::string& sql) {
        if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
            throw std::runtime_error{"raw: " + sql + ": " + sqlite3_errmsg(db_)};
        }
    }
    sqlite3_stmt* prepare(const std::string& sql) {
        sqlite3_stmt* st = nullptr;
        if (sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr) != SQLITE_OK) {
            throw std::runtime_error{"raw: prepare " + sql + ": " + sqlite3_errmsg(db_)};
        }
        return st;
    }
    void run(sqlite3_stmt* st) {
        const int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) throw std::runtime_error{std::string{"raw: "} + sqlite3_errmsg(db_)};
    }

    sqlite3* db_ = nullptr;
    sqlite3_stmt* begin_ = nullptr;
    sqlite3_stmt* commit_ = nullptr;
    sqlite3_stmt* upsert_ = nullptr;
};

/// The raw side's records, made as the engine makes them (same ids, times, values).
struct raw_records {
    tether::manual_clock clock;
    tether::local_id_generator ids{id_seed};
    struct entry {
        tether::local_id id;
        Job job;
        std::int64_t local_rev;
        tether::timestamp created;
    };
    std::vector<entry> all;

    entry make(const Job& job) {
        const auto now = clock.now();
        return entry{ids(now), job, 1, now};
    }
};

// ---- create -------------------------------------------------------------------------------

void create_engine(benchmark::State& state, sync_mode mode, std::int64_t batch) {
    const auto jobs = tether_bench::make_jobs(1000);
    const tether::manual_clock clock;
    engine_side side{std::string{"create-engine-"} + mode_name(mode), mode, clock};
    std::size_t next = 0;
    for (auto _ : state) {
        if (batch == 1) {
            auto r = side.engine->create(jobs[next++ % jobs.size()]);
            if (!r) state.SkipWithError(r.error().message.c_str());
            benchmark::DoNotOptimize(r);
        } else {
            auto r = side.db.transact([&]() -> tether::result<void> {
                for (std::int64_t k = 0; k < batch; ++k) {
                    auto c = side.engine->create(jobs[next++ % jobs.size()]);
                    if (!c) return tether::unexpected{std::move(c).error()};
                    benchmark::DoNotOptimize(c);
                }
                return {};
            });
            if (!r) state.SkipWithError(r.error().message.c_str());
        }
    }
    state.SetItemsProcessed(state.iterations() * batch);
    state.counters["writes_per_commit"] = static_cast<double>(batch);
}

void create_raw(benchmark::State& state, sync_mode mode, std::int64_t batch) {
    const auto jobs = tether_bench::make_jobs(1000);
    raw_side raw{std::string{"create-raw-"} + mode_name(mode), mode};
    raw_records recs;
    std::size_t next = 0;
    for (auto _ : state) {
        raw.begin();
        for (std::int64_t k = 0; k < batch; ++k) {
            const auto e = recs.make(jobs[next++ % jobs.size()]);
            raw.put(e.id, e.job, 1, "[]", e.created, e.created);
        }
        raw.commit();
    }
    state.SetItemsProcessed(state.iterations() * batch);
    state.counters["writes_per_commit"] = static_cast<double>(batch);
}

// ---- update -------------------------------------------------------------------------------
// Records created (pending, never sent) before timing; each write changes one
// record's progress: the row gets the new value, local_rev + 1, dirty
// ["progress"] and a new updated_at.

void update_engine(benchmark::State& state, sync_mode mode, std::int64_t batch) {
    const auto jobs = tether_bench::make_jobs(update_records);
    const tether::manual_clock clock;
    engine_side side{std::string{"update-engine-"} + mode_name(mode), mode, clock};
    std::vector<tether::local_id> ids;
    auto filled = side.db.transact([&]() -> tether::result<void> {
        for (const auto& j : jobs) ids.push_back(side.engine->create(j).value().id);
        return {};
    });
    if (!filled) state.SkipWithError(filled.error().message.c_str());
    std::size_t next = 0;
    int progress = 0;
    auto one = [&] {
        const auto& id = ids[next++ % ids.size()];
        ++progress;
        return side.engine->update(id, [progress](Job& j) { j.progress = progress; });
    };
    for (auto _ : state) {
        if (batch == 1) {
            auto r = one();
            if (!r) state.SkipWithError(r.error().message.c_str());
            benchmark::DoNotOptimize(r);
        } else {
            auto r = side.db.transact([&]() -> tether::result<void> {
                for (std::int64_t k = 0; k < batch; ++k) {
                    auto u = one();
                    if (!u) return tether::unexpected{std::move(u).error()};
                    benchmark::DoNotOptimize(u);
                }
                return {};
            });
            if (!r) state.SkipWithError(r.error().message.c_str());
        }
    }
    state.SetItemsProcessed(state.iterations() * batch);
    state.counters["writes_per_commit"] = static_cast<double>(batch);
}

void update_raw(benchmark::State& state, sync_mode mode, std::int64_t batch) {
    const auto jobs = tether_bench::make_jobs(update_records);
    raw_side raw{std::string{"update-raw-"} + mode_name(mode), mode};
    raw_records recs;
    raw.begin();
    for (const auto& j : jobs) {
        recs.all.push_back(recs.make(j));
        const auto& e = recs.all.back();
        raw.put(e.id, e.job, 1, "[]", e.created, e.created);
    }
    raw.commit();
    std::size_t next = 0;
    int progress = 0;
    for (auto _ : state) {
        raw.begin();
        for (std::int64_t k = 0; k < batch; ++k) {
            auto& e = recs.all[next++ % recs.all.size()];
            e.job.progress = ++progress;
            e.local_rev += 1;
            raw.put(e.id, e.job, e.local_rev, R"(["progress"])", e.created, recs.clock.now());
        }
        raw.commit();
    }
    state.SetItemsProcessed(state.iterations() * batch);
    state.counters["writes_per_commit"] = static_cast<double>(batch);
}

// ---- due() on 1,000,000 records -------------------------------------------------------

/// Builds the due() table once: a tether database whose "jobs" table holds
/// `due_records` rows, every `due_pending_every`-th pending (priority cycling
/// low..critical), the rest synced. Rows go in through a raw connection in one
/// transaction (journal off while loading), after the store has made the table.
const std::string& due_database() {
    static const std::string path = [] {
        const auto file = fresh_file("due-1m");
        {
            auto db = tether::sqlite_database::open(file).value();
            tether::sqlite_store<Job> store{tether::sqlite_storage{db}};
            (void)store.counts().value();  // creates the table and its indexes
        }
        sqlite3* raw = nullptr;
        if (sqlite3_open(file.c_str(), &raw) != SQLITE_OK) throw std::runtime_error{"due: cannot open"};
        auto exec = [&](const char* sql) {
            if (sqlite3_exec(raw, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
                throw std::runtime_error{std::string{"due: "} + sql + ": " + sqlite3_errmsg(raw)};
            }
        };
        exec("PRAGMA journal_mode = DELETE");
        exec("PRAGMA synchronous = OFF");
        exec("BEGIN");
        const tether::detail::sqlite_table_sql sql{"jobs"};
        sqlite3_stmt* st = nullptr;
        if (sqlite3_prepare_v2(raw, sql.upsert.c_str(), -1, &st, nullptr) != SQLITE_OK) {
            throw std::runtime_error{"due: cannot prepare"};
        }
        tether::local_id_generator ids{id_seed};
        const auto base = tether::manual_clock::default_start;
        const auto jobs = tether_bench::make_jobs(1000);
        for (std::int64_t i = 0; i < due_records; ++i) {
            const auto at = base + std::chrono::milliseconds{i};
            const auto id = ids(at);
            const bool pending = i % due_pending_every == 0;
            const std::string value = tether::entity_ops<Job>::to_json(jobs[static_cast<std::size_t>(i % 1000)]).dump();
            std::string sid{"s"};  // not "s" + to_string(): GCC 12 -O3 warns (-Wrestrict, a false positive)
            sid += std::to_string(i + 1);
            sqlite3_bind_blob(st, 1, id.bytes().data(), 16, SQLITE_STATIC);
            if (pending) sqlite3_bind_null(st, 2);
            else sqlite3_bind_text(st, 2, sid.c_str(), -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 3, pending ? "pending" : "synced", -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 4, 0);
            sqlite3_bind_int64(st, 5, pending ? 0 : i + 1);
            sqlite3_bind_int64(st, 6, 1);
            sqlite3_bind_text(st, 7, "[]", -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 8, 0);
            sqlite3_bind_null(st, 9);
            sqlite3_bind_null(st, 10);
            sqlite3_bind_int64(st, 11, pending ? (i / due_pending_every) % 4 : 1);
            sqlite3_bind_int64(st, 12, at.time_since_epoch().count());
            sqlite3_bind_int64(st, 13, at.time_since_epoch().count());
            for (int c = 14; c <= 17; ++c) sqlite3_bind_null(st, c);
            sqlite3_bind_text(st, 18, value.c_str(), static_cast<int>(value.size()), SQLITE_STATIC);
            if (sqlite3_step(st) != SQLITE_DONE) throw std::runtime_error{std::string{"due: "} + sqlite3_errmsg(raw)};
            sqlite3_reset(st);
        }
        sqlite3_finalize(st);
        exec("COMMIT");
        sqlite3_close(raw);
        return file;
    }();
    return path;
}

void due_1m(benchmark::State& state) {
    const auto& file = due_database();
    auto db = tether::sqlite_database::open(file, {.check_integrity = false}).value();
    tether::sqlite_store<Job> store{tether::sqlite_storage{db}};
    const auto now = tether::manual_clock::default_start + std::chrono::hours{24};
    {
        const auto c = store.counts().value();
        if (c.pending != static_cast<std::size_t>(due_records / due_pending_every) ||
            c.synced != static_cast<std::size_t>(due_records - due_records / due_pending_every)) {
            state.SkipWithError("the due() table does not hold what it should");
            return;
        }
    }
    for (auto _ : state) {
        auto r = store.due(now, due_limit);
        if (!r || r->size() != due_limit) state.SkipWithError("due() did not return a full batch");
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(due_limit));
    state.counters["calls_per_second"] =
        benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

// ---- reporting -----------------------------------------------------------------------------

/// Seconds per write (per due() call for the due benchmark).
struct per_write {
    double wall = 0;
    double cpu = 0;
};

/// The console reporter, remembering each benchmark's wall and CPU time per write.
class wall_reporter : public benchmark::ConsoleReporter {
public:
    using benchmark::ConsoleReporter::ConsoleReporter;

    void ReportRuns(const std::vector<Run>& runs) override {
        benchmark::ConsoleReporter::ReportRuns(runs);
        for (const auto& run : runs) {
            const auto weight = tether_bench::weigh(run);
            if (weight == tether_bench::run_weight::none) continue;
            const auto per = run.counters.find("writes_per_commit");
            const double writes = per == run.counters.end() ? 1.0 : per->second.value;
            const double unit = benchmark::GetTimeUnitMultiplier(run.time_unit);
            auto& slot = seconds_per_write_[run.run_name.function_name];
            if (weight == tether_bench::run_weight::median || slot.wall == 0) {
                slot.wall = run.GetAdjustedRealTime() / unit / writes;
                slot.cpu = run.GetAdjustedCPUTime() / unit / writes;
            }
        }
    }

    /// Seconds per write, by registered name.
    [[nodiscard]] const std::map<std::string, per_write>& seconds_per_write() const noexcept {
        return seconds_per_write_;
    }

private:
    std::map<std::string, per_write> seconds_per_write_;
};

}  // namespace

int main(int argc, char** argv) {
    constexpr double target = 1.15;
    struct pair_spec {
        std::string op, mode, shape;
    };
    std::vector<pair_spec> pairs;
    for (const char* op : {"create", "update"}) {
        for (const sync_mode mode : {sync_mode::full, sync_mode::normal}) {
            for (const std::int64_t batch : {std::int64_t{1}, batch_size}) {
                const std::string shape = batch == 1 ? "single" : "batch" + std::to_string(batch);
                const std::string base = std::string{op} + "/" + shape + "/" + mode_name(mode);
                auto engine_fn = std::string_view{op} == "create" ? create_engine : update_engine;
                auto raw_fn = std::string_view{op} == "create" ? create_raw : update_raw;
                benchmark::RegisterBenchmark((base + "/engine").c_str(), engine_fn, mode, batch)->UseRealTime();
                benchmark::RegisterBenchmark((base + "/raw").c_str(), raw_fn, mode, batch)->UseRealTime();
                pairs.push_back({op, mode_name(mode), shape});
            }
        }
    }
    benchmark::RegisterBenchmark("due/1M_records_1pct_pending/limit100", due_1m)->UseRealTime();

    // Defaults for a shared, noisy machine (fsync latency varies a lot): 10
    // interleaved repetitions, medians only. Flags given on the command line come
    // later and win.
    std::vector<char*> args{argv[0]};
    std::string defaults[] = {"--benchmark_repetitions=10", "--benchmark_enable_random_interleaving=true",
                              "--benchmark_report_aggregates_only=true", "--benchmark_min_time=0.2"};
    for (auto& d : defaults) args.push_back(d.data());
    for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
    int args_count = static_cast<int>(args.size());
    benchmark::Initialize(&args_count, args.data());
    if (benchmark::ReportUnrecognizedArguments(args_count, args.data())) return 1;
    wall_reporter reporter{isatty(STDOUT_FILENO) != 0 ? benchmark::ConsoleReporter::OO_ColorTabular
                                                      : benchmark::ConsoleReporter::OO_Tabular};
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();

    const auto& measured = reporter.seconds_per_write();
    bool header = false;
    for (const auto& p : pairs) {
        const std::string base = p.op + "/" + p.shape + "/" + p.mode;
        const auto e = measured.find(base + "/engine");
        const auto r = measured.find(base + "/raw");
        if (e == measured.end() || r == measured.end()) continue;
        if (!header) {
            std::printf("\nengine on sqlite_storage vs raw SQLite, wall time per committed write (target <= %.2fx):\n",
                        target);
            std::printf("  writes/s from wall time; ratio = engine/raw time per write (wall, and CPU for reference)\n");
            std::printf("  %-6s %-6s %-8s %10s %10s %7s %-6s %7s\n", "op", "sync", "commit", "engine/s", "raw/s",
                        "ratio", "", "cpu");
            header = true;
        }
        const double ratio = e->second.wall / r->second.wall;
        std::printf("  %-6s %-6s %-8s %10.0f %10.0f %6.2fx %-6s %6.2fx", p.op.c_str(), p.mode.c_str(),
                    p.shape.c_str(), 1.0 / e->second.wall, 1.0 / r->second.wall, ratio,
                    ratio <= target ? "met" : "MISSED", e->second.cpu / r->second.cpu);
        std::printf("\n");
    }
    if (const auto d = measured.find("due/1M_records_1pct_pending/limit100"); d != measured.end()) {
        std::printf("\ndue(now, %zu) on %lld records (%lld pending): %.0f calls/s, %.0f records/s\n", due_limit,
                    static_cast<long long>(due_records), static_cast<long long>(due_records / due_pending_every),
                    1.0 / d->second.wall, static_cast<double>(due_limit) / d->second.wall);
    }
    std::fflush(stdout);
    return 0;
}
