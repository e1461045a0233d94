#pragma once

// A minimal storage policy, written from <tether/storage/storage.hpp> alone:
// records in a std::map behind one mutex. A transaction works on a copy of the
// table and swaps it in when its function returns a value, so a failure or an
// exception leaves the table as it was. Small and obviously right rather than
// fast: every transaction copies the table.
#include <tether/core/record.hpp>
#include <tether/core/status.hpp>
#include <tether/storage/storage.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace custom {

template <class E>
class map_store {
    struct table {
        std::map<tether::local_id, tether::record<E>> records;
        std::map<std::string, std::string, std::less<>> meta;
    };

public:
    /// What `transact` hands to its function: the transaction's copy of the table.
    class transaction {
    public:
        explicit transaction(table t) : t_(std::move(t)) {}
        tether::result<std::optional<tether::record<E>>> get(const tether::local_id& id) {
            auto it = t_.records.find(id);
            if (it == t_.records.end()) return std::optional<tether::record<E>>{};
            return std::optional<tether::record<E>>{it->second};
        }
        tether::result<std::optional<tether::record<E>>> find_by_server_id(std::string_view sid) {
            for (const auto& [id, r] : t_.records)
                if (r.server_id && *r.server_id == sid) return std::optional<tether::record<E>>{r};
            return std::optional<tether::record<E>>{};
        }
        tether::result<void> put(const tether::record<E>& r) {
            if (r.id.is_nil()) return tether::unexpected{tether::make_error(tether::errc::invalid_argument, "nil id")};
            if (r.server_id) {
                for (const auto& [id, other] : t_.records) {
                    if (id != r.id && other.server_id == r.server_id) {
                        return tether::unexpected{tether::make_error(tether::errc::storage, "server id held twice")};
                    }
                }
            }
            t_.records.insert_or_assign(r.id, r);
            return {};
        }
        tether::result<void> erase(const tether::local_id& id) {
            t_.records.erase(id);
            return {};
        }
        tether::result<std::optional<std::string>> get_meta(std::string_view key) {
            auto it = t_.meta.find(key);
            if (it == t_.meta.end()) return std::optional<std::string>{};
            return std::optional<std::string>{it->second};
        }
        tether::result<void> set_meta(std::string_view key, std::string value) {
            t_.meta.insert_or_assign(std::string{key}, std::move(value));
            return {};
        }
        table& data() { return t_; }

    private:
        table t_;
    };

    explicit map_store(const auto& /*policy*/) {}

    template <class F>
    tether::result<void> transact(F&& f) {
        std::lock_guard lock{state_->mutex};  // transactions are serialised
        transaction tx{state_->t};
        tether::result<void> r = std::forward<F>(f)(tx);
        if (r) state_->t = std::move(tx.data());
        return r;
    }

    tether::result<std::optional<tether::record<E>>> get(const tether::local_id& id) const {
        std::lock_guard lock{state_->mutex};
        auto it = state_->t.records.find(id);
        if (it == state_->t.records.end()) return std::optional<tether::record<E>>{};
        return std::optional<tether::record<E>>{it->second};
    }
    tether::result<std::optional<tether::record<E>>> find_by_server_id(std::string_view sid) const {
        std::lock_guard lock{state_->mutex};
        for (const auto& [id, r] : state_->t.records)
            if (r.server_id && *r.server_id == sid) return std::optional<tether::record<E>>{r};
        return std::optional<tether::record<E>>{};
    }
    tether::result<std::vector<tether::record<E>>> list() const {
        std::lock_guard lock{state_->mutex};
        std::vector<tether::record<E>> out;
        for (const auto& [id, r] : state_->t.records) out.push_back(r);
        return out;
    }
    tether::result<std::vector<tether::record<E>>> due(tether::timestamp now, std::size_t limit) const {
        std::lock_guard lock{state_->mutex};
        std::vector<tether::record<E>> out;
        for (const auto& [id, r] : state_->t.records)
            if (tether::is_due(r, now)) out.push_back(r);
        std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
            if (a.priority != b.priority) return a.priority > b.priority;
            if (a.updated_at != b.updated_at) return a.updated_at < b.updated_at;
            return a.id < b.id;
        });
        if (out.size() > limit) out.resize(limit);
        return out;
    }
    tether::result<std::optional<tether::timestamp>> earliest_next_attempt() const {
        std::lock_guard lock{state_->mutex};
        std::optional<tether::timestamp> out;
        for (const auto& [id, r] : state_->t.records) {
            const bool unsynced = r.status == tether::sync_status::pending ||
                                  r.status == tether::sync_status::pending_deletion ||
                                  r.status == tether::sync_status::error;
            if (unsynced && r.next_attempt_at && (!out || *r.next_attempt_at < *out)) out = r.next_attempt_at;
        }
        return out;
    }
    tether::result<tether::status_counts> counts() const {
        std::lock_guard lock{state_->mutex};
        tether::status_counts c;
        for (const auto& [id, r] : state_->t.records) {
            switch (r.status) {
                case tether::sync_status::pending: ++c.pending; break;
                case tether::sync_status::synced: ++c.synced; break;
                case tether::sync_status::pending_deletion: ++c.pending_deletion; break;
                case tether::sync_status::error: ++c.error; break;
                case tether::sync_status::failed: ++c.failed; break;
            }
            if (r.status != tether::sync_status::synced && r.status != tether::sync_status::failed &&
                (!c.oldest_pending || r.updated_at < *c.oldest_pending)) {
                c.oldest_pending = r.updated_at;
            }
        }
        return c;
    }
    tether::result<std::optional<std::string>> get_meta(std::string_view key) const {
        std::lock_guard lock{state_->mutex};
        auto it = state_->t.meta.find(key);
        if (it == state_->t.meta.end()) return std::optional<std::string>{};
        return std::optional<std::string>{it->second};
    }

private:
    struct state {
        std::mutex mutex;
        table t;
    };
    std::shared_ptr<state> state_ = std::make_shared<state>();
};

/// The policy: a value the engine copies and rebinds to its entity.
struct map_storage {
    using policy_kind = tether::storage_tag;
    template <class E>
    using rebind = map_store<E>;
};

}  // namespace custom
