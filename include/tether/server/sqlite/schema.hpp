#pragma once

/// @file
/// @brief Internals of the SQLite server store: its schema, its version, and
/// the row form of a `stored_record`.
///
/// Schema history (the version lives in `tether_server_meta`, key `schema_version`):
/// - **1**: `tether_server_meta(key, value)` (also `next_server_id`),
///   `tether_server_collections(user_id, collection, last_change, epoch)` (one
///   change counter per scope), `tether_server_records(user_id, collection,
///   server_id, local_id, version, value, updated_at, origin, deleted,
///   created_version)` with unique indexes on (user_id, collection, local_id)
///   and (user_id, collection, version).
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/result.hpp>
#include <tether/core/timestamp.hpp>
#include <tether/server/store.hpp>
#include <tether/storage/sqlite/connection.hpp>
#include <tether/storage/sqlite/statement.hpp>

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tether::server::detail {

/// The schema version this build writes.
inline constexpr int sqlite_server_schema_version = 1;

/// The statements that make schema 1.
inline constexpr std::array<std::string_view, 6> sqlite_server_schema_v1{
    "CREATE TABLE tether_server_meta (key TEXT PRIMARY KEY NOT NULL, value ANY NOT NULL) WITHOUT ROWID",
    "CREATE TABLE tether_server_collections (user_id TEXT NOT NULL, collection TEXT NOT NULL,"
    " last_change INTEGER NOT NULL, epoch INTEGER NOT NULL, PRIMARY KEY (user_id, collection)) WITHOUT ROWID",
    "CREATE TABLE tether_server_records (user_id TEXT NOT NULL, collection TEXT NOT NULL, server_id TEXT NOT NULL,"
    " local_id BLOB, version INTEGER NOT NULL, value TEXT NOT NULL, updated_at INTEGER, origin TEXT NOT NULL,"
    " deleted INTEGER NOT NULL, created_version INTEGER NOT NULL, PRIMARY KEY (user_id, collection, server_id))"
    " WITHOUT ROWID",
    "CREATE UNIQUE INDEX tether_server_records_local_id ON tether_server_records (user_id, collection, local_id)"
    " WHERE local_id IS NOT NULL",
    "CREATE UNIQUE INDEX tether_server_records_version ON tether_server_records (user_id, collection, version)",
    "INSERT INTO tether_server_meta (key, value) VALUES ('schema_version', 1), ('next_server_id', 0)",
};

/// The `errc::storage` error for a failed step of `st`.
inline error sqlite_server_step_error(sqlite3* db, int rc, const tether::detail::sqlite_statement& st) {
    return tether::detail::sqlite_error(db, rc, st.sql());
}

/// The schema version stored in the file: 0 for a file without the server's
/// tables, an error for a file whose version row is missing or not a number.
inline result<int> sqlite_server_read_schema_version(tether::detail::sqlite_connection& c) {
    auto probe = c.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tether_server_meta'");
    if (!probe) return unexpected{std::move(probe).error()};
    int rc = probe->step();
    if (rc == SQLITE_DONE) return 0;
    if (rc != SQLITE_ROW) return unexpected{sqlite_server_step_error(c.handle(), rc, *probe)};
    auto st = c.prepare("SELECT value FROM tether_server_meta WHERE key = 'schema_version'");
    if (!st) return unexpected{std::move(st).error()};
    rc = st->step();
    if (rc == SQLITE_DONE) return unexpected{make_error(errc::storage, "sqlite: tether_server_meta has no schema_version")};
    if (rc != SQLITE_ROW) return unexpected{sqlite_server_step_error(c.handle(), rc, *st)};
    const auto v = st->int64(0);
    if (v <= 0 || v > 1'000'000) return unexpected{make_error(errc::storage, "sqlite: invalid server schema_version")};
    return static_cast<int>(v);
}

/// True if the file holds a tether client database (the storage's `tether_meta`).
inline result<bool> sqlite_server_is_client_database(tether::detail::sqlite_connection& c) {
    auto probe = c.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tether_meta'");
    if (!probe) return unexpected{std::move(probe).error()};
    const int rc = probe->step();
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return unexpected{sqlite_server_step_error(c.handle(), rc, *probe)};
    return rc == SQLITE_ROW;
}

/// Creates schema 1 in one transaction. Call with the connection's lock held.
inline result<void> sqlite_server_create_schema(tether::detail::sqlite_connection& c) {
    auto scope = c.begin();
    if (!scope) return unexpected{std::move(scope).error()};
    for (auto sql : sqlite_server_schema_v1)
        if (auto r = c.exec(sql); !r) return r;  // the scope rolls back
    return scope->commit();
}

/// The record in the current row of `st`, whose columns are `server_id,
/// local_id, version, value, updated_at, origin, deleted, created_version`;
/// `errc::storage` for a row that does not decode.
inline result<stored_record> sqlite_server_row(const tether::detail::sqlite_statement& st) {
    stored_record r;
    r.record.server_id = std::string{st.text(0)};
    auto corrupt = [&](std::string_view why) {
        return unexpected{make_error(errc::storage, "sqlite: record " + r.record.server_id + " does not decode: " +
                                                        std::string{why})};
    };
    if (!st.is_null(1)) {
        const auto bytes = st.blob(1);
        if (bytes.size() != 16) return corrupt("local id is not 16 bytes");
        local_id::bytes_type b{};
        std::copy(bytes.begin(), bytes.end(), b.begin());
        r.record.id = local_id{b};
    }
    r.record.version = static_cast<std::uint64_t>(st.int64(2));
    try {
        r.record.value = nlohmann::json::parse(st.text(3));
    } catch (const nlohmann::json::exception& e) {
        return corrupt(e.what());
    }
    if (!st.is_null(4)) r.record.updated_at = timestamp{std::chrono::milliseconds{st.int64(4)}};
    r.record.origin = std::string{st.text(5)};
    r.deleted = st.int64(6) != 0;
    r.created_version = static_cast<std::uint64_t>(st.int64(7));
    return r;
}

}  // namespace tether::server::detail
