#pragma once

/// @file
/// @brief `tether::sqlite_storage`, the SQLite storage policy (the store it
/// binds to, `sqlite_store<E>`, is in store.hpp).

#include <tether/storage/sqlite/database.hpp>
#include <tether/storage/storage.hpp>

#include <optional>
#include <string>
#include <utility>

namespace tether {

/// @brief The reference persistent storage: every entity type in its own table
/// of one SQLite database.
///
/// A policy value names the database and, optionally, the table (default: the
/// entity's collection name). The engine rebinds it to `sqlite_store<E>`; any
/// number of engines may share one `sqlite_database`, and their writes may share
/// one transaction (`sqlite_database::transact`).
///
/// @code
/// auto db = tether::sqlite_database::open("app.db").value();
/// auto jobs = tether::make_engine<Job>(tether::sqlite_storage{db});           // table "jobs"
/// auto drafts = tether::make_engine<Job>(tether::sqlite_storage{db, "drafts"});  // table "drafts"
/// @endcode
class sqlite_storage {
public:
    /// @brief Marks the type as a storage policy.
    using policy_kind = storage_tag;

    /// @brief The store the engine uses for entity `E`.
    template <class E>
    using rebind = sqlite_store<E>;

    /// @brief Each entity type in the table named after its collection.
    explicit sqlite_storage(sqlite_database db) : db_(std::move(db)) {}

    /// @brief The entity in table `table` (`[A-Za-z_][A-Za-z0-9_]*`, at most 64
    /// characters, not starting with `sqlite_` or `tether_`; case-insensitive).
    /// An invalid name makes every call of the store fail with `errc::invalid_argument`.
    sqlite_storage(sqlite_database db, std::string table) : db_(std::move(db)), table_(std::move(table)) {}

    /// @brief The database.
    [[nodiscard]] const sqlite_database& database() const noexcept { return db_; }

    /// @brief The table name given at construction, if any.
    [[nodiscard]] const std::optional<std::string>& table() const noexcept { return table_; }

private:
    sqlite_database db_;
    std::optional<std::string> table_;
};

}  // namespace tether
