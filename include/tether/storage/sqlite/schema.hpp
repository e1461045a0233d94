#pragma once

/// @file
/// @brief Internals of the SQLite storage: the schema, its version and its migrations.
///
/// Schema history (the version lives in `tether_meta`, scope `''`, key `schema_version`):
/// - **1**: `tether_meta(scope, key, value)`, `tether_tables(name)` (the registry of
///   record tables) and one record table per entity type, without indexes beyond
///   its keys and without the `deleted` column.
/// - **2**: record tables gain `deleted` and two indexes (`<t>_due`, `<t>_status`);
///   the audit log `tether_audit` appears.
/// - **3**: `<t>_due` is rebuilt with its condition spelled as `=` terms joined
///   by `OR` instead of `IN (...)`: SQLite evaluates a partial index's condition
///   on every write, and an `IN` list of three values made it build a temporary
///   table (with its own page cache) for each evaluation, three per upsert.
/// - **4**: the audit log gains a nullable `"trigger"` column (quoted: `TRIGGER`
///   is an SQL keyword): why the sync that made a transition ran
///   (`sync_trigger`'s name); NULL for a transition made outside a sync, and
///   for every row written before version 4.

#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/storage/sqlite/connection.hpp>
#include <tether/storage/sqlite/statement.hpp>

#include <sqlite3.h>

#include <charconv>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace tether::detail {

/// The schema version this build writes and understands.
inline constexpr int sqlite_schema_version = 4;

/// True for a table name tether accepts: `[A-Za-z_][A-Za-z0-9_]*`, at most 64
/// characters, not starting with `sqlite_` or `tether_` (reserved), any case.
[[nodiscard]] constexpr bool sqlite_valid_table_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > 64) return false;
    auto alpha = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
    auto digit = [](char c) { return c >= '0' && c <= '9'; };
    if (!alpha(name[0])) return false;
    for (char c : name) {
        if (!alpha(c) && !digit(c)) return false;
    }
    auto starts_with_ci = [&](std::string_view prefix) {
        if (name.size() < prefix.size()) return false;
        for (std::size_t i = 0; i < prefix.size(); ++i) {
            char c = name[i];
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
            if (c != prefix[i]) return false;
        }
        return true;
    };
    return !starts_with_ci("sqlite_") && !starts_with_ci("tether_");
}

/// The canonical (lower-case) form of a table name: SQLite compares names
/// without regard to ASCII case, so tether does too.
[[nodiscard]] inline std::string sqlite_canonical_table_name(std::string_view name) {
    std::string out{name};
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

/// The columns of a record table, in the order the store reads them.
inline constexpr std::string_view sqlite_record_columns =
    "local_id, server_id, status, deleted, version, local_rev, dirty, attempts, last_attempt_at, "
    "next_attempt_at, priority, created_at, updated_at, last_error_code, last_error, "
    "last_error_http_status, last_error_retry_after_ms, value";

/// The statuses `due()` considers; the partial index `<t>_due` uses the same text
/// (not `IN (...)`: see schema version 3).
inline constexpr std::string_view sqlite_due_statuses =
    "(status = 'pending' OR status = 'pending_deletion' OR status = 'error')";

/// Every SQL text one record table needs, built once from its (validated) name.
struct sqlite_table_sql {
    explicit sqlite_table_sql(const std::string& t) {
        const std::string q = "\"" + t + "\"";
        const std::string cols{sqlite_record_columns};
        create_table = "CREATE TABLE IF NOT EXISTS " + q +
                       " (local_id BLOB PRIMARY KEY NOT NULL CHECK (length(local_id) = 16),"
                       " server_id TEXT UNIQUE, status TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,"
                       " version INTEGER NOT NULL DEFAULT 0, local_rev INTEGER NOT NULL DEFAULT 0,"
                       " dirty TEXT NOT NULL DEFAULT '[]', attempts INTEGER NOT NULL DEFAULT 0,"
                       " last_attempt_at INTEGER, next_attempt_at INTEGER, priority INTEGER NOT NULL,"
                       " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, last_error_code TEXT,"
                       " last_error TEXT, last_error_http_status INTEGER, last_error_retry_after_ms INTEGER,"
                       " value TEXT NOT NULL)";
        // Serves due(): only unsynced rows, already in due() order, with the
        // next-attempt time in the index so that the filter needs no row lookup.
        create_due_index = "CREATE INDEX IF NOT EXISTS \"" + t + "_due\" ON " + q +
                           " (priority DESC, updated_at, local_id, next_attempt_at) WHERE " +
                           std::string{sqlite_due_statuses};
        // Serves counts() (a covering scan grouped by status).
        create_status_index = "CREATE INDEX IF NOT EXISTS \"" + t + "_status\" ON " + q + " (status, updated_at)";
        drop_due_index = "DROP INDEX IF EXISTS \"" + t + "_due\"";
        add_deleted_column = "ALTER TABLE " + q + " ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0";
        select_by_id = "SELECT " + cols + " FROM " + q + " WHERE local_id = ?1";
        select_by_server_id = "SELECT " + cols + " FROM " + q + " WHERE server_id = ?1";
        select_all = "SELECT " + cols + " FROM " + q + " ORDER BY local_id";
        // INDEXED BY: without statistics the planner may prefer <t>_status plus a
        // sort; this pins the sort-free plan (and fails loudly if the index is gone).
        select_due = "SELECT " + cols + " FROM " + q + " INDEXED BY \"" + t + "_due\" WHERE " +
                     std::string{sqlite_due_statuses} +
                     " AND (next_attempt_at IS NULL OR next_attempt_at <= ?1"
                     // a clock set back past the last attempt: due now (as tether::is_due)
                     " OR (status = 'error' AND last_attempt_at > ?1))"
                     " ORDER BY priority DESC, updated_at, local_id LIMIT ?2";
        // Served by <t>_due alone (the partial index holds next_attempt_at): no new index.
        select_earliest_attempt = "SELECT min(next_attempt_at) FROM " + q + " INDEXED BY \"" + t + "_due\" WHERE " +
                                  std::string{sqlite_due_statuses};
        select_counts = "SELECT status, count(*), min(updated_at) FROM " + q + " GROUP BY status";
        upsert = "INSERT INTO " + q + " (" + cols +
                 ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
                 " ON CONFLICT (local_id) DO UPDATE SET server_id = excluded.server_id,"
                 " status = excluded.status, deleted = excluded.deleted, version = excluded.version,"
                 " local_rev = excluded.local_rev, dirty = excluded.dirty, attempts = excluded.attempts,"
                 " last_attempt_at = excluded.last_attempt_at, next_attempt_at = excluded.next_attempt_at,"
                 " priority = excluded.priority, created_at = excluded.created_at,"
                 " updated_at = excluded.updated_at, last_error_code = excluded.last_error_code,"
                 " last_error = excluded.last_error, last_error_http_status = excluded.last_error_http_status,"
                 " last_error_retry_after_ms = excluded.last_error_retry_after_ms, value = excluded.value";
        erase = "DELETE FROM " + q + " WHERE local_id = ?1";
    }

    std::string create_table, create_due_index, create_status_index, drop_due_index, add_deleted_column;
    std::string select_by_id, select_by_server_id, select_all, select_due, select_earliest_attempt, select_counts, upsert,
        erase;
};

/// Metadata rows of every store (scope = table name) and of the database (scope '').
inline constexpr std::string_view sqlite_select_meta = "SELECT value FROM tether_meta WHERE scope = ?1 AND key = ?2";
inline constexpr std::string_view sqlite_upsert_meta =
    "INSERT INTO tether_meta (scope, key, value) VALUES (?1, ?2, ?3)"
    " ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value";

/// Runs a statement that returns at most one row and reads one optional text column.
inline result<std::optional<std::string>> sqlite_query_text(sqlite_connection& c, sqlite_statement& st) {
    const int rc = st.step();
    if (rc == SQLITE_DONE) return std::optional<std::string>{};
    if (rc != SQLITE_ROW) return unexpected{sqlite_error(c.handle(), rc, st.sql())};
    return st.opt_text(0);
}

/// The schema version stored in the database: 0 for a database tether has never
/// used. Reads only.
inline result<int> sqlite_read_schema_version(sqlite_connection& c) {
    auto probe = c.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tether_meta'");
    if (!probe) return unexpected{std::move(probe).error()};
    const int rc = probe->step();
    if (rc == SQLITE_DONE) return 0;
    if (rc != SQLITE_ROW) return unexpected{sqlite_error(c.handle(), rc, "reading the schema")};
    *probe = sqlite_statement{};  // release it before the next query

    auto st = c.prepare(sqlite_select_meta);
    if (!st) return unexpected{std::move(st).error()};
    st->bind(1, std::string_view{}).bind(2, std::string_view{"schema_version"});
    auto text = sqlite_query_text(c, *st);
    if (!text) return unexpected{std::move(text).error()};
    int v = 0;
    const std::string s = text->value_or(std::string{});
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (!*text || ec != std::errc{} || end != s.data() + s.size() || v < 1) {
        return unexpected{make_error(errc::storage, "sqlite: '" + c.path() +
                                                        "' has a tether_meta table without a valid schema version")};
    }
    return v;
}

/// Creates a record table and its indexes if missing, and registers it. Call
/// inside a transaction scope.
inline result<void> sqlite_create_record_table(sqlite_connection& c, const std::string& name) {
    const sqlite_table_sql sql{name};
    for (const std::string* s : {&sql.create_table, &sql.create_due_index, &sql.create_status_index}) {
        if (auto r = c.exec(*s); !r) return r;
    }
    auto reg = c.prepare("INSERT OR IGNORE INTO tether_tables (name) VALUES (?1)");
    if (!reg) return unexpected{std::move(reg).error()};
    reg->bind(1, std::string_view{name});
    if (const int rc = reg->step(); rc != SQLITE_DONE) return unexpected{sqlite_error(c.handle(), rc, reg->sql())};
    return {};
}

/// Creates the current schema's database-wide tables (idempotent).
inline result<void> sqlite_create_schema(sqlite_connection& c) {
    for (std::string_view s : {
             "CREATE TABLE IF NOT EXISTS tether_meta (scope TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
             " PRIMARY KEY (scope, key)) WITHOUT ROWID",
             "CREATE TABLE IF NOT EXISTS tether_tables (name TEXT PRIMARY KEY NOT NULL) WITHOUT ROWID",
             "CREATE TABLE IF NOT EXISTS tether_audit (seq INTEGER PRIMARY KEY, scope TEXT NOT NULL,"
             " local_id BLOB NOT NULL, at INTEGER NOT NULL, from_status TEXT, to_status TEXT,"
             " cause TEXT NOT NULL, legal INTEGER NOT NULL DEFAULT 1, \"trigger\" TEXT)",
             "CREATE INDEX IF NOT EXISTS tether_audit_at ON tether_audit (at)",
             "CREATE INDEX IF NOT EXISTS tether_audit_record ON tether_audit (scope, local_id, seq)",
         }) {
        if (auto r = c.exec(s); !r) return r;
    }
    return {};
}

/// The names of the registered record tables (checked).
inline result<std::vector<std::string>> sqlite_registered_tables(sqlite_connection& c) {
    std::vector<std::string> tables;
    auto st = c.prepare("SELECT name FROM tether_tables ORDER BY name");
    if (!st) return unexpected{std::move(st).error()};
    int rc = SQLITE_ROW;
    while ((rc = st->step()) == SQLITE_ROW) tables.emplace_back(st->text(0));
    if (rc != SQLITE_DONE) return unexpected{sqlite_error(c.handle(), rc, st->sql())};
    for (const auto& t : tables) {
        if (!sqlite_valid_table_name(t)) {
            return unexpected{make_error(errc::storage, "sqlite: tether_tables names an invalid table '" + t + "'")};
        }
    }
    return tables;
}

/// Version 1 -> 2: every registered record table gains `deleted` and its
/// indexes; the audit log appears.
inline result<void> sqlite_migrate_1_to_2(sqlite_connection& c) {
    auto tables = sqlite_registered_tables(c);
    if (!tables) return unexpected{std::move(tables).error()};
    if (auto r = sqlite_create_schema(c); !r) return r;
    for (const auto& t : *tables) {
        const sqlite_table_sql sql{t};
        auto has = c.prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = 'deleted'");
        if (!has) return unexpected{std::move(has).error()};
        has->bind(1, std::string_view{t});
        const int rc = has->step();
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) return unexpected{sqlite_error(c.handle(), rc, has->sql())};
        *has = sqlite_statement{};
        if (rc == SQLITE_DONE) {
            if (auto r = c.exec(sql.add_deleted_column); !r) return r;
        }
        if (auto r = sqlite_create_record_table(c, t); !r) return r;
    }
    return {};
}

/// Version 2 -> 3: every registered record table's `<t>_due` index is rebuilt
/// with the `OR` form of its condition.
inline result<void> sqlite_migrate_2_to_3(sqlite_connection& c) {
    auto tables = sqlite_registered_tables(c);
    if (!tables) return unexpected{std::move(tables).error()};
    for (const auto& t : *tables) {
        const sqlite_table_sql sql{t};
        if (auto r = c.exec(sql.drop_due_index); !r) return r;
        if (auto r = c.exec(sql.create_due_index); !r) return r;
    }
    return {};
}

/// Version 3 -> 4: the audit log gains its nullable `"trigger"` column (old
/// rows: NULL). A log made by `sqlite_migrate_1_to_2` in this build has it already.
inline result<void> sqlite_migrate_3_to_4(sqlite_connection& c) {
    auto has = c.prepare("SELECT 1 FROM pragma_table_info('tether_audit') WHERE name = 'trigger'");
    if (!has) return unexpected{std::move(has).error()};
    const int rc = has->step();
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return unexpected{sqlite_error(c.handle(), rc, has->sql())};
    *has = sqlite_statement{};
    if (rc == SQLITE_ROW) return {};
    return c.exec("ALTER TABLE tether_audit ADD COLUMN \"trigger\" TEXT");
}

/// Brings the schema to `sqlite_schema_version` in one transaction: creates it
/// in a fresh database, runs every migration step from an older one, refuses a
/// newer one. Nothing changes if any step fails.
inline result<void> sqlite_migrate(sqlite_connection& c) {
    auto scope = c.begin();
    if (!scope) return unexpected{std::move(scope).error()};
    auto v = sqlite_read_schema_version(c);  // again, under the write lock
    if (!v) return unexpected{std::move(v).error()};
    if (*v > sqlite_schema_version) {
        return unexpected{make_error(errc::storage,
                                     "sqlite: '" + c.path() + "' has tether schema version " + std::to_string(*v) +
                                         ", newer than this build understands (" +
                                         std::to_string(sqlite_schema_version) + "); refusing to open it")};
    }
    if (*v == sqlite_schema_version) return scope->commit();
    if (*v == 0) {
        if (auto r = sqlite_create_schema(c); !r) return r;
    } else {
        using step = result<void> (*)(sqlite_connection&);
        static constexpr step steps[] = {&sqlite_migrate_1_to_2,  // steps[i]: version i+1 -> i+2
                                         &sqlite_migrate_2_to_3, &sqlite_migrate_3_to_4};
        static_assert(std::size(steps) == sqlite_schema_version - 1, "one migration step per schema version");
        for (int from = *v; from < sqlite_schema_version; ++from) {
            if (auto r = steps[from - 1](c); !r) {
                r.error().message = "sqlite: migrating '" + c.path() + "' from schema version " +
                                    std::to_string(from) + ": " + r.error().message;
                return r;
            }
        }
    }
    auto st = c.prepare(sqlite_upsert_meta);
    if (!st) return unexpected{std::move(st).error()};
    st->bind(1, std::string_view{}).bind(2, std::string_view{"schema_version"});
    st->bind(3, std::string_view{std::to_string(sqlite_schema_version)});
    if (const int rc = st->step(); rc != SQLITE_DONE) return unexpected{sqlite_error(c.handle(), rc, st->sql())};
    *st = sqlite_statement{};
    return scope->commit();
}

}  // namespace tether::detail
