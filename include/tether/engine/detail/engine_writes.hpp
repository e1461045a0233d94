#pragma once

// The local write path of `sync_engine` (engine/sync_engine.hpp declares it):
// create, update, remove and reset_failed, each one storage transaction whose
// effects are delivered after it (engine_delivery.hpp), and the sync-needed
// hook fired when something was written. Defined out of the class and
// included at the end of sync_engine.hpp; not a public entry point.
#include <tether/core/cause.hpp>
#include <tether/core/error.hpp>
#include <tether/core/record.hpp>
#include <tether/core/result.hpp>
#include <tether/core/status.hpp>
#include <tether/core/transitions.hpp>
#include <tether/engine/detail/effects.hpp>
#include <tether/engine/sync_engine.hpp>
#include <tether/storage/storage.hpp>

#include <concepts>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace tether {

template <class Entity, class... Policies>
auto sync_engine<Entity, Policies...>::create(Entity value, tether::priority prio) -> result<record_type> {
    if (auto ok = entity_ops<Entity>::validate(value); !ok) return unexpected{std::move(ok).error()};
    const auto now = clock_.now();
    record_type r;
    auto id = next_id(now);
    if (!id) return unexpected{std::move(id).error()};
    r.id = *id;
    r.value = std::move(value);
    r.status = sync_status::pending;
    r.local_rev = 1;
    r.priority = prio;
    r.created_at = now;
    r.updated_at = now;
    auto fx = write_effects();
    auto done = store_.transact([&](auto& tx) -> result<void> {
        // An id already held is never overwritten (a generator restarted with
        // the same seed, or a store shared in an unexpected way).
        auto held = detail::with_record<Entity>(tx, r.id, [&](const record_type* found) -> result<void> {
            if (found) return unexpected{make_error(errc::conflict, "record " + r.id.to_string() + " exists")};
            return {};
        });
        if (!held) return held;
        return detail::write_record(tx, fx, std::optional<sync_status>{}, r, now, to_string(cause::create));
    });
    deliver(fx, done.has_value());
    if (!done) return unexpected{std::move(done).error()};
    request_sync();
    return r;
}

template <class Entity, class... Policies>
template <class F>
    requires std::invocable<F&, Entity&>
auto sync_engine<Entity, Policies...>::update(const local_id& id, F&& fn) -> result<record_type> {
    const auto now = clock_.now();
    auto fx = write_effects();
    std::optional<record_type> out;
    auto done = store_.transact([&](auto& tx) -> result<void> {
        using tx_type = std::remove_cvref_t<decltype(tx)>;
        if constexpr (editable_transaction<tx_type, Entity>) {
            // In place: the store keeps the record as it was for rollback.
            const auto edit = tx.edit(id);
            if (!edit) return unexpected{not_found(id)};
            return apply_update(tx, fx, *edit.before, *edit.current, fn, now, out, false);
        } else {
            return detail::with_record<Entity>(tx, id, [&](const record_type* found) -> result<void> {
                if (!found) return unexpected{not_found(id)};
                record_type after = *found;
                return apply_update(tx, fx, *found, after, fn, now, out, true);
            });
        }
    });
    deliver(fx, done.has_value());
    if (!done) return unexpected{std::move(done).error()};
    if (fx.writes) request_sync();
    return std::move(*out);
}

template <class Entity, class... Policies>
result<void> sync_engine<Entity, Policies...>::remove(const local_id& id) {
    const auto now = clock_.now();
    auto fx = write_effects();
    auto done = store_.transact([&](auto& tx) -> result<void> {
        auto removed = detail::with_record<Entity>(tx, id, [&](const record_type* found) -> result<void> {
        if (!found) return unexpected{not_found(id)};
        const record_type& before = *found;
        if (before.deleted) return {};
        if (!may_exist_on_server(before)) return detail::erase_record(tx, fx, before, now, to_string(cause::remove));
        record_type after = before;
        const auto why = transitions::remove_locally(after, now);
        return detail::write_record(tx, fx, std::optional<sync_status>{before.status}, std::move(after), now,
                                    to_string(why));
        });
        if (removed) return removed;
        return remove_unreadable(tx, fx, id, std::move(removed).error());
    });
    deliver(fx, done.has_value());
    if (!done) return done;
    if (fx.writes) request_sync();
    return {};
}

template <class Entity, class... Policies>
auto sync_engine<Entity, Policies...>::reset_failed(const local_id& id) -> result<record_type> {
    const auto now = clock_.now();
    auto fx = write_effects();
    std::optional<record_type> out;
    auto done = store_.transact([&](auto& tx) -> result<void> {
        auto found = tx.get(id);
        if (!found) return unexpected{std::move(found).error()};
        if (!*found) return unexpected{not_found(id)};
        if ((*found)->status != sync_status::failed) {
            return unexpected{make_error(errc::invalid_state, "record " + id.to_string() + " is " +
                                                                  std::string{to_string((*found)->status)} +
                                                                  ", not failed")};
        }
        record_type after = **found;
        const auto why = transitions::reset_failed(after, now);
        out = after;
        return detail::write_record(tx, fx, *found, std::move(after), now, to_string(why));
    });
    deliver(fx, done.has_value());
    if (!done) return unexpected{std::move(done).error()};
    request_sync();
    return std::move(*out);
}

template <class Entity, class... Policies>
template <class Tx, class F>
result<void> sync_engine<Entity, Policies...>::apply_update(Tx& tx, detail::effects<Entity>& fx, const record_type& before,
                                                     record_type& after, F& fn, timestamp now,
                                                     std::optional<record_type>& out, bool put) {
    if (before.deleted) {
        return unexpected{make_error(errc::invalid_state, "record " + before.id.to_string() + " is deleted")};
    }
    std::invoke(fn, after.value);
    // NaN and infinities cannot travel as JSON: refused on every storage alike.
    if (auto ok = entity_ops<Entity>::validate(after.value); !ok) {
        if (!put) after = before;  // an in-place edit is undone (the store keeps `before` for rollback too)
        return ok;
    }
    if (!entity_ops<Entity>::diff_into(before.value, after.value, after.dirty)) {
        out = after;  // no change: no write, no status change, no sync
        return {};
    }
    after.local_rev += 1;
    after.updated_at = now;
    // A record in `error` stays there with its attempts and next attempt time:
    // one edited forever still backs off and reaches `failed`; the edit goes
    // up with its next attempt.
    if (after.status == sync_status::synced) after.status = sync_status::pending;
    if (auto a = detail::account_write(tx, fx, std::optional<sync_status>{before.status}, after, now, to_string(cause::update)); !a) {
        return a;
    }
    out = after;
    if (put) return tx.put(std::move(after));
    return {};
}

template <class Entity, class... Policies>
template <class Tx>
result<void> sync_engine<Entity, Policies...>::remove_unreadable(Tx& tx, detail::effects<Entity>& fx, const local_id& id,
                                                          error why) {
    if constexpr (reports_unreadable<store_type, Entity>) {
        if (tx.unreadable(id)) {
            if (auto e = tx.erase(id); !e) return e;
            ++fx.writes;
            fx.heard();
            if (fx.want_changes) fx.changes.push_back(change<Entity>{change_kind::removed, id, std::nullopt, "remove"});
            fx.warnings.push_back("removed " + id.to_string() + ", which could not be read: " + why.message);
            return {};
        }
    }
    return unexpected{std::move(why)};
}

template <class Entity, class... Policies>
bool sync_engine<Entity, Policies...>::may_exist_on_server(const record_type& r) const {
    if (r.server_id || r.last_attempt_at) return true;
    std::lock_guard lock{state_mutex_};
    return in_flight_.contains(r.id);
}

}  // namespace tether
