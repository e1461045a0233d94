// The store's transactions pipelined: how many times a push waits for the
// database, what a statement that did not wait reports when it fails, what a
// batch sees of its own writes, and a pooled connection the server ended.
#include "pg_test.hpp"

#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/server/postgres_store.hpp>
#include <tether/server/sync_service.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace {

using tether::server::postgres_store;
using tether::server::stored_record;
using service = tether::server::sync_service<postgres_store>;
constexpr tether::server::scope alice_jobs{"alice", "jobs"};

tether::local_id id_n(std::uint64_t n) {
    return tether::local_id::from_parts(tether::timestamp{std::chrono::milliseconds{1'700'000'000'000}},
                                        static_cast<std::uint16_t>(n), n * 17);
}

std::vector<tether::push_op> creates(std::uint64_t first, std::uint64_t count) {
    std::vector<tether::push_op> ops;
    for (std::uint64_t n = first; n < first + count; ++n)
        ops.push_back({tether::op_kind::create, id_n(n), std::nullopt, 0, nlohmann::json{{"n", n}}, "dev-a"});
    return ops;
}

tether::server::push_request push_of(std::vector<tether::push_op> ops) {
    return {.user = "alice", .collection = "jobs", .ops = std::move(ops)};
}

}  // namespace

TEST_CASE("postgres_store: a create costs one round trip, a push two more", "[postgres][pipeline]") {
    auto store = postgres_store::open(tether_test::pg_fresh_schema()).value();
    service svc{store};
    for (const std::uint64_t k : {1, 10, 100}) {
        INFO(k << " creates");
        const auto before = store.round_trips();
        auto out = svc.push(push_of(creates(1000 * k, k)));
        REQUIRE(out.has_value());
        REQUIRE(out->size() == k);
        for (const auto& o : *out) CHECK(o.outcome == tether::push_outcome::kind::applied);
        // BEGIN with the scope's lock; one lookup by local id per create (it also
        // takes the server id); the commit, with the last record's INSERT.
        CHECK(store.round_trips() - before == k + 2);
    }
    // Sent again: each finds its record, a replay, at the same cost.
    const auto before = store.round_trips();
    auto again = svc.push(push_of(creates(10'000, 10)));
    REQUIRE(again.has_value());
    for (const auto& o : *again) CHECK(o.replayed);
    CHECK(store.round_trips() - before == 12);
    // Change numbers 1..111, in order, none skipped; server ids all distinct.
    auto page = svc.pull({.user = "alice", .collection = "jobs", .limit = 1000});
    REQUIRE(page.has_value());
    REQUIRE(page->records.size() == 111);
    for (std::size_t i = 0; i < page->records.size(); ++i) CHECK(page->records[i].version == i + 1);
}

TEST_CASE("postgres_store: a batch sees its own writes that did not wait", "[postgres][pipeline]") {
    auto store = postgres_store::open(tether_test::pg_fresh_schema()).value();
    service svc{store};
    auto ops = creates(1, 2);
    ops.push_back(ops[0]);  // the same create twice in one batch: the second finds the first
    ops.push_back({tether::op_kind::update, id_n(2), std::nullopt, 2, nlohmann::json{{"m", 2}}, "dev-a"});
    auto out = svc.push(push_of(ops));
    REQUIRE(out.has_value());
    CHECK_FALSE(out->at(0).replayed);
    CHECK(out->at(2).replayed);
    CHECK(out->at(2).record.server_id == out->at(0).record.server_id);
    CHECK(out->at(3).outcome == tether::push_outcome::kind::applied);
    CHECK(out->at(3).record.version == 3);
    auto info = store.read([](auto& tx) { return tx.collection(alice_jobs); });
    REQUIRE(info.has_value());
    REQUIRE(info->has_value());
    CHECK((*info)->last_change == 3);  // the counter the transaction kept was written
}

TEST_CASE("postgres_store: a put that did not wait reports its failure at the next wait and keeps nothing",
          "[postgres][pipeline]") {
    auto store = postgres_store::open(tether_test::pg_fresh_schema()).value();
    auto rec = [](std::string sid, std::uint64_t version) {
        stored_record r;
        r.record.server_id = std::move(sid);
        r.record.id = id_n(1);
        r.record.version = version;
        r.record.value = nlohmann::json{{"n", version}};
        return r;
    };
    bool put_answered = false;
    std::optional<tether::error> at_wait;
    auto done = store.write([&](auto& tx) -> tether::result<void> {
        if (auto l = tx.lock_collection(alice_jobs); !l) return tether::unexpected{l.error()};
        if (auto ok = tx.put(alice_jobs, rec("s1", 1)); !ok) return ok;
        put_answered = tx.put(alice_jobs, rec("s2", 2)).has_value();  // the local id is held: refused, later
        auto found = tx.find_by_server_id(alice_jobs, "s1");
        if (!found) at_wait = found.error();
        return {};
    });
    CHECK(put_answered);  // it did not wait for the database
    REQUIRE(at_wait.has_value());
    CHECK(at_wait->code == tether::errc::conflict);
    REQUIRE_FALSE(done.has_value());
    CHECK(done.error().code == tether::errc::conflict);  // the commit reports it too: nothing is kept
    auto none = store.read([](auto& tx) { return tx.find_by_server_id(alice_jobs, "s1"); });
    REQUIRE(none.has_value());
    CHECK_FALSE(none->has_value());
    // The connection went back to the pool fit for the next transaction.
    service svc{store};
    auto out = svc.push(push_of(creates(5, 1)));
    REQUIRE(out.has_value());
    CHECK(out->at(0).record.version == 1);
}

TEST_CASE("postgres_store: a pooled connection the server ended is replaced without failing a push",
          "[postgres][pipeline]") {
    std::string schema;
    auto store = postgres_store::open(tether_test::pg_fresh_schema(&schema)).value();
    service svc{store};
    REQUIRE(svc.push(push_of(creates(1, 1))).has_value());
    auto admin = tether_test::pg_admin();
    auto ended = tether_test::pg_exec(admin, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                             " WHERE application_name = '" + schema + "'");
    REQUIRE(std::string{PQgetvalue(ended.get(), 0, 0)} == "1");
    tether_test::pg_wait_for(
        [&] {
            auto r = tether_test::pg_exec(admin, "SELECT count(*) FROM pg_stat_activity WHERE application_name = '" +
                                                     schema + "'");
            return std::string{PQgetvalue(r.get(), 0, 0)} == "0";
        },
        "the ended session to go");
    auto out = svc.push(push_of(creates(2, 1)));
    INFO((out ? std::string{} : out.error().message));
    REQUIRE(out.has_value());
    CHECK(out->at(0).outcome == tether::push_outcome::kind::applied);
    CHECK(out->at(0).record.version == 2);
}
