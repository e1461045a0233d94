// Push and pull throughput over the loopback transport, in batches of 100,
// each beside the loopback server alone (the baseline), measured in the same run:
// - push/engine: engine.push() of n pending records;
//   push/server: the same create ops sent straight to loopback_server::push, 100 at a time;
// - pull/engine: engine.pull() of n server records into an empty engine;
//   pull/server: loopback_server::pull, 100 at a time, from the empty cursor to the end.
// Prints the engine/server ratio of CPU time per record at the end: the engine's
// time includes the server's, so 1x would be a free engine.
//
// Everything runs with a manual_clock (engine and server) and fixed id seeds.
// Building the engine and the server around a run is not timed, on either side.
#include "support/job.hpp"
#include "support/ratio_main.hpp"

// GCC 12 at -O3 (the bench preset) warns -Wrestrict inside std::string's
// operator+ inlined into loopback_server's `"s" + std::to_string(...)`: a false
// positive (GCC bug 105329), silenced only for tether's headers here.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wrestrict"
#endif
#include <tether/clock/manual.hpp>
#include <tether/core/entity.hpp>
#include <tether/core/ids.hpp>
#include <tether/engine/options.hpp>
#include <tether/engine/sync_engine.hpp>
#include <tether/storage/memory.hpp>
#include <tether/transport/loopback.hpp>
#include <tether/transport/loopback_server.hpp>
#include <tether/transport/transport.hpp>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace {

using tether_bench::Job;

constexpr std::uint64_t id_seed = 42;
constexpr std::size_t batch = 100;
constexpr const char* user = "local";

using sync_engine_t = tether::sync_engine<Job, tether::memory_storage, tether::loopback_transport,
                                          tether::manual_clock, tether::engine_options>;

tether::loopback_server make_server(const tether::manual_clock& clock) {
    return tether::loopback_server{[clock] { return clock.now(); }};
}

void make_engine(std::optional<sync_engine_t>& engine, const tether::loopback_server& server,
                 const tether::manual_clock& clock) {
    engine.emplace(tether::memory_storage{}, tether::loopback_transport{server, user, batch}, clock,
                   tether::engine_options{.id_seed = id_seed, .pull_limit = batch, .push_batch = batch});
}

// ---- push -------------------------------------------------------------------------

void push_engine(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const auto jobs = tether_bench::make_jobs(n);
    const tether::manual_clock clock;
    std::optional<tether::loopback_server> server;
    std::optional<sync_engine_t> engine;
    for (auto _ : state) {
        state.PauseTiming();
        server.emplace(make_server(clock));
        make_engine(engine, *server, clock);
        for (const auto& job : jobs) (void)engine->create(job).value();
        state.ResumeTiming();
        auto rep = engine->push();
        state.PauseTiming();
        if (!rep || rep->pushed != n) state.SkipWithError("push did not push every record");
        engine.reset();
        server.reset();
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
}

void push_server(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const auto jobs = tether_bench::make_jobs(n);
    const tether::manual_clock clock;
    // The ops the engine sends for these records: creates with the same ids and values.
    std::vector<tether::push_op> ops;
    ops.reserve(n);
    tether::local_id_generator ids{id_seed};
    for (const auto& job : jobs) {
        tether::push_op op;
        op.kind = tether::op_kind::create;
        op.id = ids(clock.now());
        op.value = tether::entity_ops<Job>::to_json(job);
        ops.push_back(std::move(op));
    }
    const std::span<const tether::push_op> all{ops};
    std::optional<tether::loopback_server> server;
    for (auto _ : state) {
        state.PauseTiming();
        server.emplace(make_server(clock));
        state.ResumeTiming();
        std::size_t applied = 0;
        for (std::size_t i = 0; i < n; i += batch) {
            auto out = server->push(user, Job::collection, all.subspan(i, std::min(batch, n - i)));
            if (out) applied += out->size();
            benchmark::DoNotOptimize(out);
        }
        state.PauseTiming();
        if (applied != n) state.SkipWithError("the server did not answer every op");
        server.reset();
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
}

// ---- pull -------------------------------------------------------------------------

/// A server holding `n` records written by another device (no local ids).
tether::loopback_server filled_server(std::size_t n, const tether::manual_clock& clock) {
    auto server = make_server(clock);
    for (const auto& job : tether_bench::make_jobs(n)) {
        (void)server.put(user, Job::collection, "", tether::entity_ops<Job>::to_json(job)).value();
    }
    return server;
}

void pull_engine(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const tether::manual_clock clock;
    const auto server = filled_server(n, clock);
    std::optional<sync_engine_t> engine;
    for (auto _ : state) {
        state.PauseTiming();
        make_engine(engine, server, clock);
        state.ResumeTiming();
        auto rep = engine->pull();
        state.PauseTiming();
        if (!rep || rep->pulled != n) state.SkipWithError("pull did not pull every record");
        engine.reset();
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
}

void pull_server(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const tether::manual_clock clock;
    auto server = filled_server(n, clock);
    for (auto _ : state) {
        std::string cursor;
        std::size_t pulled = 0;
        for (bool more = true; more;) {
            auto page = server.pull(user, Job::collection, cursor, batch);
            if (!page) break;
            pulled += page->records.size();
            cursor = page->next_cursor;
            more = page->has_more;
            benchmark::DoNotOptimize(page);
        }
        if (pulled != n) state.SkipWithError("the server did not list every record");
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
}

void register_pair(const char* engine_name, void (*engine_fn)(benchmark::State&), const char* server_name,
                   void (*server_fn)(benchmark::State&)) {
    for (auto* b : {benchmark::RegisterBenchmark(engine_name, engine_fn),
                    benchmark::RegisterBenchmark(server_name, server_fn)}) {
        b->Arg(1'000)->Arg(10'000)->Unit(benchmark::kMicrosecond);
    }
}

}  // namespace

int main(int argc, char** argv) {
    register_pair("push/engine", push_engine, "push/server", push_server);
    register_pair("pull/engine", pull_engine, "pull/server", pull_server);
    return tether_bench::run_with_ratios(argc, argv,
                                         {
                                             {"push engine/server", "push/engine", "push/server", 0},
                                             {"pull engine/server", "pull/engine", "pull/server", 0},
                                         });
}
