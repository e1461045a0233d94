#pragma once

// How `sync_engine` (engine/sync_engine.hpp) delivers a transaction's
// effects: the transition hook, the cleanup hook and the watchers, outside
// every lock, in commit order, and only for what committed (a write that
// joined an enclosing transaction is heard of when that commits). Effects
// build only what someone listens to. Defined out of the class and included
// at the end of sync_engine.hpp; not a public entry point.
#include <tether/core/error.hpp>
#include <tether/engine/detail/delivery.hpp>
#include <tether/engine/detail/effects.hpp>
#include <tether/engine/log.hpp>
#include <tether/engine/sync_engine.hpp>
#include <tether/storage/storage.hpp>

#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace tether {

template <class Entity, class... Policies>
detail::effects<Entity> sync_engine<Entity, Policies...>::make_effects() const {
    auto fx = write_effects();
    fx.trigger = run_trigger_.load(std::memory_order_relaxed);
    return fx;
}

template <class Entity, class... Policies>
detail::effects<Entity> sync_engine<Entity, Policies...>::write_effects() const {
    detail::effects<Entity> fx;
    fx.want_changes = !watchers_->empty();
    fx.want_erased = has_cleanup_hook_.load(std::memory_order_acquire);
    fx.want_transitions = has_transition_hook_.load(std::memory_order_acquire);
    fx.order = &order_;
    return fx;
}

template <class Entity, class... Policies>
void sync_engine<Entity, Policies...>::deliver(detail::effects<Entity>& fx, bool committed) {
    if constexpr (deferring_store<store_type>) {
        if (committed && (!fx.transitions.empty() || !fx.changes.empty() || !fx.erased.empty())) {
            auto later = std::make_shared<detail::effects<Entity>>();
            later->transitions.swap(fx.transitions);
            later->changes.swap(fx.changes);
            later->erased.swap(fx.erased);
            later->ticket = std::move(fx.ticket);  // dropped with a rollback: its number is handed in empty
            std::function<void()> run = [this, later] { deliver_in_order(*later, true); };
            if (!store_.defer_until_commit(run)) {  // no enclosing transaction: now
                fx.transitions.swap(later->transitions);
                fx.changes.swap(later->changes);
                fx.erased.swap(later->erased);
                fx.ticket = std::move(later->ticket);
            }
        }
    }
    deliver_in_order(fx, committed);
}

template <class Entity, class... Policies>
void sync_engine<Entity, Policies...>::deliver_in_order(detail::effects<Entity>& fx, bool committed) {
    if (!fx.ticket.held()) {
        deliver_now(fx, committed);
        return;
    }
    auto moved = std::make_shared<detail::effects<Entity>>(std::move(fx));
    auto& ticket = moved->ticket;
    ticket.fulfil([this, moved, committed] { deliver_now(*moved, committed); });
}

template <class Entity, class... Policies>
void sync_engine<Entity, Policies...>::deliver_now(detail::effects<Entity>& fx, bool committed) {
    if (!committed) {
        fx.transitions.clear();
        fx.changes.clear();
        fx.erased.clear();
    }
    if (fx.transitions.empty() && fx.refused.empty() && fx.warnings.empty() && fx.erased.empty() &&
        fx.changes.empty()) {
        return;  // the common write with nobody listening: no lock taken
    }
    if (auto h = hook(transition_hook_)) {
        for (const auto& t : fx.refused) (*h)(t);
        for (const auto& t : fx.transitions) (*h)(t);
    }
    for (const auto& t : fx.refused) {
        log(log_level::error, "refused illegal transition " + std::string{to_string(*t.from)} + " -> " +
                                  std::string{to_string(*t.to)} + " of " + t.id.to_string() + " (" + t.cause + ")");
    }
    for (const auto& w : fx.warnings) log(log_level::warning, w);
    if (!fx.erased.empty()) {
        auto h = hook(cleanup_hook_);
        for (const auto& r : fx.erased) {
            if (!h) break;
            std::optional<error> failure;
            try {
                if (auto res = (*h)(r); !res) failure = res.error();
            } catch (const std::exception& ex) {
                failure = make_error(errc::invalid_state, ex.what());
            } catch (...) {
                failure = make_error(errc::invalid_state, "unknown exception");
            }
            if (failure) {
                cleanup_failures_.fetch_add(1, std::memory_order_relaxed);
                log(log_level::warning, "cleanup of " + r.id.to_string() + " failed: " + failure->message);
            }
        }
    }
    for (const auto& c : fx.changes) watchers_->notify(c);
}

}  // namespace tether
