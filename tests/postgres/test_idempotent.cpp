// Idempotent creates across processes: the same create sent to two server
// processes at once (two stores, each with its own connections) ends as one
// record; and the unique (user, collection, local id) index, not a read
// before the write, is what stops a second record.
#include "pg_test.hpp"

#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/server/postgres_store.hpp>
#include <tether/server/sync_service.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <future>
#include <latch>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using tether::server::postgres_store;
using tether::server::stored_record;
using service = tether::server::sync_service<postgres_store>;
constexpr tether::server::scope alice_jobs{"alice", "jobs"};

tether::local_id id_n(std::uint64_t n) {
    return tether::local_id::from_parts(tether::timestamp{std::chrono::milliseconds{1'700'000'000'000}},
                                        static_cast<std::uint16_t>(n), n * 31);
}

tether::push_op create_op(std::uint64_t n, std::string origin) {
    return tether::push_op{tether::op_kind::create, id_n(n), std::nullopt, 0, nlohmann::json{{"n", n}},
                           std::move(origin)};
}

}  // namespace

TEST_CASE("postgres_store: one create sent to two server processes at once makes one record",
          "[postgres][idempotent]") {
    const auto conninfo = tether_test::pg_fresh_schema();
    service one{postgres_store::open(conninfo).value()};
    service two{postgres_store::open(conninfo).value()};
    constexpr int rounds = 20;
    for (int round = 1; round <= rounds; ++round) {
        const auto n = static_cast<std::uint64_t>(round);
        std::latch go{2};
        tether::result<std::vector<tether::push_outcome>> a{std::vector<tether::push_outcome>{}}, b = a;
        auto send = [&](service& svc, tether::result<std::vector<tether::push_outcome>>& out) {
            const std::vector ops{create_op(n, "dev-a")};  // one device's create, retried to another server
            go.arrive_and_wait();
            out = svc.push({.user = "alice", .collection = "jobs", .ops = ops});
        };
        std::thread ta{[&] { send(one, a); }};
        std::thread tb{[&] { send(two, b); }};
        ta.join();
        tb.join();
        REQUIRE(a.has_value());
        REQUIRE(b.has_value());
        const auto& oa = a->at(0);
        const auto& ob = b->at(0);
        INFO("round " << round);
        CHECK(oa.outcome == tether::push_outcome::kind::applied);
        CHECK(ob.outcome == tether::push_outcome::kind::applied);
        CHECK(oa.replayed != ob.replayed);  // one made it, the other found it
        CHECK(oa.record.server_id == ob.record.server_id);
        CHECK(oa.record.version == ob.record.version);
    }
    auto page = one.pull({.user = "alice", .collection = "jobs", .limit = 1000});
    REQUIRE(page.has_value());
    CHECK(page->records.size() == rounds);
}

TEST_CASE("postgres_store: the unique local-id index refuses a second record even without the scope lock",
          "[postgres][idempotent]") {
    // Two write transactions that skip lock_collection (so nothing orders them)
    // put two records with one local id: the second waits on the index for the
    // first to commit, then fails with errc::conflict.
    std::string schema;
    const auto conninfo = tether_test::pg_fresh_schema(&schema);
    auto one = postgres_store::open(conninfo).value();
    auto two = postgres_store::open(conninfo).value();
    auto admin = tether_test::pg_admin();
    auto record = [](std::string sid) {
        stored_record r;
        r.record.server_id = std::move(sid);
        r.record.id = id_n(1);
        r.record.version = 0;
        r.record.value = nlohmann::json{{"n", 1}};
        return r;
    };
    std::promise<void> put_done, release;
    auto put_future = put_done.get_future();
    auto release_future = release.get_future();
    std::thread first{[&] {
        auto r = one.write([&](auto& tx) -> tether::result<void> {
            auto rec = record("s-first");
            rec.record.version = 1;
            if (auto ok = tx.put(alice_jobs, rec); !ok) return ok;
            // A put does not wait for the database (the store pipelines it): a
            // read does, so the record is in place before the second starts.
            if (auto in_place = tx.find_by_server_id(alice_jobs, "s-first"); !in_place || !*in_place)
                return tether::unexpected{tether::make_error(tether::errc::storage, "the first put is not in place")};
            put_done.set_value();
            release_future.wait();
            return {};
        });
        CHECK(r.has_value());
    }};
    put_future.wait();
    std::atomic<bool> second_done{false};
    tether::result<void> second_result{};
    std::thread second{[&] {
        second_result = two.write([&](auto& tx) -> tether::result<void> {
            auto rec = record("s-second");
            rec.record.version = 2;
            return tx.put(alice_jobs, rec);
        });
        second_done = true;
    }};
    tether_test::pg_wait_for([&] { return second_done.load() || tether_test::pg_lock_waiters(admin, schema) > 0; },
                             "the second put to wait on the unique index");
    CHECK_FALSE(second_done.load());  // it waits for the first's outcome: no read-then-write race
    release.set_value();
    first.join();
    second.join();
    REQUIRE_FALSE(second_result.has_value());
    CHECK(second_result.error().code == tether::errc::conflict);
    auto found = one.read([&](auto& tx) { return tx.find_by_local_id(alice_jobs, id_n(1)); });
    REQUIRE(found.has_value());
    REQUIRE(found->has_value());
    CHECK((*found)->record.server_id == "s-first");
    auto none = one.read([&](auto& tx) { return tx.find_by_server_id(alice_jobs, "s-second"); });
    REQUIRE(none.has_value());
    CHECK_FALSE(none->has_value());
}
