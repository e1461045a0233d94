// The SQLite audit log keeps each transition's trigger (schema version 4): a
// sync's transitions read back with the trigger that ran it, a database at
// schema version 3 (the previous one, written here with its own DDL) is
// migrated and its old rows read back without one, and a stored trigger this
// build does not know is refused as a corrupt row.
#include "integration/raw_db.hpp"
#include "support/entities.hpp"
#include "support/temp_dir.hpp"

#include <tether/storage/sqlite.hpp>
#include <tether/tether.hpp>

#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using tether_test::Job;
using tether_test::temp_dir;

namespace {

using tether_test::raw_db;

tether::sqlite_database open_audited(const std::string& path) {
    tether::sqlite_options o;
    o.audit = true;
    auto db = tether::sqlite_database::open(path, o);
    if (!db) FAIL("open: " << db.error().message);
    return std::move(*db);
}

struct world {
    tether::manual_clock clock;
    tether::loopback_server server{[c = clock] { return c.now(); }};

    auto device(tether::sqlite_database& db) {
        return tether::make_engine<Job>(tether::sqlite_storage{db}, tether::loopback_transport{server, "alice"}, clock);
    }
    auto memory_device() {
        return tether::make_engine<Job>(tether::memory_storage{}, tether::loopback_transport{server, "alice"}, clock);
    }
};

// Schema version 3 as that build wrote it: the database-wide tables, the audit
// log without "trigger", one record table (`jobs`) with its indexes.
const char* const schema_v3 =
    "CREATE TABLE tether_meta (scope TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
    " PRIMARY KEY (scope, key)) WITHOUT ROWID;"
    "CREATE TABLE tether_tables (name TEXT PRIMARY KEY NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE tether_audit (seq INTEGER PRIMARY KEY, scope TEXT NOT NULL,"
    " local_id BLOB NOT NULL, at INTEGER NOT NULL, from_status TEXT, to_status TEXT,"
    " cause TEXT NOT NULL, legal INTEGER NOT NULL DEFAULT 1);"
    "CREATE INDEX tether_audit_at ON tether_audit (at);"
    "CREATE INDEX tether_audit_record ON tether_audit (scope, local_id, seq);"
    "CREATE TABLE \"jobs\" (local_id BLOB PRIMARY KEY NOT NULL CHECK (length(local_id) = 16),"
    " server_id TEXT UNIQUE, status TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,"
    " version INTEGER NOT NULL DEFAULT 0, local_rev INTEGER NOT NULL DEFAULT 0,"
    " dirty TEXT NOT NULL DEFAULT '[]', attempts INTEGER NOT NULL DEFAULT 0,"
    " last_attempt_at INTEGER, next_attempt_at INTEGER, priority INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, last_error_code TEXT,"
    " last_error TEXT, last_error_http_status INTEGER, last_error_retry_after_ms INTEGER,"
    " value TEXT NOT NULL);"
    "CREATE INDEX \"jobs_due\" ON \"jobs\" (priority DESC, updated_at, local_id, next_attempt_at)"
    " WHERE (status = 'pending' OR status = 'pending_deletion' OR status = 'error');"
    "CREATE INDEX \"jobs_status\" ON \"jobs\" (status, updated_at);"
    "INSERT INTO tether_tables VALUES ('jobs');"
    "INSERT INTO tether_meta VALUES ('', 'schema_version', '3');"
    // One record (local id 0x01..0x10) and its two transitions, as version 3 logged them.
    "INSERT INTO jobs (local_id, status, version, local_rev, priority, created_at, updated_at, value)"
    " VALUES (X'0102030405060708090A0B0C0D0E0F10', 'pending', 0, 1, 1, 1000, 1000,"
    " '{\"title\":\"old memo\",\"progress\":0,\"audio_path\":\"/old\"}');"
    "INSERT INTO tether_audit (scope, local_id, at, from_status, to_status, cause, legal)"
    " VALUES ('jobs', X'0102030405060708090A0B0C0D0E0F10', 1000, NULL, 'pending', 'create', 1);"
    "INSERT INTO tether_audit (scope, local_id, at, from_status, to_status, cause, legal)"
    " VALUES ('jobs', X'0102030405060708090A0B0C0D0E0F10', 1500, 'pending', 'error', 'push failed', 1);";

}  // namespace

TEST_CASE("sqlite audit: a sync's transitions read back with the trigger that ran it", "[sqlite][audit]") {
    temp_dir dir;
    world w;
    auto db = open_audited(dir.file("app.db"));
    auto phone = w.device(db);
    std::vector<tether::transition> heard;
    phone.on_transition([&](const tether::transition& t) { heard.push_back(t); });

    auto memo = phone.create(Job{"memo", 0, "/a"}).value();
    auto pushed = phone.sync(tether::sync_trigger::after_write);
    REQUIRE(pushed);
    REQUIRE(pushed->pushed == 1);
    auto desk = w.memory_device();
    REQUIRE(desk.create(Job{"from the desk", 1, "/b"}));
    REQUIRE(desk.sync(tether::sync_trigger::user));
    auto pulled = phone.sync(tether::sync_trigger::reconnect);
    REQUIRE(pulled);
    REQUIRE(pulled->pulled >= 1);

    auto log = phone.store().audit_log();
    REQUIRE(log);
    REQUIRE(log->size() == heard.size());
    REQUIRE(log->size() >= 3);
    for (std::size_t i = 0; i < log->size(); ++i) {
        INFO("transition " << i << ": " << heard[i].cause);
        const auto& got = (*log)[i];
        CHECK(got.id == heard[i].id);
        CHECK(got.from == heard[i].from);
        CHECK(got.to == heard[i].to);
        CHECK(got.cause == heard[i].cause);
        CHECK(got.trigger == heard[i].trigger);
    }
    // The create is a local write: no trigger. The push ran after the write, the pull on reconnecting.
    CHECK(log->front().id == memo.id);
    CHECK_FALSE(log->front().from.has_value());
    CHECK_FALSE(log->front().trigger.has_value());
    std::size_t after_write = 0, reconnect = 0;
    for (const auto& t : *log) {
        if (t.trigger == tether::sync_trigger::after_write) {
            ++after_write;
            CHECK(t.id == memo.id);
        }
        if (t.trigger == tether::sync_trigger::reconnect) {
            ++reconnect;
            CHECK(t.id != memo.id);
            CHECK_FALSE(t.from.has_value());  // the desk's record arrived
            CHECK(t.to == tether::sync_status::synced);
        }
    }
    CHECK(after_write >= 1);
    CHECK(reconnect == 1);

    // What the file holds: the trigger's name, NULL for the local write.
    raw_db raw{dir.file("app.db")};
    const auto stored = raw.column("SELECT \"trigger\" FROM tether_audit ORDER BY seq", "NULL");
    REQUIRE(stored.size() == log->size());
    CHECK(stored.front() == "NULL");
    CHECK(stored.back() == "reconnect");
}

TEST_CASE("sqlite audit: a schema version 3 database is migrated, and its old rows have no trigger",
          "[sqlite][audit][migration]") {
    temp_dir dir;
    const auto path = dir.file("v3.db");
    {
        raw_db raw{path};
        REQUIRE(raw.exec(schema_v3) == SQLITE_OK);
    }
    world w;
    auto db = open_audited(path);
    CHECK(tether::sqlite_database::current_schema_version == 4);
    CHECK(db.schema_version().value() == 4);
    auto phone = w.device(db);

    auto old = phone.store().audit_log();
    REQUIRE(old);
    REQUIRE(old->size() == 2);
    CHECK((*old)[0].cause == "create");
    CHECK_FALSE((*old)[0].from.has_value());
    CHECK((*old)[0].to == tether::sync_status::pending);
    CHECK((*old)[1].cause == "push failed");
    CHECK((*old)[1].at == tether::timestamp{std::chrono::milliseconds{1500}});
    for (const auto& t : *old) CHECK_FALSE(t.trigger.has_value());

    // The old record syncs; its new transitions carry their trigger.
    auto all = phone.list().value();
    REQUIRE(all.size() == 1);
    CHECK(all[0].value.title == "old memo");
    auto rep = phone.sync(tether::sync_trigger::retry_due);
    REQUIRE(rep);
    CHECK(rep->pushed == 1);
    auto log = phone.store().audit_log(all[0].id);
    REQUIRE(log);
    REQUIRE(log->size() > 2);
    for (std::size_t i = 2; i < log->size(); ++i) CHECK((*log)[i].trigger == tether::sync_trigger::retry_due);

    raw_db raw{path};
    CHECK(raw.column("SELECT value FROM tether_meta WHERE scope = '' AND key = 'schema_version'") ==
          std::vector<std::string>{"4"});
    CHECK(raw.column("SELECT type FROM pragma_table_info('tether_audit') WHERE name = 'trigger'") ==
          std::vector<std::string>{"TEXT"});
    CHECK(raw.column("SELECT count(*) FROM tether_audit WHERE \"trigger\" IS NULL") == std::vector<std::string>{"2"});

    // Opened again at version 4: nothing to migrate, the rows as they were.
    auto again = open_audited(path);
    CHECK(again.audit_log("jobs").value().size() == log->size());
}

TEST_CASE("sqlite audit: a stored trigger this build does not know is a storage error for that read",
          "[sqlite][audit]") {
    temp_dir dir;
    const auto path = dir.file("app.db");
    world w;
    auto db = open_audited(path);
    auto phone = w.device(db);
    auto memo = phone.create(Job{"memo", 0, "/a"}).value();
    REQUIRE(phone.sync(tether::sync_trigger::scheduled));
    REQUIRE(db.audit_log("jobs").value().size() >= 2);
    {
        raw_db raw{path};
        REQUIRE(raw.exec("UPDATE tether_audit SET \"trigger\" = 'teleport' WHERE \"trigger\" IS NOT NULL") ==
                SQLITE_OK);
    }
    auto bad = db.audit_log("jobs");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().code == tether::errc::storage);
    CHECK(bad.error().message.find("tether_audit") != std::string::npos);
    CHECK(bad.error().message.find("teleport") != std::string::npos);
    CHECK_FALSE(db.audit_log("jobs", memo.id));  // the record's own log holds the bad row too
    // The records themselves still read, and a trigger of the wrong type is refused alike.
    CHECK(phone.get(memo.id));
    {
        raw_db raw{path};
        REQUIRE(raw.exec("UPDATE tether_audit SET \"trigger\" = X'00FF' WHERE \"trigger\" IS NOT NULL") == SQLITE_OK);
    }
    auto blob = db.audit_log("jobs");
    REQUIRE_FALSE(blob);
    CHECK(blob.error().code == tether::errc::storage);
}
