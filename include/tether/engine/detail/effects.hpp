#pragma once

#include <tether/core/ids.hpp>
#include <tether/core/record.hpp>
#include <tether/core/result.hpp>
#include <tether/core/status.hpp>
#include <tether/engine/detail/delivery.hpp>
#include <tether/engine/change.hpp>
#include <tether/storage/storage.hpp>

#include <concepts>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tether::detail {

/// What a transaction did, delivered to hooks and watchers after it commits
/// (never under a lock). `refused` holds illegal transitions, reported even
/// when the transaction rolled back.
template <class E>
struct effects {
    std::vector<transition> transitions;
    std::vector<change<E>> changes;
    std::vector<record<E>> erased;
    std::vector<transition> refused;
    std::vector<std::string> warnings;  // logged after commit, so a log hook may call the engine
    // What anyone listens to: unwanted effects are not built (the write path's
    // cost is dominated by record copies). Set by the engine per transaction.
    bool want_changes = true;
    bool want_erased = true;
    bool want_transitions = true;
    std::size_t writes = 0;  // records written or erased
    std::optional<sync_trigger> trigger;  // why the sync writing this ran (empty: a local write)
    // Commit order: a number is taken (under the store's write lock) by the
    // first change anyone hears of, and delivery waits for the ones before it.
    ordered_delivery* order = nullptr;
    delivery_ticket ticket;

    /// Takes the delivery number if someone will hear of this transaction.
    void heard() {
        if (order != nullptr && (want_changes || want_erased || want_transitions)) ticket.take(*order);
    }
};

/// Calls `f(const record<E>*)` with the record `id` as `tx` sees it (null when
/// absent), without copying it when the transaction offers `peek(id)` (returning
/// `const record<E>*`, or `result<const record<E>*>` when the lookup may fail).
template <class E, class Tx, class F>
result<void> with_record(Tx& tx, const local_id& id, F&& f) {
    if constexpr (peekable_transaction<Tx, E>) {
        if constexpr (std::convertible_to<decltype(tx.peek(id)), const record<E>*>) {
            return std::forward<F>(f)(static_cast<const record<E>*>(tx.peek(id)));
        } else {
            auto found = tx.peek(id);  // a store whose lookup may fail (it may have to read)
            if (!found) return unexpected{std::move(found).error()};
            return std::forward<F>(f)(*found);
        }
    } else {
        auto found = tx.get(id);
        if (!found) return unexpected{std::move(found).error()};
        return std::forward<F>(f)(found->has_value() ? &**found : static_cast<const record<E>*>(nullptr));
    }
}

/// Accounts for a write of `after` before it is stored: checks its status
/// transition (`before` is the status of the record it replaces, empty for a new
/// record), records the transition in the audit log when the transaction keeps
/// one, and notes the write in `fx` (the change is built only if someone
/// listens). An illegal transition is refused: noted in `fx.refused`,
/// `invalid_state`, nothing noted.
template <class Tx, class E>
result<void> account_write(Tx& tx, effects<E>& fx, std::optional<sync_status> before, const record<E>& after,
                           timestamp now, std::string_view cause) {
    std::optional<transition> t;
    if (!before) {
        t = transition{after.id, std::nullopt, after.status, now, std::string{cause}, true};
    } else if (*before != after.status) {
        t = transition{after.id, *before, after.status, now, std::string{cause}, true};
        if (!is_legal_transition(*before, after.status)) {
            t->legal = false;
            fx.refused.push_back(*t);
            return unexpected{make_error(errc::invalid_state,
                                         std::string{"illegal status transition "} + std::string{to_string(*before)} +
                                             " -> " + std::string{to_string(after.status)} + " (" + std::string{cause} + ")")};
        }
    }
    if (t) t->trigger = fx.trigger;
    if constexpr (audited_transaction<Tx>) {
        if (t) {
            if (auto a = tx.audit(*t); !a) return a;
        }
    }
    fx.heard();
    if (fx.want_changes) {
        fx.changes.push_back(
            change<E>{before ? change_kind::updated : change_kind::created, after.id, after, std::string{cause}});
    }
    ++fx.writes;
    if (t && fx.want_transitions) fx.transitions.push_back(std::move(*t));
    return {};
}

/// Writes `after` inside transaction `tx`; `before` is the status of the record
/// it replaces (empty for a new record).
template <class Tx, class E>
result<void> write_record(Tx& tx, effects<E>& fx, std::optional<sync_status> before, record<E>&& after,
                          timestamp now, std::string_view cause) {
    if (auto a = account_write(tx, fx, before, after, now, cause); !a) return a;
    return tx.put(std::move(after));
}

/// As above, for a record the caller keeps (the store copies what it needs).
template <class Tx, class E>
result<void> write_record(Tx& tx, effects<E>& fx, std::optional<sync_status> before, const record<E>& after,
                          timestamp now, std::string_view cause) {
    if (auto a = account_write(tx, fx, before, after, now, cause); !a) return a;
    return tx.put(after);
}

/// As above, from the record being replaced (or none).
template <class Tx, class E>
result<void> write_record(Tx& tx, effects<E>& fx, const std::optional<record<E>>& before, record<E> after,
                          timestamp now, std::string_view cause) {
    return write_record(tx, fx, before ? std::optional<sync_status>{before->status} : std::nullopt, std::move(after),
                        now, cause);
}


/// Erases `before` inside transaction `tx` and records the deletion; the
/// cleanup hook runs for it unless `cleanup` is false (a record merged into
/// another, whose attached resources live on).
template <class Tx, class E>
result<void> erase_record(Tx& tx, effects<E>& fx, const record<E>& before, timestamp now, std::string_view cause,
                          bool cleanup = true) {
    transition t{before.id, before.status, std::nullopt, now, std::string{cause}, true, fx.trigger};
    if constexpr (audited_transaction<Tx>) {
        if (auto a = tx.audit(t); !a) return a;
    }
    const auto id = before.id;
    fx.heard();
    if (fx.want_erased && cleanup) fx.erased.push_back(before);  // `before` may point into the store: copy first
    if (auto r = tx.erase(id); !r) return r;
    ++fx.writes;
    if (fx.want_transitions) fx.transitions.push_back(std::move(t));
    if (fx.want_changes) fx.changes.push_back(change<E>{change_kind::removed, id, std::nullopt, std::string{cause}});
    return {};
}

}  // namespace tether::detail
