#pragma once

/// @file
/// @brief Internals of the SQLite storage: one connection, its statement cache
/// and its transaction scopes.

#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/storage/sqlite/options.hpp>
#include <tether/storage/sqlite/statement.hpp>

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <typeindex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tether::detail {

class sqlite_tx_scope;

/// The text of a statement with its hash computed once, for the statement
/// cache (hashing a long upsert on every write costs more than it should).
struct sqlite_sql_key {
    std::string_view text;  ///< must outlive the key
    std::size_t hash;       ///< `std::hash<std::string_view>{}(text)`

    /// The key of `text`.
    static sqlite_sql_key of(std::string_view text) noexcept {
        return {text, std::hash<std::string_view>{}(text)};
    }
};

/// One open SQLite connection, shared (through `shared_ptr`) by a
/// `sqlite_database`, its copies and every store built on it.
///
/// Every use goes through `mutex()`, a recursive mutex: a thread inside a
/// transaction may call any store again (nested transactions become savepoints),
/// other threads wait until the transaction ends. Prepared statements are
/// cached by SQL text and finalized when the connection closes.
class sqlite_connection {
public:
    /// Takes ownership of an open handle.
    sqlite_connection(sqlite3* db, std::string path, sqlite_options opts) noexcept
        : db_(db), path_(std::move(path)), opts_(opts) {}

    sqlite_connection(const sqlite_connection&) = delete;
    sqlite_connection& operator=(const sqlite_connection&) = delete;

    ~sqlite_connection() {
        for (auto& [sql, entry] : cache_) sqlite3_finalize(entry.stmt);
        sqlite3_close_v2(db_);
    }

    /// The lock every user of the connection holds.
    [[nodiscard]] std::recursive_mutex& mutex() const noexcept { return mutex_; }
    /// The raw handle (use under `mutex()`).
    [[nodiscard]] sqlite3* handle() const noexcept { return db_; }
    /// The file name it was opened with.
    [[nodiscard]] const std::string& path() const noexcept { return path_; }
    /// The options it was opened with.
    [[nodiscard]] const sqlite_options& options() const noexcept { return opts_; }
    /// How many transaction scopes are open (0: none; 1: a top-level one; more: savepoints).
    [[nodiscard]] int depth() const noexcept { return depth_; }

    /// A lease on the prepared statement for `sql`, from the cache when it is free.
    result<sqlite_statement> prepare(std::string_view sql) { return prepare(sqlite_sql_key::of(sql)); }

    /// As above, with the hash already known.
    result<sqlite_statement> prepare(sqlite_sql_key key) {
        const std::string_view sql = key.text;
        auto it = cache_.find(key);
        if (it != cache_.end() && !it->second.in_use) {
            it->second.in_use = true;
            return sqlite_statement{db_, it->second.stmt, &it->second.in_use};
        }
        sqlite3_stmt* stmt = nullptr;
        const unsigned flags = it == cache_.end() ? SQLITE_PREPARE_PERSISTENT : 0U;
        const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), flags, &stmt, nullptr);
        if (rc != SQLITE_OK || stmt == nullptr) {
            sqlite3_finalize(stmt);
            return unexpected{sqlite_error(db_, rc == SQLITE_OK ? SQLITE_MISUSE : rc,
                                           "prepare \"" + std::string{sql} + "\"")};
        }
        if (it != cache_.end()) return sqlite_statement{db_, stmt, nullptr};  // the cached one is busy
        auto [slot, inserted] = cache_.emplace(std::string{sql}, cache_entry{stmt, true});
        (void)inserted;
        return sqlite_statement{db_, stmt, &slot->second.in_use};
    }

    /// Runs a statement without parameters or results (DDL, pragmas) to completion.
    result<void> exec(std::string_view sql) {
        auto st = prepare(sql);
        if (!st) return unexpected{std::move(st).error()};
        int rc = SQLITE_ROW;
        while (rc == SQLITE_ROW) rc = st->step();
        if (rc != SQLITE_DONE) return unexpected{sqlite_error(db_, rc, sql)};
        return {};
    }

    /// Runs `sql` (BEGIN IMMEDIATE, COMMIT) retrying `SQLITE_BUSY` until
    /// `options().busy_timeout` has passed in total.
    result<void> exec_retrying_busy(std::string_view sql) {
        using clock = std::chrono::steady_clock;
        auto st = prepare(sql);
        if (!st) return unexpected{std::move(st).error()};
        const auto start = clock::now();
        const auto deadline = start + opts_.busy_timeout;
        busy_timeout_guard guard{db_, opts_.busy_timeout};
        for (;;) {
            const int rc = st->step();
            if (rc == SQLITE_DONE || rc == SQLITE_ROW) return {};
            const auto now = clock::now();
            if (!sqlite_is_busy(rc) || now >= deadline) {
                error e = sqlite_error(db_, rc, sql);
                if (sqlite_is_busy(rc)) {
                    e.code = errc::busy;  // another connection holds the lock: worth retrying later
                    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(now - start);
                    e.message += " (gave up after " + std::to_string(waited.count()) + " ms)";
                }
                return unexpected{std::move(e)};
            }
            // SQLite sometimes reports BUSY without calling the busy handler (to
            // avoid a deadlock, or while a WAL is being recovered): wait a little
            // ourselves, and let the handler wait no longer than what is left.
            st->reset();
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
            std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds{5}));
            guard.set(std::max(std::chrono::milliseconds{1}, left - std::chrono::milliseconds{5}));
        }
    }

    /// Opens a transaction scope: `BEGIN IMMEDIATE` at the top level, a
    /// `SAVEPOINT` inside another scope. Call with `mutex()` held, for as long as
    /// the scope lives.
    result<sqlite_tx_scope> begin();

    /// Marks the innermost open scope as doomed: a store write joined it (no
    /// savepoint of its own) and failed after changing rows, so that scope must
    /// not commit. Its `commit()` rolls back and returns `e` instead; the first
    /// error wins. Call with `mutex()` held, inside a scope.
    void doom(const error& e) {
        if (doomed_) return;
        doomed_ = e;
        doomed_->message = "sqlite: the transaction was rolled back: a write inside it failed after changing rows: " +
                           doomed_->message;
        doomed_depth_ = depth_;
    }

    /// Changes whenever records a store keeps in memory may no longer match the
    /// file: another connection committed (noticed when a top-level transaction
    /// begins) or a transaction scope rolled back. See `table_cache`.
    [[nodiscard]] std::uint64_t epoch() const noexcept { return epoch_; }

    /// The in-memory cache of table `name`, shared by every store of that table
    /// on this connection (created empty on first use). `Cache` must be the same
    /// type for one table: `claim_table` guarantees one entity type per table.
    template <class Cache>
    std::shared_ptr<Cache> table_cache(const std::string& name) {
        auto& slot = table_caches_[name];
        if (!slot) slot = std::make_shared<Cache>();
        return std::static_pointer_cast<Cache>(slot);
    }

    /// Keeps `fn` until the outermost open scope ends: it is handed out by
    /// `take_committed()` once that scope commits, and dropped if the scope it
    /// was deferred in rolls back. Call with `mutex()` held, inside a scope.
    void defer(std::function<void()> fn) { deferred_.emplace_back(depth_, std::move(fn)); }

    /// The deferred calls whose transaction has committed (empty unless the
    /// outermost scope has just committed). Call with `mutex()` held.
    std::vector<std::function<void()>> take_committed() { return std::exchange(committed_, {}); }

    /// Records that table `name` holds entities of type `type`; false if another
    /// type already claimed it on this connection.
    bool claim_table(const std::string& name, std::type_index type) {
        auto [it, inserted] = table_types_.emplace(name, type);
        return inserted || it->second == type;
    }

private:
    friend class sqlite_tx_scope;

    struct cache_entry {
        sqlite3_stmt* stmt;
        bool in_use;
    };

    struct sv_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
        std::size_t operator()(const sqlite_sql_key& k) const noexcept { return k.hash; }
    };
    struct sv_equal {
        using is_transparent = void;
        bool operator()(std::string_view a, std::string_view b) const noexcept { return a == b; }
        bool operator()(const sqlite_sql_key& a, std::string_view b) const noexcept { return a.text == b; }
        bool operator()(std::string_view a, const sqlite_sql_key& b) const noexcept { return a == b.text; }
    };

    /// Sets the connection's busy timeout for a while and restores it after.
    class busy_timeout_guard {
    public:
        busy_timeout_guard(sqlite3* db, std::chrono::milliseconds normal) noexcept : db_(db), normal_(normal) {}
        busy_timeout_guard(const busy_timeout_guard&) = delete;
        busy_timeout_guard& operator=(const busy_timeout_guard&) = delete;
        ~busy_timeout_guard() {
            if (changed_) sqlite3_busy_timeout(db_, clamp_(normal_));
        }
        void set(std::chrono::milliseconds t) noexcept {
            sqlite3_busy_timeout(db_, clamp_(t));
            changed_ = true;
        }

    private:
        static int clamp_(std::chrono::milliseconds t) noexcept {
            return static_cast<int>(std::clamp<std::chrono::milliseconds::rep>(t.count(), 0, 1 << 30));
        }
        sqlite3* db_;
        std::chrono::milliseconds normal_;
        bool changed_ = false;
    };

    sqlite3* db_;
    std::string path_;
    sqlite_options opts_;
    mutable std::recursive_mutex mutex_;
    std::unordered_map<std::string, cache_entry, sv_hash, sv_equal> cache_;
    std::map<std::string, std::type_index, std::less<>> table_types_;
    int depth_ = 0;
    std::map<std::string, std::shared_ptr<void>, std::less<>> table_caches_;
    std::uint64_t epoch_ = 0;
    std::int64_t data_version_ = -1;  // PRAGMA data_version at the last top-level BEGIN
    std::vector<std::pair<int, std::function<void()>>> deferred_;  // (depth deferred at, call)
    std::vector<std::function<void()>> committed_;                 // see take_committed()
    std::optional<error> doomed_;  // see doom()
    int doomed_depth_ = 0;         // the depth at which it was doomed
};

/// One open transaction scope on a `sqlite_connection` (see `begin()`):
/// `commit()` it, or it rolls back when destroyed. Move-only.
class sqlite_tx_scope {
public:
    sqlite_tx_scope(sqlite_connection* c, int level) noexcept : conn_(c), level_(level) {}
    sqlite_tx_scope(const sqlite_tx_scope&) = delete;
    sqlite_tx_scope& operator=(const sqlite_tx_scope&) = delete;
    sqlite_tx_scope(sqlite_tx_scope&& o) noexcept : conn_(std::exchange(o.conn_, nullptr)), level_(o.level_) {}
    sqlite_tx_scope& operator=(sqlite_tx_scope&&) = delete;
    ~sqlite_tx_scope() { rollback(); }

    /// Makes the scope's writes permanent (`COMMIT`, retrying `SQLITE_BUSY`) or
    /// part of the enclosing transaction (`RELEASE`). On failure everything the
    /// scope wrote is rolled back and the error returned.
    result<void> commit() {
        if (conn_ == nullptr) return unexpected{make_error(errc::invalid_state, "sqlite: transaction already ended")};
        if (conn_->doomed_ && conn_->doomed_depth_ > level_) {  // a joined write failed halfway in this scope
            error e = *conn_->doomed_;
            rollback();
            return unexpected{std::move(e)};
        }
        result<void> r = level_ == 0 ? conn_->exec_retrying_busy("COMMIT") : conn_->exec(release_sql_());
        if (!r) {
            rollback();
            return r;
        }
        if (level_ == 0) {  // committed for good: what was deferred may run now
            for (auto& [depth, fn] : conn_->deferred_) conn_->committed_.push_back(std::move(fn));
            conn_->deferred_.clear();
        }
        end_();
        return r;
    }

    /// Undoes the scope's writes (`ROLLBACK` / `ROLLBACK TO` + `RELEASE`). Never fails:
    /// if SQLite already rolled the transaction back by itself, there is nothing to do.
    void rollback() noexcept {
        if (conn_ == nullptr) return;
        if (conn_->doomed_ && conn_->doomed_depth_ > level_) conn_->doomed_.reset();  // undone with the scope
        ++conn_->epoch_;  // what stores cached from this scope's writes is void
        std::erase_if(conn_->deferred_, [this](const auto& d) { return d.first > level_; });  // never happened
        sqlite3* db = conn_->handle();
        if (sqlite3_get_autocommit(db) == 0) {  // a transaction is still open
            if (level_ == 0) {
                sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
            } else {
                char sql[64];
                std::snprintf(sql, sizeof sql, "ROLLBACK TO tether_sp%d", level_);
                sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
                std::snprintf(sql, sizeof sql, "RELEASE tether_sp%d", level_);
                sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
            }
        }
        end_();
    }

    /// The savepoint's name for a nested scope.
    [[nodiscard]] std::string savepoint_name() const { return "tether_sp" + std::to_string(level_); }

private:
    std::string release_sql_() const { return "RELEASE " + savepoint_name(); }

    void end_() noexcept {
        conn_->depth_ = level_;
        conn_ = nullptr;
    }

    sqlite_connection* conn_;
    int level_;
};

inline result<sqlite_tx_scope> sqlite_connection::begin() {
    const int level = depth_;
    if (level == 0) {
        if (sqlite3_get_autocommit(db_) == 0) {
            // Someone left a transaction open on the raw handle: do not nest into it.
            return unexpected{make_error(errc::storage, "sqlite: a transaction is already open on this connection")};
        }
        if (auto r = exec_retrying_busy("BEGIN IMMEDIATE"); !r) return unexpected{std::move(r).error()};
    } else {
        if (auto r = exec("SAVEPOINT tether_sp" + std::to_string(level)); !r) return unexpected{std::move(r).error()};
    }
    depth_ = level + 1;
    sqlite_tx_scope scope{this, level};  // from here, a failure rolls back
    if (level == 0) {
        // Holding the write lock now: has another connection committed since our last transaction?
        auto version = prepare("PRAGMA data_version");
        if (!version) return unexpected{std::move(version).error()};
        if (const int rc = version->step(); rc != SQLITE_ROW) {
            return unexpected{sqlite_error(db_, rc, "PRAGMA data_version")};
        }
        if (const auto seen = version->int64(0); seen != data_version_) {
            data_version_ = seen;
            ++epoch_;
        }
    }
    return scope;
}

}  // namespace tether::detail
