#pragma once

// The sqlite mode's storage policy: each device's store is memory or SQLite
// (drawn per device), behind one engine type. `sim_store` hands the engine's
// transaction callables to whichever store the device has; the engine's
// callables are generic over the transaction type, so each store's own
// transaction (and its optional capabilities: peek, edit, audit) is used.
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/record.hpp>
#include <tether/core/result.hpp>
#include <tether/storage/memory.hpp>
#include <tether/storage/sqlite.hpp>
#include <tether/storage/storage.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tether_sim {

template <class E>
class sim_store;

/// A device's storage: memory (default) or one SQLite database.
class sim_storage {
public:
    using policy_kind = tether::storage_tag;

    template <class E>
    using rebind = sim_store<E>;

    /// Memory storage.
    sim_storage() : memory_(tether::memory_storage{}) {}

    /// SQLite storage in `db`.
    explicit sim_storage(tether::sqlite_database db) : sqlite_(tether::sqlite_storage{std::move(db)}) {}

    [[nodiscard]] bool is_sqlite() const noexcept { return sqlite_.has_value(); }

    /// The database (SQLite storage only; a handle to the same connection).
    [[nodiscard]] tether::sqlite_database database() const { return sqlite_->database(); }

private:
    template <class E>
    friend class sim_store;

    std::optional<tether::memory_storage> memory_;
    std::optional<tether::sqlite_storage> sqlite_;
};

/// `sim_storage`'s store for entity `E`: forwards to a `memory_store<E>` or a
/// `sqlite_store<E>`.
template <class E>
class sim_store {
public:
    /// For the `record_store` check only: `transact` hands its callable the
    /// transaction of the store in use, which may be the SQLite one.
    using transaction = typename tether::memory_store<E>::transaction;

    explicit sim_store(const sim_storage& s) {
        if (s.sqlite_) sqlite_.emplace(*s.sqlite_);
        else memory_.emplace(*s.memory_);
    }

    template <class F>
    tether::result<void> transact(F&& f) {
        if (sqlite_) return sqlite_->transact(std::forward<F>(f));
        return memory_->transact(std::forward<F>(f));
    }

    /// SQLite only: the engine delivers a write made inside `sqlite_database::transact` after it commits.
    bool defer_until_commit(std::function<void()>& fn) { return sqlite_ ? sqlite_->defer_until_commit(fn) : false; }

    tether::result<std::optional<tether::record<E>>> get(const tether::local_id& id) const {
        return sqlite_ ? sqlite_->get(id) : memory_->get(id);
    }
    tether::result<std::optional<tether::record<E>>> find_by_server_id(std::string_view sid) const {
        return sqlite_ ? sqlite_->find_by_server_id(sid) : memory_->find_by_server_id(sid);
    }
    tether::result<std::vector<tether::record<E>>> list() const { return sqlite_ ? sqlite_->list() : memory_->list(); }
    tether::result<std::vector<tether::record<E>>> due(tether::timestamp now, std::size_t limit) const {
        return sqlite_ ? sqlite_->due(now, limit) : memory_->due(now, limit);
    }
    tether::result<std::optional<tether::timestamp>> earliest_next_attempt() const {
        return sqlite_ ? sqlite_->earliest_next_attempt() : memory_->earliest_next_attempt();
    }
    tether::result<tether::status_counts> counts() const { return sqlite_ ? sqlite_->counts() : memory_->counts(); }
    tether::result<std::optional<std::string>> get_meta(std::string_view key) const {
        return sqlite_ ? sqlite_->get_meta(key) : memory_->get_meta(key);
    }

private:
    std::optional<tether::memory_store<E>> memory_;
    std::optional<tether::sqlite_store<E>> sqlite_;
};

}  // namespace tether_sim
