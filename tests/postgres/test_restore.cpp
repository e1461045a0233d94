// A database put back from a backup (pg_dump, then pg_restore after more
// changes) and marked restored never gives out a cursor, change number or
// server id twice.
#include "pg_test.hpp"
#include "support/temp_dir.hpp"

#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/server/postgres_store.hpp>
#include <tether/server/sync_service.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

namespace {

using tether::server::postgres_store;
using service = tether::server::sync_service<postgres_store>;

tether::push_op create_op(std::uint64_t n) {
    return {tether::op_kind::create,
            tether::local_id::from_parts(tether::timestamp{std::chrono::milliseconds{1'700'000'000'000}},
                                         static_cast<std::uint16_t>(n), n),
            std::nullopt, 0, nlohmann::json{{"n", n}}, "dev-a"};
}

std::vector<tether::push_outcome> push(service& svc, const std::string& collection, std::vector<tether::push_op> ops) {
    auto r = svc.push({.user = "alice", .collection = collection, .ops = ops});
    REQUIRE(r.has_value());
    return std::move(*r);
}

std::string cursor_of(service& svc, const std::string& collection) {
    auto p = svc.pull({.user = "alice", .collection = collection});
    REQUIRE(p.has_value());
    return p->next_cursor;
}

/// Runs a PostgreSQL client program of the fixture's installation on the fixture's server.
void pg_tool(const std::string& tool, const std::string& args) {
    const char* bin = std::getenv("TETHER_PG_BIN");
    const std::string cmd = std::string{bin ? bin : "/usr/lib/postgresql/15/bin"} + "/" + tool + " --dbname=\"" +
                            tether_test::pg_conninfo() + "\" " + args;
    INFO(cmd);
    REQUIRE(std::system(cmd.c_str()) == 0);
}

}  // namespace

TEST_CASE("postgres_store: a database put back from a backup and marked restored never gives out a cursor, change "
          "number or server id twice",
          "[postgres][restore]") {
    tether_test::temp_dir dir{"tether-pg-backup"};
    std::string schema;
    const auto conninfo = tether_test::pg_fresh_schema(&schema);
    const auto dump = dir.file("backup.dump");
    std::string cursor_at_backup, cursor_after, notes_cursor_after;
    std::vector<std::string> sids_after;
    std::uint64_t last_version_after = 0;
    {
        service svc{postgres_store::open(conninfo).value()};
        push(svc, "jobs", {create_op(1), create_op(2)});
        cursor_at_backup = cursor_of(svc, "jobs");
        pg_tool("pg_dump", "--schema=" + schema + " --format=custom --file=" + dump);
        for (const auto& o : push(svc, "jobs", {create_op(3), create_op(4)})) {
            sids_after.push_back(o.record.server_id);
            last_version_after = std::max(last_version_after, o.record.version);
        }
        sids_after.push_back(push(svc, "notes", {create_op(5)}).at(0).record.server_id);
        cursor_after = cursor_of(svc, "jobs");
        notes_cursor_after = cursor_of(svc, "notes");
    }  // the store's connections closed
    // The restore: the schema as the backup had it.
    auto admin = tether_test::pg_admin();
    tether_test::pg_exec(admin, "DROP SCHEMA " + schema + " CASCADE");
    pg_tool("pg_restore", "--exit-on-error " + dump);
    auto store = postgres_store::open(conninfo).value();
    REQUIRE(store.mark_restored(tether::timestamp{std::chrono::milliseconds{1'700'000'000'000}}).has_value());
    service svc{store};
    auto expired = [&](const char* collection, const std::string& cursor) {
        auto p = svc.pull({.user = "alice", .collection = collection, .cursor = cursor});
        return !p.has_value() && p.error().code == tether::errc::cursor_expired;
    };
    CHECK(expired("jobs", cursor_at_backup));
    CHECK(expired("jobs", cursor_after));
    // New changes are numbered, and named, after anything given out before the
    // restore, in a collection the backup held and in one it did not.
    for (std::string collection : {"jobs", "notes"}) {
        const auto r = push(svc, collection, {create_op(6)}).at(0).record;
        CHECK(r.version > last_version_after);
        CHECK(std::find(sids_after.begin(), sids_after.end(), r.server_id) == sids_after.end());
    }
    CHECK(expired("notes", notes_cursor_after));  // a collection the backup did not hold, known again
    auto all = svc.pull({.user = "alice", .collection = "jobs"});
    REQUIRE(all.has_value());
    CHECK(all->records.size() == 3);
}
