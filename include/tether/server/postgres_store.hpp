#pragma once

/// @file
/// @brief `tether::server::postgres_store`: a `server_store` in a PostgreSQL
/// database, shared by any number of server processes (target `tether::postgres`).
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/result.hpp>
#include <tether/core/timestamp.hpp>
#include <tether/server/change_journal.hpp>
#include <tether/server/postgres/connection.hpp>
#include <tether/server/postgres/notify.hpp>
#include <tether/server/postgres/pool.hpp>
#include <tether/server/postgres/schema.hpp>
#include <tether/server/restore_floor.hpp>
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
/// process, and `next_change` counts on that row in the same transaction (the
/// transaction writes it before it commits; see `write_transaction` for how a
/// transaction's statements are pipelined).
/// Write transactions of other scopes do not wait. A read transaction is
/// `REPEATABLE READ READ ONLY`: one snapshot, so a page and the collection's
/// last change number agree. Server ids come from a sequence.
///
/// **Notifications.** A write transaction that took change numbers notifies
/// the store's channel (`change_channel()`: one per schema; `pg_notify`, sent just before its `COMMIT`, so
/// PostgreSQL delivers it only if the transaction commits, in commit order):
/// one notification per scope it changed, with the range of change numbers
/// and, when the service told the transaction its journal (`announce`) and
/// the events fit the payload, the events themselves (see
/// tether/server/postgres/notify.hpp). `postgres_live_feed` listens to them. `open` creates
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

        /// @brief The columns `detail::pg_server_row` decodes, from the records table.
        inline static const std::string select_ =
            "SELECT server_id, local_id, version, value, updated_at, origin, deleted, created_version"
            " FROM tether_server_records";

    private:
        friend class postgres_store;

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
    ///
    /// Its statements go out in one pipeline (see `detail::pg_connection`):
    /// only a call whose answer decides what comes next waits for the server.
    /// `lock_collection` waits (it returns the scope's info) and then holds the
    /// counter row, so the transaction counts the scope's change numbers
    /// itself: `next_change` costs no round trip, and the row's new
    /// `last_change` is written with the next `put` of the scope, in the same
    /// statement (a CTE), or before anything that reads it. `put` does not
    /// wait: a failure (`errc::conflict` for a held local id or version) is
    /// returned by the transaction's next call that waits, or by the commit;
    /// the transaction is aborted then, as a failed statement aborts any
    /// PostgreSQL transaction. In a locked scope, `find_by_local_id` that finds
    /// nothing also takes the next server id and checks that no record of the
    /// scope holds it, in the same statement: the create that follows gets it
    /// from `new_server_id` and its `find_by_server_id` answered, without a
    /// wait. So a create costs one round trip (see docs/server.md).
    class write_transaction : public read_transaction {
    public:
        /// @brief Makes the scope known (if it was not) and locks its counter row
        /// until the transaction ends: another write transaction of the scope, in
        /// any process, waits here. Returns the scope's info.
        result<collection_info> lock_collection(scope s) {
            if (auto f = flush_counters_(); !f) return unexpected{std::move(f).error()};
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
            auto info = info_(r->get());
            if (!info) return info;
            if (locked* l = locked_(s))
                l->info = *info;
            else
                locks_.push_back({std::string{s.user}, std::string{s.collection}, *info, false, info->last_change, {}});
            return info;
        }

        /// @brief The scope's counter and epoch: for a scope this transaction
        /// locked, as it counts them (no round trip).
        result<std::optional<collection_info>> collection(scope s) {
            if (const locked* l = locked_(s)) return std::optional{l->info};
            if (auto f = flush_counters_(); !f) return unexpected{std::move(f).error()};
            return read_transaction::collection(s);
        }

        /// @brief The scope's next change number, counted on its locked counter
        /// row (locked first if this transaction has not yet).
        result<std::uint64_t> next_change(scope s) {
            locked* l = locked_(s);
            if (l == nullptr) {
                if (auto info = lock_collection(s); !info) return unexpected{std::move(info).error()};
                l = locked_(s);
            }
            if (l->info.last_change >= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                return unexpected{make_error(errc::storage, "postgres: the change counter is exhausted")};
            ++l->info.last_change;
            l->dirty = true;
            return l->info.last_change;
        }

        /// @brief The record created with local id `id` (see the class: in a
        /// locked scope, none found also takes the next server id).
        result<std::optional<stored_record>> find_by_local_id(scope s, const local_id& id) {
            if (locked_(s) == nullptr || spare_) return read_transaction::find_by_local_id(s, id);
            auto r = c_->exec(find_or_take_id_sql_.c_str(), params{}.bytes(s.user).bytes(s.collection).bytes(id.bytes()));
            if (!r) return unexpected{std::move(r).error()};
            std::optional<stored_record> found;
            for (int i = 0, n = PQntuples(r->get()); i < n; ++i) {
                if (detail::pg_is_null(r->get(), i, 8)) {
                    auto rec = detail::pg_server_row(r->get(), i);
                    if (!rec) return unexpected{std::move(rec).error()};
                    found = std::move(*rec);
                    continue;
                }
                const auto sid = detail::pg_int8(r->get(), i, 8);
                const auto held = detail::pg_bool(r->get(), i, 9);
                if (!sid || !held) return unexpected{make_error(errc::storage, "postgres: no server id from tether_server_ids")};
                spare_ = spare{std::string{s.user}, std::string{s.collection}, "s" + std::to_string(*sid), *held};
            }
            return found;
        }

        /// @brief The record with server id `sid`; a fresh id this transaction
        /// took and found free is answered without a round trip.
        result<std::optional<stored_record>> find_by_server_id(scope s, std::string_view sid) {
            if (vouched_ && vouched_->is(s, sid) && !vouched_->held) {
                vouched_.reset();
                return std::optional<stored_record>{};
            }
            return read_transaction::find_by_server_id(s, sid);
        }

        /// @brief Inserts or replaces (by server id) the record `rec`.
        result<void> put(scope s, const stored_record& rec) {
            const std::string value = rec.record.value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
            return put(s, rec, value);
        }

        /// @brief As above, with `value_json` the record's value as compact JSON
        /// (`dump()`, invalid UTF-8 replaced), written as it is. Does not wait
        /// (see the class).
        result<void> put(scope s, const stored_record& rec, std::string_view value_json) {
            const auto& r = rec.record;
            if (r.server_id.empty())
                return unexpected{make_error(errc::invalid_argument, "postgres: put of a record with an empty server id")};
            if (spare_ && spare_->is(s, r.server_id)) spare_.reset();
            if (vouched_ && vouched_->is(s, r.server_id)) vouched_.reset();
            params p;
            p.bytes(s.user).bytes(s.collection).bytes(r.server_id);
            if (r.id) p.bytes(r.id->bytes());
            else p.null();
            p.int8(to_int_(r.version)).bytes(value_json);
            if (r.updated_at) p.int8(r.updated_at->time_since_epoch().count());
            else p.null();
            p.bytes(r.origin).boolean(rec.deleted).int8(to_int_(rec.created_version));
            locked* l = locked_(s);
            if (l == nullptr || !l->dirty) return c_->defer(put_sql_.c_str(), p);
            l->dirty = false;  // written by this statement
            return c_->defer(count_and_put_sql_.c_str(), p.int8(to_int_(l->info.last_change)));
        }

        /// @brief Keeps the events of journal `j` (the changes this transaction
        /// made in scope `s`, which `sync_service` tells before the commit) for
        /// the commit's notification (see the class).
        void announce(scope s, const change_journal& j) {
            locked* l = locked_(s);
            if (l == nullptr) return;
            change_journal copy = j;
            copy.publish(s, [l](std::string_view, live_event& e) { l->events.push_back(std::move(e)); });
        }

        /// @brief `"s<n>"` for the next `n` of the sequence `tether_server_ids`
        /// (one a rolled-back transaction took is skipped, never given again;
        /// so is one a `find_by_local_id` took for a create that did not follow).
        result<std::string> new_server_id() {
            if (spare_) {
                vouched_ = std::move(spare_);
                spare_.reset();
                return vouched_->sid;
            }
            auto r = c_->exec("SELECT nextval('tether_server_ids')", params{});
            if (!r) return unexpected{std::move(r).error()};
            const auto n = PQntuples(r->get()) == 1 ? detail::pg_int8(r->get(), 0, 0) : std::nullopt;
            if (!n) return unexpected{make_error(errc::storage, "postgres: no server id from tether_server_ids")};
            return "s" + std::to_string(*n);
        }

    private:
        friend class postgres_store;
        explicit write_transaction(connection* c) noexcept : read_transaction(c) {}

        // A scope this transaction locked: its counter as the transaction counts it.
        struct locked {
            std::string user, collection;
            collection_info info;
            bool dirty;  // last_change not written to the row yet
            std::uint64_t start;             // last_change when first locked: this transaction took start+1..
            std::vector<live_event> events;  // announced, for the notification
        };
        // A server id taken from the sequence, and whether a record of its scope held it then.
        struct spare {
            std::string user, collection, sid;
            bool held;
            bool is(scope s, std::string_view id) const { return sid == id && user == s.user && collection == s.collection; }
        };

        locked* locked_(scope s) {
            for (auto& l : locks_)
                if (l.user == s.user && l.collection == s.collection) return &l;
            return nullptr;
        }

        // Writes every counter the transaction moved on and has not written yet (no wait).
        result<void> flush_counters_() {
            for (auto& l : locks_) {
                if (!l.dirty) continue;
                l.dirty = false;
                auto done = c_->defer("UPDATE tether_server_collections SET last_change = $3"
                                      " WHERE user_id = $1 AND collection = $2",
                                      params{}.bytes(l.user).bytes(l.collection).int8(to_int_(l.info.last_change)));
                if (!done) return done;
            }
            return {};
        }

        // Sends (no wait) one notification per scope whose counter moved (see the class).
        result<void> notify_(const std::string& channel) {
            for (auto& l : locks_) {
                if (l.info.last_change <= l.start) continue;
                pg_change_note note{l.user, l.collection, l.info.epoch, l.start + 1, l.info.last_change,
                                    std::move(l.events)};
                const std::string payload = encode_pg_change_note(note);
                if (auto sent = c_->defer("SELECT pg_notify($1, $2)", params{}.bytes(channel).bytes(payload));
                    !sent)
                    return sent;
            }
            return {};
        }

        result<void> mark_restored_(std::int64_t epoch, std::int64_t floor) {
            if (auto f = flush_counters_(); !f) return f;
            locks_.clear();  // the epochs and counters move on
            spare_.reset();
            vouched_.reset();
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

        inline static const std::string put_cols_ =
            "INSERT INTO tether_server_records (user_id, collection, server_id, local_id, version, value,"
            " updated_at, origin, deleted, created_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            " ON CONFLICT (user_id, collection, server_id) DO UPDATE SET local_id = excluded.local_id,"
            " version = excluded.version, value = excluded.value, updated_at = excluded.updated_at,"
            " origin = excluded.origin, deleted = excluded.deleted, created_version = excluded.created_version";
        inline static const std::string put_sql_ = put_cols_;
        // The put that also writes the scope's counter ($11), which this transaction holds locked.
        inline static const std::string count_and_put_sql_ =
            "WITH counter AS (UPDATE tether_server_collections SET last_change = $11"
            " WHERE user_id = $1 AND collection = $2) " + put_cols_;
        // The record with the local id (columns 0-7), or, if there is none, the
        // next server id (column 8) and whether a record of the scope holds it (9).
        // nextval runs only when the record is missing.
        inline static const std::string find_or_take_id_sql_ =
            "WITH rec AS (" + select_ + " WHERE user_id = $1 AND collection = $2 AND local_id = $3),"
            " fresh AS (SELECT nextval('tether_server_ids') AS n WHERE NOT EXISTS (SELECT 1 FROM rec))"
            " SELECT rec.*, NULL::bigint, NULL::boolean FROM rec UNION ALL"
            " SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, n, EXISTS (SELECT 1 FROM tether_server_records"
            " WHERE user_id = $1 AND collection = $2 AND server_id = convert_to('s' || n::text, 'UTF8')) FROM fresh";

        std::vector<locked> locks_;
        std::optional<spare> spare_;    // taken by find_by_local_id, for the next new_server_id
        std::optional<spare> vouched_;  // given by new_server_id, for its find_by_server_id
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
        auto schema = (*c)->exec("SELECT current_schema()");
        if (!schema) return unexpected{std::move(schema).error()};
        if (PQntuples(schema->get()) != 1 || PQgetisnull(schema->get(), 0, 0))
            return unexpected{make_error(errc::storage, "postgres: no current schema")};
        st->channel = pg_change_channel_of(PQgetvalue(schema->get(), 0, 0));
        return postgres_store{std::move(st)};
    }

    /// @brief Runs `f(tx)` in a `READ COMMITTED` transaction; commits if it
    /// returns a value (a failed commit, or a failure of a statement that did
    /// not wait, is returned as the error), rolls back if it returns an error
    /// or throws (rethrown). Its statements go out in one pipeline (see
    /// `write_transaction`): `BEGIN` waits for nothing, the commit waits once.
    template <class F>
    auto write(F&& f) -> std::invoke_result_t<F&, write_transaction&> {
        using R = std::invoke_result_t<F&, write_transaction&>;
        auto c = begin_("BEGIN ISOLATION LEVEL READ COMMITTED");
        if (!c) return R{unexpected{std::move(c).error()}};
        write_transaction tx{&**c};
        try {
            R r = f(tx);
            if (!r) {
                rollback_(**c);
                return r;
            }
            if (auto flushed = tx.flush_counters_(); !flushed || !(flushed = tx.notify_(state_->channel))) {
                rollback_(**c);
                return R{unexpected{std::move(flushed).error()}};
            }
            auto done = (*c)->finish("COMMIT");
            if (!done) {
                rollback_(**c);
                return R{unexpected{std::move(done).error()}};
            }
            // COMMIT of a transaction a failed statement aborted answers ROLLBACK.
            if (std::string_view{PQcmdStatus(done->get())} != "COMMIT")
                return R{unexpected{make_error(errc::storage, "postgres: the transaction was aborted; rolled back")}};
            return r;
        } catch (...) {
            rollback_(**c);
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
            ~end_guard() { rollback_(c); }  // read only: nothing to commit
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
    /// numbers and server ids go on from at least `restore_marks_at(now).floor`
    /// (milliseconds since the epoch × 1024, above anything counted before; see
    /// tether/server/restore_floor.hpp). Run it once per restore, before any
    /// server serves the database (`tether-server --restored-from-backup`).
    result<void> mark_restored(timestamp now) {
        const restore_marks marks = restore_marks_at(now);
        return write([&](write_transaction& tx) -> result<void> { return tx.mark_restored_(marks.epoch, marks.floor); });
    }

    /// @brief The schema version stored in the database (after `open`, `schema_version`).
    [[nodiscard]] result<int> stored_schema_version() const {
        auto c = state_->pool.acquire();
        if (!c) return unexpected{std::move(c).error()};
        return detail::pg_server_read_schema_version(**c);
    }

    /// @brief The channel its write transactions notify on: one per schema
    /// (`pg_change_channel_of`), so stores in other schemas of the database
    /// do not hear each other.
    [[nodiscard]] const std::string& change_channel() const noexcept { return state_->channel; }

    /// @brief The conninfo it was opened with.
    [[nodiscard]] const std::string& conninfo() const noexcept { return state_->pool.conninfo(); }

    /// @brief How many times the store waited for the database since `open`,
    /// over all its connections (each statement that waits, each commit; what
    /// a push costs is the difference across it).
    [[nodiscard]] std::uint64_t round_trips() const noexcept { return state_->pool.round_trips(); }

private:
    struct state {
        state(std::string conninfo, std::size_t max) : pool(std::move(conninfo), max) {}
        detail::pg_pool pool;
        std::string channel;  // see change_channel
    };

    explicit postgres_store(std::shared_ptr<state> s) noexcept : state_(std::move(s)) {}

    // A connection in pipeline mode with `sql` (a BEGIN) sent. An idle pooled
    // connection that shows itself lost (the server restarted or ended the
    // session since it was used) is dropped for another without a round trip.
    result<detail::pg_pool::lease> begin_(const char* sql) const {
        for (;;) {
            auto c = state_->pool.acquire();
            if (!c) return unexpected{std::move(c).error()};
            if (!(*c)->alive()) continue;  // dropped as the lease ends
            if (auto p = (*c)->pipeline(); !p) return unexpected{std::move(p).error()};
            if (auto b = (*c)->defer(sql); !b) return unexpected{std::move(b).error()};
            return c;
        }
    }

    // Ends the transaction on `c` without committing; a connection left out of
    // step is dropped when its lease ends.
    static void rollback_(connection& c) {
        auto done = c.finish("ROLLBACK");
        if (!done && !c.broken() && PQtransactionStatus(c.handle()) == PQTRANS_INERROR) (void)c.exec("ROLLBACK");
    }

    std::shared_ptr<state> state_;
};

static_assert(server_store<postgres_store>);

}  // namespace tether::server
