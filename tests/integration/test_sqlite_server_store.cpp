// The SQLite server store on real files: the conformance suite, a service
// over it that survives close and reopen, and the files it refuses.
#include "support/temp_dir.hpp"

#include <tether/clock/manual.hpp>
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/server/sqlite_store.hpp>
#include <tether/server/sync_service.hpp>
#include <tether/storage/sqlite.hpp>
#include <tether/testing/server_store_conformance.hpp>
#include <tether/transport/transport.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace {

using tether::errc;
using tether::push_op;
using tether::push_outcome;
using tether::server::sqlite_store;
using json = nlohmann::json;
using service = tether::server::sync_service<sqlite_store>;

struct temp_dir : tether_test::temp_dir {
    temp_dir() : tether_test::temp_dir("tether-server") {}
};

std::string describe(const std::vector<tether::testing::conformance_failure>& fs) {
    std::string s;
    for (const auto& f : fs) s += f.check + ": " + f.what + "\n";
    return s;
}

tether::local_id make_id(std::uint64_t n) {
    return tether::local_id::from_parts(tether::manual_clock::default_start, static_cast<std::uint16_t>(n), n);
}

push_op create_op(std::uint64_t n, json value) {
    return push_op{tether::op_kind::create, make_id(n), std::nullopt, 0, std::move(value), "dev-a"};
}

std::vector<push_outcome> push(service& svc, std::vector<push_op> ops) {
    auto r = svc.push({.user = "alice", .collection = "jobs", .ops = ops});
    REQUIRE(r.has_value());
    return std::move(r).value();
}

void exec(const std::string& path, const char* sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
    INFO((err ? err : ""));
    sqlite3_free(err);
    sqlite3_close(db);
    REQUIRE(rc == SQLITE_OK);
}

}  // namespace

TEST_CASE("sqlite_store passes the server-store conformance suite on real files", "[integration][server]") {
    temp_dir dir;
    int n = 0;
    const auto failures = tether::testing::check_server_store(
        [&] { return sqlite_store::open(dir.file("store" + std::to_string(++n) + ".db")).value(); },
        {.threads = 4, .transactions_per_thread = 10});
    INFO(describe(failures));
    CHECK(failures.empty());
}

TEST_CASE("sqlite_store: what a service committed survives close and reopen", "[integration][server]") {
    temp_dir dir;
    const auto path = dir.file("server.db");
    tether::manual_clock clock;
    std::string cursor;
    tether::server_record first;
    {
        auto store = sqlite_store::open(path);
        REQUIRE(store.has_value());
        CHECK(store->stored_schema_version().value() == sqlite_store::schema_version);
        service svc{*store, {}, [clock] { return clock.now(); }};
        auto out = push(svc, {create_op(1, {{"title", "caf\xc3\xa9"}, {"n", 1}}), create_op(2, {{"n", 2}})});
        first = out.at(0).record;
        REQUIRE(svc.erase({"alice", "jobs"}, out.at(1).record.server_id).has_value());
        auto page = svc.pull({.user = "alice", .collection = "jobs"});
        REQUIRE(page.has_value());
        cursor = page->next_cursor;
        CHECK(cursor == "3");
    }
    auto store = sqlite_store::open(path);
    REQUIRE(store.has_value());
    service svc{*store, {}, [clock] { return clock.now(); }};
    // The cursor still stands; the records and tombstone are as they were.
    auto since = svc.pull({.user = "alice", .collection = "jobs", .cursor = cursor});
    REQUIRE(since.has_value());
    CHECK(since->records.empty());
    auto all = svc.pull({.user = "alice", .collection = "jobs"});
    REQUIRE(all.has_value());
    REQUIRE(all->records.size() == 1);
    CHECK(all->records[0].value == first.value);
    CHECK(all->records[0].id == first.id);
    CHECK(all->records[0].origin == "dev-a");
    CHECK(all->records[0].updated_at == clock.now());
    CHECK(all->tombstones.size() == 1);
    // Idempotency, change numbers and server ids carry on.
    auto again = push(svc, {create_op(1, {{"n", 9}}), create_op(3, {{"n", 3}})});
    CHECK(again.at(0).replayed);
    CHECK(again.at(0).record.server_id == first.server_id);
    CHECK(again.at(1).record.version == 4);
    CHECK(again.at(1).record.server_id == "s3");
}

TEST_CASE("sqlite_store: a push batch is one transaction", "[integration][server]") {
    temp_dir dir;
    auto store = sqlite_store::open(dir.file("server.db")).value();
    service svc{store};
    // A record of the batch that the store refuses (a value SQLite rejects is hard to make; a
    // trigger stands in for a full disk) rolls the whole batch back.
    exec(store.path(),
         "CREATE TRIGGER no_third BEFORE INSERT ON tether_server_records WHEN NEW.version = 3"
         " BEGIN SELECT RAISE(ABORT, 'disk full'); END");
    std::vector<push_op> ops{create_op(1, {{"n", 1}}), create_op(2, {{"n", 2}}), create_op(3, {{"n", 3}})};
    auto failed = svc.push({.user = "alice", .collection = "jobs", .ops = ops});
    REQUIRE_FALSE(failed.has_value());
    CHECK(failed.error().code == errc::storage);
    auto page = svc.pull({.user = "alice", .collection = "jobs"});
    REQUIRE(page.has_value());
    CHECK(page->records.empty());
    CHECK(page->next_cursor.empty());  // not even the collection stayed known
    exec(store.path(), "DROP TRIGGER no_third");
    auto ok = svc.push({.user = "alice", .collection = "jobs", .ops = ops});
    REQUIRE(ok.has_value());
    CHECK(ok->at(2).record.version == 3);
}

TEST_CASE("sqlite_store refuses files it must not write to", "[integration][server]") {
    temp_dir dir;
    SECTION("not SQLite") {
        const auto path = dir.file("notes.txt");
        std::ofstream{path} << "these are not the droids";
        auto r = sqlite_store::open(path);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == errc::storage);
    }
    SECTION("a newer schema") {
        const auto path = dir.file("newer.db");
        REQUIRE(sqlite_store::open(path).has_value());
        exec(path, "UPDATE tether_server_meta SET value = 99 WHERE key = 'schema_version'");
        auto r = sqlite_store::open(path);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().message.find("newer") != std::string::npos);
    }
    SECTION("a client database") {
        const auto path = dir.file("client.db");
        REQUIRE(tether::sqlite_database::open(path).has_value());
        auto r = sqlite_store::open(path);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().message.find("client") != std::string::npos);
    }
}

TEST_CASE("sqlite_store: a file put back from a backup and marked restored never gives out a cursor, change number "
          "or server id twice", "[integration][server]") {
    temp_dir dir;
    const auto path = dir.file("server.db");
    const auto backup = dir.file("backup.db");
    tether::manual_clock clock;
    auto pull = [](service& svc, std::string collection, std::string cursor) {
        return svc.pull({.user = "alice", .collection = std::move(collection), .cursor = std::move(cursor)});
    };
    std::string cursor_at_backup;
    {
        auto store = sqlite_store::open(path).value();
        service svc{store, {}, [clock] { return clock.now(); }};
        push(svc, {create_op(1, {{"n", 1}}), create_op(2, {{"n", 2}})});
        cursor_at_backup = pull(svc, "jobs", "").value().next_cursor;
    }  // closed: the file alone is the whole database
    std::filesystem::copy_file(path, backup);
    std::vector<std::string> sids_after;
    std::uint64_t last_version_after = 0;
    std::string cursor_after, notes_cursor_after;
    {
        auto store = sqlite_store::open(path).value();
        service svc{store, {}, [clock] { return clock.now(); }};
        for (const auto& o : push(svc, {create_op(3, {{"n", 3}}), create_op(4, {{"n", 4}})})) {
            sids_after.push_back(o.record.server_id);
            last_version_after = std::max(last_version_after, o.record.version);
        }
        auto note = svc.push({.user = "alice", .collection = "notes", .ops = std::vector{create_op(5, {{"n", 5}})}});
        REQUIRE(note.has_value());
        sids_after.push_back(note->at(0).record.server_id);
        cursor_after = pull(svc, "jobs", "").value().next_cursor;
        notes_cursor_after = pull(svc, "notes", "").value().next_cursor;
    }
    // The restore: the backup put back in place, then marked.
    std::filesystem::copy_file(backup, path, std::filesystem::copy_options::overwrite_existing);
    auto store = sqlite_store::open(path).value();
    REQUIRE(store.mark_restored(clock.now()).has_value());
    service svc{store, {}, [clock] { return clock.now(); }};
    // Every cursor handed out before, from before or after the backup, is refused: the client resyncs.
    for (const auto& c : {cursor_at_backup, cursor_after}) {
        auto p = pull(svc, "jobs", c);
        REQUIRE_FALSE(p.has_value());
        CHECK(p.error().code == errc::cursor_expired);
    }
    // New changes take numbers and ids above anything given out before the restore, in the
    // collections the backup held and in one it did not (notes).
    for (std::string coll : {"jobs", "notes"}) {
        auto out = svc.push({.user = "alice", .collection = coll, .ops = std::vector{create_op(6, {{"n", 6}})}});
        REQUIRE(out.has_value());
        const auto& r = out->at(0).record;
        CHECK(r.version > last_version_after);
        CHECK(std::find(sids_after.begin(), sids_after.end(), r.server_id) == sids_after.end());
    }
    auto p = pull(svc, "notes", notes_cursor_after);
    REQUIRE_FALSE(p.has_value());
    CHECK(p.error().code == errc::cursor_expired);
    // Fresh pulls see the restored records and the new ones.
    auto all = pull(svc, "jobs", "");
    REQUIRE(all.has_value());
    CHECK(all->records.size() == 3);
    auto again = pull(svc, "jobs", all->next_cursor);
    REQUIRE(again.has_value());
    CHECK(again->records.empty());
}
