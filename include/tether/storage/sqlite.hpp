#pragma once

/// @file
/// @brief The reference SQLite storage (CMake target `tether::sqlite`).
///
/// - `tether::sqlite_database`: an open database file, shared by stores and
///   copies; `transact` spans several stores; the audit log.
/// - `tether::sqlite_storage`: the storage policy (`policy_kind = storage_tag`),
///   rebound by the engine to `tether::sqlite_store<E>`, one table per entity type.
/// - `tether::sqlite_options`: synchronous mode, busy timeout, audit, integrity check.
///
/// See docs/storage-sqlite.md.
///
/// @code
/// #include <tether/storage/sqlite.hpp>
///
/// auto db = tether::sqlite_database::open("app.db").value();
/// tether::sqlite_storage storage{db};
/// tether::sqlite_store<Job> jobs{storage};   // what the engine does with it
/// auto r = jobs.transact([&](auto& tx) { return tx.put(rec); });
/// @endcode

#include <tether/storage/sqlite/database.hpp>
#include <tether/storage/sqlite/options.hpp>
#include <tether/storage/sqlite/store.hpp>
