#pragma once

/// @file
/// @brief Internals of the PostgreSQL server store: its schema, the migrations
/// that make and upgrade it, and the row form of a `stored_record`.
///
/// The tables live in the first schema of the connection's `search_path`
/// (`public` unless the conninfo says otherwise, e.g.
/// `options='-c search_path=tether'`). Identifiers (user, collection, server
/// id, origin) are `bytea`: kept byte for byte, whatever bytes they hold, and
/// ordered bytewise like `server_id_less`. Values are JSON `text`.
///
/// Schema history (the version lives in `tether_server_meta`, key `schema_version`):
/// - **1**: `tether_server_meta(key, value)` (also `next_server_id`, the server-id
///   counter), `tether_server_collections(user_id, collection, last_change, epoch)`
///   (one change counter per scope), `tether_server_records(user_id, collection,
///   server_id, local_id, version, value, updated_at, origin, deleted,
///   created_version)` with unique indexes on (user_id, collection, local_id)
///   and (user_id, collection, version).
/// - **2**: server ids come from the sequence `tether_server_ids`, which
///   carries on from version 1's counter (the `next_server_id` row, dropped).
///   The counter row was updated by every create of every scope, and its row
///   lock held to the end of the push: pushes to different collections, in
///   any process, waited for one another there. `nextval` takes no lock that
///   lasts (ids a rolled-back push took are skipped, never reused).
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/result.hpp>
#include <tether/core/timestamp.hpp>
#include <tether/server/postgres/connection.hpp>
#include <tether/server/store.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace tether::server::detail {

/// One step of the schema's history: the statements that take a database
/// from `version - 1` to `version` (the last one records the new version).
struct pg_migration {
    int version;                          ///< the version it makes
    std::span<const char* const> sql;     ///< its statements, in order
};

/// Schema 1, from an empty schema.
inline constexpr std::array<const char*, 6> pg_server_schema_v1{
    "CREATE TABLE tether_server_meta (key text PRIMARY KEY, value bigint NOT NULL)",
    "CREATE TABLE tether_server_collections (user_id bytea NOT NULL, collection bytea NOT NULL,"
    " last_change bigint NOT NULL, epoch bigint NOT NULL, PRIMARY KEY (user_id, collection))",
    "CREATE TABLE tether_server_records (user_id bytea NOT NULL, collection bytea NOT NULL,"
    " server_id bytea NOT NULL, local_id bytea, version bigint NOT NULL, value text NOT NULL,"
    " updated_at bigint, origin bytea NOT NULL, deleted boolean NOT NULL, created_version bigint NOT NULL,"
    " PRIMARY KEY (user_id, collection, server_id))",
    "CREATE UNIQUE INDEX tether_server_records_local_id ON tether_server_records (user_id, collection, local_id)"
    " WHERE local_id IS NOT NULL",
    "CREATE UNIQUE INDEX tether_server_records_version ON tether_server_records (user_id, collection, version)",
    "INSERT INTO tether_server_meta (key, value) VALUES ('schema_version', 1), ('next_server_id', 0)",
};

/// Schema 1 to 2: server ids from a sequence that starts after the last id
/// the counter gave out.
inline constexpr std::array<const char*, 4> pg_server_schema_v2{
    "CREATE SEQUENCE tether_server_ids AS bigint MINVALUE 1",
    "SELECT setval('tether_server_ids', value) FROM tether_server_meta WHERE key = 'next_server_id' AND value > 0",
    "DELETE FROM tether_server_meta WHERE key = 'next_server_id'",
    "UPDATE tether_server_meta SET value = 2 WHERE key = 'schema_version'",
};

/// The schema's history, oldest first; the last entry is the version this build writes.
inline constexpr std::array<pg_migration, 2> pg_server_migrations{{
    {1, pg_server_schema_v1},
    {2, pg_server_schema_v2},
}};

/// The schema version this build writes.
inline constexpr int pg_server_schema_version = pg_server_migrations.back().version;

/// The schema version the database holds: 0 for one without the server's
/// tables, an error if its version row is missing or not a number.
inline result<int> pg_server_read_schema_version(pg_connection& c) {
    auto probe = c.exec("SELECT to_regclass('tether_server_meta') IS NOT NULL", pg_params{});
    if (!probe) return unexpected{std::move(probe).error()};
    if (!pg_bool(probe->get(), 0, 0).value_or(false)) return 0;
    auto st = c.exec("SELECT value FROM tether_server_meta WHERE key = 'schema_version'", pg_params{});
    if (!st) return unexpected{std::move(st).error()};
    if (PQntuples(st->get()) != 1)
        return unexpected{make_error(errc::storage, "postgres: tether_server_meta has no schema_version")};
    const auto v = pg_int8(st->get(), 0, 0);
    if (!v || *v <= 0 || *v > 1'000'000)
        return unexpected{make_error(errc::storage, "postgres: invalid server schema_version")};
    return static_cast<int>(*v);
}

/// Takes the database to schema `target` (at most `pg_server_schema_version`)
/// in one transaction: every step not applied yet, in order. A transaction-level
/// advisory lock keeps two processes starting at once from migrating together
/// (the second waits, then finds the work done). Refuses a database whose
/// schema is newer than this build's. Returns the version it found.
inline result<int> pg_server_migrate(pg_connection& c, int target = pg_server_schema_version) {
    if (auto b = c.exec("BEGIN"); !b) return unexpected{std::move(b).error()};
    auto fail = [&](error e) -> result<int> {
        (void)c.exec("ROLLBACK");
        return unexpected{std::move(e)};
    };
    // One fixed key for every schema of the database: migrations run one at a time.
    if (auto l = c.exec("SELECT pg_advisory_xact_lock(7306085893563609459)", pg_params{}); !l)
        return fail(std::move(l).error());
    auto found = pg_server_read_schema_version(c);
    if (!found) return fail(std::move(found).error());
    if (*found > pg_server_schema_version)
        return fail(make_error(errc::storage, "postgres: the database has tether server schema version " +
                                                  std::to_string(*found) + ", newer than this build understands (" +
                                                  std::to_string(pg_server_schema_version) +
                                                  "); refusing to use it (it was not modified)"));
    for (const auto& m : pg_server_migrations) {
        if (m.version <= *found || m.version > target) continue;
        for (const char* sql : m.sql)
            if (auto r = c.exec(sql); !r) return fail(std::move(r).error());
    }
    if (auto r = c.exec("COMMIT"); !r) return unexpected{std::move(r).error()};
    return *found;
}

/// The record in row `row` of `r`, whose columns are `server_id, local_id,
/// version, value, updated_at, origin, deleted, created_version`;
/// `errc::storage` for a row that does not decode.
inline result<stored_record> pg_server_row(const PGresult* r, int row) {
    stored_record rec;
    rec.record.server_id = std::string{pg_bytes(r, row, 0)};
    auto corrupt = [&](std::string_view why) {
        return unexpected{make_error(errc::storage, "postgres: record " + rec.record.server_id +
                                                        " does not decode: " + std::string{why})};
    };
    if (!pg_is_null(r, row, 1)) {
        const auto bytes = pg_bytes(r, row, 1);
        if (bytes.size() != 16) return corrupt("local id is not 16 bytes");
        local_id::bytes_type b{};
        std::transform(bytes.begin(), bytes.end(), b.begin(), [](char ch) { return static_cast<std::uint8_t>(ch); });
        rec.record.id = local_id{b};
    }
    const auto version = pg_int8(r, row, 2);
    const auto deleted = pg_bool(r, row, 6);
    const auto created = pg_int8(r, row, 7);
    if (!version || *version < 0 || !deleted || !created || *created < 0) return corrupt("a column has the wrong type");
    rec.record.version = static_cast<std::uint64_t>(*version);
    try {
        rec.record.value = nlohmann::json::parse(pg_bytes(r, row, 3));
    } catch (const nlohmann::json::exception& e) {
        return corrupt(e.what());
    }
    if (!pg_is_null(r, row, 4)) {
        const auto at = pg_int8(r, row, 4);
        if (!at) return corrupt("updated_at is not a bigint");
        rec.record.updated_at = timestamp{std::chrono::milliseconds{*at}};
    }
    rec.record.origin = std::string{pg_bytes(r, row, 5)};
    rec.deleted = *deleted;
    rec.created_version = static_cast<std::uint64_t>(*created);
    return rec;
}

}  // namespace tether::server::detail
