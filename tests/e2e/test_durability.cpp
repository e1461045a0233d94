// tether-server's durability, on the real process: a SIGTERM lets every
// request in flight finish and exits 0, and the database then holds every
// write it acknowledged; SIGKILLs in the middle of pushes, round after round
// (seeded), lose nothing acknowledged and never make a second server record
// for one local id, once a device resumes against the restarted server.
#include "e2e/e2e.hpp"
#include "support/entities.hpp"

#include <tether/backoff/exponential.hpp>
#include <tether/clock/manual.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/status.hpp>
#include <tether/engine/options.hpp>
#include <tether/engine/sync_engine.hpp>
#include <tether/server/sqlite_store.hpp>
#include <tether/server/sync_service.hpp>
#include <tether/storage/sqlite.hpp>
#include <tether/transport/http.hpp>
#include <tether/transport/transport.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

using tether_test::Job;

namespace {

// Every live record of alice's `collection` in the server database at `path`, by local id.
std::multimap<std::string, tether::server_record> records_in(const std::string& path, const std::string& collection) {
    auto store = tether::server::sqlite_store::open(path);
    REQUIRE(store);
    tether::server::sync_service<tether::server::sqlite_store> service{std::move(*store)};
    std::multimap<std::string, tether::server_record> out;
    std::string cursor;
    for (;;) {
        auto page = service.pull({.user = "alice", .collection = collection, .cursor = cursor, .limit = 500});
        REQUIRE(page);
        for (auto& r : page->records) out.emplace(r.id ? r.id->to_string() : std::string{}, std::move(r));
        cursor = page->next_cursor;
        if (!page->has_more) break;
    }
    return out;
}

}  // namespace

TEST_CASE("SIGTERM finishes the pushes in flight, exits 0, and the database holds every acknowledged write",
          "[e2e][durability]") {
    tether_test::e2e_server server;
    std::mutex m;
    std::condition_variable cv;
    std::set<std::string> acked;
    std::vector<std::string> failures;  // why a writer stopped: after the SIGTERM, that is expected
    std::atomic<bool> stopping{false};
    int running = 2;
    auto writer = [&](std::uint64_t seed) {
        tether::http_transport t{server.options()};
        tether::local_id_generator ids{seed};
        for (int batch = 0; batch < 100000; ++batch) {
            std::vector<tether::push_op> ops;
            for (int i = 0; i < 4; ++i)
                ops.push_back({tether::op_kind::create, ids(tether::timestamp{std::chrono::milliseconds{1'700'000'000'000 + batch}}),
                               std::nullopt, 0, {{"title", "t"}, {"n", batch}}, "writer"});
            auto out = t.push("jobs", ops);
            std::lock_guard lock{m};
            if (!out) {
                if (!stopping) failures.push_back(out.error().message);
                break;  // the server stopped (or failed: reported below)
            }
            for (std::size_t i = 0; i < ops.size(); ++i)
                if ((*out)[i].outcome == tether::push_outcome::kind::applied) acked.insert(ops[i].id.to_string());
            cv.notify_all();
        }
        std::lock_guard lock{m};
        --running;
        cv.notify_all();
    };
    std::thread a{writer, 11};
    std::thread b{writer, 12};
    bool enough = false;
    {
        std::unique_lock lock{m};
        enough = cv.wait_for(lock, std::chrono::seconds{120}, [&] { return acked.size() >= 40 || running == 0; }) &&
                 acked.size() >= 40;
    }
    stopping = true;
    const int status = server.stop();  // while both writers are pushing
    if (status != 0) UNSCOPED_INFO("tether-server's output:\n" << server.output());
    CHECK(status == 0);
    a.join();
    b.join();
    for (const auto& f : failures) UNSCOPED_INFO("a writer failed before the stop: " << f);
    REQUIRE(enough);
    CHECK(failures.empty());
    const auto held = records_in(server.db_path(), "jobs");
    std::size_t missing = 0;
    for (const auto& id : acked) missing += held.count(id) == 1 ? 0 : 1;
    INFO(acked.size() << " acknowledged, " << held.size() << " in the database");
    CHECK(missing == 0);
    for (const auto& id : acked) CHECK(held.count(id) <= 1);
}

namespace {

// A transport that SIGKILLs the server at its `kill_at`-th push: before sending
// it, while it is in flight, or after its answer came (which it then drops).
struct killing_transport {
    using policy_kind = tether::transport_tag;
    enum class when { before, during, after };
    struct plan {
        int kill_at = 0;  // 0: never
        when mode = when::during;
        int pushes = 0;
        tether_test::server_process* victim = nullptr;
    };

    tether::http_transport inner;
    std::shared_ptr<plan> p;

    tether::result<std::vector<tether::push_outcome>> push(std::string_view c, std::span<const tether::push_op> ops) {
        if (++p->pushes != p->kill_at || p->victim == nullptr) return inner.push(c, ops);
        switch (p->mode) {
            case when::before: p->victim->kill_async(); return inner.push(c, ops);
            case when::during: {
                std::thread killer{[v = p->victim] { v->kill_async(); }};
                auto out = inner.push(c, ops);
                killer.join();
                return out;
            }
            case when::after: {
                auto out = inner.push(c, ops);
                p->victim->kill_async();
                if (!out) return out;
                return tether::unexpected{tether::make_error(tether::errc::transient, "answer lost")};
            }
        }
        return inner.push(c, ops);
    }
    tether::result<tether::pull_page> pull(std::string_view c, std::string_view cursor, std::size_t limit) {
        return inner.pull(c, cursor, limit);
    }
    tether::result<tether::server_record> fetch(std::string_view c, std::string_view sid) { return inner.fetch(c, sid); }
    [[nodiscard]] std::size_t max_batch() const { return inner.max_batch(); }
    [[nodiscard]] bool has_change_feed() const { return inner.has_change_feed(); }
};

std::uint64_t seed_from_env() {
    const char* s = std::getenv("TETHER_E2E_SEED");
    return s != nullptr ? std::strtoull(s, nullptr, 10) : 20261202u;
}

}  // namespace

TEST_CASE("SIGKILL in the middle of pushes, again and again: nothing acknowledged lost, no duplicates",
          "[e2e][durability]") {
    const std::uint64_t seed = seed_from_env();
    INFO("TETHER_E2E_SEED=" << seed);
    std::mt19937_64 rng{seed};
    tether_test::e2e_server server;
    tether_test::temp_dir files{"tether-e2e-device"};
    const std::string device = files.file("device.db");
    tether::manual_clock clock;
    const tether::exponential_backoff backoff{.base = std::chrono::seconds{1}, .cap = std::chrono::seconds{1}, .max_attempts = 0};
    std::map<std::string, tether::local_id> acked;  // local id -> id, every record the device saw synced
    std::vector<tether::local_id> mine;
    constexpr int rounds = 10;
    int mid_push_kills = 0;

    auto engine_for = [&](tether::sqlite_database& db, std::shared_ptr<killing_transport::plan> plan) {
        return tether::make_engine<Job>(tether::sqlite_storage{db},
                                        killing_transport{tether::http_transport{server.options()}, std::move(plan)},
                                        clock, backoff, tether::engine_options{.id_seed = rng(), .push_batch = 3});
    };
    auto note_acked = [&](auto& engine) {
        auto all = engine.list();
        REQUIRE(all);
        for (const auto& r : *all)
            if (r.status == tether::sync_status::synced) acked.emplace(r.id.to_string(), r.id);
    };

    for (int round = 0; round < rounds; ++round) {
        INFO("round " << round);
        auto db = tether::sqlite_database::open(device);
        REQUIRE(db);
        auto plan = std::make_shared<killing_transport::plan>();
        plan->kill_at = 1 + static_cast<int>(rng() % 3);
        plan->mode = static_cast<killing_transport::when>(rng() % 3);
        plan->victim = &server.process();
        auto engine = engine_for(*db, plan);
        const int creates = 3 + static_cast<int>(rng() % 6);
        for (int i = 0; i < creates; ++i) {
            auto r = engine.create(Job{"job " + std::to_string(round) + "." + std::to_string(i), i, ""});
            REQUIRE(r);
            mine.push_back(r->id);
        }
        for (int i = 0; i < 2 && !mine.empty(); ++i) {  // edit some earlier ones
            const auto& id = mine[rng() % mine.size()];
            REQUIRE(engine.update(id, [&](Job& j) { j.progress += 1; }));
        }
        for (int attempt = 0; attempt < 3 && plan->pushes < plan->kill_at; ++attempt) {
            (void)engine.sync();  // fails once the server is gone; that is the point
            clock.advance(std::chrono::seconds{5});
        }
        if (plan->pushes >= plan->kill_at) ++mid_push_kills;
        note_acked(engine);
        server.restart();  // SIGKILL (again, or for the first time if no push reached the kill), then start
    }

    // Resume against the last server until the device is quiet.
    auto db = tether::sqlite_database::open(device);
    REQUIRE(db);
    auto engine = engine_for(*db, std::make_shared<killing_transport::plan>());
    bool quiet = false;
    for (int i = 0; i < 30 && !quiet; ++i) {
        auto rep = engine.sync();
        REQUIRE(rep);
        clock.advance(std::chrono::seconds{5});
        auto all = engine.list();
        REQUIRE(all);
        quiet = true;
        for (const auto& r : *all) quiet = quiet && r.status == tether::sync_status::synced;
    }
    CHECK(quiet);
    CHECK(mid_push_kills >= rounds / 2);
    note_acked(engine);
    CHECK(server.stop() == 0);

    const auto held = records_in(server.db_path(), "jobs");
    auto local = engine.list();
    REQUIRE(local);
    CHECK(local->size() == mine.size());
    for (const auto& id : mine) {
        INFO("record " << id.to_string());
        CHECK(held.count(id.to_string()) == 1);  // there, and once
    }
    for (const auto& [text, id] : acked) {
        INFO("acknowledged " << text);
        CHECK(held.count(text) == 1);
    }
    CHECK(held.size() == mine.size());
    for (const auto& r : *local) {
        auto it = held.find(r.id.to_string());
        REQUIRE(it != held.end());
        CHECK(it->second.version == r.version);
        CHECK(it->second.value == tether::entity_ops<Job>::to_json(r.value));
    }
}
