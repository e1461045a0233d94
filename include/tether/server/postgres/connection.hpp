#pragma once

/// @file
/// @brief Internals of the PostgreSQL server store: one libpq connection, the
/// parameters and results of its statements (all in binary format, so text and
/// bytes travel as they are), and the mapping of PostgreSQL's errors to `errc`.
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>

#include <libpq-fe.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tether::server::detail {

/// Frees a `PGresult`.
struct pg_result_free {
    /// Frees `r`.
    void operator()(PGresult* r) const noexcept { PQclear(r); }
};
/// An owned `PGresult`.
using pg_result = std::unique_ptr<PGresult, pg_result_free>;

/// The `errc` of a failed statement from its SQLSTATE: a unique index refusing
/// a row is `conflict`; a serialization failure, a deadlock or a lock timeout
/// `busy`; a lost connection or a server shutting down `transient`; anything
/// else `storage`.
inline errc pg_errc(std::string_view sqlstate, bool connection_lost) noexcept {
    if (connection_lost || sqlstate.starts_with("08") || sqlstate.starts_with("57P")) return errc::transient;
    if (sqlstate == "23505") return errc::conflict;
    if (sqlstate == "40001" || sqlstate == "40P01" || sqlstate == "55P03") return errc::busy;
    return errc::storage;
}

/// The parameters of one statement, all sent in binary format: bytes as they
/// are (for `text` and `bytea` columns), `bigint` and `boolean` in network
/// order. The views must outlive the statement's run.
class pg_params {
public:
    /// Adds `v`, bytes as they are (an empty view is the empty string, not NULL).
    pg_params& bytes(std::string_view v) {
        params_.push_back({v, {}, false, false});
        return *this;
    }
    /// Adds `v` as the bytes of `b`.
    template <std::size_t N>
    pg_params& bytes(const std::array<std::uint8_t, N>& b) {
        return bytes(std::string_view{reinterpret_cast<const char*>(b.data()), N});
    }
    /// Adds a `bigint`.
    pg_params& int8(std::int64_t v) {
        param p{{}, {}, true, false};
        auto u = static_cast<std::uint64_t>(v);
        for (int i = 7; i >= 0; --i, u >>= 8) p.buf[static_cast<std::size_t>(i)] = static_cast<char>(u & 0xff);
        params_.push_back(p);
        return *this;
    }
    /// Adds a `boolean`.
    pg_params& boolean(bool v) {
        param p{{}, {}, true, false};
        p.buf[0] = v ? 1 : 0;
        p.boolean = true;
        params_.push_back(p);
        return *this;
    }
    /// Adds NULL.
    pg_params& null() {
        params_.push_back({{}, {}, false, true});
        return *this;
    }

    /// Runs `sql` with these parameters on `c`, asking for binary results.
    [[nodiscard]] PGresult* run(PGconn* c, const char* sql) const {
        const auto n = params_.size();
        std::vector<const char*> values(n);
        std::vector<int> lengths(n), formats(n, 1);
        for (std::size_t i = 0; i < n; ++i) {
            const auto& p = params_[i];
            if (p.is_null) {
                values[i] = nullptr;
            } else if (p.owned) {
                values[i] = p.buf.data();
                lengths[i] = p.boolean ? 1 : 8;
            } else {
                values[i] = p.view.empty() ? "" : p.view.data();
                lengths[i] = static_cast<int>(p.view.size());
            }
        }
        return PQexecParams(c, sql, static_cast<int>(n), nullptr, values.data(), lengths.data(), formats.data(), 1);
    }

private:
    struct param {
        std::string_view view;
        std::array<char, 8> buf;
        bool owned;
        bool is_null;
        bool boolean = false;
    };
    std::vector<param> params_;
};

/// One libpq connection (closed with it). Not thread-safe: one user at a time.
class pg_connection {
public:
    /// Connects with `conninfo`; `errc::transient` (the server may come back) if it cannot.
    static result<pg_connection> open(const std::string& conninfo) {
        pg_connection c{PQconnectdb(conninfo.c_str())};
        if (c.c_ == nullptr) return unexpected{make_error(errc::storage, "postgres: out of memory connecting")};
        if (PQstatus(c.c_.get()) != CONNECTION_OK) {
            std::string why = PQerrorMessage(c.c_.get());
            while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
            return unexpected{make_error(errc::transient, "postgres: cannot connect: " + why)};
        }
        PQsetNoticeProcessor(c.c_.get(), [](void*, const char*) {}, nullptr);  // no NOTICE lines on stderr
        if (auto r = c.exec("SET client_encoding = 'UTF8'"); !r) return unexpected{std::move(r).error()};
        return c;
    }

    /// Runs `sql` without parameters (several statements allowed).
    result<pg_result> exec(const char* sql) { return check_(PQexec(c_.get(), sql), sql); }

    /// Runs `sql` with `params`; binary results.
    result<pg_result> exec(const char* sql, const pg_params& params) { return check_(params.run(c_.get(), sql), sql); }

    /// True while the connection works and no transaction is open on it: fit to go back to a pool.
    [[nodiscard]] bool reusable() const noexcept {
        return c_ && PQstatus(c_.get()) == CONNECTION_OK && PQtransactionStatus(c_.get()) == PQTRANS_IDLE;
    }

    /// True once the connection is lost.
    [[nodiscard]] bool broken() const noexcept { return !c_ || PQstatus(c_.get()) != CONNECTION_OK; }

    /// The libpq handle.
    [[nodiscard]] PGconn* handle() const noexcept { return c_.get(); }

private:
    struct conn_free {
        void operator()(PGconn* c) const noexcept { PQfinish(c); }
    };
    explicit pg_connection(PGconn* c) noexcept : c_(c) {}

    result<pg_result> check_(PGresult* raw, const char* sql) {
        pg_result r{raw};
        const auto status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
        if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return r;
        const char* state = r ? PQresultErrorField(r.get(), PG_DIAG_SQLSTATE) : nullptr;
        std::string why = r ? PQresultErrorMessage(r.get()) : PQerrorMessage(c_.get());
        while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
        std::string_view text{sql};
        if (text.size() > 80) text = text.substr(0, 80);
        return unexpected{make_error(pg_errc(state ? state : "", broken()),
                                     "postgres: " + why + " (in: " + std::string{text} + ")")};
    }

    std::unique_ptr<PGconn, conn_free> c_;
};

/// The bytes of the field (`row`, `col`) of a binary result.
inline std::string_view pg_bytes(const PGresult* r, int row, int col) noexcept {
    return {PQgetvalue(r, row, col), static_cast<std::size_t>(PQgetlength(r, row, col))};
}

/// True if the field is NULL.
inline bool pg_is_null(const PGresult* r, int row, int col) noexcept { return PQgetisnull(r, row, col) != 0; }

/// The `bigint` field (`row`, `col`); empty if it is not 8 bytes (NULL or another type).
inline std::optional<std::int64_t> pg_int8(const PGresult* r, int row, int col) noexcept {
    const auto b = pg_bytes(r, row, col);
    if (pg_is_null(r, row, col) || b.size() != 8) return std::nullopt;
    std::uint64_t u = 0;
    for (char c : b) u = (u << 8) | static_cast<unsigned char>(c);
    return static_cast<std::int64_t>(u);
}

/// The `boolean` field (`row`, `col`); empty if it is not one byte.
inline std::optional<bool> pg_bool(const PGresult* r, int row, int col) noexcept {
    const auto b = pg_bytes(r, row, col);
    if (pg_is_null(r, row, col) || b.size() != 1) return std::nullopt;
    return b[0] != 0;
}

}  // namespace tether::server::detail
