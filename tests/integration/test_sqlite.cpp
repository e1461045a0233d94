// Integration tests of the SQLite storage on real files in a temporary directory.

#include "storage/conformance.hpp"
#include "integration/raw_db.hpp"
#include "support/temp_dir.hpp"

#include <tether/core/error.hpp>
#include <tether/core/record.hpp>
#include <tether/core/status.hpp>
#include <tether/storage/memory.hpp>
#include <tether/storage/sqlite.hpp>
#include <tether/storage/storage.hpp>

#include <boost/hana/define_struct.hpp>
#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace fs = std::filesystem;
using tether_test::at_ms;
using tether_test::conformance_item;
using tether_test::conformance_note;
using tether_test::id_n;
using tether_test::make_record;
using tether_test::put_all;
using item_store = tether::sqlite_store<conformance_item>;
using note_store = tether::sqlite_store<conformance_note>;

/// A fresh directory, removed with everything in it at the end of the test.
struct temp_dir : tether_test::temp_dir {
    temp_dir() : tether_test::temp_dir("tether-sqlite") {}
};

std::string read_bytes(const std::string& path) {
    std::ifstream in{path, std::ios::binary};
    return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream out{path, std::ios::binary | std::ios::trunc};
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

using tether_test::raw_db;

tether::sqlite_database open_ok(const std::string& path, tether::sqlite_options opts = {}) {
    auto db = tether::sqlite_database::open(path, opts);
    if (!db) FAIL("open failed: " << db.error());
    return *db;
}

/// The id's 16 bytes as hex, for a SQL blob literal (x'...').
std::string hex_of(const tether::local_id& id) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (const auto b : id.bytes()) {
        out += digits[static_cast<unsigned char>(b) >> 4];
        out += digits[static_cast<unsigned char>(b) & 0xF];
    }
    return out;
}

bool contains(std::string_view haystack, std::string_view needle) {
    return haystack.find(needle) != std::string_view::npos;
}

/// What the engine checks before it writes the audit log.
template <class Tx>
concept has_audit = requires(Tx& tx, const tether::transition& t) {
    { tx.audit(t) } -> std::same_as<tether::result<void>>;
};

/// An entity whose collection name is not a valid table name.
struct dashed {
    BOOST_HANA_DEFINE_STRUCT(dashed, (int, x));
    static constexpr std::string_view collection = "my-items";
};

}  // namespace

TEST_CASE("sqlite_storage passes the storage conformance suite (file)", "[sqlite][storage]") {
    temp_dir dir;
    int n = 0;
    tether_test::require_conformant(tether::testing::check_storage([&] {
        return tether::sqlite_storage{open_ok(dir.file("conformance" + std::to_string(n++) + ".db"))};
    }));
}

TEST_CASE("sqlite_storage passes the storage conformance suite (:memory:, NORMAL, audit)", "[sqlite][storage]") {
    tether_test::require_conformant(tether::testing::check_storage([] {
        return tether::sqlite_storage{open_ok(":memory:", {.synchronous = tether::sqlite_options::sync_mode::normal,
                                                           .audit = true})};
    }));
}

TEST_CASE("sqlite: the audit capability is detectable by the engine", "[sqlite][audit]") {
    STATIC_REQUIRE(has_audit<item_store::transaction>);
    STATIC_REQUIRE_FALSE(has_audit<tether::memory_store<conformance_item>::transaction>);
}

TEST_CASE("sqlite: close and reopen keeps every record, status and cursor", "[sqlite][restart]") {
    temp_dir dir;
    const auto path = dir.file("app.db");
    std::vector<tether::record<conformance_item>> recs;
    recs.push_back(tether_test::full_record(1));
    for (std::uint64_t i = 0; i < tether::sync_status_count; ++i) {
        recs.push_back(make_record(10 + i, static_cast<tether::sync_status>(i), 100 + static_cast<std::int64_t>(i)));
    }
    recs[2].server_id = "srv-11";
    auto note = make_record<conformance_note>(1);
    note.value.text = "keep me";
    tether::status_counts counts_before;
    std::vector<tether::record<conformance_item>> due_before;
    {
        auto db = open_ok(path);
        item_store items{tether::sqlite_storage{db}};
        note_store notes{tether::sqlite_storage{db}};
        REQUIRE(put_all(items, recs));
        REQUIRE(put_all(notes, std::vector{note}));
        REQUIRE(items.transact([](auto& tx) { return tx.set_meta("cursor", "page-17"); }));
        counts_before = items.counts().value();
        due_before = items.due(at_ms(1'800'000'000'000), 100).value();
    }  // every handle gone: the connection is closed

    raw_db raw{path};
    CHECK(raw.column("PRAGMA journal_mode") == std::vector<std::string>{"wal"});

    auto db = open_ok(path);
    item_store items{tether::sqlite_storage{db}};
    note_store notes{tether::sqlite_storage{db}};
    auto sorted = recs;
    std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    auto l = items.list();
    REQUIRE(l);
    CHECK((*l == sorted));
    CHECK((items.counts().value() == counts_before));
    CHECK((items.due(at_ms(1'800'000'000'000), 100).value() == due_before));
    CHECK(items.get_meta("cursor").value() == std::optional<std::string>{"page-17"});
    CHECK(items.find_by_server_id("srv-11").value().value().id == recs[2].id);
    CHECK((notes.get(note.id).value().value() == note));
    CHECK(db.schema_version().value() == tether::sqlite_database::current_schema_version);
}

TEST_CASE("sqlite: a version 1 database is migrated on open", "[sqlite][migration]") {
    temp_dir dir;
    const auto path = dir.file("v1.db");
    const auto id = id_n(5);
    std::string hex;
    for (auto b : id.bytes()) {
        static constexpr char digits[] = "0123456789ABCDEF";
        hex += digits[b >> 4];
        hex += digits[b & 0xF];
    }
    {
        raw_db raw{path};  // schema version 1, written by hand
        REQUIRE(raw.exec(
                    "CREATE TABLE tether_meta (scope TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
                    " PRIMARY KEY (scope, key)) WITHOUT ROWID;"
                    "CREATE TABLE tether_tables (name TEXT PRIMARY KEY NOT NULL) WITHOUT ROWID;"
                    "INSERT INTO tether_meta VALUES ('', 'schema_version', '1');"
                    "INSERT INTO tether_meta VALUES ('conformance_items', 'cursor', 'v1-cursor');"
                    "INSERT INTO tether_tables VALUES ('conformance_items');"
                    "CREATE TABLE \"conformance_items\" (local_id BLOB PRIMARY KEY NOT NULL, server_id TEXT UNIQUE,"
                    " status TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 0,"
                    " local_rev INTEGER NOT NULL DEFAULT 0, dirty TEXT NOT NULL DEFAULT '[]',"
                    " attempts INTEGER NOT NULL DEFAULT 0, last_attempt_at INTEGER, next_attempt_at INTEGER,"
                    " priority INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
                    " last_error_code TEXT, last_error TEXT, last_error_http_status INTEGER,"
                    " last_error_retry_after_ms INTEGER, value TEXT NOT NULL);"
                    "INSERT INTO conformance_items (local_id, server_id, status, version, local_rev, dirty,"
                    " attempts, priority, created_at, updated_at, value) VALUES (X'" +
                    hex +
                    "', 'srv-5', 'pending', 3, 4, '[\"title\"]', 1, 2, 100, 200,"
                    " '{\"title\":\"old\",\"count\":7,\"tags\":[\"x\"]}');") == SQLITE_OK);
    }

    auto db = open_ok(path, {.audit = true});
    CHECK(db.schema_version().value() == tether::sqlite_database::current_schema_version);
    item_store items{tether::sqlite_storage{db}};
    auto got = items.get(id);
    REQUIRE(got);
    REQUIRE(got->has_value());
    const auto& r = **got;
    CHECK(r.server_id == std::optional<std::string>{"srv-5"});
    CHECK(r.status == tether::sync_status::pending);
    CHECK_FALSE(r.deleted);  // the new column's default
    CHECK(r.version == 3);
    CHECK(r.local_rev == 4);
    CHECK(r.dirty == tether::field_set{"title"});
    CHECK(r.priority == tether::priority::high);
    CHECK((r.value == conformance_item{"old", 7, {"x"}}));
    CHECK(items.get_meta("cursor").value() == std::optional<std::string>{"v1-cursor"});

    // The new column and the audit log work.
    auto changed = r;
    changed.deleted = true;
    changed.status = tether::sync_status::pending_deletion;
    REQUIRE(items.transact([&](auto& tx) -> tether::result<void> {
        if (auto x = tx.put(changed); !x) return x;
        return tx.audit({id, tether::sync_status::pending, tether::sync_status::pending_deletion, at_ms(300), "remove"});
    }));
    CHECK(items.get(id).value().value().deleted);
    CHECK(items.audit_log().value().size() == 1);

    raw_db raw{path};
    CHECK(raw.column("SELECT value FROM tether_meta WHERE scope = '' AND key = 'schema_version'") ==
          std::vector<std::string>{std::to_string(tether::sqlite_database::current_schema_version)});
    CHECK(raw.column("SELECT name FROM pragma_table_info('conformance_items') WHERE name = 'deleted'").size() == 1);
    CHECK(raw.column("SELECT name FROM sqlite_master WHERE name = 'conformance_items_due'").size() == 1);
}

TEST_CASE("sqlite: a version 2 database gets the due index without IN on open", "[sqlite][migration]") {
    temp_dir dir;
    const auto path = dir.file("v2.db");
    const auto r = make_record(3);
    {
        auto db = open_ok(path);
        item_store items{tether::sqlite_storage{db}};
        REQUIRE(put_all(items, std::vector{r}));
    }
    {
        raw_db raw{path};  // as version 2 left it
        REQUIRE(raw.exec("DROP INDEX conformance_items_due;"
                         "CREATE INDEX \"conformance_items_due\" ON \"conformance_items\""
                         " (priority DESC, updated_at, local_id, next_attempt_at)"
                         " WHERE status IN ('pending', 'pending_deletion', 'error');"
                         "UPDATE tether_meta SET value = '2' WHERE scope = '' AND key = 'schema_version';") ==
                SQLITE_OK);
    }
    auto db = open_ok(path);
    CHECK(db.schema_version().value() == tether::sqlite_database::current_schema_version);
    item_store items{tether::sqlite_storage{db}};
    CHECK((items.get(r.id).value() == r));
    CHECK(items.due(at_ms(1'000'000), 10).value().size() == 1);
    raw_db raw{path};
    const auto index_sql = raw.column("SELECT sql FROM sqlite_master WHERE name = 'conformance_items_due'");
    REQUIRE(index_sql.size() == 1);
    CHECK_FALSE(contains(index_sql[0], " IN "));
    CHECK(contains(index_sql[0], " OR "));
}

TEST_CASE("sqlite: a failing migration changes nothing", "[sqlite][migration]") {
    temp_dir dir;
    const auto path = dir.file("v1-bad.db");
    {
        raw_db raw{path};
        REQUIRE(raw.exec("CREATE TABLE tether_meta (scope TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
                         " PRIMARY KEY (scope, key)) WITHOUT ROWID;"
                         "CREATE TABLE tether_tables (name TEXT PRIMARY KEY NOT NULL) WITHOUT ROWID;"
                         "INSERT INTO tether_meta VALUES ('', 'schema_version', '1');"
                         "INSERT INTO tether_tables VALUES ('zzz; DROP TABLE tether_meta');") == SQLITE_OK);
    }
    auto db = tether::sqlite_database::open(path);
    REQUIRE_FALSE(db);
    CHECK(db.error().code == tether::errc::storage);
    CHECK(contains(db.error().message, "migrating"));
    raw_db raw{path};
    CHECK(raw.column("SELECT value FROM tether_meta WHERE key = 'schema_version'") == std::vector<std::string>{"1"});
    CHECK(raw.column("SELECT name FROM sqlite_master WHERE name = 'tether_audit'").empty());
}

TEST_CASE("sqlite: a newer schema is refused and the file left as it was", "[sqlite][migration]") {
    temp_dir dir;
    const auto path = dir.file("newer.db");
    {
        auto db = open_ok(path);
        item_store items{tether::sqlite_storage{db}};
        REQUIRE(put_all(items, std::vector{make_record(1)}));
    }
    {
        raw_db raw{path};
        REQUIRE(raw.exec("UPDATE tether_meta SET value = '99' WHERE scope = '' AND key = 'schema_version'") ==
                SQLITE_OK);
    }
    const auto before = read_bytes(path);
    REQUIRE_FALSE(before.empty());
    auto db = tether::sqlite_database::open(path);
    REQUIRE_FALSE(db);
    CHECK(db.error().code == tether::errc::storage);
    CHECK(contains(db.error().message, "schema version 99"));
    CHECK(contains(db.error().message, "newer"));
    CHECK(read_bytes(path) == before);
}

TEST_CASE("sqlite: a file that is not a SQLite database is refused and left untouched", "[sqlite][refuse]") {
    temp_dir dir;
    const auto path = dir.file("garbage.db");
    std::mt19937 rng{42};
    std::string garbage(8192, '\0');
    for (auto& c : garbage) c = static_cast<char>(rng());

    SECTION("random bytes") {
        write_bytes(path, garbage);
        auto db = tether::sqlite_database::open(path);
        REQUIRE_FALSE(db);
        CHECK(db.error().code == tether::errc::storage);
        CHECK(contains(db.error().message, "not a SQLite database"));
        CHECK(read_bytes(path) == garbage);
    }
    SECTION("a SQLite header followed by garbage") {
        const std::string header{"SQLite format 3\0", 16};
        const auto bytes = header + garbage;
        write_bytes(path, bytes);
        auto db = tether::sqlite_database::open(path);
        REQUIRE_FALSE(db);
        CHECK(db.error().code == tether::errc::storage);
        CHECK(contains(db.error().message, "refusing to open"));
        CHECK(read_bytes(path) == bytes);
        CHECK_FALSE(fs::exists(path + "-wal"));
    }
    SECTION("a database whose pages are damaged") {
        {
            auto db = open_ok(path);
            item_store items{tether::sqlite_storage{db}};
            std::vector<tether::record<conformance_item>> recs;
            for (std::uint64_t i = 0; i < 200; ++i) recs.push_back(make_record(i + 1));
            REQUIRE(put_all(items, recs));
        }
        auto bytes = read_bytes(path);
        REQUIRE(bytes.size() > 4 * 4096);
        for (std::size_t page = 4096; page + 8 <= bytes.size(); page += 4096) {
            for (std::size_t i = 0; i < 8; ++i) bytes[page + i] = '\x55';  // every b-tree page header but page 1's
        }
        write_bytes(path, bytes);
        auto db = tether::sqlite_database::open(path);
        REQUIRE_FALSE(db);
        CHECK(db.error().code == tether::errc::storage);
        CHECK(read_bytes(path) == bytes);
    }
    SECTION("a directory") {
        auto db = tether::sqlite_database::open(dir.path.string());
        REQUIRE_FALSE(db);
        CHECK(db.error().code == tether::errc::storage);
    }
    SECTION("an empty file is a new database") {
        write_bytes(path, "");
        auto db = tether::sqlite_database::open(path);
        REQUIRE(db);
        CHECK(db->schema_version().value() == tether::sqlite_database::current_schema_version);
    }
}

TEST_CASE("sqlite: a write waits for another connection's lock, then fails cleanly within the bound",
          "[sqlite][busy]") {
    using namespace std::chrono_literals;
    temp_dir dir;
    const auto path = dir.file("busy.db");
    const auto bound = 300ms;
    auto db = open_ok(path, {.busy_timeout = bound});
    item_store items{tether::sqlite_storage{db}};
    REQUIRE(items.list());  // first use: creates the table
    const auto r = make_record(1);

    raw_db other{path};
    REQUIRE(other.exec("BEGIN IMMEDIATE") == SQLITE_OK);

    const auto start = std::chrono::steady_clock::now();
    auto res = put_all(items, std::vector{r});
    const auto waited = std::chrono::steady_clock::now() - start;
    REQUIRE_FALSE(res);
    CHECK(res.error().code == tether::errc::busy);
    CHECK(tether::is_retryable(res.error()));
    CHECK(contains(res.error().message, "database is locked"));
    CHECK(waited >= bound - 50ms);  // it did wait (SQLite's busy handler sleeps in steps)
    CHECK(waited < bound + 10s);    // and gave up: bounded
    auto shared = db.transact([&] { return put_all(items, std::vector{make_record(2)}); });
    REQUIRE_FALSE(shared);
    CHECK(shared.error().code == tether::errc::busy);

    // Readers are not blocked by a writer in WAL mode, nor is opening the
    // database and a store on an existing table.
    auto g = items.get(r.id);
    REQUIRE(g);
    CHECK_FALSE(g->has_value());
    const auto before_reader = std::chrono::steady_clock::now();
    {
        auto reader_db = open_ok(path, {.busy_timeout = 10s});
        item_store reader{tether::sqlite_storage{reader_db}};
        auto l = reader.list();
        REQUIRE(l);
        CHECK(l->empty());
    }
    CHECK(std::chrono::steady_clock::now() - before_reader < 5s);  // did not wait for the 10 s bound

    REQUIRE(other.exec("COMMIT") == SQLITE_OK);
    REQUIRE(put_all(items, std::vector{r}));
    CHECK(items.get(r.id).value().has_value());

    // A second connection sees the commit.
    auto db2 = open_ok(path);
    item_store items2{tether::sqlite_storage{db2}};
    CHECK((items2.get(r.id).value().value() == r));
}

TEST_CASE("sqlite: the audit log records transitions in the writing transaction and purge drops old ones",
          "[sqlite][audit]") {
    using namespace std::chrono_literals;
    using st = tether::sync_status;
    temp_dir dir;
    const auto day = std::int64_t{24 * 3600 * 1000};
    const std::int64_t t0 = 1'700'000'000'000;
    auto db = open_ok(dir.file("audit.db"), {.audit = true});
    item_store items{tether::sqlite_storage{db}};
    const auto a = make_record(1);
    const auto b = make_record(2);

    REQUIRE(items.transact([&](auto& tx) -> tether::result<void> {
        if (auto x = tx.put(a); !x) return x;
        return tx.audit({a.id, std::nullopt, st::pending, at_ms(t0), "create"});
    }));
    REQUIRE(items.transact([&](auto& tx) -> tether::result<void> {
        if (auto x = tx.audit({a.id, st::pending, st::synced, at_ms(t0 + 20 * day), "push applied"}); !x) return x;
        return tx.audit({b.id, std::nullopt, st::synced, at_ms(t0 + 35 * day), "pull", true});
    }));
    auto rolled_back = items.transact([&](auto& tx) -> tether::result<void> {
        if (auto x = tx.audit({a.id, st::synced, std::nullopt, at_ms(t0 + 36 * day), "server delete"}); !x) return x;
        return tether::unexpected{tether::make_error(tether::errc::conflict, "no")};
    });
    REQUIRE_FALSE(rolled_back);
    REQUIRE(items.transact([&](auto& tx) {
        return tx.audit({b.id, st::synced, st::error, at_ms(t0 + 36 * day), "illegal", false});
    }));

    auto log = items.audit_log();
    REQUIRE(log);
    REQUIRE(log->size() == 4);
    CHECK(log->at(0).id == a.id);
    CHECK(log->at(0).from == std::nullopt);
    CHECK(log->at(0).to == std::optional{st::pending});
    CHECK(log->at(0).at == at_ms(t0));
    CHECK(log->at(0).cause == "create");
    CHECK(log->at(0).legal);
    CHECK(log->at(1).cause == "push applied");
    CHECK(log->at(1).from == std::optional{st::pending});
    CHECK(log->at(2).id == b.id);
    CHECK_FALSE(log->at(3).legal);
    auto only_a = items.audit_log(a.id);
    REQUIRE(only_a);
    CHECK(only_a->size() == 2);
    CHECK(db.audit_log("CONFORMANCE_ITEMS").value().size() == 4);
    CHECK(db.audit_log("bad name").error().code == tether::errc::invalid_argument);

    // Default retention (30 days) at t0 + 40 days: the entry of day 0 goes.
    auto purged = db.purge_audit(at_ms(t0 + 40 * day));
    REQUIRE(purged);
    CHECK(*purged == 1);
    CHECK(items.audit_log().value().size() == 3);
    purged = db.purge_audit(at_ms(t0 + 40 * day), 24h * 3);  // cutoff: day 37
    REQUIRE(purged);
    CHECK(*purged == 3);
    CHECK(items.audit_log().value().empty());

    // Without the option, audit() is a no-op.
    auto quiet = open_ok(dir.file("quiet.db"));
    item_store q{tether::sqlite_storage{quiet}};
    REQUIRE(q.transact([&](auto& tx) { return tx.audit({a.id, std::nullopt, st::pending, at_ms(t0), "create"}); }));
    CHECK(q.audit_log().value().empty());
}

TEST_CASE("sqlite: table names are validated, never interpolated unchecked", "[sqlite][tables]") {
    temp_dir dir;
    auto db = open_ok(dir.file("names.db"));
    for (const std::string& bad : std::vector<std::string>{"bad name", "x\"; DROP TABLE tether_meta; --", "1abc", "", "a-b", "sqlite_master",
                            "tether_meta", "TETHER_x", "\xC3\xA9t\xC3\xA9", std::string(65, 'a')}) {
        CAPTURE(bad);
        item_store s{tether::sqlite_storage{db, bad}};
        auto code = [](const auto& r) { return r ? std::optional<tether::errc>{} : std::optional{r.error().code}; };
        const auto invalid = std::optional{tether::errc::invalid_argument};
        CHECK(code(s.get(id_n(1))) == invalid);
        CHECK(code(s.find_by_server_id("x")) == invalid);
        CHECK(code(s.list()) == invalid);
        CHECK(code(s.due(at_ms(0), 10)) == invalid);
        CHECK(code(s.counts()) == invalid);
        CHECK(code(s.get_meta("k")) == invalid);
        CHECK(code(s.audit_log()) == invalid);
        CHECK(code(s.transact([](auto&) { return tether::result<void>{}; })) == invalid);
    }
    CHECK(db.schema_version().value() == tether::sqlite_database::current_schema_version);

    // An entity whose collection is not a valid name works under a valid override.
    tether::sqlite_store<dashed> bad_default{tether::sqlite_storage{db}};
    CHECK(bad_default.list().error().code == tether::errc::invalid_argument);
    tether::sqlite_store<dashed> renamed{tether::sqlite_storage{db, "my_items"}};
    CHECK(renamed.list());

    // Names are case-insensitive, as in SQLite.
    item_store upper{tether::sqlite_storage{db, "Items_2"}};
    item_store lower{tether::sqlite_storage{db, "items_2"}};
    REQUIRE(put_all(upper, std::vector{make_record(1)}));
    CHECK(lower.list().value().size() == 1);
    CHECK(lower.table() == "items_2");

    // A table is not shared between entity types, nor taken over from the app.
    note_store clash{tether::sqlite_storage{db, "items_2"}};
    CHECK(clash.list().error().code == tether::errc::storage);
    raw_db raw{dir.file("names.db")};
    REQUIRE(raw.exec("CREATE TABLE app_table (x INTEGER)") == SQLITE_OK);
    item_store foreign{tether::sqlite_storage{db, "app_table"}};
    auto f = foreign.list();
    REQUIRE_FALSE(f);
    CHECK(f.error().code == tether::errc::storage);
    CHECK(contains(f.error().message, "not created by tether"));
}

TEST_CASE("sqlite: several entity types share one transaction scope", "[sqlite][transact]") {
    temp_dir dir;
    auto db = open_ok(dir.file("shared.db"));
    item_store items{tether::sqlite_storage{db}};
    note_store notes{tether::sqlite_storage{db}};
    const auto i1 = make_record(1);
    const auto n1 = make_record<conformance_note>(2);
    auto both = [&]() -> tether::result<void> {
        if (auto r = put_all(items, std::vector{i1}); !r) return r;
        return put_all(notes, std::vector{n1});
    };
    auto nothing_written = [&] {
        CHECK(items.list().value().empty());
        CHECK(notes.list().value().empty());
    };

    SECTION("an error result undoes the writes of both") {
        auto r = db.transact([&]() -> tether::result<void> {
            if (auto x = both(); !x) return x;
            return tether::unexpected{tether::make_error(tether::errc::conflict, "undo")};
        });
        REQUIRE_FALSE(r);
        CHECK(r.error().message == "undo");
        nothing_written();
    }
    SECTION("an exception undoes the writes of both and is rethrown") {
        REQUIRE_THROWS_AS(db.transact([&]() -> tether::result<void> {
            if (auto x = both(); !x) return x;
            throw std::runtime_error{"boom"};
        }),
                          std::runtime_error);
        nothing_written();
    }
    SECTION("success commits both") {
        REQUIRE(db.transact(both));
        CHECK(items.list().value().size() == 1);
        CHECK(notes.list().value().size() == 1);
    }
    SECTION("a store transaction that fails before writing leaves the enclosing one going") {
        REQUIRE(db.transact([&]() -> tether::result<void> {
            if (auto x = put_all(items, std::vector{i1}); !x) return x;
            auto inner = notes.transact([&](auto&) -> tether::result<void> {
                return tether::unexpected{tether::make_error(tether::errc::not_found, "nothing to do")};
            });
            CHECK_FALSE(inner);
            return {};
        }));
        CHECK(items.list().value().size() == 1);
        CHECK(notes.list().value().empty());
    }
    SECTION("a store transaction that fails after writing dooms the enclosing one") {
        auto r = db.transact([&]() -> tether::result<void> {
            if (auto x = put_all(items, std::vector{i1}); !x) return x;
            auto inner = notes.transact([&](auto& tx) -> tether::result<void> {
                if (auto x = tx.put(n1); !x) return x;
                return tether::unexpected{tether::make_error(tether::errc::rejected, "inner")};
            });
            CHECK_FALSE(inner);
            return {};  // the app ignores the failure: the transaction still must not commit half a write
        });
        REQUIRE_FALSE(r);
        CHECK(r.error().code == tether::errc::rejected);
        CHECK(contains(r.error().message, "rolled back"));
        CHECK(contains(r.error().message, "inner"));
        nothing_written();
        REQUIRE(db.transact(both));  // the connection is usable again
        CHECK(items.list().value().size() == 1);
    }
    SECTION("a nested sqlite_database::transact is a savepoint: its failure undoes only its writes") {
        REQUIRE(db.transact([&]() -> tether::result<void> {
            if (auto x = put_all(items, std::vector{i1}); !x) return x;
            auto inner = db.transact([&]() -> tether::result<void> {
                return notes.transact([&](auto& tx) -> tether::result<void> {
                    if (auto x = tx.put(n1); !x) return x;
                    return tether::unexpected{tether::make_error(tether::errc::rejected, "inner")};
                });
            });
            CHECK_FALSE(inner);
            if (inner) return tether::unexpected{tether::make_error(tether::errc::storage, "inner should fail")};
            return {};
        }));
        CHECK(items.list().value().size() == 1);
        CHECK(notes.list().value().empty());
    }
}

TEST_CASE("sqlite: queries are served by indexes", "[sqlite][index]") {
    temp_dir dir;
    const auto path = dir.file("plan.db");
    {
        auto db = open_ok(path);
        item_store items{tether::sqlite_storage{db}};
        REQUIRE(items.list());
    }
    raw_db raw{path};
    const tether::detail::sqlite_table_sql sql{"conformance_items"};
    const auto due = raw.last_columns("EXPLAIN QUERY PLAN " + sql.select_due);
    CAPTURE(due);
    CHECK(contains(due, "conformance_items_due"));
    CHECK_FALSE(contains(due, "TEMP B-TREE"));
    const auto by_sid = raw.last_columns("EXPLAIN QUERY PLAN " + sql.select_by_server_id);
    CAPTURE(by_sid);
    CHECK(contains(by_sid, "USING INDEX"));
    const auto counts = raw.last_columns("EXPLAIN QUERY PLAN " + sql.select_counts);
    CAPTURE(counts);
    CHECK(contains(counts, "COVERING INDEX conformance_items_status"));
    const auto all = raw.last_columns("EXPLAIN QUERY PLAN " + sql.select_all);
    CAPTURE(all);
    CHECK_FALSE(contains(all, "TEMP B-TREE"));
}

TEST_CASE("sqlite: an undecodable row is a storage error for itself only, not a crash", "[sqlite][corrupt]") {
    temp_dir dir;
    const auto path = dir.file("rows.db");
    auto db = open_ok(path);
    item_store items{tether::sqlite_storage{db}};
    REQUIRE(put_all(items, std::vector{make_record(1), make_record(2)}));
    raw_db raw{path};
    const auto where_1 = " WHERE local_id = x'" + hex_of(id_n(1)) + "'";

    SECTION("bad JSON") {
        REQUIRE(raw.exec("UPDATE conformance_items SET value = '{not json'" + where_1) == SQLITE_OK);
        auto g = items.get(id_n(1));
        REQUIRE_FALSE(g);
        CHECK(g.error().code == tether::errc::storage);
        CHECK(contains(g.error().message, "not valid JSON"));
        CHECK(tether_test::ids_of(items.list().value()) == std::vector{id_n(2)});
    }
    SECTION("JSON that does not fit the entity") {
        REQUIRE(raw.exec("UPDATE conformance_items SET value = '{\"count\":\"seven\"}'" + where_1) == SQLITE_OK);
        auto g = items.get(id_n(1));
        REQUIRE_FALSE(g);
        CHECK(g.error().code == tether::errc::storage);
        CHECK(contains(g.error().message, id_n(1).to_string()));
        CHECK(tether_test::ids_of(items.due(at_ms(1'000'000), 10).value()) == std::vector{id_n(2)});
    }
    SECTION("an unknown status") {
        REQUIRE(raw.exec("UPDATE conformance_items SET status = 'bogus'" + where_1) == SQLITE_OK);
        CHECK(items.get(id_n(1)).error().code == tether::errc::storage);
        CHECK(tether_test::ids_of(items.list().value()) == std::vector{id_n(2)});
        auto c = items.counts();
        REQUIRE(c);  // the row counts as unreadable, under no status
        CHECK(c->pending == 1);
        CHECK(c->unreadable == 1);
    }
    SECTION("a duplicate server id") {
        auto a = make_record(1);
        auto b = make_record(2);
        a.server_id = b.server_id = "same";
        auto r = put_all(items, std::vector{a, b});
        REQUIRE_FALSE(r);
        CHECK(r.error().code == tether::errc::storage);
        CHECK(contains(r.error().message, "UNIQUE"));
        CHECK_FALSE(items.get(id_n(1)).value().value().server_id.has_value());  // rolled back
    }
}

namespace {

/// An entity with a vector of doubles: a NaN in it is written as `null`, which
/// does not read back into a double.
struct sampled {
    BOOST_HANA_DEFINE_STRUCT(sampled, (std::string, name), (std::vector<double>, samples));
    static constexpr std::string_view collection = "samples";
};
using sampled_store = tether::sqlite_store<sampled>;

tether::record<sampled> sampled_record(std::uint64_t n, std::vector<double> samples,
                                       tether::priority p = tether::priority::medium) {
    auto r = make_record<sampled>(n, tether::sync_status::pending, 1000 + static_cast<std::int64_t>(n), p);
    r.value = sampled{"s" + std::to_string(n), std::move(samples)};
    return r;
}

constexpr double nan_v = std::numeric_limits<double>::quiet_NaN();
const tether::timestamp later = at_ms(1'000'000);

std::vector<tether::local_id> unreadable_ids(const sampled_store& s) {
    std::vector<tether::local_id> out;
    for (const auto& u : s.unreadable().value()) out.push_back(u.id);
    return out;
}

}  // namespace

TEST_CASE("sqlite: the unreadable-rows capability is detectable by the engine", "[sqlite][unreadable]") {
    STATIC_REQUIRE(tether::reports_unreadable<item_store, conformance_item>);
    STATIC_REQUIRE(tether::reports_unreadable<sampled_store, sampled>);
    STATIC_REQUIRE_FALSE(tether::reports_unreadable<tether::memory_store<conformance_item>, conformance_item>);
}

TEST_CASE("sqlite: a row holding NaN (stored as null) affects only itself", "[sqlite][unreadable]") {
    temp_dir dir;
    const auto path = dir.file("nan.db");
    auto db = open_ok(path);
    sampled_store store{tether::sqlite_storage{db}};
    // The store refuses nothing itself (the engine validates): NaN goes out as null.
    REQUIRE(put_all(store, std::vector{sampled_record(1, {1.0}), sampled_record(2, {1.0, nan_v}),
                                       sampled_record(3, {3.0})}));
    raw_db raw{path};
    CHECK(raw.column("SELECT value FROM samples WHERE local_id = x'" + hex_of(id_n(2)) + "'") ==
          std::vector<std::string>{R"({"name":"s2","samples":[1.0,null]})"});

    SECTION("list and due skip it; counts and unreadable() report it") {
        CHECK(store.counts().value().unreadable == 0);  // not met by a read yet
        CHECK(tether_test::ids_of(store.list().value()) == std::vector{id_n(1), id_n(3)});
        CHECK(tether_test::ids_of(store.due(later, 10).value()) == std::vector{id_n(1), id_n(3)});
        CHECK(tether_test::ids_of(store.due(later, 2).value()) == std::vector{id_n(1), id_n(3)});
        const auto c = store.counts().value();
        CHECK(c.unreadable == 1);
        CHECK(c.pending == 3);  // its status still reads
        const auto u = store.unreadable().value();
        REQUIRE(u.size() == 1);
        CHECK(u[0].id == id_n(2));
        CHECK(u[0].why.code == tether::errc::storage);
        CHECK(contains(u[0].why.message, id_n(2).to_string()));
        CHECK(contains(u[0].why.message, "does not decode"));
    }
    SECTION("get, tx.get and tx.peek of it are storage errors naming it and why") {
        auto g = store.get(id_n(2));
        REQUIRE_FALSE(g);
        CHECK(g.error().code == tether::errc::storage);
        CHECK(contains(g.error().message, id_n(2).to_string()));
        CHECK(contains(g.error().message, "samples"));  // the table
        CHECK(contains(g.error().message, "null"));     // why: a null where a number belongs
        CHECK(unreadable_ids(store) == std::vector{id_n(2)});
        REQUIRE(store.transact([](auto& tx) -> tether::result<void> {
            auto tg = tx.get(id_n(2));
            REQUIRE_FALSE(tg);
            CHECK(tg.error().code == tether::errc::storage);
            CHECK(contains(tg.error().message, id_n(2).to_string()));
            auto tp = tx.peek(id_n(2));
            REQUIRE_FALSE(tp);
            CHECK(tp.error().code == tether::errc::storage);
            CHECK(tx.get(id_n(1)).value().has_value());  // its neighbours read as ever
            return {};
        }));
        CHECK(store.get(id_n(3)).value().has_value());
    }
    SECTION("tx.unreadable tells it apart from good and absent rows") {
        REQUIRE(store.transact([](auto& tx) -> tether::result<void> {
            CHECK(tx.unreadable(id_n(2)));
            CHECK_FALSE(tx.unreadable(id_n(1)));
            CHECK_FALSE(tx.unreadable(id_n(99)));
            return {};
        }));
        CHECK(unreadable_ids(store) == std::vector{id_n(2)});  // noted by that read
    }
    SECTION("tx.erase removes it without decoding it, and clears the count") {
        REQUIRE(store.list());
        REQUIRE(store.counts().value().unreadable == 1);
        REQUIRE(store.transact([](auto& tx) {
            REQUIRE(tx.unreadable(id_n(2)));
            return tx.erase(id_n(2));
        }));
        CHECK_FALSE(store.get(id_n(2)).value().has_value());
        CHECK(store.counts().value().unreadable == 0);
        CHECK(store.counts().value().pending == 2);
        CHECK(store.unreadable().value().empty());
        CHECK(raw.column("SELECT count(*) FROM samples") == std::vector<std::string>{"2"});
    }
    SECTION("a put of it replaces it and clears the count") {
        REQUIRE_FALSE(store.get(id_n(2)));
        REQUIRE(store.counts().value().unreadable == 1);
        REQUIRE(put_all(store, std::vector{sampled_record(2, {2.0})}));
        CHECK(store.counts().value().unreadable == 0);
        CHECK(store.get(id_n(2)).value().value().value.samples == std::vector{2.0});
        CHECK(tether_test::ids_of(store.list().value()) == std::vector{id_n(1), id_n(2), id_n(3)});
    }
    SECTION("an erase rolled back leaves the row, found again by the next read") {
        REQUIRE(store.list());
        auto r = store.transact([](auto& tx) -> tether::result<void> {
            if (auto e = tx.erase(id_n(2)); !e) return e;
            return tether::unexpected{tether::make_error(tether::errc::invalid_state, "changed my mind")};
        });
        REQUIRE_FALSE(r);
        CHECK(store.counts().value().unreadable == 0);  // as documented: not read again yet
        CHECK(tether_test::ids_of(store.list().value()) == std::vector{id_n(1), id_n(3)});
        CHECK(store.counts().value().unreadable == 1);
    }
    SECTION("a row mended outside the store is dropped from the list by the next read of it") {
        REQUIRE_FALSE(store.get(id_n(2)));
        REQUIRE(raw.exec(R"(UPDATE samples SET value = '{"name":"s2","samples":[5.0]}')") == SQLITE_OK);
        CHECK(store.counts().value().unreadable == 1);  // nothing read since
        CHECK(store.list().value().size() == 3);
        CHECK(store.counts().value().unreadable == 0);
    }
}

TEST_CASE("sqlite: due returns up to limit readable records past any number of unreadable ones",
          "[sqlite][unreadable]") {
    temp_dir dir;
    const auto path = dir.file("due.db");
    {
        auto db = open_ok(path);
        sampled_store store{tether::sqlite_storage{db}};
        std::vector<tether::record<sampled>> recs;
        for (std::uint64_t n = 1; n <= 5; ++n) recs.push_back(sampled_record(n, {nan_v}, tether::priority::critical));
        for (std::uint64_t n = 6; n <= 9; ++n) recs.push_back(sampled_record(n, {1.0}, tether::priority::low));
        REQUIRE(put_all(store, recs));
    }
    auto db = open_ok(path);  // a fresh handle: nothing known yet
    sampled_store store{tether::sqlite_storage{db}};
    CHECK(tether_test::ids_of(store.due(later, 3).value()) == std::vector{id_n(6), id_n(7), id_n(8)});
    CHECK(store.counts().value().unreadable == 5);
    CHECK(tether_test::ids_of(store.due(later, 3).value()) == std::vector{id_n(6), id_n(7), id_n(8)});
    CHECK(tether_test::ids_of(store.due(later, 100).value()) == std::vector{id_n(6), id_n(7), id_n(8), id_n(9)});
    CHECK(tether_test::ids_of(store.due(later, 1).value()) == std::vector{id_n(6)});
}

namespace {

// The same table seen by two versions of an app: version 2 changed `level`
// from a number to a list of names.
struct gauge_v1 {
    BOOST_HANA_DEFINE_STRUCT(gauge_v1, (std::string, name), (std::int64_t, level));
    static constexpr std::string_view collection = "gauges";
};
struct gauge_v2 {
    BOOST_HANA_DEFINE_STRUCT(gauge_v2, (std::string, name), (std::vector<std::string>, level));
    static constexpr std::string_view collection = "gauges";
};

}  // namespace

TEST_CASE("sqlite: rows written before an entity member changed type are reported, never brick the table",
          "[sqlite][unreadable][upgrade]") {
    temp_dir dir;
    const auto path = dir.file("upgrade.db");
    {
        auto db = open_ok(path);
        tether::sqlite_store<gauge_v1> old_store{tether::sqlite_storage{db}};
        std::vector<tether::record<gauge_v1>> recs;
        for (std::uint64_t n : {1, 3, 5}) {
            auto r = make_record<gauge_v1>(n, n == 5 ? tether::sync_status::synced : tether::sync_status::pending);
            r.value = gauge_v1{"old " + std::to_string(n), static_cast<std::int64_t>(n) * 10};
            recs.push_back(r);
        }
        REQUIRE(put_all(old_store, recs));
    }
    // The app is upgraded: the same file, the same table, the new type.
    auto db = open_ok(path);
    tether::sqlite_store<gauge_v2> store{tether::sqlite_storage{db}};
    std::vector<tether::record<gauge_v2>> fresh;
    for (std::uint64_t n : {2, 4}) {
        auto r = make_record<gauge_v2>(n);
        r.value = gauge_v2{"new " + std::to_string(n), {"low", "high"}};
        fresh.push_back(r);
    }
    REQUIRE(put_all(store, fresh));

    const auto listed = store.list();
    REQUIRE(listed);
    CHECK(tether_test::ids_of(*listed) == std::vector{id_n(2), id_n(4)});
    CHECK((*listed)[0].value.level == std::vector<std::string>{"low", "high"});
    CHECK(tether_test::ids_of(store.due(later, 10).value()) == std::vector{id_n(2), id_n(4)});

    const auto c = store.counts().value();
    CHECK(c.unreadable == 3);
    CHECK(c.pending == 4);
    CHECK(c.synced == 1);
    const auto u = store.unreadable().value();
    REQUIRE(u.size() == 3);
    CHECK(u[0].id == id_n(1));
    CHECK(u[1].id == id_n(3));
    CHECK(u[2].id == id_n(5));
    for (const auto& bad : u) {
        CHECK(bad.why.code == tether::errc::storage);
        CHECK(contains(bad.why.message, bad.id.to_string()));
    }
    CHECK(store.get(id_n(3)).error().code == tether::errc::storage);

    // The app may drop them, one by one, without decoding them.
    REQUIRE(store.transact([&](auto& tx) -> tether::result<void> {
        for (const auto& bad : u) {
            if (!tx.unreadable(bad.id)) return tether::unexpected{tether::make_error(tether::errc::invalid_state, "a row that should not decode did")};
            if (auto e = tx.erase(bad.id); !e) return e;
        }
        return {};
    }));
    CHECK(store.counts().value().unreadable == 0);
    CHECK(store.counts().value().pending == 2);
    CHECK(store.list().value().size() == 2);
}
