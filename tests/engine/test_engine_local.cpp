// The engine's local half: local-first CRUD, hooks, watchers, gates (DOMAIN.md §1).
#include "support/entities.hpp"

#include <tether/tether.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <set>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <vector>

using tether_test::Job;
using tether_test::Note;
using namespace std::chrono_literals;

namespace {

/// Puts a record straight into the storage in the given state, as a finished
/// sync would have left it.
tether::record<Job> seed_record(const tether::memory_storage& storage, tether::sync_status status,
                                std::optional<std::string> server_id, Job value = {"seeded", 0, ""}) {
    tether::memory_storage::rebind<Job> store{storage};
    tether::record<Job> r;
    static tether::local_id_generator ids{99};  // one generator: distinct ids across calls
    r.id = ids(tether::manual_clock::default_start);
    r.server_id = std::move(server_id);
    r.value = std::move(value);
    r.status = status;
    r.version = r.server_id ? 3 : 0;
    r.created_at = r.updated_at = tether::manual_clock::default_start;
    if (status == tether::sync_status::failed) {
        r.attempts = 5;
        r.last_error = tether::make_error(tether::errc::rejected, "poison");
    }
    REQUIRE(store.transact([&](auto& tx) { return tx.put(r); }));
    return r;
}

}  // namespace

TEST_CASE("policies compose in any order and missing kinds take defaults", "[engine]") {
    using A = tether::sync_engine<Job, tether::manual_clock, tether::memory_storage>;
    using B = tether::sync_engine<Job, tether::memory_storage, tether::manual_clock>;
    STATIC_REQUIRE(std::is_same_v<A::clock_type, tether::manual_clock>);
    STATIC_REQUIRE(std::is_same_v<B::clock_type, tether::manual_clock>);
    STATIC_REQUIRE(std::is_same_v<A::storage_policy_type, tether::memory_storage>);
    STATIC_REQUIRE(std::is_same_v<A::backoff_type, tether::exponential_backoff>);
    STATIC_REQUIRE(std::is_same_v<A::conflict_type, tether::server_wins>);
    STATIC_REQUIRE(std::is_same_v<A::transport_type, tether::loopback_transport>);
    using D = tether::sync_engine<Job>;
    STATIC_REQUIRE(std::is_same_v<D::clock_type, tether::system_clock>);
    STATIC_REQUIRE(std::is_same_v<D::store_type, tether::memory_store<Job>>);

    tether::manual_clock clock;
    auto engine = tether::make_engine<Job>(tether::client_wins{}, clock, tether::exponential_backoff{.base = 5s});
    STATIC_REQUIRE(std::is_same_v<decltype(engine)::conflict_type, tether::client_wins>);
    REQUIRE(engine.backoff().base == 5s);
    REQUIRE(engine.clock().now() == clock.now());
}

TEST_CASE("create is local-first: pending, new v7 id, no server id", "[engine]") {
    tether::manual_clock clock;
    auto engine = tether::make_engine<Job>(clock);
    int sync_requests = 0;
    engine.on_sync_needed([&] { ++sync_requests; });

    auto created = engine.create(Job{"memo", 0, "/a.m4a"});
    REQUIRE(created);
    const auto& r = *created;
    REQUIRE(r.status == tether::sync_status::pending);
    REQUIRE_FALSE(r.server_id);
    REQUIRE(r.id.version() == 7);
    REQUIRE(r.local_rev == 1);
    REQUIRE(r.version == 0);
    REQUIRE(r.created_at == clock.now());
    REQUIRE(r.updated_at == clock.now());
    REQUIRE(sync_requests == 1);

    auto got = engine.get(r.id);
    REQUIRE(got);
    REQUIRE((got->value == Job{"memo", 0, "/a.m4a"}));
    auto all = engine.list();
    REQUIRE(all);
    REQUIRE(all->size() == 1);

    auto second = engine.create(Job{"memo 2", 0, ""}, tether::priority::critical);
    REQUIRE(second);
    REQUIRE(second->priority == tether::priority::critical);
    REQUIRE(r.id < second->id);  // time-ordered ids
}

TEST_CASE("get of an unknown id is a not_found error", "[engine]") {
    auto engine = tether::make_engine<Job>(tether::manual_clock{});
    auto missing = engine.get(tether::local_id_generator{1}(tether::manual_clock::default_start));
    REQUIRE_FALSE(missing);
    REQUIRE(missing.error().code == tether::errc::not_found);
}

TEST_CASE("update changes the value, bumps local_rev and marks fields dirty", "[engine]") {
    tether::manual_clock clock;
    tether::memory_storage storage;
    auto seeded = seed_record(storage, tether::sync_status::synced, "s1", Job{"memo", 10, "/a"});
    auto engine = tether::make_engine<Job>(storage, clock);
    clock.advance(1min);

    auto updated = engine.update(seeded.id, Job{"memo", 50, "/a"});
    REQUIRE(updated);
    REQUIRE(updated->status == tether::sync_status::pending);
    REQUIRE(updated->local_rev == seeded.local_rev + 1);
    REQUIRE(updated->dirty == tether::field_set{"progress"});
    REQUIRE(updated->updated_at == clock.now());
    REQUIRE(updated->server_id == std::optional<std::string>{"s1"});

    auto again = engine.update(seeded.id, [](Job& j) { j.title = "renamed"; });
    REQUIRE(again);
    REQUIRE(again->value.title == "renamed");
    REQUIRE(again->value.progress == 50);
    REQUIRE(again->dirty == tether::field_set{"progress", "title"});
    REQUIRE(again->local_rev == seeded.local_rev + 2);
}

TEST_CASE("update with no change is a no-op", "[engine]") {
    tether::manual_clock clock;
    tether::memory_storage storage;
    auto seeded = seed_record(storage, tether::sync_status::synced, "s1", Job{"memo", 10, "/a"});
    auto engine = tether::make_engine<Job>(storage, clock);
    int changes = 0;
    int sync_requests = 0;
    auto sub = engine.watch([&](const tether::change<Job>&) { ++changes; });
    engine.on_sync_needed([&] { ++sync_requests; });

    auto same = engine.update(seeded.id, Job{"memo", 10, "/a"});
    REQUIRE(same);
    REQUIRE(same->status == tether::sync_status::synced);
    REQUIRE(same->local_rev == seeded.local_rev);
    auto stored = engine.get(seeded.id);
    REQUIRE(stored->status == tether::sync_status::synced);
    REQUIRE(stored->dirty.empty());
    REQUIRE(changes == 0);
    REQUIRE(sync_requests == 0);
}

TEST_CASE("update of a missing or deleted record is an error", "[engine]") {
    tether::memory_storage storage;
    auto seeded = seed_record(storage, tether::sync_status::synced, "s1");
    auto engine = tether::make_engine<Job>(storage, tether::manual_clock{});
    auto missing = engine.update(tether::local_id_generator{5}(tether::manual_clock::default_start), Job{});
    REQUIRE(missing.error().code == tether::errc::not_found);
    REQUIRE(engine.remove(seeded.id));
    auto deleted = engine.update(seeded.id, Job{"x", 1, ""});
    REQUIRE_FALSE(deleted);
    REQUIRE(deleted.error().code == tether::errc::invalid_state);
}

TEST_CASE("update of an error record keeps it in error with its attempts and next attempt time", "[engine]") {
    tether::memory_storage storage;
    auto seeded = seed_record(storage, tether::sync_status::synced, "s1");
    {
        tether::memory_storage::rebind<Job> store{storage};
        auto r = seeded;
        r.status = tether::sync_status::error;
        r.attempts = 2;
        r.next_attempt_at = tether::manual_clock::default_start + 10min;
        REQUIRE(store.transact([&](auto& tx) { return tx.put(r); }));
    }
    auto engine = tether::make_engine<Job>(storage, tether::manual_clock{});
    auto updated = engine.update(seeded.id, [](Job& j) { j.progress = 99; });
    REQUIRE(updated->status == tether::sync_status::error);
    REQUIRE(updated->attempts == 2);
    REQUIRE(updated->next_attempt_at == tether::manual_clock::default_start + 10min);
    REQUIRE(updated->value.progress == 99);
    REQUIRE(updated->dirty.contains("progress"));
}

TEST_CASE("remove of a never-synced record deletes it at once and runs cleanup", "[engine]") {
    auto engine = tether::make_engine<Job>(tether::manual_clock{});
    std::vector<std::string> cleaned;
    engine.on_cleanup([&](const tether::record<Job>& r) -> tether::result<void> {
        cleaned.push_back(r.value.audio_path);
        return {};
    });
    auto r = engine.create(Job{"memo", 0, "/a.m4a"}).value();
    REQUIRE(engine.remove(r.id));
    REQUIRE(engine.get(r.id).error().code == tether::errc::not_found);
    REQUIRE(cleaned == std::vector<std::string>{"/a.m4a"});
    REQUIRE(engine.remove(r.id).error().code == tether::errc::not_found);
}

TEST_CASE("remove of a synced record marks it pending_deletion until confirmed", "[engine]") {
    tether::memory_storage storage;
    auto seeded = seed_record(storage, tether::sync_status::synced, "s1");
    auto engine = tether::make_engine<Job>(storage, tether::manual_clock{});
    int cleaned = 0;
    engine.on_cleanup([&](const tether::record<Job>&) -> tether::result<void> {
        ++cleaned;
        return {};
    });
    REQUIRE(engine.remove(seeded.id));
    auto r = engine.get(seeded.id);
    REQUIRE(r);
    REQUIRE(r->status == tether::sync_status::pending_deletion);
    REQUIRE(r->deleted);
    REQUIRE(r->local_rev == seeded.local_rev + 1);
    REQUIRE(cleaned == 0);
    // Removing again is a no-op, not an error.
    REQUIRE(engine.remove(seeded.id));
    REQUIRE(engine.get(seeded.id)->local_rev == seeded.local_rev + 1);
}

TEST_CASE("reset_failed puts a failed record back in line", "[engine]") {
    tether::memory_storage storage;
    auto failed = seed_record(storage, tether::sync_status::failed, "s1");
    auto synced = seed_record(storage, tether::sync_status::synced, "s2");
    auto engine = tether::make_engine<Job>(storage, tether::manual_clock{});

    auto reset = engine.reset_failed(failed.id);
    REQUIRE(reset);
    REQUIRE(reset->status == tether::sync_status::pending);
    REQUIRE(reset->attempts == 0);
    REQUIRE_FALSE(reset->last_error);

    auto wrong = engine.reset_failed(synced.id);
    REQUIRE_FALSE(wrong);
    REQUIRE(wrong.error().code == tether::errc::invalid_state);
    REQUIRE(engine.reset_failed(reset->id).error().code == tether::errc::invalid_state);
}

TEST_CASE("reset_failed of a failed delete goes back to pending_deletion", "[engine]") {
    tether::memory_storage storage;
    auto seeded = seed_record(storage, tether::sync_status::failed, "s1");
    {
        tether::memory_storage::rebind<Job> store{storage};
        auto r = seeded;
        r.deleted = true;
        REQUIRE(store.transact([&](auto& tx) { return tx.put(r); }));
    }
    auto engine = tether::make_engine<Job>(storage, tether::manual_clock{});
    auto reset = engine.reset_failed(seeded.id);
    REQUIRE(reset->status == tether::sync_status::pending_deletion);
}

TEST_CASE("health counts records by status and ages the oldest pending change", "[engine]") {
    tether::manual_clock clock;
    tether::memory_storage storage;
    seed_record(storage, tether::sync_status::synced, "s1");
    seed_record(storage, tether::sync_status::failed, "s2");
    auto engine = tether::make_engine<Job>(storage, clock);
    auto h0 = engine.health();
    REQUIRE(h0);
    REQUIRE(h0->synced == 1);
    REQUIRE(h0->failed == 1);
    REQUIRE(h0->pending == 0);
    REQUIRE_FALSE(h0->oldest_pending_age);

    (void)engine.create(Job{"a", 0, ""});
    clock.advance(90s);
    (void)engine.create(Job{"b", 0, ""});
    clock.advance(30s);
    auto h = engine.health();
    REQUIRE(h->pending == 2);
    REQUIRE(h->oldest_pending_age == std::chrono::milliseconds{120s});
    REQUIRE(h->state == tether::engine_state::idle);
}

TEST_CASE("watchers see every committed change, outside the engine's locks", "[engine]") {
    auto engine = tether::make_engine<Job>(tether::manual_clock{});
    std::vector<tether::change_kind> all;
    std::vector<std::string> causes;
    auto sub_all = engine.watch([&](const tether::change<Job>& c) {
        all.push_back(c.kind);
        causes.push_back(c.cause);
        // Reading the engine from inside a callback must not deadlock.
        if (c.current) REQUIRE(engine.get(c.id));
    });
    auto a = engine.create(Job{"a", 0, ""}).value();
    auto b = engine.create(Job{"b", 0, ""}).value();
    int b_changes = 0;
    auto sub_b = engine.watch(b.id, [&](const tether::change<Job>& c) {
        REQUIRE(c.id == b.id);
        ++b_changes;
    });
    (void)engine.update(a.id, [](Job& j) { j.progress = 1; });
    (void)engine.update(b.id, [](Job& j) { j.progress = 2; });
    REQUIRE(engine.remove(b.id));
    REQUIRE(b_changes == 2);
    REQUIRE(all == std::vector<tether::change_kind>{tether::change_kind::created, tether::change_kind::created,
                                                    tether::change_kind::updated, tether::change_kind::updated,
                                                    tether::change_kind::removed});
    REQUIRE(causes.back() == "remove");

    sub_all.reset();
    (void)engine.update(a.id, [](Job& j) { j.progress = 3; });
    REQUIRE(all.size() == 5);
}

TEST_CASE("the transition hook sees every status change with time and cause", "[engine]") {
    tether::manual_clock clock;
    tether::memory_storage storage;
    auto synced = seed_record(storage, tether::sync_status::synced, "s1");
    auto engine = tether::make_engine<Job>(storage, clock);
    std::vector<tether::transition> seen;
    engine.on_transition([&](const tether::transition& t) { seen.push_back(t); });

    auto r = engine.create(Job{"a", 0, ""}).value();
    clock.advance(1s);
    (void)engine.update(synced.id, [](Job& j) { j.progress = 7; });
    (void)engine.update(synced.id, [](Job& j) { j.progress = 8; });  // pending -> pending: not a transition
    REQUIRE(engine.remove(r.id));
    REQUIRE(seen.size() == 3);
    REQUIRE_FALSE(seen[0].from);
    REQUIRE(seen[0].to == tether::sync_status::pending);
    REQUIRE(seen[0].cause == "create");
    REQUIRE(seen[1].from == tether::sync_status::synced);
    REQUIRE(seen[1].to == tether::sync_status::pending);
    REQUIRE(seen[1].at == clock.now());
    REQUIRE(seen[2].from == tether::sync_status::pending);
    REQUIRE_FALSE(seen[2].to);
    for (const auto& t : seen) REQUIRE(t.legal);
}

TEST_CASE("an illegal transition is refused with invalid_state and reported", "[engine]") {
    tether::memory_storage storage;
    auto synced = seed_record(storage, tether::sync_status::synced, "s1");
    tether::memory_storage::rebind<Job> store{storage};
    tether::detail::effects<Job> fx;
    auto bad = synced;
    bad.status = tether::sync_status::failed;  // synced -> failed is not in the table
    auto r = store.transact([&](auto& tx) {
        return tether::detail::write_record(tx, fx, std::optional{synced}, bad, tether::manual_clock::default_start,
                                            "test");
    });
    REQUIRE_FALSE(r);
    REQUIRE(r.error().code == tether::errc::invalid_state);
    REQUIRE(fx.refused.size() == 1);
    REQUIRE_FALSE(fx.refused[0].legal);
    REQUIRE(store.get(synced.id).value()->status == tether::sync_status::synced);
}

TEST_CASE("a failing cleanup hook is logged and never blocks the deletion", "[engine]") {
    auto engine = tether::make_engine<Job>(tether::manual_clock{});
    std::vector<std::string> logged;
    engine.on_log([&](tether::log_level level, std::string_view msg) {
        if (level >= tether::log_level::warning) logged.emplace_back(msg);
    });
    bool throw_next = false;
    engine.on_cleanup([&](const tether::record<Job>&) -> tether::result<void> {
        if (throw_next) throw std::runtime_error("disk gone");
        return tether::unexpected{tether::make_error(tether::errc::storage, "file locked")};
    });
    auto a = engine.create(Job{"a", 0, "/a"}).value();
    auto b = engine.create(Job{"b", 0, "/b"}).value();
    REQUIRE(engine.remove(a.id));
    throw_next = true;
    REQUIRE(engine.remove(b.id));
    REQUIRE(engine.list()->empty());
    REQUIRE(logged.size() == 2);
    REQUIRE(logged[0].find("file locked") != std::string::npos);
    REQUIRE(logged[1].find("disk gone") != std::string::npos);
    REQUIRE(engine.health()->cleanup_failures == 2);
}

TEST_CASE("online and login gates set the state and ask for a sync when restored", "[engine]") {
    auto engine = tether::make_engine<Job>(tether::manual_clock{});
    std::vector<tether::engine_state> states;
    auto sub = engine.watch_state([&](tether::engine_state s) { states.push_back(s); });
    int sync_requests = 0;
    engine.on_sync_needed([&] { ++sync_requests; });

    engine.set_online(false);
    REQUIRE(engine.state() == tether::engine_state::offline);
    REQUIRE(sync_requests == 0);
    // Local writes work offline.
    REQUIRE(engine.create(Job{"offline", 0, ""}));
    REQUIRE(sync_requests == 1);
    engine.set_online(true);
    REQUIRE(sync_requests == 2);
    engine.set_authenticated(false);
    REQUIRE(engine.state() == tether::engine_state::unauthorized);
    engine.set_authenticated(true);
    REQUIRE(sync_requests == 3);
    REQUIRE(states == std::vector<tether::engine_state>{tether::engine_state::offline, tether::engine_state::idle,
                                                        tether::engine_state::unauthorized,
                                                        tether::engine_state::idle});
}

TEST_CASE("a new engine over the same storage sees every record (app restart)", "[engine]") {
    tether::memory_storage storage;
    tether::local_id id;
    {
        auto engine = tether::make_engine<Job>(storage, tether::manual_clock{});
        id = engine.create(Job{"survives", 1, ""}).value().id;
        (void)engine.update(id, [](Job& j) { j.progress = 2; });
    }
    auto restarted = tether::make_engine<Job>(storage, tether::manual_clock{});
    auto r = restarted.get(id);
    REQUIRE(r);
    REQUIRE(r->value.progress == 2);
    REQUIRE(r->local_rev == 2);
}

TEST_CASE("an entity with its own nlohmann conversions works like a Hana struct", "[engine]") {
    auto engine = tether::make_engine<Note>(tether::manual_clock{});
    auto n = engine.create(Note{"hello", 1}).value();
    auto u = engine.update(n.id, [](Note& x) { x.stars = 5; });
    REQUIRE(u);
    REQUIRE(u->dirty == tether::field_set{"stars"});
    REQUIRE(engine.update(n.id, Note{"hello", 5})->local_rev == u->local_rev);
}

TEST_CASE("many threads write while watchers run", "[engine][threads]") {
    auto engine = tether::make_engine<Job>(tether::manual_clock{});
    std::atomic<int> seen{0};
    auto sub = engine.watch([&](const tether::change<Job>& c) {
        if (c.current) (void)engine.get(c.id);  // read back from inside the callback
        seen.fetch_add(1);
    });
    constexpr int threads = 4;
    constexpr int per_thread = 200;
    std::atomic<int> failures{0};  // Catch2's assertions are not thread-safe: count here, assert after
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&engine, &failures, t] {
            for (int i = 0; i < per_thread; ++i) {
                auto r = engine.create(Job{"t" + std::to_string(t), i, ""});
                if (!r) {
                    failures.fetch_add(1);
                    continue;
                }
                if (!engine.update(r->id, [](Job& j) { j.progress += 1000; })) failures.fetch_add(1);
                if (i % 3 == 0 && !engine.remove(r->id)) failures.fetch_add(1);
                if (!engine.health()) failures.fetch_add(1);
            }
        });
    }
    for (auto& th : pool) th.join();
    REQUIRE(failures.load() == 0);
    const int removed = threads * ((per_thread + 2) / 3);
    REQUIRE(seen.load() == threads * per_thread * 2 + removed);
    REQUIRE(engine.list()->size() == static_cast<std::size_t>(threads * per_thread - removed));
    auto ids = std::set<tether::local_id>{};
    for (const auto& r : engine.list().value()) ids.insert(r.id);
    REQUIRE(ids.size() == engine.list()->size());
}
