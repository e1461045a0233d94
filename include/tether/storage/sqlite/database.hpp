#pragma once

/// @file
/// @brief `tether::sqlite_database`: an open SQLite database shared by stores.

#include <tether/core/timestamp.hpp>
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/result.hpp>
#include <tether/core/status.hpp>
#include <tether/storage/sqlite/connection.hpp>
#include <tether/storage/sqlite/options.hpp>
#include <tether/storage/sqlite/schema.hpp>
#include <tether/storage/sqlite/statement.hpp>

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace tether {

template <class E>
class sqlite_store;

namespace detail {

/// Runs `body()` in a transaction scope of `c` (top level or savepoint): commits
/// if it returns a value, rolls back if it returns an error or throws (rethrown).
/// After the outermost scope commits, runs what was deferred to it
/// (`sqlite_connection::defer`), once this call has released the lock.
template <class F>
result<void> sqlite_run_in_scope(sqlite_connection& c, F&& body) {
    std::vector<std::function<void()>> after;
    result<void> out;
    {
        std::lock_guard lock{c.mutex()};
        auto scope = c.begin();
        if (!scope) return unexpected{std::move(scope).error()};
        try {
            result<void> r = std::invoke(std::forward<F>(body));
            if (!r) {
                scope->rollback();
                return r;
            }
            out = scope->commit();
        } catch (...) {
            scope->rollback();
            throw;
        }
        after = c.take_committed();
    }
    for (auto& fn : after) fn();
    return out;
}

/// Runs a store's `body()` (one engine write, a pull page): in a transaction of
/// its own at the top level; inside an enclosing scope it joins that scope with
/// no savepoint of its own (a SAVEPOINT and its RELEASE cost more than the write
/// itself). A body that fails before changing a row leaves the enclosing scope
/// as it was; one that fails after changing rows dooms it (see
/// `sqlite_connection::doom`): the enclosing scope then rolls back as a whole.
template <class F>
result<void> sqlite_run_joined(sqlite_connection& c, F&& body) {
    std::lock_guard lock{c.mutex()};
    if (c.depth() == 0) return sqlite_run_in_scope(c, std::forward<F>(body));
    const auto changes_before = sqlite3_total_changes64(c.handle());
    try {
        result<void> r = std::invoke(std::forward<F>(body));
        if (!r && sqlite3_total_changes64(c.handle()) != changes_before) c.doom(r.error());
        return r;
    } catch (...) {
        if (sqlite3_total_changes64(c.handle()) != changes_before) {
            c.doom(make_error(errc::storage, "sqlite: a write threw an exception"));
        }
        throw;
    }
}

/// The trigger named `s` in the audit log (`to_string(sync_trigger)`), or
/// nothing for a name this build does not know.
[[nodiscard]] constexpr std::optional<sync_trigger> sqlite_trigger_from_string(std::string_view s) noexcept {
    // Every value of the enum (a new trigger is read back once `to_string` names it).
    for (unsigned v = 0; v <= 0xffu; ++v) {
        const auto t = static_cast<sync_trigger>(v);
        if (const auto name = to_string(t); name != "unknown" && name == s) return t;
    }
    return std::nullopt;
}

/// Appends one transition to the audit log (inside the caller's transaction).
inline result<void> sqlite_insert_audit(sqlite_connection& c, std::string_view scope, const transition& t) {
    auto st = c.prepare(
        "INSERT INTO tether_audit (scope, local_id, at, from_status, to_status, cause, legal, \"trigger\")"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    if (!st) return unexpected{std::move(st).error()};
    st->bind(1, scope).bind_blob(2, t.id.bytes()).bind(3, std::int64_t{t.at.time_since_epoch().count()});
    if (t.from) st->bind(4, to_string(*t.from)); else st->bind_null(4);
    if (t.to) st->bind(5, to_string(*t.to)); else st->bind_null(5);
    st->bind(6, std::string_view{t.cause}).bind(7, std::int64_t{t.legal ? 1 : 0});
    if (t.trigger) st->bind(8, to_string(*t.trigger)); else st->bind_null(8);
    if (const int rc = st->step(); rc != SQLITE_DONE) return unexpected{sqlite_error(c.handle(), rc, st->sql())};
    return {};
}

/// True if the first 16 bytes of `path` are SQLite's magic string.
inline bool sqlite_has_magic_header(const std::string& path) {
    static constexpr char magic[16] = {'S', 'Q', 'L', 'i', 't', 'e', ' ', 'f', 'o', 'r', 'm', 'a', 't', ' ', '3', '\0'};
    std::ifstream in{path, std::ios::binary};
    std::array<char, 16> head{};
    if (!in.read(head.data(), static_cast<std::streamsize>(head.size()))) return false;
    return std::equal(head.begin(), head.end(), std::begin(magic));
}

}  // namespace detail

/// @brief An open SQLite database: the connection every `sqlite_store` on it
/// shares, and the scope of transactions that span several stores.
///
/// Copies share one connection (closed when the last copy and the last store
/// built on it are gone). The connection is guarded by a recursive mutex, so any
/// thread may use any store; a thread inside a transaction may call other stores
/// of the same database, whose transactions then nest (as savepoints).
///
/// The database runs in WAL mode; its schema version is checked (and older
/// schemas migrated) on `open`. See docs/storage-sqlite.md.
///
/// @code
/// auto db = tether::sqlite_database::open("app.db").value();
/// auto jobs = tether::make_engine<Job>(tether::sqlite_storage{db});
/// auto notes = tether::make_engine<Note>(tether::sqlite_storage{db});
/// auto r = db.transact([&] { /* writes of both engines: one transaction */ return tether::result<void>{}; });
/// @endcode
class sqlite_database {
public:
    /// @brief The schema version this build writes (older ones are migrated on open).
    static constexpr int current_schema_version = detail::sqlite_schema_version;

    /// @brief Opens (or creates) the database at `path` (`":memory:"` for a
    /// private in-memory database).
    ///
    /// Refuses, with an `errc::storage` error and without writing to the file,
    /// a file that is not a SQLite database, one that fails `PRAGMA quick_check`
    /// (with `opts.check_integrity`), and one whose tether schema is newer than
    /// `current_schema_version`. An older schema is migrated in one transaction.
    [[nodiscard]] static result<sqlite_database> open(std::string path, sqlite_options opts = {}) {
        if (sqlite3_threadsafe() == 0) {
            return unexpected{make_error(errc::storage, "sqlite: the SQLite library was built without thread safety")};
        }
        bool existing = false;
        if (!path.empty() && path != ":memory:") {
            std::error_code ec;
            const auto st = std::filesystem::status(path, ec);
            if (std::filesystem::exists(st)) {
                if (!std::filesystem::is_regular_file(st)) return refuse_(path, "is not a regular file");
                const auto size = std::filesystem::file_size(path, ec);
                if (ec) return refuse_(path, "cannot be read (" + ec.message() + ")");
                if (size > 0) {
                    if (!detail::sqlite_has_magic_header(path)) return refuse_(path, "is not a SQLite database");
                    existing = true;
                }
            }
        }
        sqlite3* raw = nullptr;
        const int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                                                SQLITE_OPEN_NOMUTEX, nullptr);
        auto conn = std::make_shared<detail::sqlite_connection>(raw, path, opts);  // closes `raw` in any case
        if (rc != SQLITE_OK) return unexpected{detail::sqlite_error(raw, rc, "opening '" + path + "'")};
        sqlite3_extended_result_codes(raw, 1);
        sqlite3_busy_timeout(raw, static_cast<int>(std::clamp<std::chrono::milliseconds::rep>(
                                      opts.busy_timeout.count(), 0, 1 << 30)));

        // Checks first: nothing below writes until the file has been accepted.
        if (existing && opts.check_integrity) {
            auto check = conn->prepare("PRAGMA quick_check");
            if (!check) {
                return refuse_(path, "is not a usable SQLite database (" + std::string{sqlite3_errmsg(raw)} + ")");
            }
            const int qc = check->step();
            if (qc != SQLITE_ROW) {
                return refuse_(path, "is not a usable SQLite database (" + std::string{sqlite3_errmsg(raw)} + ")");
            }
            if (check->text(0) != "ok") {
                return refuse_(path, "is corrupt (quick_check: " + std::string{check->text(0)} + ")");
            }
        }
        auto version = detail::sqlite_read_schema_version(*conn);
        if (!version) return refuse_(path, "is not a usable tether database: " + version.error().message);
        if (*version > current_schema_version) {
            return refuse_(path, "has tether schema version " + std::to_string(*version) +
                                     ", newer than this build understands (" +
                                     std::to_string(current_schema_version) + ")");
        }

        if (auto wal = conn->prepare("PRAGMA journal_mode = WAL"); !wal) {
            return unexpected{std::move(wal).error()};
        } else if (const int wrc = wal->step(); wrc != SQLITE_ROW) {
            return unexpected{detail::sqlite_error(raw, wrc, "PRAGMA journal_mode = WAL")};
        }
        const bool full = opts.synchronous == sqlite_options::sync_mode::full;
        if (auto r = conn->exec(full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL"); !r) {
            return unexpected{std::move(r).error()};
        }
        if (*version < current_schema_version) {
            std::lock_guard lock{conn->mutex()};
            if (auto r = detail::sqlite_migrate(*conn); !r) return unexpected{std::move(r).error()};
        }
        return sqlite_database{std::move(conn)};
    }

    /// @brief Runs `f()` (returning `result<void>`) in one transaction: every
    /// store write made by this thread inside `f` commits together if `f` returns
    /// a value, and none does if it returns an error (returned) or throws
    /// (rethrown). Nested inside another transaction, it is a savepoint.
    template <class F>
    result<void> transact(F&& f) {
        static_assert(std::is_same_v<std::invoke_result_t<F>, result<void>>,
                      "tether::sqlite_database::transact(f) requires f() to return tether::result<void>");
        return detail::sqlite_run_in_scope(*conn_, std::forward<F>(f));
    }

    /// @brief The audit log of table `table`, oldest first; only the transitions
    /// of record `id` if given. Empty unless the database was opened with
    /// `sqlite_options::audit`.
    [[nodiscard]] result<std::vector<transition>> audit_log(std::string_view table,
                                                             std::optional<local_id> id = std::nullopt) const {
        if (!detail::sqlite_valid_table_name(table)) {
            return unexpected{make_error(errc::invalid_argument, "sqlite: invalid table name '" +
                                                                     std::string{table.substr(0, 80)} + "'")};
        }
        const std::string scope = detail::sqlite_canonical_table_name(table);
        std::lock_guard lock{conn_->mutex()};
        auto st = conn_->prepare(
            id ? "SELECT local_id, at, from_status, to_status, cause, legal, \"trigger\" FROM tether_audit"
                 " WHERE scope = ?1 AND local_id = ?2 ORDER BY seq"
               : "SELECT local_id, at, from_status, to_status, cause, legal, \"trigger\" FROM tether_audit"
                 " WHERE scope = ?1 ORDER BY seq");
        if (!st) return unexpected{std::move(st).error()};
        st->bind(1, std::string_view{scope});
        if (id) st->bind_blob(2, id->bytes());
        std::vector<transition> out;
        int rc = SQLITE_ROW;
        while ((rc = st->step()) == SQLITE_ROW) {
            transition t;
            const auto bytes = st->blob(0);
            if (bytes.size() != 16) return corrupt_audit_();
            local_id::bytes_type b{};
            std::copy(bytes.begin(), bytes.end(), b.begin());
            t.id = local_id{b};
            t.at = timestamp{std::chrono::milliseconds{st->int64(1)}};
            if (!st->is_null(2)) {
                t.from = sync_status_from_string(st->text(2));
                if (!t.from) return corrupt_audit_();
            }
            if (!st->is_null(3)) {
                t.to = sync_status_from_string(st->text(3));
                if (!t.to) return corrupt_audit_();
            }
            t.cause = std::string{st->text(4)};
            t.legal = st->int64(5) != 0;
            if (!st->is_null(6)) {
                t.trigger = detail::sqlite_trigger_from_string(st->text(6));
                if (!t.trigger) return corrupt_audit_("an unknown trigger '" + printable_(st->text(6)) + "'");
            }
            out.push_back(std::move(t));
        }
        if (rc != SQLITE_DONE) return unexpected{detail::sqlite_error(conn_->handle(), rc, st->sql())};
        return out;
    }

    /// @brief Deletes audit entries older than `older_than` at `now` (every
    /// table); returns how many went.
    result<std::size_t> purge_audit(timestamp now, std::chrono::hours older_than = default_audit_retention) {
        const auto cutoff = std::chrono::time_point_cast<std::chrono::milliseconds>(now - older_than);
        std::size_t removed = 0;
        auto r = detail::sqlite_run_in_scope(*conn_, [&]() -> result<void> {
            auto st = conn_->prepare("DELETE FROM tether_audit WHERE at < ?1");
            if (!st) return unexpected{std::move(st).error()};
            st->bind(1, std::int64_t{cutoff.time_since_epoch().count()});
            if (const int rc = st->step(); rc != SQLITE_DONE) {
                return unexpected{detail::sqlite_error(conn_->handle(), rc, st->sql())};
            }
            removed = static_cast<std::size_t>(sqlite3_changes(conn_->handle()));
            return {};
        });
        if (!r) return unexpected{std::move(r).error()};
        return removed;
    }

    /// @brief The schema version stored in the file (after `open`, always
    /// `current_schema_version`).
    [[nodiscard]] result<int> schema_version() const {
        std::lock_guard lock{conn_->mutex()};
        return detail::sqlite_read_schema_version(*conn_);
    }

    /// @brief The path the database was opened with.
    [[nodiscard]] const std::string& path() const noexcept { return conn_->path(); }

    /// @brief The options the database was opened with.
    [[nodiscard]] const sqlite_options& options() const noexcept { return conn_->options(); }

    /// @brief True if both handles share one connection.
    friend bool operator==(const sqlite_database& a, const sqlite_database& b) noexcept {
        return a.conn_ == b.conn_;
    }

private:
    template <class E>
    friend class sqlite_store;

    explicit sqlite_database(std::shared_ptr<detail::sqlite_connection> c) noexcept : conn_(std::move(c)) {}

    static unexpected<error> refuse_(const std::string& path, const std::string& why) {
        return unexpected{make_error(errc::storage, "sqlite: '" + path + "' " + why +
                                                        "; refusing to open it (the file was not modified)")};
    }

    static unexpected<error> corrupt_audit_(std::string_view what = {}) {
        std::string message = "sqlite: corrupt row in tether_audit";
        if (!what.empty()) message += ": " + std::string{what};
        return unexpected{make_error(errc::storage, std::move(message))};
    }

    // At most 40 bytes of a stored text for a message, control characters as '?'.
    static std::string printable_(std::string_view s) {
        std::string out{s.substr(0, 40)};
        for (char& ch : out)
            if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7F) ch = '?';
        return out;
    }

    std::shared_ptr<detail::sqlite_connection> conn_;
};

}  // namespace tether
