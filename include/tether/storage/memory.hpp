#pragma once

#include <tether/core/entity.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/record.hpp>
#include <tether/core/result.hpp>
#include <tether/storage/storage.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <typeindex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tether {

template <class E>
class memory_store;

/// @brief The default storage: records in memory, shared by every copy.
///
/// Copies of a `memory_storage` share one store, so a test can "restart the app"
/// by building a new engine over a copy of the same storage. Each entity type
/// gets its own table (keyed by collection name). Transactions are atomic: all
/// of a transaction's writes apply, or (on an error result or an exception)
/// none do. It keeps `record<E>` values, which always decode, so it does not
/// offer `reports_unreadable` and its `counts().unreadable` is always 0.
///
/// @code
/// tether::memory_storage storage;
/// {
///     auto engine = tether::make_engine<Job>(storage);
///     (void)engine.create(Job{"memo", 0});
/// }
/// auto again = tether::make_engine<Job>(storage);   // sees the job
/// @endcode
class memory_storage {
public:
    using policy_kind = storage_tag;

    /// @brief The store the engine uses for entity `E`.
    template <class E>
    using rebind = memory_store<E>;

    memory_storage() : state_(std::make_shared<state>()) {}

private:
    template <class E>
    friend class memory_store;

    struct state {
        std::mutex mutex;
        std::map<std::string, std::shared_ptr<void>, std::less<>> tables;
        std::map<std::string, std::type_index, std::less<>> table_types;
    };

    std::shared_ptr<state> state_;
};

/// @brief `memory_storage`'s table for one entity type (the engine's view of it).
template <class E>
class memory_store {
    // The order due() hands records out in: highest priority, then oldest change, then id.
    struct due_key {
        tether::priority prio;
        timestamp updated_at;
        local_id id;
        friend bool operator<(const due_key& a, const due_key& b) noexcept {
            if (a.prio != b.prio) return a.prio > b.prio;
            if (a.updated_at != b.updated_at) return a.updated_at < b.updated_at;
            return a.id < b.id;
        }
    };

    struct table {
        std::mutex mutex;
        std::unordered_map<local_id, record<E>> records;
        std::unordered_map<std::string, local_id> by_server_id;
        std::map<std::string, std::string, std::less<>> meta;
        std::vector<std::pair<local_id, std::optional<record<E>>>> undo;  // the running transaction's
        // Every record in a status due() may pick (pending, pending_deletion,
        // error), in due() order, so that a push reads its batch off the front
        // instead of scanning the table. Kept up to date lazily: a write only
        // notes the id (the write path stays as cheap as a map's), and due()
        // re-indexes the noted records first; after more writes than records it
        // rebuilds the index instead.
        std::set<due_key> due_index;
        std::unordered_map<local_id, due_key> indexed_as;  // where each indexed record sits
        std::vector<local_id> stale;                        // written since the index was refreshed
        bool rebuild = false;                               // too many writes: rebuild it whole

        void touched(const local_id& id) {
            if (rebuild) return;
            stale.push_back(id);
            if (stale.size() > 2 * records.size() + 64) {
                rebuild = true;
                stale = {};
            }
        }
        void index(const record<E>& r) {
            if (r.status == sync_status::pending || r.status == sync_status::pending_deletion ||
                r.status == sync_status::error) {
                const due_key key{r.priority, r.updated_at, r.id};
                due_index.insert(key);
                indexed_as.insert_or_assign(r.id, key);
            }
        }
        void refresh_due_index() {
            if (rebuild) {
                due_index.clear();
                indexed_as.clear();
                for (const auto& entry : records) index(entry.second);
                rebuild = false;
                return;
            }
            for (const auto& id : stale) {
                if (auto it = indexed_as.find(id); it != indexed_as.end()) {
                    due_index.erase(it->second);
                    indexed_as.erase(it);
                }
                if (auto it = records.find(id); it != records.end()) index(it->second);
            }
            stale.clear();
        }
    };

public:
    /// @brief A transaction over the table (see `storage_transaction`).
    class transaction {
    public:
        /// @brief The record with `id`, as this transaction sees it.
        result<std::optional<record<E>>> get(const local_id& id) const { return store_->find_(id); }

        /// @brief The stored record with `id`, or null: no copy (valid until the
        /// transaction's next write). The engine uses it when a store offers it.
        [[nodiscard]] const record<E>* peek(const local_id& id) const {
            auto* entry = entry_(id);
            return entry != nullptr ? &entry->second : nullptr;
        }

        /// @brief The stored record with `id` for change in place, and a copy of
        /// it as it was (kept to roll back): see `record_edit`.
        [[nodiscard]] record_edit<E> edit(const local_id& id) {
            auto* entry = entry_(id);
            if (entry == nullptr) return {};
            undo_.emplace_back(id, entry->second);
            store_->table_->touched(id);
            return {&entry->second, &*undo_.back().second};
        }

        /// @brief The record with server id `sid`, as this transaction sees it.
        result<std::optional<record<E>>> find_by_server_id(std::string_view sid) const {
            return store_->find_server_(sid);
        }

        /// @brief Inserts or replaces the record with `r.id` (copied).
        result<void> put(const record<E>& r) { return put(record<E>{r}); }

        /// @brief Inserts or replaces the record with `r.id` (moved in).
        result<void> put(record<E>&& r) {
            if (r.id.is_nil()) return unexpected{make_error(errc::invalid_argument, "record without an id")};
            auto& t = *store_->table_;
            if (r.server_id) {
                // Server ids are unique, as a UNIQUE column would make them.
                if (auto owner = t.by_server_id.find(*r.server_id); owner != t.by_server_id.end() && owner->second != r.id) {
                    return unexpected{make_error(errc::storage, "server id '" + *r.server_id + "' already belongs to " +
                                                                    owner->second.to_string())};
                }
            }
            auto* entry = entry_(r.id);
            if (!entry) {
                undo_.emplace_back(r.id, std::nullopt);
                if (r.server_id) t.by_server_id[*r.server_id] = r.id;
                t.touched(r.id);
                t.records.emplace(r.id, std::move(r));
            } else {
                auto& stored = entry->second;
                if (stored.server_id != r.server_id) {
                    if (stored.server_id) t.by_server_id.erase(*stored.server_id);
                    if (r.server_id) t.by_server_id[*r.server_id] = r.id;
                }
                t.touched(r.id);
                undo_.emplace_back(r.id, std::move(stored));
                stored = std::move(r);
            }
            return {};
        }

        /// @brief Removes the record with `id` (absent is fine).
        result<void> erase(const local_id& id) {
            auto& t = *store_->table_;
            auto it = t.records.find(id);
            if (it == t.records.end()) return {};
            if (it->second.server_id) t.by_server_id.erase(*it->second.server_id);
            t.touched(id);
            undo_.emplace_back(id, std::move(it->second));
            if (peeked_ == &*it) peeked_ = nullptr;
            t.records.erase(it);
            return {};
        }

        /// @brief A metadata value (e.g. the pull cursor).
        result<std::optional<std::string>> get_meta(std::string_view key) const { return store_->meta_(key); }

        /// @brief Sets a metadata value.
        result<void> set_meta(std::string_view key, std::string value) {
            auto& meta = store_->table_->meta;
            auto it = meta.find(key);
            if (it == meta.end()) {
                meta_undo_.push_back({std::string{key}, std::nullopt});
                meta.emplace(std::string{key}, std::move(value));
            } else {
                meta_undo_.push_back({std::string{key}, it->second});
                it->second = std::move(value);
            }
            return {};
        }

    private:
        friend class memory_store;
        explicit transaction(memory_store* s) : store_(s) {}

        // The table's entry for `id` (null when absent), remembered so that the
        // next call for the same id (peek, then edit or put) needs no lookup.
        std::pair<const local_id, record<E>>* entry_(const local_id& id) const {
            if (peeked_ != nullptr && peeked_->first == id) return peeked_;
            auto& records = store_->table_->records;
            auto it = records.find(id);
            peeked_ = it == records.end() ? nullptr : &*it;
            return peeked_;
        }

        void rollback() {
            auto& t = *store_->table_;
            peeked_ = nullptr;
            for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
                if (auto cur = t.records.find(it->first); cur != t.records.end()) {
                    if (cur->second.server_id) t.by_server_id.erase(*cur->second.server_id);
                    t.records.erase(cur);
                }
                if (it->second) {
                    if (it->second->server_id) t.by_server_id[*it->second->server_id] = it->first;
                    t.records.emplace(it->first, std::move(*it->second));
                }
            }
            for (auto it = meta_undo_.rbegin(); it != meta_undo_.rend(); ++it) {
                if (it->second) {
                    t.meta[it->first] = std::move(*it->second);
                } else {
                    t.meta.erase(it->first);
                }
            }
        }

        memory_store* store_;
        // The table's undo log, reused by every transaction (they are serialised).
        std::vector<std::pair<local_id, std::optional<record<E>>>>& undo_ = store_->table_->undo;
        std::vector<std::pair<std::string, std::optional<std::string>>> meta_undo_;
        // The entry entry_() found last (entries of an unordered_map stay put on
        // rehash; an erase of it or a rollback resets it).
        mutable std::pair<const local_id, record<E>>* peeked_ = nullptr;
    };

    /// @brief The table for `E` in `storage` (created on first use).
    explicit memory_store(const memory_storage& storage) {
        auto& st = *storage.state_;
        std::lock_guard lock{st.mutex};
        const std::string name{entity_traits<E>::collection};
        auto it = st.tables.find(name);
        if (it == st.tables.end()) {
            auto t = std::make_shared<table>();
            st.tables.emplace(name, t);
            st.table_types.emplace(name, std::type_index{typeid(E)});
            table_ = std::move(t);
        } else {
            // Two entity types claiming one collection would alias each other's records.
            if (st.table_types.at(name) != std::type_index{typeid(E)}) {
                table_ = std::make_shared<table>();
                collision_ = true;
            } else {
                table_ = std::static_pointer_cast<table>(it->second);
            }
        }
    }

    /// @brief Runs `f(tx)` atomically: all of its writes or none.
    template <class F>
    result<void> transact(F&& f) {
        if (collision_) return collision_error_();
        std::lock_guard lock{table_->mutex};
        transaction tx{this};
        struct clear_undo {
            std::vector<std::pair<local_id, std::optional<record<E>>>>& log;
            ~clear_undo() { log.clear(); }  // keeps the capacity for the next transaction
        } clear{table_->undo};
        try {
            result<void> r = std::forward<F>(f)(tx);
            if (!r) tx.rollback();  // the ids it wrote are noted already: due() re-reads them
            return r;
        } catch (...) {
            tx.rollback();
            throw;
        }
    }

    /// @brief The record with `id`, if any.
    result<std::optional<record<E>>> get(const local_id& id) const {
        if (collision_) return collision_error_();
        std::lock_guard lock{table_->mutex};
        return find_(id);
    }

    /// @brief The record with server id `sid`, if any.
    result<std::optional<record<E>>> find_by_server_id(std::string_view sid) const {
        if (collision_) return collision_error_();
        std::lock_guard lock{table_->mutex};
        return find_server_(sid);
    }

    /// @brief Every record, in `local_id` order.
    result<std::vector<record<E>>> list() const {
        if (collision_) return collision_error_();
        std::vector<record<E>> out;
        {
            std::lock_guard lock{table_->mutex};
            out.reserve(table_->records.size());
            for (const auto& [id, r] : table_->records) out.push_back(r);
        }
        std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
        return out;
    }

    /// @brief Up to `limit` records due at `now`, by priority, then age, then id
    /// (read off an ordered index of the unsynced records, brought up to date
    /// first, skipping those whose next attempt has not come).
    result<std::vector<record<E>>> due(timestamp now, std::size_t limit) const {
        if (collision_) return collision_error_();
        std::vector<record<E>> out;
        std::lock_guard lock{table_->mutex};
        table_->refresh_due_index();
        for (const auto& key : table_->due_index) {
            if (out.size() >= limit) break;
            const auto& r = table_->records.at(key.id);
            if (is_due(r, now)) out.push_back(r);
        }
        return out;
    }

    /// @brief The least `next_attempt_at` among unsynced records (read off the
    /// due index, so a scan of the unsynced records only), empty when none has one.
    result<std::optional<timestamp>> earliest_next_attempt() const {
        if (collision_) return collision_error_();
        std::optional<timestamp> out;
        std::lock_guard lock{table_->mutex};
        table_->refresh_due_index();
        for (const auto& key : table_->due_index) {
            const auto& at = table_->records.at(key.id).next_attempt_at;
            if (at && (!out || *at < *out)) out = *at;
        }
        return out;
    }

    /// @brief Record counts by status and the oldest unsynced change.
    result<status_counts> counts() const {
        if (collision_) return collision_error_();
        status_counts c;
        std::lock_guard lock{table_->mutex};
        for (const auto& [id, r] : table_->records) {
            switch (r.status) {
                case sync_status::pending: ++c.pending; break;
                case sync_status::synced: ++c.synced; break;
                case sync_status::pending_deletion: ++c.pending_deletion; break;
                case sync_status::error: ++c.error; break;
                case sync_status::failed: ++c.failed; break;
            }
            if (r.status == sync_status::pending || r.status == sync_status::pending_deletion ||
                r.status == sync_status::error) {
                if (!c.oldest_pending || r.updated_at < *c.oldest_pending) c.oldest_pending = r.updated_at;
            }
        }
        return c;
    }

    /// @brief A metadata value, if set.
    result<std::optional<std::string>> get_meta(std::string_view key) const {
        if (collision_) return collision_error_();
        std::lock_guard lock{table_->mutex};
        return meta_(key);
    }

private:
    result<std::optional<record<E>>> find_(const local_id& id) const {
        auto it = table_->records.find(id);
        if (it == table_->records.end()) return std::optional<record<E>>{};
        return std::optional<record<E>>{it->second};
    }

    result<std::optional<record<E>>> find_server_(std::string_view sid) const {
        auto it = table_->by_server_id.find(std::string{sid});
        if (it == table_->by_server_id.end()) return std::optional<record<E>>{};
        return find_(it->second);
    }

    result<std::optional<std::string>> meta_(std::string_view key) const {
        auto it = table_->meta.find(key);
        if (it == table_->meta.end()) return std::optional<std::string>{};
        return std::optional<std::string>{it->second};
    }

    static unexpected<error> collision_error_() {
        return unexpected{make_error(errc::storage, "memory_storage: collection '" +
                                                        std::string{entity_traits<E>::collection} +
                                                        "' is already used by another entity type")};
    }

    std::shared_ptr<table> table_;
    bool collision_ = false;
};

}  // namespace tether
