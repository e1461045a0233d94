#pragma once

#include <tether/core/record.hpp>
#include <tether/core/result.hpp>
#include <tether/core/status.hpp>
#include <tether/engine/events.hpp>

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
};

/// Writes `after` (replacing `before`, if any) inside transaction `tx`, checking
/// the status transition against the state machine and recording what happened.
template <class Tx, class E>
result<void> write_record(Tx& tx, effects<E>& fx, const std::optional<record<E>>& before, record<E> after,
                          timestamp now, std::string_view cause) {
    std::optional<transition> t;
    if (!before) {
        t = transition{after.id, std::nullopt, after.status, now, std::string{cause}, true};
    } else if (before->status != after.status) {
        t = transition{after.id, before->status, after.status, now, std::string{cause}, true};
        if (!is_legal_transition(before->status, after.status)) {
            t->legal = false;
            fx.refused.push_back(*t);
            return unexpected{make_error(errc::invalid_state,
                                         std::string{"illegal status transition "} + std::string{to_string(before->status)} +
                                             " -> " + std::string{to_string(after.status)} + " (" + std::string{cause} + ")")};
        }
    }
    if constexpr (requires { tx.audit(*t); }) {
        if (t) {
            if (auto a = tx.audit(*t); !a) return a;
        }
    }
    const auto id = after.id;
    const auto kind = before ? change_kind::updated : change_kind::created;
    if (auto r = tx.put(after); !r) return r;
    if (t) fx.transitions.push_back(std::move(*t));
    fx.changes.push_back(change<E>{kind, id, std::move(after), std::string{cause}});
    return {};
}

/// Erases `before` inside transaction `tx` and records the deletion.
template <class Tx, class E>
result<void> erase_record(Tx& tx, effects<E>& fx, const record<E>& before, timestamp now, std::string_view cause) {
    transition t{before.id, before.status, std::nullopt, now, std::string{cause}, true};
    if constexpr (requires { tx.audit(t); }) {
        if (auto a = tx.audit(t); !a) return a;
    }
    if (auto r = tx.erase(before.id); !r) return r;
    fx.transitions.push_back(std::move(t));
    fx.changes.push_back(change<E>{change_kind::removed, before.id, std::nullopt, std::string{cause}});
    fx.erased.push_back(before);
    return {};
}

}  // namespace tether::detail
