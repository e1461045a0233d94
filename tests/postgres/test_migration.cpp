// The schema's migrations: a database that version 1 of the store made and
// wrote to is taken to version 2 by open, keeping every record, change counter
// and server id given out; a failed migration changes nothing; a newer schema
// is refused; two servers opening a fresh database at once both succeed.
#include "pg_test.hpp"

#include <tether/server/postgres/schema.hpp>
#include <tether/server/postgres_store.hpp>
#include <tether/server/sync_service.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using tether::server::postgres_store;
using tether::server::detail::pg_connection;
using tether::server::detail::pg_params;
using service = tether::server::sync_service<postgres_store>;

tether::local_id id_n(std::uint64_t n) {
    return tether::local_id::from_parts(tether::timestamp{std::chrono::milliseconds{1'700'000'000'000}},
                                        static_cast<std::uint16_t>(n), n * 17);
}

/// What version 1 of the store ran for one create of alice/jobs: the scope's
/// counter row locked and bumped, a server id from the counter row in
/// tether_server_meta, the record put. Returns the server id.
std::string v1_create(pg_connection& c, std::uint64_t n) {
    const pg_params scope = pg_params{}.bytes(std::string_view{"alice"}).bytes(std::string_view{"jobs"});
    REQUIRE(c.exec("BEGIN ISOLATION LEVEL READ COMMITTED"));
    REQUIRE(c.exec("INSERT INTO tether_server_collections (user_id, collection, last_change, epoch)"
                   " VALUES ($1, $2, 0, 0) ON CONFLICT (user_id, collection) DO UPDATE"
                   " SET last_change = tether_server_collections.last_change RETURNING last_change, epoch",
                   scope));
    auto change = c.exec("UPDATE tether_server_collections SET last_change = last_change + 1"
                         " WHERE user_id = $1 AND collection = $2 RETURNING last_change",
                         scope);
    REQUIRE(change);
    const auto version = tether::server::detail::pg_int8(change->get(), 0, 0).value();
    // Version 1's new_server_id.
    auto id = c.exec("UPDATE tether_server_meta SET value = value + 1 WHERE key = 'next_server_id' RETURNING value",
                     pg_params{});
    REQUIRE(id);
    const std::string sid = "s" + std::to_string(tether::server::detail::pg_int8(id->get(), 0, 0).value());
    const std::string value = nlohmann::json{{"n", n}}.dump();
    const auto local = id_n(n);
    REQUIRE(c.exec("INSERT INTO tether_server_records (user_id, collection, server_id, local_id, version, value,"
                   " updated_at, origin, deleted, created_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                   pg_params{}
                       .bytes(std::string_view{"alice"})
                       .bytes(std::string_view{"jobs"})
                       .bytes(sid)
                       .bytes(local.bytes())
                       .int8(version)
                       .bytes(value)
                       .int8(1'700'000'000'000)
                       .bytes(std::string_view{"dev-a"})
                       .boolean(false)
                       .int8(version)));
    REQUIRE(c.exec("COMMIT"));
    return sid;
}

/// The schema version and the v1 counter row of the schema `conninfo` names.
std::pair<int, bool> version_and_counter(const std::string& conninfo) {
    auto c = pg_connection::open(conninfo).value();
    const int v = tether::server::detail::pg_server_read_schema_version(c).value();
    auto row = c.exec("SELECT 1 FROM tether_server_meta WHERE key = 'next_server_id'", pg_params{});
    REQUIRE(row);
    return {v, PQntuples(row->get()) == 1};
}

}  // namespace

TEST_CASE("postgres_store: open migrates a version 1 database to version 2, keeping what it holds",
          "[postgres][migration]") {
    const auto conninfo = tether_test::pg_fresh_schema();
    std::vector<std::string> v1_ids;
    {
        auto c = pg_connection::open(conninfo).value();
        REQUIRE(tether::server::detail::pg_server_migrate(c, 1).value() == 0);  // version 1's schema
        for (std::uint64_t n = 1; n <= 3; ++n) v1_ids.push_back(v1_create(c, n));
    }
    CHECK(v1_ids == std::vector<std::string>{"s1", "s2", "s3"});
    CHECK(version_and_counter(conninfo) == std::pair{1, true});

    auto store = postgres_store::open(conninfo);
    REQUIRE(store.has_value());
    CHECK(store->stored_schema_version().value() == 2);
    CHECK(version_and_counter(conninfo) == std::pair{2, false});
    service svc{*store};
    auto page = svc.pull({.user = "alice", .collection = "jobs"});
    REQUIRE(page.has_value());
    REQUIRE(page->records.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        const auto& r = page->records[i];
        CHECK(r.server_id == v1_ids[i]);
        CHECK(r.id == id_n(i + 1));
        CHECK(r.version == i + 1);
        CHECK(r.value == nlohmann::json{{"n", i + 1}});
        CHECK(r.origin == "dev-a");
    }
    // The create of a v1 record is still idempotent; new records carry on after v1's ids and changes.
    const std::vector ops{
        tether::push_op{tether::op_kind::create, id_n(2), std::nullopt, 0, nlohmann::json{{"n", 2}}, "dev-a"},
        tether::push_op{tether::op_kind::create, id_n(4), std::nullopt, 0, nlohmann::json{{"n", 4}}, "dev-a"}};
    auto out = svc.push({.user = "alice", .collection = "jobs", .ops = ops});
    REQUIRE(out.has_value());
    CHECK(out->at(0).replayed);
    CHECK(out->at(0).record.server_id == "s2");
    CHECK(out->at(1).record.server_id == "s4");
    CHECK(out->at(1).record.version == 4);
    // Opening it again finds nothing to do.
    REQUIRE(postgres_store::open(conninfo).has_value());
    CHECK(version_and_counter(conninfo) == std::pair{2, false});
}

TEST_CASE("postgres_store: a migration that fails changes nothing", "[postgres][migration]") {
    const auto conninfo = tether_test::pg_fresh_schema();
    {
        auto c = pg_connection::open(conninfo).value();
        REQUIRE(tether::server::detail::pg_server_migrate(c, 1).has_value());
        v1_create(c, 1);
        tether_test::pg_exec(c, "CREATE TABLE tether_server_ids (x int)");  // in the way of version 2's sequence
    }
    auto store = postgres_store::open(conninfo);
    REQUIRE_FALSE(store.has_value());
    CHECK(store.error().code == tether::errc::storage);
    CHECK(version_and_counter(conninfo) == std::pair{1, true});
}

TEST_CASE("postgres_store refuses a database with a newer schema", "[postgres][migration]") {
    const auto conninfo = tether_test::pg_fresh_schema();
    REQUIRE(postgres_store::open(conninfo).has_value());
    {
        auto c = pg_connection::open(conninfo).value();
        tether_test::pg_exec(c, "UPDATE tether_server_meta SET value = 99 WHERE key = 'schema_version'");
    }
    auto store = postgres_store::open(conninfo);
    REQUIRE_FALSE(store.has_value());
    CHECK(store.error().message.find("newer") != std::string::npos);
    CHECK(version_and_counter(conninfo).first == 99);
}

TEST_CASE("postgres_store: servers opening a fresh database at once all get one schema", "[postgres][migration]") {
    const auto conninfo = tether_test::pg_fresh_schema();
    std::vector<std::optional<tether::result<postgres_store>>> opened(4);
    std::vector<std::thread> threads;
    for (auto& slot : opened) threads.emplace_back([&] { slot.emplace(postgres_store::open(conninfo)); });
    for (auto& t : threads) t.join();
    for (const auto& slot : opened) {
        REQUIRE(slot->has_value());
        CHECK((*slot)->stored_schema_version().value() == postgres_store::schema_version);
    }
}
