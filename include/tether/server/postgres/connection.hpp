#pragma once

/// @file
/// @brief Internals of the PostgreSQL server store: one libpq connection, the
/// parameters and results of its statements (all in binary format, so text and
/// bytes travel as they are), and the mapping of PostgreSQL's errors to `errc`.
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
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
        return with_arrays_([&](int n, const char* const* v, const int* l, const int* f) {
            return PQexecParams(c, sql, n, nullptr, v, l, f, 1);
        });
    }

    /// Sends `sql` with these parameters on `c` (pipeline mode) without waiting; false if it could not.
    [[nodiscard]] bool send(PGconn* c, const char* sql) const {
        return with_arrays_([&](int n, const char* const* v, const int* l, const int* f) {
            return PQsendQueryParams(c, sql, n, nullptr, v, l, f, 1) == 1;
        });
    }

    /// Sends the prepared statement `name` with these parameters on `c` without waiting.
    [[nodiscard]] bool send_prepared(PGconn* c, const char* name) const {
        return with_arrays_([&](int n, const char* const* v, const int* l, const int* f) {
            return PQsendQueryPrepared(c, name, n, v, l, f, 1) == 1;
        });
    }

    /// How many parameters there are.
    [[nodiscard]] std::size_t size() const noexcept { return params_.size(); }

private:
    template <class Call>
    std::invoke_result_t<Call&, int, const char* const*, const int*, const int*> with_arrays_(Call call) const {
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
        return call(static_cast<int>(n), values.data(), lengths.data(), formats.data());
    }

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
///
/// **Pipeline mode** (`pipeline()` ... `finish(sql)`), for the store's
/// transactions: statements are sent without waiting for the ones before to
/// answer. `defer` sends one whose answer the caller does not need now (a
/// `BEGIN`, an `INSERT`): it costs no round trip, and its outcome is read at
/// the next `exec`, which waits for every answer up to its own. The first
/// failure in a pipeline is kept: that `exec` (or a later one, or `finish`)
/// returns it, with its own `errc`, and nothing is sent after it (the server
/// would skip it anyway: the transaction is aborted). Every statement is
/// followed by a sync (no wait: the server answers it in turn), so a session
/// between statements is `idle in transaction` to the server, as without
/// pipelining. In pipeline mode every statement with parameters is prepared
/// once per connection (`PQsendPrepare`, sent in the same pipeline) and run by
/// name after that.
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

    /// Runs `sql` without parameters (several statements allowed; not in pipeline mode).
    result<pg_result> exec(const char* sql) {
        count_round_trip_();
        return check_(PQexec(c_.get(), sql), sql);
    }

    /// Runs `sql` with `params`; binary results. In pipeline mode it waits for
    /// the answers of every statement sent before it too; it returns the
    /// pipeline's first failure if one of them failed.
    result<pg_result> exec(const char* sql, const pg_params& params) {
        if (!pipelined()) {
            count_round_trip_();
            return check_(params.run(c_.get(), sql), sql);
        }
        if (failed_) return unexpected{*failed_};
        if (!send_(sql, params) || !sync_()) return lost_(sql);
        return wait_();
    }

    /// Enters pipeline mode (see the class); the connection must be idle.
    result<void> pipeline() {
        if (PQenterPipelineMode(c_.get()) != 1) return lost_("pipeline mode");
        return {};
    }

    /// In pipeline mode, sends `sql` with `params` without waiting for its
    /// answer (see the class); returns the pipeline's first failure if one is known.
    result<void> defer(const char* sql, const pg_params& params = {}) {
        if (failed_) return unexpected{*failed_};
        if (!send_(sql, params) || !sync_()) return lost_(sql);
        if (pending_.size() < max_pending) return {};
        // Read the answers now and then: a server whose answers nobody reads
        // stops reading in turn, and a blocking send would wait for ever.
        if (auto w = wait_(); !w) return unexpected{std::move(w).error()};
        return {};
    }

    /// The most statements `defer` leaves unanswered before it waits for their answers.
    static constexpr std::size_t max_pending = 256;

    /// Ends pipeline mode with `sql` (a `COMMIT`, a `ROLLBACK`): sends it, waits
    /// for every answer and returns its result, or the pipeline's first failure
    /// (then `sql` was not run). The connection is out of pipeline mode after it.
    result<pg_result> finish(const char* sql) {
        if (!pipelined()) return exec(sql);
        if (!failed_ && (!send_(sql, pg_params{}) || !sync_())) (void)lost_(sql);
        auto last = wait_();
        if (!broken() && (!pending_.empty() || PQexitPipelineMode(c_.get()) != 1))
            c_.reset();  // out of step with the server: never reused
        pending_.clear();
        failed_.reset();
        return last;
    }

    /// How many times it waited for the server (each `exec`, each `finish`;
    /// a `defer` is no wait) since it was opened.
    [[nodiscard]] std::uint64_t round_trips() const noexcept { return round_trips_; }

    /// Also counts its waits in `*total` from now on (a pool's count; null: not).
    void count_round_trips_in(std::atomic<std::uint64_t>* total) noexcept { total_ = total; }

    /// True while the connection works and no transaction is open on it: fit to go back to a pool.
    [[nodiscard]] bool reusable() const noexcept {
        return c_ && PQstatus(c_.get()) == CONNECTION_OK && PQtransactionStatus(c_.get()) == PQTRANS_IDLE &&
               PQpipelineStatus(c_.get()) == PQ_PIPELINE_OFF;
    }

    /// True if the connection is in pipeline mode.
    [[nodiscard]] bool pipelined() const noexcept { return c_ && PQpipelineStatus(c_.get()) != PQ_PIPELINE_OFF; }

    /// False if the server sent anything while the connection was idle, found
    /// without waiting; the connection is closed then. The server speaks to an
    /// idle session of ours (none LISTENs) only to end it: a restart, an
    /// administrator's `pg_terminate_backend`, an idle timeout. A connection
    /// that answers true may still turn out lost at its next statement (a peer
    /// that vanished without a word).
    [[nodiscard]] bool alive() noexcept {
        if (c_ && !broken()) {
            pollfd p{PQsocket(c_.get()), POLLIN, 0};
            if (::poll(&p, 1, 0) == 0) return true;
        }
        c_.reset();  // never reused
        return false;
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

    // What was sent in pipeline mode and whose answer is not read yet: a
    // statement, a PQsendPrepare (of the prepared_ key `key`) or a sync.
    struct pending {
        enum class kind { statement, prepare, sync };
        kind what;
        std::string sql;  // its first 80 characters, for messages
        std::string key;  // a prepare's prepared_ key
    };

    // After every statement, a sync: the server answers ReadyForQuery, so a
    // session between statements shows as `idle in transaction` (and
    // idle_in_transaction_session_timeout applies) as it does without pipelining.
    bool sync_() {
        if (PQpipelineSync(c_.get()) != 1) return false;
        pending_.push_back({pending::kind::sync, {}, {}});
        return true;
    }

    void count_round_trip_() noexcept {
        ++round_trips_;
        if (total_ != nullptr) total_->fetch_add(1, std::memory_order_relaxed);
    }

    // Sends `sql` (preparing it first if it has parameters and is new to the connection).
    bool send_(const char* sql, const pg_params& params) {
        std::string_view text{sql};
        const std::string shown{text.substr(0, std::min<std::size_t>(text.size(), 80))};
        if (params.size() == 0) {
            if (!params.send(c_.get(), sql)) return false;
            pending_.push_back({pending::kind::statement, shown, {}});
            return true;
        }
        auto [it, fresh] = prepared_.try_emplace(std::string{text}, "tether_" + std::to_string(prepared_.size() + 1));
        if (fresh) {
            if (PQsendPrepare(c_.get(), it->second.c_str(), sql, static_cast<int>(params.size()), nullptr) != 1) {
                prepared_.erase(it);
                return false;
            }
            pending_.push_back({pending::kind::prepare, shown, it->first});
        }
        if (!params.send_prepared(c_.get(), it->second.c_str())) return false;
        pending_.push_back({pending::kind::statement, shown, {}});
        return true;
    }

    // A statement that could not be sent: the pipeline's failure from now on.
    unexpected<error> lost_(const char* what) {
        std::string why = PQerrorMessage(c_.get());
        while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
        if (!failed_) failed_ = make_error(broken() ? errc::transient : errc::storage,
                                           "postgres: " + why + " (sending: " + std::string{what}.substr(0, 80) + ")");
        return unexpected{*failed_};
    }

    // Reads the answers of everything pending; returns the last statement's
    // result, or the pipeline's first failure.
    result<pg_result> wait_() {
        count_round_trip_();
        pg_result last;
        while (!pending_.empty()) {
            const pending p = std::move(pending_.front());
            pending_.pop_front();
            const bool prepare = p.what == pending::kind::prepare;
            pg_result r{PQgetResult(c_.get())};
            if (!r) {  // the connection is lost: no more answers
                if (prepare) prepared_.erase(p.key);
                for (const auto& q : pending_)
                    if (q.what == pending::kind::prepare) prepared_.erase(q.key);
                pending_.clear();
                if (!failed_) failed_ = make_error(errc::transient, "postgres: the connection was lost (in: " + p.sql + ")");
                break;
            }
            const auto status = PQresultStatus(r.get());
            if (p.what == pending::kind::sync) {
                if (status != PGRES_PIPELINE_SYNC && !failed_)
                    failed_ = make_error(errc::storage, "postgres: out of step with the server's answers");
                continue;  // a sync's answer has no NULL after it
            }
            while (pg_result end{PQgetResult(c_.get())}) {}  // the NULL that ends a statement's results
            const bool ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
            if (prepare && !ok) prepared_.erase(p.key);
            if (!ok && status != PGRES_PIPELINE_ABORTED && !failed_) {
                auto e = check_(r.release(), p.sql.c_str());
                failed_ = std::move(e).error();
            }
            if (!prepare) last = std::move(r);
        }
        if (failed_) return unexpected{*failed_};
        return last;
    }

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
    std::deque<pending> pending_;                          // sent in pipeline mode, answers not read yet
    std::optional<error> failed_;                          // the pipeline's first failure
    std::unordered_map<std::string, std::string> prepared_;  // statement text -> its prepared name
    std::uint64_t round_trips_ = 0;
    std::atomic<std::uint64_t>* total_ = nullptr;
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
