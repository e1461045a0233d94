#pragma once

/// @file
/// @brief Internals of the SQLite storage: errors and prepared-statement leases.

#include <tether/core/error.hpp>

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace tether::detail {

/// The `errc::storage` error for a failed SQLite call: `"sqlite: <what>: <SQLite's message>"`.
/// Reads the connection's last error message, so call it under the connection's lock.
inline error sqlite_error(sqlite3* db, int rc, std::string_view what) {
    std::string msg = "sqlite: ";
    msg += what;
    msg += ": ";
    const char* detail = db != nullptr ? sqlite3_errmsg(db) : nullptr;
    // sqlite3_errmsg() describes the connection's last call, which is `rc`'s call
    // unless rc came from somewhere else; fall back to the code's generic text.
    if (detail == nullptr || (db != nullptr && sqlite3_extended_errcode(db) != rc && sqlite3_errcode(db) != rc)) {
        detail = sqlite3_errstr(rc);
    }
    msg += detail;
    return make_error(errc::storage, std::move(msg));
}

/// True if `rc` (a primary or extended result code) means "locked by another connection".
[[nodiscard]] constexpr bool sqlite_is_busy(int rc) noexcept { return (rc & 0xFF) == SQLITE_BUSY; }

/// A lease on one prepared statement: bind, step, read columns; the destructor
/// resets it and returns it to its connection's cache (or finalizes it if it
/// was not cached). Move-only. Use it under the connection's lock.
class sqlite_statement {
public:
    sqlite_statement() noexcept = default;

    /// Leases `stmt`; `in_use` is the cache slot's flag (null for an uncached statement).
    sqlite_statement(sqlite3* db, sqlite3_stmt* stmt, bool* in_use) noexcept
        : db_(db), stmt_(stmt), in_use_(in_use) {}

    sqlite_statement(const sqlite_statement&) = delete;
    sqlite_statement& operator=(const sqlite_statement&) = delete;

    sqlite_statement(sqlite_statement&& o) noexcept
        : db_(o.db_),
          stmt_(std::exchange(o.stmt_, nullptr)),
          in_use_(std::exchange(o.in_use_, nullptr)),
          bind_rc_(o.bind_rc_) {}

    sqlite_statement& operator=(sqlite_statement&& o) noexcept {
        if (this != &o) {
            release_();
            db_ = o.db_;
            stmt_ = std::exchange(o.stmt_, nullptr);
            in_use_ = std::exchange(o.in_use_, nullptr);
            bind_rc_ = o.bind_rc_;
        }
        return *this;
    }

    ~sqlite_statement() { release_(); }

    /// Binds SQL NULL to parameter `i` (1-based).
    sqlite_statement& bind_null(int i) { return check_(sqlite3_bind_null(stmt_, i)); }

    /// Binds a 64-bit integer.
    sqlite_statement& bind(int i, std::int64_t v) { return check_(sqlite3_bind_int64(stmt_, i, v)); }

    /// Binds text (copied by SQLite); an empty view is the empty string, not NULL.
    sqlite_statement& bind(int i, std::string_view v) {
        const char* p = v.data() != nullptr ? v.data() : "";
        return check_(sqlite3_bind_text64(stmt_, i, p, static_cast<sqlite3_uint64>(v.size()), SQLITE_TRANSIENT,
                                          SQLITE_UTF8));
    }

    /// Binds text SQLite does not copy: `v` must stay valid and unchanged until
    /// the statement has been stepped (for the write path, where copying every
    /// column costs an allocation each).
    sqlite_statement& bind_static(int i, std::string_view v) {
        const char* p = v.data() != nullptr ? v.data() : "";
        return check_(sqlite3_bind_text64(stmt_, i, p, static_cast<sqlite3_uint64>(v.size()), SQLITE_STATIC,
                                          SQLITE_UTF8));
    }

    /// Binds a blob SQLite does not copy (see `bind_static`).
    sqlite_statement& bind_blob_static(int i, std::span<const std::uint8_t> v) {
        static constexpr std::uint8_t none = 0;  // a null pointer would bind NULL
        const std::uint8_t* p = v.data() != nullptr ? v.data() : &none;
        return check_(sqlite3_bind_blob64(stmt_, i, p, static_cast<sqlite3_uint64>(v.size()), SQLITE_STATIC));
    }

    /// Binds a blob (copied by SQLite).
    sqlite_statement& bind_blob(int i, std::span<const std::uint8_t> v) {
        static constexpr std::uint8_t none = 0;  // a null pointer would bind NULL
        const std::uint8_t* p = v.data() != nullptr ? v.data() : &none;
        return check_(sqlite3_bind_blob64(stmt_, i, p, static_cast<sqlite3_uint64>(v.size()), SQLITE_TRANSIENT));
    }

    /// Binds `v` or NULL.
    sqlite_statement& bind(int i, const std::optional<std::int64_t>& v) {
        return v ? bind(i, *v) : bind_null(i);
    }

    /// Binds `v` or NULL.
    sqlite_statement& bind(int i, const std::optional<std::string>& v) {
        return v ? bind(i, std::string_view{*v}) : bind_null(i);
    }

    /// Runs one step: `SQLITE_ROW`, `SQLITE_DONE` or an error code (a failed
    /// bind is reported here, before anything runs).
    [[nodiscard]] int step() {
        if (bind_rc_ != SQLITE_OK) return bind_rc_;
        return sqlite3_step(stmt_);
    }

    /// Rewinds the statement so that it can be stepped again (bindings kept).
    void reset() noexcept { sqlite3_reset(stmt_); }

    /// True if column `c` (0-based) of the current row is NULL.
    [[nodiscard]] bool is_null(int c) const noexcept { return sqlite3_column_type(stmt_, c) == SQLITE_NULL; }

    /// Column `c` as an integer.
    [[nodiscard]] std::int64_t int64(int c) const noexcept { return sqlite3_column_int64(stmt_, c); }

    /// Column `c` as an integer, or empty if NULL.
    [[nodiscard]] std::optional<std::int64_t> opt_int64(int c) const noexcept {
        if (is_null(c)) return std::nullopt;
        return int64(c);
    }

    /// Column `c` as text (valid until the next step or reset).
    [[nodiscard]] std::string_view text(int c) const noexcept {
        const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, c));
        const auto n = sqlite3_column_bytes(stmt_, c);
        return p == nullptr ? std::string_view{} : std::string_view{p, static_cast<std::size_t>(n)};
    }

    /// Column `c` as text, or empty if NULL.
    [[nodiscard]] std::optional<std::string> opt_text(int c) const {
        if (is_null(c)) return std::nullopt;
        return std::string{text(c)};
    }

    /// Column `c` as a blob (valid until the next step or reset).
    [[nodiscard]] std::span<const std::uint8_t> blob(int c) const noexcept {
        const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, c));
        const auto n = sqlite3_column_bytes(stmt_, c);
        return p == nullptr ? std::span<const std::uint8_t>{} : std::span{p, static_cast<std::size_t>(n)};
    }

    /// The connection the statement belongs to.
    [[nodiscard]] sqlite3* db() const noexcept { return db_; }

    /// The SQL text, for error messages.
    [[nodiscard]] std::string_view sql() const noexcept {
        const char* s = sqlite3_sql(stmt_);
        return s == nullptr ? std::string_view{} : std::string_view{s};
    }

private:
    sqlite_statement& check_(int rc) noexcept {
        if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
        return *this;
    }

    void release_() noexcept {
        if (stmt_ == nullptr) return;
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
        if (in_use_ != nullptr) {
            *in_use_ = false;
        } else {
            sqlite3_finalize(stmt_);
        }
        stmt_ = nullptr;
        in_use_ = nullptr;
    }

    sqlite3* db_ = nullptr;
    sqlite3_stmt* stmt_ = nullptr;
    bool* in_use_ = nullptr;
    int bind_rc_ = SQLITE_OK;
};

}  // namespace tether::detail
