#pragma once

/// @file
/// @brief `tether::sqlite_storage` (the policy) and `tether::sqlite_store<E>` (one table).

#include <tether/core/timestamp.hpp>
#include <tether/core/entity.hpp>
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/record.hpp>
#include <tether/core/result.hpp>
#include <tether/core/status.hpp>
#include <tether/storage/sqlite/connection.hpp>
#include <tether/storage/sqlite/database.hpp>
#include <tether/storage/sqlite/row.hpp>
#include <tether/storage/sqlite/record_cache.hpp>
#include <tether/storage/sqlite/schema.hpp>
#include <tether/storage/sqlite/statement.hpp>
#include <tether/storage/sqlite/storage_policy.hpp>
#include <tether/storage/sqlite/table_bootstrap.hpp>
#include <tether/storage/storage.hpp>

#include <sqlite3.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeindex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tether {

/// @brief One entity type's table in a `sqlite_database` (the engine's view of
/// a `sqlite_storage`). Satisfies `record_store<sqlite_store<E>, E>`.
///
/// Records keep their sync metadata in columns and the entity as JSON in
/// `value`; metadata (cursors) lives in `tether_meta`. Every member is
/// thread-safe and reports failure as a `result` error, never by throwing
/// (except that `transact` rethrows what its callable throws, after the rollback).
///
/// A row that does not decode (written by a version of the app whose entity
/// type differed, or changed outside tether) affects only itself: `list()` and
/// `due()` skip it, reading it alone is an `errc::storage` error naming it, and
/// `erase` removes it without decoding it. The store remembers the rows it has
/// found so (`unreadable()`, `counts().unreadable`): it satisfies
/// `reports_unreadable<sqlite_store<E>, E>`.
template <class E>
class sqlite_store {
    static_assert(entity<E>, "tether::sqlite_store<E>: E must be a tether::entity (see tether/core/entity.hpp)");

public:
    /// @brief A transaction over the table (see `storage_transaction`); valid only
    /// inside the `transact` call that made it.
    class transaction {
    public:
        /// @brief The record with `id`, as this transaction sees it (from the
        /// store's record cache when it holds it).
        result<std::optional<record<E>>> get(const local_id& id) const { return store_->get_cached_(id); }

        /// @brief The record with `id` without a copy (null when absent): the
        /// store's cached copy, read and cached first if need be. Valid until the
        /// transaction's next write.
        result<const record<E>*> peek(const local_id& id) const { return store_->peek_cached_(id); }

        /// @brief The record with server id `sid`, as this transaction sees it.
        result<std::optional<record<E>>> find_by_server_id(std::string_view sid) const {
            return store_->find_server_(sid);
        }

        /// @brief Inserts or replaces the record with `r.id`. A `server_id` held
        /// by another record is an `errc::storage` error (the column is unique).
        result<void> put(const record<E>& r) { return store_->put_(r); }

        /// @brief As above, for a record the caller gives up (moved into the
        /// store's record cache if that holds the record).
        result<void> put(record<E>&& r) { return store_->put_(std::move(r)); }

        /// @brief Removes the record with `id` (absent is fine). Never decodes
        /// the row: a record that does not decode can be erased.
        result<void> erase(const local_id& id) { return store_->erase_(id); }

        /// @brief True if the record `id` exists but does not decode (false if it
        /// decodes, is absent, or the read itself fails): see `reports_unreadable`.
        [[nodiscard]] bool unreadable(const local_id& id) const { return store_->tx_unreadable_(id); }

        /// @brief A metadata value (e.g. the pull cursor).
        result<std::optional<std::string>> get_meta(std::string_view key) const { return store_->meta_(key); }

        /// @brief Sets a metadata value.
        result<void> set_meta(std::string_view key, std::string value) {
            return store_->set_meta_(key, value);
        }

        /// @brief Appends `t` to the audit log, in this transaction (a no-op
        /// unless the database was opened with `sqlite_options::audit`).
        result<void> audit(const transition& t) {
            if (!store_->conn_->options().audit) return {};
            return detail::sqlite_insert_audit(*store_->conn_, store_->table_, t);
        }

    private:
        friend class sqlite_store;
        explicit transaction(const sqlite_store* s) noexcept : store_(s) {}
        const sqlite_store* store_;
    };

    /// @brief The table for `E` in `storage`'s database. Does not touch the
    /// file: the first call checks the table and creates it (with its indexes)
    /// if missing.
    explicit sqlite_store(const sqlite_storage& storage)
        : conn_(storage.database().conn_),
          table_(storage.table().value_or(std::string{entity_traits<E>::collection})) {
        if (!detail::sqlite_valid_table_name(table_)) {
            init_error_ = make_error(errc::invalid_argument,
                                     "sqlite: invalid table name '" + table_.substr(0, 80) +
                                         "' (need [A-Za-z_][A-Za-z0-9_]*, at most 64 characters, "
                                         "not starting with sqlite_ or tether_)");
            return;
        }
        table_ = detail::sqlite_canonical_table_name(table_);
        sql_ = std::make_shared<const detail::sqlite_table_sql>(table_);
        keys_ = {detail::sqlite_sql_key::of(sql_->select_by_id), detail::sqlite_sql_key::of(sql_->upsert),
                 detail::sqlite_sql_key::of(sql_->erase)};
        std::lock_guard lock{conn_->mutex()};
        if (!conn_->claim_table(table_, std::type_index{typeid(E)})) {
            init_error_ = make_error(errc::storage, "sqlite: table '" + table_ +
                                                        "' is already used by another entity type on this database");
            return;
        }
        cache_ = conn_->table_cache<record_cache>(table_);
        // The table itself is checked (and created if missing) by the first call.
    }

    /// @brief Runs `f(tx)` in one transaction: all of its writes or none (on an
    /// error result, returned, or an exception, rethrown). Inside another
    /// transaction of the same database (same thread) it joins that one without
    /// a savepoint: if `f` fails before writing a row, the enclosing transaction
    /// goes on as it was; if it fails after writing rows, the enclosing
    /// transaction is doomed and rolls back as a whole when it ends (returning
    /// this error). A nested `sqlite_database::transact` is a savepoint.
    template <class F>
    result<void> transact(F&& f) {
        static_assert(std::is_same_v<std::invoke_result_t<F, transaction&>, result<void>>,
                      "tether::sqlite_store::transact(f) requires f(tx) to return tether::result<void>");
        std::lock_guard lock{conn_->mutex()};
        if (auto r = ready_(); !r) return r;
        transaction tx{this};
        return detail::sqlite_run_joined(*conn_, [&]() -> result<void> { return std::invoke(f, tx); });
    }

    /// @brief If a transaction of this database is open (an engine write inside
    /// `sqlite_database::transact`), keeps `fn` to run after it commits and
    /// returns true; `fn` is dropped if the write it belongs to is rolled back.
    /// Returns false, keeping nothing, when no transaction is open. The engine
    /// delivers its watchers and hooks this way, so that they only hear of
    /// committed changes.
    bool defer_until_commit(std::function<void()>& fn) {
        std::lock_guard lock{conn_->mutex()};
        if (conn_->depth() == 0) return false;
        conn_->defer(std::move(fn));
        return true;
    }

    /// @brief The record with `id`, if any.
    result<std::optional<record<E>>> get(const local_id& id) const {
        std::lock_guard lock{conn_->mutex()};
        if (auto r = ready_(); !r) return unexpected{std::move(r).error()};
        return get_(id);
    }

    /// @brief The record with server id `sid`, if any.
    result<std::optional<record<E>>> find_by_server_id(std::string_view sid) const {
        std::lock_guard lock{conn_->mutex()};
        if (auto r = ready_(); !r) return unexpected{std::move(r).error()};
        return find_server_(sid);
    }

    /// @brief Every record that decodes, in `local_id` order. Rows that do not
    /// decode are skipped; having read them all, the store's list of such rows
    /// (`unreadable()`) is exactly the ones this call skipped.
    result<std::vector<record<E>>> list() const {
        std::lock_guard lock{conn_->mutex()};
        if (auto r = ready_(); !r) return unexpected{std::move(r).error()};
        auto st = conn_->prepare(sql_->select_all);
        if (!st) return unexpected{std::move(st).error()};
        std::map<local_id, error> skipped;
        auto out = collect_(*st, std::numeric_limits<std::size_t>::max(), "list", nullptr, &skipped);
        if (out) cache_->unreadable = std::move(skipped);
        return out;
    }

    /// @brief Up to `limit` records due at `now` (`is_due`), highest priority
    /// first, then least `updated_at`, then `local_id`; served by the `<table>_due` index.
    /// Rows that do not decode are skipped, and as many readable ones as there
    /// are (up to `limit`) returned in their place. The records returned are
    /// also kept in the record cache: the push that follows re-reads them in a
    /// transaction and need not decode them again.
    result<std::vector<record<E>>> due(timestamp now, std::size_t limit) const {
        std::lock_guard lock{conn_->mutex()};
        if (auto r = ready_(); !r) return unexpected{std::move(r).error()};
        if (limit == 0) return std::vector<record<E>>{};
        auto st = conn_->prepare(sql_->select_due);
        if (!st) return unexpected{std::move(st).error()};
        // Room for the rows already known not to decode, which will be skipped;
        // if more are skipped and the limit cut the rows short, once more without one.
        const auto max = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
        const std::size_t known = cache_->unreadable.size();
        const auto bound = std::min(limit, max - known) + known;
        st->bind(1, detail::sqlite_time(now)).bind(2, static_cast<std::int64_t>(bound));
        std::size_t rows = 0;
        auto out = collect_(*st, limit, "due", &now, nullptr, &rows, true);
        if (!out || out->size() >= limit || rows < bound) return out;
        st->reset();
        st->bind(1, detail::sqlite_time(now)).bind(2, std::int64_t{-1});  // no limit: stops at `limit` readable rows
        return collect_(*st, limit, "due", &now, nullptr, nullptr, true);
    }

    /// @brief The least `next_attempt_at` among unsynced rows (`pending`,
    /// `pending_deletion`, `error`), empty when none has one: one aggregate
    /// over the `<table>_due` partial index, which holds the column.
    result<std::optional<timestamp>> earliest_next_attempt() const {
        std::lock_guard lock{conn_->mutex()};
        if (auto r = ready_(); !r) return unexpected{std::move(r).error()};
        auto st = conn_->prepare(sql_->select_earliest_attempt);
        if (!st) return unexpected{std::move(st).error()};
        const int rc = st->step();
        if (rc != SQLITE_ROW) return unexpected{fail_(rc, "earliest_next_attempt")};
        std::optional<timestamp> out;
        if (auto t = st->opt_int64(0)) out = detail::sqlite_timestamp(*t);
        return out;
    }

    /// @brief Record counts by status and the oldest unsynced change.
    /// `unreadable` is the number of rows of this table that reads through this
    /// database handle have found undecodable and that have not since been put,
    /// erased, or read back whole (see `unreadable()`); rows with an unknown
    /// status count only there.
    result<status_counts> counts() const {
        std::lock_guard lock{conn_->mutex()};
        if (auto r = ready_(); !r) return unexpected{std::move(r).error()};
        auto st = conn_->prepare(sql_->select_counts);
        if (!st) return unexpected{std::move(st).error()};
        status_counts c;
        c.unreadable = cache_->unreadable.size();
        int rc = SQLITE_ROW;
        while ((rc = st->step()) == SQLITE_ROW) {
            // Rows with a status this build does not know do not decode: they are
            // counted in `unreadable` once a read has met them, not here.
            const auto status = sync_status_from_string(st->text(0));
            if (!status) continue;
            const auto n = static_cast<std::size_t>(st->int64(1));
            switch (*status) {
                case sync_status::pending: c.pending = n; break;
                case sync_status::synced: c.synced = n; break;
                case sync_status::pending_deletion: c.pending_deletion = n; break;
                case sync_status::error: c.error = n; break;
                case sync_status::failed: c.failed = n; break;
            }
            if (*status == sync_status::pending || *status == sync_status::pending_deletion ||
                *status == sync_status::error) {
                const auto oldest = detail::sqlite_timestamp(st->int64(2));
                if (!c.oldest_pending || oldest < *c.oldest_pending) c.oldest_pending = oldest;
            }
        }
        if (rc != SQLITE_DONE) return unexpected{fail_(rc, "counts")};
        return c;
    }

    /// @brief The rows of this table known not to decode, in `local_id` order,
    /// each with the error reading it returns.
    ///
    /// "Known" means: met by a read through this database handle (any store of
    /// the table on it: `get`, `find_by_server_id`, `list`, `due`, the
    /// transaction's `get`, `peek` and `unreadable`), and neither put nor erased
    /// since, nor read back since as a good record. A `list()` reads every row,
    /// so after one the list is exact. Nothing is read here: a row not yet met
    /// is not listed, and one whose put or erase was rolled back is listed again
    /// only when a read meets it again.
    result<std::vector<unreadable_record>> unreadable() const {
        std::lock_guard lock{conn_->mutex()};
        if (auto r = ready_(); !r) return unexpected{std::move(r).error()};
        std::vector<unreadable_record> out;
        out.reserve(cache_->unreadable.size());
        for (const auto& [id, why] : cache_->unreadable) out.push_back(unreadable_record{id, why});
        return out;
    }

    /// @brief A metadata value, if set.
    result<std::optional<std::string>> get_meta(std::string_view key) const {
        std::lock_guard lock{conn_->mutex()};
        if (auto r = ready_(); !r) return unexpected{std::move(r).error()};
        return meta_(key);
    }

    /// @brief The audit log of this table, oldest first (only record `id`'s
    /// transitions if given). Empty unless the database was opened with
    /// `sqlite_options::audit`.
    result<std::vector<transition>> audit_log(std::optional<local_id> id = std::nullopt) const {
        if (init_error_) return unexpected{*init_error_};
        return sqlite_database{conn_}.audit_log(table_, id);
    }

    /// @brief The table's (canonical, lower-case) name.
    [[nodiscard]] const std::string& table() const noexcept { return table_; }

private:
    /// Checks the table on first use and creates it if missing (caller holds the
    /// lock; see table_bootstrap.hpp).
    result<void> ready_() const {
        if (init_error_) return unexpected{*init_error_};
        if (ready_flag_) return {};
        auto opened = detail::sqlite_open_table(*conn_, table_);
        if (!opened) return unexpected{std::move(opened).error()};
        if (*opened) ready_flag_ = true;
        return {};
    }

    error fail_(int rc, std::string_view what) const {
        return detail::sqlite_error(conn_->handle(), rc, table_ + ": " + std::string{what});
    }

    // The id of the current row of `st`, if its local_id column holds one.
    static std::optional<local_id> row_id_(const detail::sqlite_statement& st) {
        const auto blob = st.blob(0);
        if (blob.size() != 16) return std::nullopt;
        local_id::bytes_type bytes{};
        std::copy(blob.begin(), blob.end(), bytes.begin());
        return local_id{bytes};
    }

    // Notes that row `id` does not decode (`why`), or that it does or is gone.
    // A row whose local_id column is itself unreadable cannot be named, so is
    // skipped without being noted. Caller holds the lock.
    void note_unreadable_(const detail::sqlite_statement& st, const error& why) const {
        if (auto id = row_id_(st)) cache_->unreadable.insert_or_assign(*id, why);
    }
    void note_readable_(const local_id& id) const {
        if (!cache_->unreadable.empty()) cache_->unreadable.erase(id);
    }

    // One row of `st`; `undecodable` (if given) is set when the row exists but
    // does not decode (the result is then that error).
    // `value_text` (if given) receives the value column's text of a row that decodes.
    result<std::optional<record<E>>> one_(detail::sqlite_statement& st, std::string_view what,
                                          const local_id* id = nullptr, bool* undecodable = nullptr,
                                          std::string* value_text = nullptr) const {
        const int rc = st.step();
        if (rc == SQLITE_DONE) {
            if (id != nullptr) note_readable_(*id);
            return std::optional<record<E>>{};
        }
        if (rc != SQLITE_ROW) {
            return unexpected{fail_(rc, id != nullptr ? std::string{what} + " " + id->to_string() : std::string{what})};
        }
        auto r = detail::sqlite_read_record<E>(st, table_, value_text);
        if (!r) {
            note_unreadable_(st, r.error());
            if (undecodable != nullptr) *undecodable = true;
            return unexpected{std::move(r).error()};
        }
        note_readable_(r->id);
        return std::optional<record<E>>{std::move(*r)};
    }

    // Up to `limit` records from the rows of `st`, skipping (and noting) those
    // that do not decode: into `skipped` too, if given. `rows` (if given) is set
    // to the number of rows stepped over. With `keep`, a copy of each record
    // returned goes into the record cache (the push that reads what is due then
    // takes them from there: valid under the epoch rule, as the cache is only
    // used inside transactions, whose start notices other connections' commits).
    result<std::vector<record<E>>> collect_(detail::sqlite_statement& st, std::size_t limit, std::string_view what,
                                            const timestamp* due_at, std::map<local_id, error>* skipped = nullptr,
                                            std::size_t* rows = nullptr, bool keep = false) const {
        std::vector<record<E>> out;
        std::size_t stepped = 0;
        int rc = SQLITE_ROW;
        std::string text;
        while (out.size() < limit && (rc = st.step()) == SQLITE_ROW) {
            ++stepped;
            auto r = detail::sqlite_read_record<E>(st, table_, keep ? &text : nullptr);
            if (!r) {
                note_unreadable_(st, r.error());
                if (skipped != nullptr) {
                    if (auto id = row_id_(st)) skipped->insert_or_assign(*id, std::move(r).error());
                }
                continue;
            }
            note_readable_(r->id);
            // The SQL filter mirrors is_due(); the check keeps the two from drifting apart.
            if (due_at != nullptr && !is_due(*r, *due_at)) continue;
            if (keep) cache_now_().put(*r, std::move(text));
            out.push_back(std::move(*r));
        }
        if (rows != nullptr) *rows = stepped;
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) return unexpected{fail_(rc, what)};
        return out;
    }

    using record_cache = detail::sqlite_record_cache<E>;

    // The table's record cache as of the connection's epoch (record_cache.hpp).
    record_cache& cache_now_() const { return cache_->at(conn_->epoch()); }

    result<const record<E>*> peek_cached_(const local_id& id) const {
        auto& c = cache_now_();
        if (const auto* held = c.find(id)) return held;
        auto st = conn_->prepare(keys_.select_by_id);
        if (!st) return unexpected{std::move(st).error()};
        st->bind_blob(1, id.bytes());
        std::string text;
        auto found = one_(*st, "get", &id, nullptr, &text);
        if (!found) return unexpected{std::move(found).error()};
        if (!*found) return static_cast<const record<E>*>(nullptr);
        c.put(std::move(**found), std::move(text));
        return c.find(id);
    }

    bool tx_unreadable_(const local_id& id) const {
        if (cache_now_().find(id) != nullptr) return false;  // decoded already
        auto st = conn_->prepare(keys_.select_by_id);
        if (!st) return false;
        st->bind_blob(1, id.bytes());
        bool undecodable = false;
        std::string text;
        auto found = one_(*st, "get", &id, &undecodable, &text);
        if (found && *found) cache_now_().put(std::move(**found), std::move(text));
        return undecodable;
    }

    result<std::optional<record<E>>> get_cached_(const local_id& id) const {
        auto found = peek_cached_(id);
        if (!found) return unexpected{std::move(found).error()};
        if (*found == nullptr) return std::optional<record<E>>{};
        return std::optional<record<E>>{**found};
    }

    // The dirty column's JSON; consecutive writes (a batch of updates) usually
    // carry the same field set, whose JSON is kept (caller holds the lock).
    result<std::string_view> dirty_json_(const field_set& dirty) const {
        if (dirty.empty()) return std::string_view{"[]"};
        if (dirty != last_dirty_) {
            try {
                last_dirty_json_ = detail::sqlite_dirty_json(dirty);  // unchanged if it throws
            } catch (const nlohmann::json::exception& ex) {
                return unexpected{make_error(errc::invalid_argument,
                                             "sqlite: dirty field names do not serialize to JSON: " +
                                                 std::string{ex.what()})};
            }
            last_dirty_ = dirty;
        }
        return std::string_view{last_dirty_json_};
    }

    result<std::optional<record<E>>> get_(const local_id& id) const {
        auto st = conn_->prepare(keys_.select_by_id);
        if (!st) return unexpected{std::move(st).error()};
        st->bind_blob(1, id.bytes());
        return one_(*st, "get", &id);
    }

    result<std::optional<record<E>>> find_server_(std::string_view sid) const {
        auto st = conn_->prepare(sql_->select_by_server_id);
        if (!st) return unexpected{std::move(st).error()};
        st->bind(1, sid);
        return one_(*st, "find_by_server_id");
    }

    template <class R>
    result<void> put_(R&& r) const {
        if (r.id.is_nil()) return unexpected{make_error(errc::invalid_argument, "record without an id")};
        auto dirty = dirty_json_(r.dirty);
        if (!dirty) return unexpected{std::move(dirty).error()};
        // Bound without a copy: lives until the step is done. The cached text
        // of an unchanged value is bound as it is (the cache does not change
        // before the step).
        std::string value;
        auto [stored, text] = cache_now_().find_with_text(r.id);
        const std::string* known =
            stored != nullptr && text != nullptr && entity_ops<E>::equal(stored->value, r.value) ? text : nullptr;
        bool written = false;
        if (stored != nullptr) {
            auto w = update_changed_(r, *stored, known, value, *dirty);
            if (!w) return unexpected{std::move(w).error()};
            written = *w;
        }
        if (!written) {
            auto st = conn_->prepare(keys_.upsert);
            if (!st) return unexpected{std::move(st).error()};
            if (auto b = detail::sqlite_bind_record(*st, r, value, *dirty, known); !b) return b;
            if (const int rc = st->step(); rc != SQLITE_DONE) return unexpected{fail_(rc, "put " + r.id.to_string())};
        }
        note_readable_(r.id);
        // Kept only if already cached (read or updated before): a record just
        // created need not cost a copy until it is read or updated.
        cache_now_().refresh(std::forward<R>(r), known != nullptr ? nullptr : &value);
        return {};
    }

    // A put of a record whose row the cache holds as `stored`: an UPDATE of the
    // columns that differ (none: no write), which leaves the indexes of the
    // others alone. False if no row was there to update (the caller upserts).
    result<bool> update_changed_(const record<E>& r, const record<E>& stored, const std::string* known,
                                 std::string& value, std::string_view dirty) const {
        const std::uint32_t mask = detail::sqlite_changed_columns(stored, r, known != nullptr);
        if (mask == 0) return true;
        const auto value_bit = std::uint32_t{1} << static_cast<int>(detail::sqlite_column::value);
        if ((mask & value_bit) != 0) {
            if (auto v = detail::sqlite_value_json(r, value); !v) return unexpected{std::move(v).error()};
        }
        auto sql = update_sql_.find(mask);
        if (sql == update_sql_.end()) sql = update_sql_.emplace(mask, detail::sqlite_update_sql(table_, mask)).first;
        auto st = conn_->prepare(std::string_view{sql->second});
        if (!st) return unexpected{std::move(st).error()};
        st->bind_blob_static(1, r.id.bytes());
        int param = 2;
        for (int c = 0; c < detail::sqlite_column_count; ++c) {
            if ((mask & (std::uint32_t{1} << c)) == 0) continue;
            detail::sqlite_bind_column(*st, param++, static_cast<detail::sqlite_column>(c), r, value, dirty);
        }
        if (const int rc = st->step(); rc != SQLITE_DONE) return unexpected{fail_(rc, "put " + r.id.to_string())};
        return sqlite3_changes(conn_->handle()) == 1;
    }

    result<void> erase_(const local_id& id) const {
        auto st = conn_->prepare(keys_.erase);
        if (!st) return unexpected{std::move(st).error()};
        st->bind_blob(1, id.bytes());
        if (const int rc = st->step(); rc != SQLITE_DONE) return unexpected{fail_(rc, "erase " + id.to_string())};
        cache_now_().erase(id);
        note_readable_(id);
        return {};
    }

    result<std::optional<std::string>> meta_(std::string_view key) const {
        auto st = conn_->prepare(detail::sqlite_select_meta);
        if (!st) return unexpected{std::move(st).error()};
        st->bind(1, std::string_view{table_}).bind(2, key);
        return detail::sqlite_query_text(*conn_, *st);
    }

    result<void> set_meta_(std::string_view key, std::string_view value) const {
        auto st = conn_->prepare(detail::sqlite_upsert_meta);
        if (!st) return unexpected{std::move(st).error()};
        st->bind(1, std::string_view{table_}).bind(2, key).bind(3, value);
        if (const int rc = st->step(); rc != SQLITE_DONE) return unexpected{fail_(rc, "set_meta")};
        return {};
    }

    std::shared_ptr<detail::sqlite_connection> conn_;
    std::string table_;
    std::shared_ptr<const detail::sqlite_table_sql> sql_;
    struct hot_keys {  // the write path's statements, hashed once (texts owned by *sql_)
        detail::sqlite_sql_key select_by_id{}, upsert{}, erase{};
    } keys_;
    std::shared_ptr<record_cache> cache_;  // guarded by conn_->mutex()
    mutable std::unordered_map<std::uint32_t, std::string> update_sql_;  // by changed-column mask (same guard)
    mutable field_set last_dirty_;         // the last dirty fields written, and their JSON (same guard)
    mutable std::string last_dirty_json_;
    std::optional<error> init_error_;
    mutable bool ready_flag_ = false;  // guarded by conn_->mutex()
};

}  // namespace tether
