// The server-store conformance suite (the one the memory and SQLite stores
// pass) on the real PostgreSQL of the fixture, a fresh schema per rule.
#include "pg_test.hpp"

#include <tether/server/postgres_store.hpp>
#include <tether/testing/server_store_conformance.hpp>

#include <catch2/catch.hpp>

#include <string>

namespace {

std::string describe(const std::vector<tether::testing::conformance_failure>& failures) {
    std::string out;
    for (const auto& f : failures) out += f.check + ": " + f.what + "\n";
    return out;
}

}  // namespace

TEST_CASE("postgres_store passes the server-store conformance suite", "[postgres][server]") {
    const auto failures = tether::testing::check_server_store(
        [] {
            auto store = tether::server::postgres_store::open(tether_test::pg_fresh_schema());
            if (!store) FAIL(store.error().message);
            return std::move(*store);
        },
        {.threads = 4, .transactions_per_thread = 10});
    INFO(describe(failures));
    CHECK(failures.empty());
}

TEST_CASE("postgres_store: a fresh database gets the current schema", "[postgres][server]") {
    auto store = tether::server::postgres_store::open(tether_test::pg_fresh_schema());
    REQUIRE(store.has_value());
    CHECK(store->stored_schema_version().value() == tether::server::postgres_store::schema_version);
}
