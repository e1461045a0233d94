#pragma once

/// @file
/// @brief `tether::server::postgres_store`: a `server_store` in a PostgreSQL
/// database, shared by any number of server processes (target `tether::postgres`).
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/result.hpp>
#include <tether/core/timestamp.hpp>
#include <tether/server/postgres/connection.hpp>
#include <tether/server/postgres/pool.hpp>
#include <tether/server/postgres/schema.hpp>
#include <tether/server/store.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace tether::server {

/// @brief Options of `postgres_store::open`.
struct postgres_store_options {
    /// @brief The most connections the store opens (transactions that run at
    /// once); a transaction beyond them waits for a connection to come back.
    std::size_t max_connections = 8;
};

/// @brief A `server_store` in a PostgreSQL database (libpq).
///
/// A handle: copies share one pool of connections, so every member is
/// thread-safe, and any number of processes may open the same database. The
/// change order is the commit order (see store.hpp): a write transaction is
/// `READ COMMITTED`; `lock_collection` upserts the scope's counter row in
/// `tether_server_collections`, which locks it until the transaction ends, so
/// the write transactions of one scope run one after the other, in any
/// process, and `next_change` increments that row in the same transaction.
/// Write transactions of other scopes do not wait. A read transaction is
/// `REPEATABLE READ READ ONLY`: one snapshot, so a page and the collection's
/// last change number agree. Server ids come from a sequence. `open` creates
/// the schema or migrates it to `schema_version` (see
/// `tether/server/postgres/schema.hpp`), and refuses a newer one.
///
/// @code
/// auto store = tether::server::postgres_store::open("host=127.0.0.1 dbname=tether").value();
/// tether::server::sync_service<tether::server::postgres_store> service{store};
/// @endcode
class postgres_store {
    using connection = detail::pg_connection;
    using params = detail::pg_params;

public:
    /// @brief The schema version this build writes.
    static constexpr int schema_version = detail::pg_server_schema_version;

    /// @brief A read transaction (see `server_read_transaction`); also the read
    /// half of a write transaction.
    class read_transaction {
    public:
        /// @brief The record with server id `sid`, live or deleted.
        result<std::optional<stored_record>> find_by_server_id(scope s, std::string_view sid) const {
            return one_(select_ + " WHERE user_id = $1 AND collection = $2 AND server_id = $3",
                        params{}.bytes(s.user).bytes(s.collection).bytes(sid));
        }

        /// @brief The record created with local id `id`, live or deleted.
        result<std::optional<stored_record>> find_by_local_id(scope s, const local_id& id) const {
            return one_(select_ + " WHERE user_id = $1 AND collection = $2 AND local_id = $3",
                        params{}.bytes(s.user).bytes(s.collection).bytes(id.bytes()));
        }

        /// @brief At most `limit` records whose version is above `n`, by version.
        result<std::vector<stored_record>> changes_after(scope s, std::uint64_t n, std::size_t limit) const {
            return all_(select_ + " WHERE user_id = $1 AND collection = $2 AND version > $3 ORDER BY version LIMIT $4",
                        params{}.bytes(s.user).bytes(s.collection).int8(to_int_(n)).int8(to_int_(limit)));
        }

        /// @brief Every live record, shorter server ids first, then bytewise (`server_id_less`).
        result<std::vector<stored_record>> list(scope s) const {
            return all_(select_ + " WHERE user_id = $1 AND collection = $2 AND NOT deleted"
                                  " ORDER BY length(server_id), server_id",
                        params{}.bytes(s.user).bytes(s.collection));
        }

        /// @brief The scope's change counter and epoch; empty if the store never held it.
        result<std::optional<collection_info>> collection(scope s) const {
            auto r = c_->exec("SELECT last_change, epoch FROM tether_server_collections"
                              " WHERE user_id = $1 AND collection = $2",
                              params{}.bytes(s.user).bytes(s.collection));
            if (!r) return unexpected{std::move(r).error()};
            if (PQntuples(r->get()) == 0) return std::optional<collection_info>{};
            auto info = info_(r->get());
            if (!info) return unexpected{std::move(info).error()};
            return std::optional{*info};
        }

    protected:
        /// @brief A transaction on `c`, which the caller holds for its life.
        explicit read_transaction(connection* c) noexcept : c_(c) {}

        /// @brief `v` as PostgreSQL's `bigint` (clamped).
        static std::int64_t to_int_(std::uint64_t v) noexcept {
            return static_cast<std::int64_t>(std::min<std::uint64_t>(v, std::numeric_limits<std::int64_t>::max()));
        }

        /// @brief The `collection_info` in the first row of `r` (`last_change, epoch`).
        static result<collection_info> info_(const PGresult* r) {
            const auto last = detail::pg_int8(r, 0, 0);
            const auto epoch = detail::pg_int8(r, 0, 1);
            if (!last || !epoch || *last < 0 || *epoch < 0)
                return unexpected{make_error(errc::storage, "postgres: a collection row does not decode")};
            return collection_info{static_cast<std::uint64_t>(*last), static_cast<std::uint64_t>(*epoch)};
        }

        connection* c_;  ///< @brief The connection the transaction runs on.

    private:
        friend class postgres_store;

        inline static const std::string select_ =
            "SELECT server_id, local_id, version, value, updated_at, origin, deleted, created_version"
            " FROM tether_server_records";

        result<std::optional<stored_record>> one_(const std::string& sql, const params& p) const {
            auto r = c_->exec(sql.c_str(), p);
            if (!r) return unexpected{std::move(r).error()};
            if (PQntuples(r->get()) == 0) return std::optional<stored_record>{};
            auto rec = detail::pg_server_row(r->get(), 0);
            if (!rec) return unexpected{std::move(rec).error()};
            return std::optional{std::move(*rec)};
        }

        result<std::vector<stored_record>> all_(const std::string& sql, const params& p) const {
            auto r = c_->exec(sql.c_str(), p);
            if (!r) return unexpected{std::move(r).error()};
            std::vector<stored_record> out;
            const int n = PQntuples(r->get());
            out.reserve(static_cast<std::size_t>(n));
            for (int i = 0; i < n; ++i) {
                auto rec = detail::pg_server_row(r->get(), i);
                if (!rec) return unexpected{std::move(rec).error()};
                out.push_back(std::move(*rec));
            }
            return out;
        }
    };

    /// @brief A write transaction (see `server_write_transaction`), `READ COMMITTED`.
    class write_transaction : public read_transaction {
    public:
        /// @brief Makes the scope known (if it was not) and locks its counter row
        /// until the transaction ends: another write transaction of the scope, in
        /// any process, waits here. Returns the scope's info.
        result<collection_info> lock_collection(scope s) {
            // ON CONFLICT DO UPDATE locks the row it finds; a row another transaction
            // is inserting makes this one wait for its end, then take that row. A new
            // scope starts at 0 in epoch 0, or, in a database restored from a backup,
            // where `mark_restored` left the others.
            auto r = c_->exec("INSERT INTO tether_server_collections (user_id, collection, last_change, epoch)"
                              " SELECT $1::bytea, $2::bytea,"
                              " coalesce((SELECT value FROM tether_server_meta WHERE key = 'restore_floor'), 0),"
                              " coalesce((SELECT value FROM tether_server_meta WHERE key = 'restore_epoch'), 0)"
                              " ON CONFLICT (user_id, collection) DO UPDATE"
                              " SET last_change = tether_server_collections.last_change RETURNING last_change, epoch",
                              params{}.bytes(s.user).bytes(s.collection));
            if (!r) return unexpected{std::move(r).error()};
            return info_(r->get());
        }

        /// @brief The scope's next change number, from its locked counter row.
        result<std::uint64_t> next_change(scope s) {
            for (bool first = true;; first = false) {
                auto r = c_->exec("UPDATE tether_server_collections SET last_change = last_change + 1"
                                  " WHERE user_id = $1 AND collection = $2 RETURNING last_change",
                                  params{}.bytes(s.user).bytes(s.collection));
                if (!r) return unexpected{std::move(r).error()};
                if (PQntuples(r->get()) == 1) {
                    const auto n = detail::pg_int8(r->get(), 0, 0);
                    if (!n || *n <= 0) return unexpected{make_error(errc::storage, "postgres: bad last_change")};
                    return static_cast<std::uint64_t>(*n);
                }
                if (!first) return unexpected{make_error(errc::storage, "postgres: the scope's counter row vanished")};
                if (auto l = lock_collection(s); !l) return unexpected{std::move(l).error()};  // a new scope
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
                return unexpected{make_error(errc::invalid_argument, "postgres: put of a record with an empty server id")};
            params p;
            p.bytes(s.user).bytes(s.collection).bytes(r.server_id);
            if (r.id) p.bytes(r.id->bytes());
            else p.null();
            p.int8(to_int_(r.version)).bytes(value_json);
            if (r.updated_at) p.int8(r.updated_at->time_since_epoch().count());
            else p.null();
            p.bytes(r.origin).boolean(rec.deleted).int8(to_int_(rec.created_version));
            auto done = c_->exec(
                "INSERT INTO tether_server_records (user_id, collection, server_id, local_id, version, value,"
                " updated_at, origin, deleted, created_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                " ON CONFLICT (user_id, collection, server_id) DO UPDATE SET local_id = excluded.local_id,"
                " version = excluded.version, value = excluded.value, updated_at = excluded.updated_at,"
                " origin = excluded.origin, deleted = excluded.deleted, created_version = excluded.created_version",
                p);
            if (!done) return unexpected{std::move(done).error()};
            return {};
        }

        /// @brief `"s<n>"` for the next `n` of the sequence `tether_server_ids`
        /// (one a rolled-back transaction took is skipped, never given again).
        result<std::string> new_server_id() {
            auto r = c_->exec("SELECT nextval('tether_server_ids')", params{});
            if (!r) return unexpected{std::move(r).error()};
            const auto n = PQntuples(r->get()) == 1 ? detail::pg_int8(r->get(), 0, 0) : std::nullopt;
            if (!n) return unexpected{make_error(errc::storage, "postgres: no server id from tether_server_ids")};
            return "s" + std::to_string(*n);
        }

    private:
        friend class postgres_store;
        explicit write_transaction(connection* c) noexcept : read_transaction(c) {}

        result<void> mark_restored_(std::int64_t epoch, std::int64_t floor) {
            const params p = params{}.int8(epoch).int8(floor);
            for (const char* sql : {
                     "UPDATE tether_server_collections SET epoch = greatest(epoch + 1, $1),"
                     " last_change = greatest(last_change, $2)",
                     "SELECT $1::bigint, setval('tether_server_ids', greatest($2,"
                     " (SELECT last_value FROM tether_server_ids)))",
                     // A collection the backup did not hold starts there too (see lock_collection).
                     "INSERT INTO tether_server_meta (key, value) VALUES ('restore_epoch', $1), ('restore_floor', $2)"
                     " ON CONFLICT (key) DO UPDATE SET value = greatest(tether_server_meta.value, excluded.value)"}) {
                if (auto r = c_->exec(sql, p); !r) return unexpected{std::move(r).error()};
            }
            return {};
        }
    };

    /// @brief Connects to the database of `conninfo` (libpq's connection string
    /// or URI), and creates or migrates the schema; refuses one newer than
    /// `schema_version` (`errc::storage`, nothing written). A server that
    /// cannot be reached is `errc::transient`.
    [[nodiscard]] static result<postgres_store> open(std::string conninfo, postgres_store_options opts = {}) {
        auto st = std::make_shared<state>(std::move(conninfo), opts.max_connections);
        auto c = st->pool.acquire();
        if (!c) return unexpected{std::move(c).error()};
        if (auto m = detail::pg_server_migrate(**c); !m) return unexpected{std::move(m).error()};
        return postgres_store{std::move(st)};
    }

    /// @brief Runs `f(tx)` in a `READ COMMITTED` transaction; commits if it
    /// returns a value (a failed commit is returned as the error), rolls back if
    /// it returns an error or throws (rethrown).
    template <class F>
    auto write(F&& f) -> std::invoke_result_t<F&, write_transaction&> {
        using R = std::invoke_result_t<F&, write_transaction&>;
        auto c = begin_("BEGIN ISOLATION LEVEL READ COMMITTED");
        if (!c) return R{unexpected{std::move(c).error()}};
        write_transaction tx{&**c};
        try {
            R r = f(tx);
            if (!r) {
                (void)(*c)->exec("ROLLBACK");
                return r;
            }
            auto done = (*c)->exec("COMMIT");
            if (!done) return R{unexpected{std::move(done).error()}};
            // COMMIT of a transaction a failed statement aborted answers ROLLBACK.
            if (std::string_view{PQcmdStatus(done->get())} != "COMMIT")
                return R{unexpected{make_error(errc::storage, "postgres: the transaction was aborted; rolled back")}};
            return r;
        } catch (...) {
            (void)(*c)->exec("ROLLBACK");
            throw;
        }
    }

    /// @brief Runs `f(tx)` in a `REPEATABLE READ READ ONLY` transaction (one
    /// snapshot) and returns what it returns.
    template <class F>
    auto read(F&& f) const -> std::invoke_result_t<F&, read_transaction&> {
        using R = std::invoke_result_t<F&, read_transaction&>;
        auto c = begin_("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        if (!c) return R{unexpected{std::move(c).error()}};
        struct end_guard {
            connection& c;
            ~end_guard() { (void)c.exec("ROLLBACK"); }  // read only: nothing to commit
        } end{**c};
        read_transaction tx{&**c};
        return f(tx);
    }

    /// @brief Tells the store that its database was just put back from a backup
    /// (`pg_restore`, a point-in-time recovery).
    ///
    /// As `sqlite_store::mark_restored`: the database knows nothing of what it
    /// handed out after the backup, so every collection's epoch moves on (every
    /// cursor handed out before answers `errc::cursor_expired`) and change
    /// numbers and server ids go on from at least milliseconds since the epoch
    /// × 1024, above anything counted before. Run it once per restore, before
    /// any server serves the database (`tether-server --restored-from-backup`).
    result<void> mark_restored(timestamp now) {
        const auto ms = std::max<std::int64_t>(0, now.time_since_epoch().count());
        const std::int64_t floor = ms > (std::numeric_limits<std::int64_t>::max() >> 10) ? ms : ms << 10;
        return write([&](write_transaction& tx) -> result<void> { return tx.mark_restored_(ms, floor); });
    }

    /// @brief The schema version stored in the database (after `open`, `schema_version`).
    [[nodiscard]] result<int> stored_schema_version() const {
        auto c = state_->pool.acquire();
        if (!c) return unexpected{std::move(c).error()};
        return detail::pg_server_read_schema_version(**c);
    }

    /// @brief The conninfo it was opened with.
    [[nodiscard]] const std::string& conninfo() const noexcept { return state_->pool.conninfo(); }

private:
    struct state {
        state(std::string conninfo, std::size_t max) : pool(std::move(conninfo), max) {}
        detail::pg_pool pool;
    };

    explicit postgres_store(std::shared_ptr<state> s) noexcept : state_(std::move(s)) {}

    // A connection with a transaction begun by `sql`. A pooled connection the
    // server dropped since (a restart) fails its BEGIN: one fresh try then.
    result<detail::pg_pool::lease> begin_(const char* sql) const {
        for (int attempt = 0;; ++attempt) {
            auto c = state_->pool.acquire();
            if (!c) return unexpected{std::move(c).error()};
            auto b = (*c)->exec(sql);
            if (b) return c;
            if (attempt > 0 || !(*c)->broken()) return unexpected{std::move(b).error()};
        }
    }

    std::shared_ptr<state> state_;
};

static_assert(server_store<postgres_store>);

}  // namespace tether::server
