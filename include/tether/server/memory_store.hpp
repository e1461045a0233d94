#pragma once

/// @file
/// @brief `tether::server::memory_store`: a server store in memory, for tests,
/// demos and the in-process `loopback_server`.
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/result.hpp>
#include <tether/server/store.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tether::server {

/// @brief A `server_store` in memory.
///
/// A handle: copies share one store, and every member is thread-safe. A write
/// transaction holds the store's lock from start to end (so write transactions
/// run one at a time, whatever their scope), read transactions share it. A
/// write transaction keeps an undo log: one that rolls back (an error result
/// or an exception) leaves nothing behind — no record, no change number, no
/// server id, no scope it made known. Server ids are `"s1"`, `"s2"`, ..., one
/// counter for the whole store.
///
/// Beyond the concept it can take a `snapshot` of everything (or of one scope)
/// and `restore` it later, as a server restored from a backup: restored
/// records keep their versions, and the scope's epoch goes up, so that every
/// cursor issued before the restore can be told apart.
///
/// @code
/// tether::server::memory_store store;
/// auto before = store.snapshot();
/// // ... pushes ...
/// store.restore(before);  // back in time; cursors issued meanwhile expire
/// @endcode
class memory_store {
    struct collection_data {
        std::uint64_t seq = 0;    // last change number issued (never decreases, even by a restore)
        std::uint64_t epoch = 0;  // restores so far
        std::map<std::string, stored_record, server_id_less> records;  // by server id
        std::unordered_map<local_id, std::string> by_local_id;          // local id -> server id
        std::map<std::uint64_t, std::string> changes;                   // version -> server id
    };
    using user_data = std::map<std::string, collection_data, std::less<>>;
    using users_map = std::map<std::string, user_data, std::less<>>;

    struct state {
        mutable std::shared_mutex mutex;
        users_map users;
        std::uint64_t next_server_id = 0;
    };

    static const collection_data* find_in_(const users_map& users, scope s) {
        auto u = users.find(s.user);
        if (u == users.end()) return nullptr;
        auto c = u->second.find(s.collection);
        return c == u->second.end() ? nullptr : &c->second;
    }

public:
    /// @brief A copy of the store's records at one moment (see `snapshot`, `restore`).
    ///
    /// A value: copy it, keep it, restore it any number of times. It holds
    /// records, tombstones, the local-id index and change numbers.
    class backup {
    public:
        backup() = default;  ///< @brief An empty whole-store backup: restoring it empties the store.

    private:
        friend class memory_store;
        users_map users_;
        std::optional<std::pair<std::string, std::string>> scope_;  // (user, collection); empty: everything
    };

    /// @brief A read transaction (see `server_read_transaction`); also the read
    /// half of a write transaction.
    class read_transaction {
    public:
        /// @brief The record with server id `sid`, live or deleted.
        result<std::optional<stored_record>> find_by_server_id(scope s, std::string_view sid) const {
            if (const auto* c = find_in_(st_->users, s)) {
                if (auto it = c->records.find(sid); it != c->records.end()) return std::optional{it->second};
            }
            return std::optional<stored_record>{};
        }

        /// @brief The record created with local id `id`, live or deleted.
        result<std::optional<stored_record>> find_by_local_id(scope s, const local_id& id) const {
            if (const auto* c = find_in_(st_->users, s)) {
                if (auto idx = c->by_local_id.find(id); idx != c->by_local_id.end()) {
                    if (auto it = c->records.find(idx->second); it != c->records.end())
                        return std::optional{it->second};
                }
            }
            return std::optional<stored_record>{};
        }

        /// @brief At most `limit` records whose version is above `n`, by version.
        result<std::vector<stored_record>> changes_after(scope s, std::uint64_t n, std::size_t limit) const {
            std::vector<stored_record> out;
            if (const auto* c = find_in_(st_->users, s)) {
                for (auto it = c->changes.upper_bound(n); it != c->changes.end() && out.size() < limit; ++it)
                    out.push_back(c->records.find(it->second)->second);
            }
            return out;
        }

        /// @brief Every live record, in `server_id_less` order.
        result<std::vector<stored_record>> list(scope s) const {
            std::vector<stored_record> out;
            if (const auto* c = find_in_(st_->users, s)) {
                for (const auto& [sid, r] : c->records)
                    if (!r.deleted) out.push_back(r);
            }
            return out;
        }

        /// @brief The scope's change counter and epoch; empty if the store never held it.
        result<std::optional<collection_info>> collection(scope s) const {
            const auto* c = find_in_(st_->users, s);
            if (c == nullptr) return std::optional<collection_info>{};
            return std::optional{collection_info{c->seq, c->epoch}};
        }

    protected:
        /// @brief A transaction over `st` (whose lock the caller holds).
        explicit read_transaction(const state& st) : st_(&st) {}

    private:
        friend class memory_store;
        const state* st_;
    };

    /// @brief A write transaction (see `server_write_transaction`): holds the
    /// store's lock, and undoes every write if it rolls back.
    class write_transaction : public read_transaction {
    public:
        /// @brief Makes the scope known (if it was not) and returns its info.
        /// The store's lock is held already, so nothing else waits here.
        result<collection_info> lock_collection(scope s) {
            auto& c = data_(s);
            return collection_info{c.seq, c.epoch};
        }

        /// @brief The scope's next change number.
        result<std::uint64_t> next_change(scope s) {
            auto& c = data_(s);
            undo_.push_back([&c, old = c.seq] { c.seq = old; });
            return ++c.seq;
        }

        /// @brief Inserts or replaces (by server id) the record `rec`.
        result<void> put(scope s, const stored_record& rec) { return put(s, stored_record{rec}); }

        /// @brief As above, taking the record over.
        result<void> put(scope s, stored_record&& rec) {
            const auto& sid = rec.record.server_id;
            if (sid.empty())
                return unexpected{error{errc::invalid_argument, "put: empty server id", std::nullopt, std::nullopt}};
            auto& c = data_(s);
            if (rec.record.id) {
                if (auto idx = c.by_local_id.find(*rec.record.id); idx != c.by_local_id.end() && idx->second != sid)
                    return unexpected{error{errc::conflict,
                                            "local id " + rec.record.id->to_string() + " is held by " + idx->second,
                                            std::nullopt, std::nullopt}};
            }
            if (auto ch = c.changes.find(rec.record.version); ch != c.changes.end() && ch->second != sid)
                return unexpected{error{errc::conflict,
                                        "version " + std::to_string(rec.record.version) + " is held by " + ch->second,
                                        std::nullopt, std::nullopt}};
            std::optional<stored_record> old = unplace_(c, sid);
            std::string key = sid;
            place_(c, std::move(rec));
            undo_.push_back([&c, key = std::move(key), old = std::move(old)]() mutable {
                (void)unplace_(c, key);
                if (old) place_(c, std::move(*old));
            });
            return {};
        }

        /// @brief `"s<n>"` for the store's next `n`.
        result<std::string> new_server_id() {
            auto& st = mutable_();
            undo_.push_back([&st, old = st.next_server_id] { st.next_server_id = old; });
            return "s" + std::to_string(++st.next_server_id);
        }

    private:
        friend class memory_store;
        explicit write_transaction(state& st) : read_transaction(st), w_(&st) {}

        state& mutable_() { return *w_; }

        collection_data& data_(scope s) {
            auto& users = mutable_().users;
            auto u = users.find(s.user);
            if (u == users.end()) {
                u = users.emplace(std::string{s.user}, user_data{}).first;
                undo_.push_back([&users, u] { users.erase(u); });
            }
            auto& collections = u->second;
            auto c = collections.find(s.collection);
            if (c == collections.end()) {
                c = collections.emplace(std::string{s.collection}, collection_data{}).first;
                undo_.push_back([&collections, c] { collections.erase(c); });
            }
            return c->second;
        }

        static void place_(collection_data& c, stored_record&& rec) {
            std::string sid = rec.record.server_id;
            if (rec.record.id) c.by_local_id.insert_or_assign(*rec.record.id, sid);
            c.changes.insert_or_assign(rec.record.version, sid);
            c.records.insert_or_assign(std::move(sid), std::move(rec));
        }

        static std::optional<stored_record> unplace_(collection_data& c, const std::string& sid) {
            auto it = c.records.find(sid);
            if (it == c.records.end()) return std::nullopt;
            const auto& r = it->second.record;
            if (r.id) {
                if (auto idx = c.by_local_id.find(*r.id); idx != c.by_local_id.end() && idx->second == sid)
                    c.by_local_id.erase(idx);
            }
            if (auto ch = c.changes.find(r.version); ch != c.changes.end() && ch->second == sid) c.changes.erase(ch);
            std::optional<stored_record> old{std::move(it->second)};
            c.records.erase(it);
            return old;
        }

        void rollback_() {
            for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) (*it)();
            undo_.clear();
        }

        state* w_;  // the same state as the read half's, held exclusively
        std::vector<std::function<void()>> undo_;  // inverse of each write, in order
    };

    /// @brief An empty store.
    memory_store() : st_(std::make_shared<state>()) {}

    /// @brief Runs `f(tx)` on a write transaction under the store's lock;
    /// commits if it returns a value, undoes every write if it returns an error
    /// or throws (rethrown).
    template <class F>
    auto write(F&& f) -> std::invoke_result_t<F&, write_transaction&> {
        std::unique_lock lock{st_->mutex};
        write_transaction tx{*st_};
        try {
            auto r = f(tx);
            if (!r) tx.rollback_();
            return r;
        } catch (...) {
            tx.rollback_();
            throw;
        }
    }

    /// @brief Runs `f(tx)` on a read transaction (the store's lock shared).
    template <class F>
    auto read(F&& f) const -> std::invoke_result_t<F&, read_transaction&> {
        std::shared_lock lock{st_->mutex};
        read_transaction tx{*st_};
        return f(tx);
    }

    /// @brief The whole store: every user's every collection, as it is now.
    [[nodiscard]] backup snapshot() const {
        std::shared_lock lock{st_->mutex};
        backup b;
        b.users_ = st_->users;
        return b;
    }

    /// @brief One scope, as it is now (restoring it touches nothing else).
    [[nodiscard]] backup snapshot(std::string_view user, std::string_view collection) const {
        std::shared_lock lock{st_->mutex};
        backup b;
        b.scope_.emplace(std::string{user}, std::string{collection});
        if (const auto* data = find_in_(st_->users, scope{user, collection}))
            b.users_[std::string{user}].emplace(std::string{collection}, *data);
        return b;
    }

    /// @brief Takes the store back to `b`, as a restore from a backup does.
    ///
    /// The scopes `b` covers (all of them for a whole-store backup, including
    /// ones made known since, which become empty) hold again exactly the records
    /// and tombstones they held then. Each one's last change number becomes one
    /// past every number it issued before (a mark no cursor carries yet) and
    /// its epoch one past its epoch before, so new changes are numbered after
    /// every earlier one and every earlier cursor can be told apart. Server ids
    /// are never reused. A second call goes back again. Must not be called from
    /// inside a transaction.
    void restore(const backup& b) {
        std::unique_lock lock{st_->mutex};
        auto take_back = [](collection_data& now, const collection_data* then) {
            const std::uint64_t issued = now.seq;
            const std::uint64_t epoch = now.epoch;
            now = then ? *then : collection_data{};
            now.seq = std::max(issued, now.seq) + 1;
            now.epoch = std::max(epoch, now.epoch) + 1;
        };
        auto& users = st_->users;
        auto data = [&users](const std::string& user, const std::string& collection) -> collection_data& {
            return users[user][collection];
        };
        if (b.scope_) {
            const auto& [user, collection] = *b.scope_;
            take_back(data(user, collection), find_in_(b.users_, scope{user, collection}));
            return;
        }
        for (const auto& [user, collections] : b.users_)
            for (const auto& entry : collections) (void)data(user, entry.first);
        for (auto& [user, collections] : users)
            for (auto& [collection, now] : collections) take_back(now, find_in_(b.users_, scope{user, collection}));
    }

private:
    std::shared_ptr<state> st_;
};

static_assert(server_store<memory_store>);

}  // namespace tether::server
