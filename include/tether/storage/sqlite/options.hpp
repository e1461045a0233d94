#pragma once

/// @file
/// @brief `tether::sqlite_options`: how `sqlite_database::open` sets up a connection.

#include <chrono>

namespace tether {

/// @brief How long the audit log keeps a transition by default: 30 days.
inline constexpr std::chrono::hours default_audit_retention{24 * 30};

/// @brief Options of `sqlite_database::open`.
///
/// @code
/// auto db = tether::sqlite_database::open("app.db", {
///     .synchronous = tether::sqlite_options::sync_mode::normal,
///     .busy_timeout = std::chrono::seconds{2},
///     .audit = true,
/// });
/// @endcode
struct sqlite_options {
    /// @brief SQLite's `PRAGMA synchronous` (the database always runs in WAL mode).
    enum class sync_mode {
        /// Every commit is on disk when `transact` returns: survives a crash and a
        /// power loss. The default.
        full,
        /// Faster commits (no fsync per commit, only at checkpoints). Survives an
        /// application crash; a power loss or OS crash may lose the last commits,
        /// never corrupts the database.
        normal,
    };

    /// @brief Durability of commits (see `sync_mode`).
    sync_mode synchronous = sync_mode::full;

    /// @brief The longest a write waits for another connection's write lock
    /// (`SQLITE_BUSY`) before failing with `errc::busy` "database is locked"
    /// (retryable: nothing was applied).
    std::chrono::milliseconds busy_timeout{5000};

    /// @brief Record every status transition the engine reports in the audit
    /// table (`transaction::audit`); when false, `audit` is a no-op.
    bool audit = false;

    /// @brief Run `PRAGMA quick_check` when opening an existing file and refuse
    /// a corrupt one. Costs one read of the whole file at open.
    bool check_integrity = true;
};

}  // namespace tether
