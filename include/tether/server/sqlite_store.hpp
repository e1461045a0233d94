#pragma once

/// @file
/// @brief `tether::server::sqlite_store`: a `server_store` in one SQLite file
/// (target `tether::server`).
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/result.hpp>
#include <tether/core/timestamp.hpp>
#include <tether/server/restore_floor.hpp>
#include <tether/server/sqlite/schema.hpp>
#include <tether/server/store.hpp>
#include <tether/storage/sqlite/connection.hpp>
#include <tether/storage/sqlite/database.hpp>
#include <tether/storage/sqlite/options.hpp>
#include <tether/storage/sqlite/statement.hpp>

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace tether::server {

/// @brief Options of `sqlite_store::open`.
struct sqlite_store_options {
    /// @brief Durability of commits: `full` (the default) has every push batch
    /// on disk before its answer; `normal` survives a crash of the process, not
    /// of the machine.
    sqlite_options::sync_mode synchronous = sqlite_options::sync_mode::full;
    /// @brief The longest a write waits for another connection's write lock
    /// before failing with `errc::busy`.
    std::chrono::milliseconds busy_timeout{5000};
    /// @brief Run `PRAGMA quick_check` when opening an existing file and refuse a corrupt one.
    bool check_integrity = true;
};

/// @brief A `server_store` in one SQLite file, in WAL mode.
///
/// A handle: copies share one connection, guarded by a mutex, so every member
/// is thread-safe. A write transaction is `BEGIN IMMEDIATE`: SQLite lets one
/// writer in at a time (across processes too), so write transactions are
/// serialised as a whole, which covers the per-scope lock of
/// `lock_collection`, and change numbers follow commit order. A read
/// transaction is a deferred `BEGIN`: one snapshot, which WAL lets run beside
/// a writer. The file carries its schema version (`schema_version`); `open`
/// refuses a newer one, a file that is not SQLite, and a tether client
/// database.
///
/// @code
/// auto store = tether::server::sqlite_store::open("server.db").value();
/// tether::server::sync_service<tether::server::sqlite_store> service{store};
/// @endcode
class sqlite_store {
    using connection = tether::detail::sqlite_connection;
    using statement = tether::detail::sqlite_statement;

public:
    /// @brief The schema version this build writes.
    static constexpr int schema_version = detail::sqlite_server_schema_version;

    /// @brief A read transaction (see `server_read_transaction`); also the read
    /// half of a write transaction.
    class read_transaction {
    public:
        /// @brief The record with server id `sid`, live or deleted.
        result<std::optional<stored_record>> find_by_server_id(scope s, std::string_view sid) const {
            auto st = c_->prepare(
                "SELECT server_id, local_id, version, value, updated_at, origin, deleted, created_version"
                " FROM tether_server_records WHERE user_id = ?1 AND collection = ?2 AND server_id = ?3");
            if (!st) return unexpected{std::move(st).error()};
            st->bind(1, s.user).bind(2, s.collection).bind(3, sid);
            return one_(*st);
        }

        /// @brief The record created with local id `id`, live or deleted.
        result<std::optional<stored_record>> find_by_local_id(scope s, const local_id& id) const {
            auto st = c_->prepare(
                "SELECT server_id, local_id, version, value, updated_at, origin, deleted, created_version"
                " FROM tether_server_records WHERE user_id = ?1 AND collection = ?2 AND local_id = ?3");
            if (!st) return unexpected{std::move(st).error()};
            st->bind(1, s.user).bind(2, s.collection).bind_blob(3, id.bytes());
            return one_(*st);
        }

        /// @brief At most `limit` records whose version is above `n`, by version.
        result<std::vector<stored_record>> changes_after(scope s, std::uint64_t n, std::size_t limit) const {
            auto st = c_->prepare(
                "SELECT server_id, local_id, version, value, updated_at, origin, deleted, created_version"
                " FROM tether_server_records WHERE user_id = ?1 AND collection = ?2 AND version > ?3"
                " ORDER BY version LIMIT ?4");
            if (!st) return unexpected{std::move(st).error()};
            st->bind(1, s.user).bind(2, s.collection).bind(3, to_int_(n)).bind(4, to_int_(limit));
            return all_(*st);
        }

        /// @brief Every live record, shorter server ids first, then by text (`server_id_less`).
        result<std::vector<stored_record>> list(scope s) const {
            auto st = c_->prepare(
                "SELECT server_id, local_id, version, value, updated_at, origin, deleted, created_version"
                " FROM tether_server_records WHERE user_id = ?1 AND collection = ?2 AND deleted = 0"
                " ORDER BY length(CAST(server_id AS BLOB)), server_id");
            if (!st) return unexpected{std::move(st).error()};
            st->bind(1, s.user).bind(2, s.collection);
            return all_(*st);
        }

        /// @brief The scope's change counter and epoch; empty if the store never held it.
        result<std::optional<collection_info>> collection(scope s) const {
            auto st = c_->prepare(
                "SELECT last_change, epoch FROM tether_server_collections WHERE user_id = ?1 AND collection = ?2");
            if (!st) return unexpected{std::move(st).error()};
            st->bind(1, s.user).bind(2, s.collection);
            const int rc = st->step();
            if (rc == SQLITE_DONE) return std::optional<collection_info>{};
            if (rc != SQLITE_ROW) return unexpected{detail::sqlite_server_step_error(c_->handle(), rc, *st)};
            return std::optional{collection_info{static_cast<std::uint64_t>(st->int64(0)),
                                                 static_cast<std::uint64_t>(st->int64(1))}};
        }

    protected:
        /// @brief A transaction on `c`, whose lock the caller holds.
        explicit read_transaction(connection* c) noexcept : c_(c) {}

        /// @brief `v` as SQLite's signed integer (clamped).
        static std::int64_t to_int_(std::uint64_t v) noexcept {
            return static_cast<std::int64_t>(std::min<std::uint64_t>(v, std::numeric_limits<std::int64_t>::max()));
        }

        /// @brief Runs a statement that returns nothing.
        result<void> run_(statement& st) const {
            const int rc = st.step();
            if (rc != SQLITE_DONE && rc != SQLITE_ROW) return unexpected{step_error_(rc, st)};
            return {};
        }

        /// @brief The error of a failed step: a unique index refusing a row is `errc::conflict`.
        error step_error_(int rc, const statement& st) const {
            error e = detail::sqlite_server_step_error(c_->handle(), rc, st);
            if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) e.code = errc::conflict;
            else if (tether::detail::sqlite_is_busy(rc)) e.code = errc::busy;
            return e;
        }

        connection* c_;  ///< @brief The connection (its lock held for the transaction's life).

    private:
        friend class sqlite_store;

        result<std::optional<stored_record>> one_(statement& st) const {
            const int rc = st.step();
            if (rc == SQLITE_DONE) return std::optional<stored_record>{};
            if (rc != SQLITE_ROW) return unexpected{step_error_(rc, st)};
            auto r = detail::sqlite_server_row(st);
            if (!r) return unexpected{std::move(r).error()};
            return std::optional{std::move(*r)};
        }

        result<std::vector<stored_record>> all_(statement& st) const {
            std::vector<stored_record> out;
            int rc = SQLITE_ROW;
            while ((rc = st.step()) == SQLITE_ROW) {
                auto r = detail::sqlite_server_row(st);
                if (!r) return unexpected{std::move(r).error()};
                out.push_back(std::move(*r));
            }
            if (rc != SQLITE_DONE) return unexpected{step_error_(rc, st)};
            return out;
        }
    };

    /// @brief A write transaction (see `server_write_transaction`), inside `BEGIN IMMEDIATE`.
    class write_transaction : public read_transaction {
    public:
        /// @brief Makes the scope known (if it was not) and returns its info. The
        /// transaction holds the database's write lock already.
        result<collection_info> lock_collection(scope s) {
            if (auto r = ensure_(s); !r) return unexpected{std::move(r).error()};
            auto info = collection(s);
            if (!info) return unexpected{std::move(info).error()};
            return info->value_or(collection_info{});
        }

        /// @brief The scope's next change number.
        result<std::uint64_t> next_change(scope s) {
            for (bool first = true;; first = false) {
                auto st = c_->prepare(
                    "UPDATE tether_server_collections SET last_change = last_change + 1"
                    " WHERE user_id = ?1 AND collection = ?2 RETURNING last_change");
                if (!st) return unexpected{std::move(st).error()};
                st->bind(1, s.user).bind(2, s.collection);
                const int rc = st->step();
                if (rc == SQLITE_ROW) return static_cast<std::uint64_t>(st->int64(0));
                if (rc != SQLITE_DONE || !first) return unexpected{step_error_(rc, *st)};
                st->reset();
                if (auto r = ensure_(s); !r) return unexpected{std::move(r).error()};  // a new scope
            }
        }

        /// @brief Inserts or replaces (by server id) the record `rec`.
        result<void> put(scope s, const stored_record& rec) {
            const std::string value = rec.record.value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
            return put(s, rec, value);
        }

        /// @brief As above, with `value_json` the record's value as compact JSON
        /// (`dump()`, invalid UTF-8 replaced), written as it is.
        result<void> put(scope s, const stored_record& rec, std::string_view value_json) {
            const auto& r = rec.record;
            if (r.server_id.empty())
                return unexpected{make_error(errc::invalid_argument, "sqlite: put of a record with an empty server id")};
            if (auto ok = ensure_(s); !ok) return ok;
            auto st = c_->prepare(
                "INSERT INTO tether_server_records (user_id, collection, server_id, local_id, version, value,"
                " updated_at, origin, deleted, created_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                " ON CONFLICT (user_id, collection, server_id) DO UPDATE SET local_id = excluded.local_id,"
                " version = excluded.version, value = excluded.value, updated_at = excluded.updated_at,"
                " origin = excluded.origin, deleted = excluded.deleted, created_version = excluded.created_version");
            if (!st) return unexpected{std::move(st).error()};
            st->bind(1, s.user).bind(2, s.collection).bind(3, std::string_view{r.server_id});
            if (r.id) st->bind_blob(4, r.id->bytes());
            else st->bind_null(4);
            st->bind(5, to_int_(r.version)).bind_static(6, value_json);
            if (r.updated_at) st->bind(7, std::int64_t{r.updated_at->time_since_epoch().count()});
            else st->bind_null(7);
            st->bind(8, std::string_view{r.origin}).bind(9, std::int64_t{rec.deleted ? 1 : 0});
            st->bind(10, to_int_(rec.created_version));
            return run_(*st);
        }

        /// @brief `"s<n>"` for the file's next `n` (kept in `tether_server_meta`).
        result<std::string> new_server_id() {
            auto st = c_->prepare(
                "UPDATE tether_server_meta SET value = value + 1 WHERE key = 'next_server_id' RETURNING value");
            if (!st) return unexpected{std::move(st).error()};
            const int rc = st->step();
            if (rc != SQLITE_ROW) return unexpected{step_error_(rc, *st)};
            return "s" + std::to_string(st->int64(0));
        }

    private:
        friend class sqlite_store;
        explicit write_transaction(connection* c) noexcept : read_transaction(c) {}

        result<void> mark_restored_(std::int64_t epoch, std::int64_t floor) {
            auto cols = c_->prepare(
                "UPDATE tether_server_collections SET epoch = max(epoch + 1, ?1), last_change = max(last_change, ?2)");
            if (!cols) return unexpected{std::move(cols).error()};
            cols->bind(1, epoch).bind(2, floor);
            if (auto r = run_(*cols); !r) return r;
            auto ids = c_->prepare(
                "UPDATE tether_server_meta SET value = max(value, ?1) WHERE key = 'next_server_id'");
            if (!ids) return unexpected{std::move(ids).error()};
            ids->bind(1, floor);
            if (auto r = run_(*ids); !r) return r;
            // A collection the backup did not hold starts there too (see ensure_).
            auto marks = c_->prepare(
                "INSERT INTO tether_server_meta (key, value) VALUES ('restore_epoch', ?1), ('restore_floor', ?2)"
                " ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)");
            if (!marks) return unexpected{std::move(marks).error()};
            marks->bind(1, epoch).bind(2, floor);
            return run_(*marks);
        }

        // A new collection starts at change 0 in epoch 0, or, in a file restored
        // from a backup, where `mark_restored` left the others.
        result<void> ensure_(scope s) {
            auto st = c_->prepare(
                "INSERT INTO tether_server_collections (user_id, collection, last_change, epoch) SELECT ?1, ?2,"
                " coalesce((SELECT value FROM tether_server_meta WHERE key = 'restore_floor'), 0),"
                " coalesce((SELECT value FROM tether_server_meta WHERE key = 'restore_epoch'), 0)"
                " WHERE NOT EXISTS (SELECT 1 FROM tether_server_collections WHERE user_id = ?1 AND collection = ?2)");
            if (!st) return unexpected{std::move(st).error()};
            st->bind(1, s.user).bind(2, s.collection);
            return run_(*st);
        }
    };

    /// @brief Opens (or creates) the store in the file `path`.
    ///
    /// Refuses, with an `errc::storage` error and without writing to it, a file
    /// that is not a SQLite database, one that fails `PRAGMA quick_check` (with
    /// `opts.check_integrity`), a tether client database, and one whose server
    /// schema is newer than `schema_version`.
    [[nodiscard]] static result<sqlite_store> open(std::string path, sqlite_store_options opts = {}) {
        if (sqlite3_threadsafe() == 0)
            return unexpected{make_error(errc::storage, "sqlite: the SQLite library was built without thread safety")};
        bool existing = false;
        if (!path.empty() && path != ":memory:") {
            std::error_code ec;
            const auto status = std::filesystem::status(path, ec);
            if (std::filesystem::exists(status)) {
                if (!std::filesystem::is_regular_file(status)) return refuse_(path, "is not a regular file");
                const auto size = std::filesystem::file_size(path, ec);
                if (ec) return refuse_(path, "cannot be read (" + ec.message() + ")");
                if (size > 0) {
                    if (!tether::detail::sqlite_has_magic_header(path)) return refuse_(path, "is not a SQLite database");
                    existing = true;
                }
            }
        }
        sqlite3* raw = nullptr;
        const int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                       nullptr);
        sqlite_options conn_opts;
        conn_opts.synchronous = opts.synchronous;
        conn_opts.busy_timeout = opts.busy_timeout;
        auto conn = std::make_shared<connection>(raw, path, conn_opts);  // closes `raw` in any case
        if (rc != SQLITE_OK) return unexpected{tether::detail::sqlite_error(raw, rc, "opening '" + path + "'")};
        sqlite3_extended_result_codes(raw, 1);
        sqlite3_busy_timeout(raw, static_cast<int>(std::clamp<std::chrono::milliseconds::rep>(opts.busy_timeout.count(), 0, 1 << 30)));
        std::lock_guard lock{conn->mutex()};
        if (existing && opts.check_integrity) {
            auto check = conn->prepare("PRAGMA quick_check");
            if (!check || check->step() != SQLITE_ROW)
                return refuse_(path, "is not a usable SQLite database (" + std::string{sqlite3_errmsg(raw)} + ")");
            if (check->text(0) != "ok") return refuse_(path, "is corrupt (quick_check: " + std::string{check->text(0)} + ")");
        }
        auto version = detail::sqlite_server_read_schema_version(*conn);
        if (!version) return refuse_(path, "is not a usable tether server database: " + version.error().message);
        if (*version > schema_version)
            return refuse_(path, "has tether server schema version " + std::to_string(*version) +
                                     ", newer than this build understands (" + std::to_string(schema_version) + ")");
        if (*version == 0) {
            auto client = detail::sqlite_server_is_client_database(*conn);
            if (!client) return unexpected{std::move(client).error()};
            if (*client) return refuse_(path, "is a tether client database, not a server's");
        }
        if (auto wal = conn->prepare("PRAGMA journal_mode = WAL"); !wal) {
            return unexpected{std::move(wal).error()};
        } else if (const int wrc = wal->step(); wrc != SQLITE_ROW) {
            return unexpected{tether::detail::sqlite_error(raw, wrc, "PRAGMA journal_mode = WAL")};
        }
        const bool full = opts.synchronous == sqlite_options::sync_mode::full;
        if (auto r = conn->exec(full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL"); !r)
            return unexpected{std::move(r).error()};
        if (*version == 0) {
            if (auto r = detail::sqlite_server_create_schema(*conn); !r) return unexpected{std::move(r).error()};
        }
        return sqlite_store{std::move(conn)};
    }

    /// @brief Runs `f(tx)` in `BEGIN IMMEDIATE`; commits if it returns a value
    /// (a failed commit is returned as the error), rolls back if it returns an
    /// error or throws (rethrown).
    template <class F>
    auto write(F&& f) -> std::invoke_result_t<F&, write_transaction&> {
        using R = std::invoke_result_t<F&, write_transaction&>;
        std::lock_guard lock{conn_->mutex()};
        auto scope = conn_->begin();
        if (!scope) return R{unexpected{std::move(scope).error()}};
        write_transaction tx{conn_.get()};
        try {
            R r = f(tx);
            if (!r) {
                scope->rollback();
                return r;
            }
            if (auto done = scope->commit(); !done) return R{unexpected{std::move(done).error()}};
            return r;
        } catch (...) {
            scope->rollback();
            throw;
        }
    }

    /// @brief Runs `f(tx)` in a deferred `BEGIN` (one snapshot) and returns what it returns.
    template <class F>
    auto read(F&& f) const -> std::invoke_result_t<F&, read_transaction&> {
        using R = std::invoke_result_t<F&, read_transaction&>;
        std::lock_guard lock{conn_->mutex()};
        if (auto begun = conn_->exec("BEGIN"); !begun) return R{unexpected{std::move(begun).error()}};
        struct end_guard {
            connection& c;
            ~end_guard() { (void)c.exec("COMMIT"); }  // read only: commit and rollback are the same
        } end{*conn_};
        read_transaction tx{conn_.get()};
        return f(tx);
    }

    /// @brief Tells the store that its file was just put back from a backup.
    ///
    /// The file then knows nothing of what it handed out after the backup was
    /// taken: the change numbers, the server ids and the cursors of that time
    /// would be given out again, and a device holding them would take a
    /// different state for the one it knows. So every collection's epoch moves
    /// on (every cursor handed out before answers `errc::cursor_expired`: the
    /// clients resync in full) and the change numbers and server ids go on from
    /// at least `restore_marks_at(now).floor` (tether/server/restore_floor.hpp):
    /// milliseconds since the epoch × 1024, a number above anything a file
    /// could have counted up to before, unless it took a thousand changes a
    /// millisecond for its whole life. Run it once per restore, before serving
    /// (`tether-server --restored-from-backup`).
    result<void> mark_restored(timestamp now) {
        const restore_marks marks = restore_marks_at(now);
        return write([&](write_transaction& tx) -> result<void> { return tx.mark_restored_(marks.epoch, marks.floor); });
    }

    /// @brief The schema version stored in the file (after `open`, `schema_version`).
    [[nodiscard]] result<int> stored_schema_version() const {
        std::lock_guard lock{conn_->mutex()};
        return detail::sqlite_server_read_schema_version(*conn_);
    }

    /// @brief The path it was opened with.
    [[nodiscard]] const std::string& path() const noexcept { return conn_->path(); }

private:
    explicit sqlite_store(std::shared_ptr<connection> c) noexcept : conn_(std::move(c)) {}

    static unexpected<error> refuse_(const std::string& path, const std::string& why) {
        return unexpected{make_error(errc::storage, "sqlite: '" + path + "' " + why +
                                                        "; refusing to open it (the file was not modified)")};
    }

    std::shared_ptr<connection> conn_;
};

static_assert(server_store<sqlite_store>);

}  // namespace tether::server
