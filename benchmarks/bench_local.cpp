// The engine's local write path (create, update, remove) on memory storage,
// each beside its floor measured in the same run: the same records, with the
// same id generation, kept straight in a std::unordered_map<local_id, record<Job>>.
// Prints the engine/floor ratio of CPU time per write at the end (target: 3x),
// and the cost of a create with a scheduler attached and its runner thread
// live (syncing the writes to a loopback server as they come) over one without
// (target: 1.1x; CPU time of the writing thread).
//
// The engine runs with a manual_clock (no clock syscalls), a fixed id seed and
// no watchers or hooks. Each benchmark works in batches of n records; building
// and tearing down the container around a batch is not timed, on either side.
#include "support/job.hpp"
#include "support/ratio_main.hpp"

#include <tether/clock/manual.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/record.hpp>
#include <tether/engine/options.hpp>
#include <tether/engine/scheduler.hpp>
#include <tether/engine/sync_engine.hpp>
#include <tether/storage/memory.hpp>
#include <tether/transport/loopback.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

using tether_bench::Job;

constexpr std::uint64_t id_seed = 42;

using local_engine = tether::sync_engine<Job, tether::memory_storage, tether::loopback_transport,
                                         tether::manual_clock, tether::engine_options>;

void make_engine(std::optional<local_engine>& engine, const tether::manual_clock& clock) {
    engine.emplace(tether::memory_storage{}, tether::loopback_transport{}, clock,
                   tether::engine_options{.id_seed = id_seed});
}

/// The floor: what any local store must do at least, with the same ids and records.
class floor_table {
public:
    explicit floor_table(tether::manual_clock clock) : clock_(std::move(clock)) {}

    tether::local_id create(const Job& job) {
        const auto now = clock_.now();
        tether::record<Job> r;
        r.id = ids_(now);
        r.value = job;
        r.status = tether::sync_status::pending;
        r.local_rev = 1;
        r.priority = tether::priority::medium;
        r.created_at = now;
        r.updated_at = now;
        const auto id = r.id;
        records_.emplace(id, std::move(r));
        return id;
    }

    bool update_progress(const tether::local_id& id, int progress) {
        auto it = records_.find(id);
        if (it == records_.end()) return false;
        it->second.value.progress = progress;
        it->second.local_rev += 1;
        return true;
    }

    /// The floor for an update: the updated record (built from the stored
    /// one, as an update must) inserted straight into the map.
    bool update_assign(const tether::local_id& id, int progress) {
        auto it = records_.find(id);
        if (it == records_.end()) return false;
        tether::record<Job> next = it->second;
        next.value.progress = progress;
        next.local_rev += 1;
        next.updated_at = clock_.now();
        records_.insert_or_assign(id, std::move(next));
        return true;
    }

    bool remove(const tether::local_id& id) { return records_.erase(id) == 1; }

private:
    tether::manual_clock clock_;
    tether::local_id_generator ids_{id_seed};
    std::unordered_map<tether::local_id, tether::record<Job>> records_;
};

std::vector<tether::local_id> fill(local_engine& engine, const std::vector<Job>& jobs) {
    std::vector<tether::local_id> ids;
    ids.reserve(jobs.size());
    for (const auto& job : jobs) ids.push_back(engine.create(job).value().id);
    return ids;
}

std::vector<tether::local_id> fill(floor_table& table, const std::vector<Job>& jobs) {
    std::vector<tether::local_id> ids;
    ids.reserve(jobs.size());
    for (const auto& job : jobs) ids.push_back(table.create(job));
    return ids;
}

// ---- create -----------------------------------------------------------------------

void create_engine(benchmark::State& state) {
    const auto jobs = tether_bench::make_jobs(static_cast<std::size_t>(state.range(0)));
    const tether::manual_clock clock;
    std::optional<local_engine> engine;
    for (auto _ : state) {
        state.PauseTiming();
        make_engine(engine, clock);
        state.ResumeTiming();
        for (const auto& job : jobs) {
            auto r = engine->create(job);
            benchmark::DoNotOptimize(r);
        }
        state.PauseTiming();
        engine.reset();
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
}

void create_floor(benchmark::State& state) {
    const auto jobs = tether_bench::make_jobs(static_cast<std::size_t>(state.range(0)));
    const tether::manual_clock clock;
    std::optional<floor_table> table;
    for (auto _ : state) {
        state.PauseTiming();
        table.emplace(clock);
        state.ResumeTiming();
        for (const auto& job : jobs) {
            auto id = table->create(job);
            benchmark::DoNotOptimize(id);
        }
        state.PauseTiming();
        table.reset();
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
}

void create_with_scheduler(benchmark::State& state, bool runner);

/// A create with a scheduler attached to the engine and its runner thread live:
/// every write notifies it, and the runner syncs them to a loopback server.
void create_scheduled(benchmark::State& state) { create_with_scheduler(state, true); }

/// The same without the runner thread: what notifying the scheduler costs a write.
void create_notified(benchmark::State& state) { create_with_scheduler(state, false); }

void create_with_scheduler(benchmark::State& state, bool runner) {
    const auto jobs = tether_bench::make_jobs(static_cast<std::size_t>(state.range(0)));
    const tether::manual_clock clock;
    std::optional<local_engine> engine;
    std::optional<tether::scheduler<local_engine, tether::manual_clock>> sched;
    std::size_t runs = 0;
    for (auto _ : state) {
        state.PauseTiming();
        make_engine(engine, clock);
        sched.emplace(*engine, clock, tether::scheduler_options{.run_at_start = false});
        if (runner) sched->start();
        state.ResumeTiming();
        for (const auto& job : jobs) {
            auto r = engine->create(job);
            benchmark::DoNotOptimize(r);
        }
        state.PauseTiming();
        sched->stop();
        if (auto last = sched->last_result(); last && *last) ++runs;
        sched.reset();
        engine.reset();
        state.ResumeTiming();
    }
    state.counters["batches_with_a_sync"] = static_cast<double>(runs);
    state.SetItemsProcessed(state.iterations() * state.range(0));
}

// ---- update -----------------------------------------------------------------------

void update_engine(benchmark::State& state) {
    const auto jobs = tether_bench::make_jobs(static_cast<std::size_t>(state.range(0)));
    const tether::manual_clock clock;
    std::optional<local_engine> engine;
    make_engine(engine, clock);
    const auto ids = fill(*engine, jobs);
    int progress = 0;
    for (auto _ : state) {
        ++progress;  // every pass changes every record
        for (const auto& id : ids) {
            auto r = engine->update(id, [progress](Job& j) { j.progress = progress; });
            benchmark::DoNotOptimize(r);
        }
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
}

/// The update floors: `Write` is `floor_table::update_progress` (in place) or
/// `floor_table::update_assign` (the updated record assigned into the map).
template <bool (floor_table::*Write)(const tether::local_id&, int)>
void update_floor(benchmark::State& state) {
    const auto jobs = tether_bench::make_jobs(static_cast<std::size_t>(state.range(0)));
    floor_table table{tether::manual_clock{}};
    const auto ids = fill(table, jobs);
    int progress = 0;
    for (auto _ : state) {
        ++progress;
        for (const auto& id : ids) {
            auto ok = (table.*Write)(id, progress);
            benchmark::DoNotOptimize(ok);
        }
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
}

// ---- remove -----------------------------------------------------------------------
// Records never pushed: the engine deletes them at once (no pending_deletion).

void remove_engine(benchmark::State& state) {
    const auto jobs = tether_bench::make_jobs(static_cast<std::size_t>(state.range(0)));
    const tether::manual_clock clock;
    std::optional<local_engine> engine;
    for (auto _ : state) {
        state.PauseTiming();
        make_engine(engine, clock);
        const auto ids = fill(*engine, jobs);
        state.ResumeTiming();
        for (const auto& id : ids) {
            auto r = engine->remove(id);
            benchmark::DoNotOptimize(r);
        }
        state.PauseTiming();
        engine.reset();
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
}

void remove_floor(benchmark::State& state) {
    const auto jobs = tether_bench::make_jobs(static_cast<std::size_t>(state.range(0)));
    const tether::manual_clock clock;
    std::optional<floor_table> table;
    for (auto _ : state) {
        state.PauseTiming();
        table.emplace(clock);
        const auto ids = fill(*table, jobs);
        state.ResumeTiming();
        for (const auto& id : ids) {
            auto ok = table->remove(id);
            benchmark::DoNotOptimize(ok);
        }
        state.PauseTiming();
        table.reset();
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
}

void register_pair(const char* engine_name, void (*engine_fn)(benchmark::State&), const char* floor_name,
                   void (*floor_fn)(benchmark::State&)) {
    for (auto* b : {benchmark::RegisterBenchmark(engine_name, engine_fn),
                    benchmark::RegisterBenchmark(floor_name, floor_fn)}) {
        b->Arg(1'000)->Arg(100'000)->Unit(benchmark::kMicrosecond);
    }
}

}  // namespace

int main(int argc, char** argv) {
    register_pair("create/engine", create_engine, "create/floor", create_floor);
    benchmark::RegisterBenchmark("create/scheduled", create_scheduled)
        ->Arg(1'000)->Arg(100'000)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("create/notified", create_notified)
        ->Arg(1'000)->Arg(100'000)->Unit(benchmark::kMicrosecond);
    register_pair("update/engine", update_engine, "update/floor", update_floor<&floor_table::update_progress>);
    register_pair("remove/engine", remove_engine, "remove/floor", remove_floor);
    benchmark::RegisterBenchmark("update/floor_assign", update_floor<&floor_table::update_assign>)
        ->Arg(1'000)->Arg(100'000)->Unit(benchmark::kMicrosecond);
    return tether_bench::run_with_ratios(argc, argv,
                                         {
                                             {"create engine/floor", "create/engine", "create/floor", 3.0},
                                             {"create with the scheduler's runner live/without", "create/scheduled",
                                              "create/engine", 1.1},
                                             {"create notifying a scheduler, no runner/without (informational)",
                                              "create/notified", "create/engine", 0.0},
                                             {"update engine/floor (record assigned into the map)", "update/engine",
                                              "update/floor_assign", 3.0},
                                             {"update engine/in-place field write (informational)", "update/engine",
                                              "update/floor", 0.0},
                                             {"remove engine/floor", "remove/engine", "remove/floor", 3.0},
                                         });
}
