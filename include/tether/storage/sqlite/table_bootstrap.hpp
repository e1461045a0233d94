#pragma once

/// @file
/// @brief Opening a `sqlite_store<E>` table: check it, create it if missing
/// (not a public entry point).

#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/storage/sqlite/connection.hpp>
#include <tether/storage/sqlite/database.hpp>
#include <tether/storage/sqlite/schema.hpp>
#include <tether/storage/sqlite/statement.hpp>

#include <sqlite3.h>

#include <string>
#include <string_view>

namespace tether::detail {

/// What the file holds under a record table's name.
enum class sqlite_table_state {
    absent,      ///< no such table
    registered,  ///< a table tether created (listed in `tether_tables`)
    foreign,     ///< a table tether did not create
};

/// The state of table `table` on `conn` (caller holds the connection's lock).
inline result<sqlite_table_state> sqlite_probe_table(sqlite_connection& conn, const std::string& table) {
    auto probe = conn.prepare(
        "SELECT (SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1),"
        " (SELECT count(*) FROM tether_tables WHERE name = ?1)");
    if (!probe) return unexpected{std::move(probe).error()};
    probe->bind(1, std::string_view{table});
    if (const int rc = probe->step(); rc != SQLITE_ROW) {
        return unexpected{sqlite_error(conn.handle(), rc, table + ": opening the table")};
    }
    const bool exists = probe->int64(0) != 0;
    const bool registered = probe->int64(1) != 0;
    if (!exists) return sqlite_table_state::absent;
    return registered ? sqlite_table_state::registered : sqlite_table_state::foreign;
}

/// The error of a table of that name that tether did not create.
inline unexpected<error> sqlite_foreign_table(const std::string& table) {
    return unexpected{make_error(errc::storage, "sqlite: table '" + table + "' exists but was not created by tether")};
}

/// Checks the record table `table` and creates it (with its indexes) if
/// missing; caller holds the connection's lock. True if the store may remember
/// the table as ready: a registered table needs no write, so reads never wait
/// for the write lock. Creation inside an enclosing transaction is not
/// remembered, since that transaction may roll back; finding the table there is.
inline result<bool> sqlite_open_table(sqlite_connection& conn, const std::string& table) {
    const bool top_level = conn.depth() == 0;
    auto state = sqlite_probe_table(conn, table);
    if (!state) return unexpected{std::move(state).error()};
    if (*state == sqlite_table_state::absent) {
        auto r = sqlite_run_in_scope(conn, [&]() -> result<void> {
            // Under the write lock: another connection may have been first.
            auto again = sqlite_probe_table(conn, table);
            if (!again) return unexpected{std::move(again).error()};
            if (*again == sqlite_table_state::foreign) return sqlite_foreign_table(table);
            return sqlite_create_record_table(conn, table);
        });
        if (!r) return unexpected{std::move(r).error()};
    } else if (*state == sqlite_table_state::foreign) {
        return sqlite_foreign_table(table);
    }
    // A table this call created inside an enclosing transaction goes if that rolls back.
    return top_level || *state == sqlite_table_state::registered;
}

}  // namespace tether::detail
