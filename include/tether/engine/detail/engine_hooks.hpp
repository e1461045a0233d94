#pragma once

// The hooks of `sync_engine` (engine/sync_engine.hpp) and what they are told:
// the hook setters, the log line (default: warnings to std::clog), the
// sync-needed and sync-wanted calls, the gates (online, authenticated), the
// engine state published to its watchers, and `health()`. Defined out of the
// class and included at the end of sync_engine.hpp; not a public entry point.
#include <tether/core/record.hpp>
#include <tether/core/result.hpp>
#include <tether/engine/log.hpp>
#include <tether/engine/report.hpp>
#include <tether/engine/state.hpp>
#include <tether/engine/sync_engine.hpp>
#include <tether/storage/storage.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace tether {

template <class Entity, class... Policies>
void sync_engine<Entity, Policies...>::on_transition(transition_fn fn) {
    has_transition_hook_.store(static_cast<bool>(fn));
    set_hook(transition_hook_, std::move(fn));
}

template <class Entity, class... Policies>
void sync_engine<Entity, Policies...>::on_cleanup(cleanup_fn fn) {
    has_cleanup_hook_.store(static_cast<bool>(fn));
    set_hook(cleanup_hook_, std::move(fn));
}

template <class Entity, class... Policies>
void sync_engine<Entity, Policies...>::on_sync_needed(sync_needed_fn fn) {
    has_sync_needed_hook_.store(static_cast<bool>(fn));
    set_hook(sync_needed_hook_, std::move(fn));
}

template <class Entity, class... Policies>
void sync_engine<Entity, Policies...>::on_sync_wanted(sync_wanted_fn fn) {
    std::lock_guard lock{hooks_mutex_};
    const sync_wanted_fn* now = nullptr;
    if (fn) {
        sync_wanted_kept_.push_back(std::make_unique<const sync_wanted_fn>(std::move(fn)));
        now = sync_wanted_kept_.back().get();
    }
    sync_wanted_hook_.store(now, std::memory_order_release);
}

template <class Entity, class... Policies>
template <class Fn>
void sync_engine<Entity, Policies...>::set_hook(std::shared_ptr<const Fn>& slot, Fn fn) {
    auto p = fn ? std::make_shared<const Fn>(std::move(fn)) : nullptr;
    std::lock_guard lock{hooks_mutex_};
    slot = std::move(p);
}

template <class Entity, class... Policies>
template <class Fn>
std::shared_ptr<const Fn> sync_engine<Entity, Policies...>::hook(const std::shared_ptr<const Fn>& slot) const {
    std::lock_guard lock{hooks_mutex_};
    return slot;
}

template <class Entity, class... Policies>
void sync_engine<Entity, Policies...>::log(log_level level, std::string_view message) const {
    if (auto h = hook(log_hook_)) {
        (*h)(level, message);
    } else if (level >= log_level::warning) {
        std::clog << "tether[" << collection_of<Entity>() << "]: " << message << '\n';
    }
}

template <class Entity, class... Policies>
void sync_engine<Entity, Policies...>::request_sync(sync_trigger why) {
    rerun_.store(true, std::memory_order_release);
    if (has_sync_needed_hook_.load(std::memory_order_acquire)) {
        if (auto h = hook(sync_needed_hook_)) (*h)();
    }
    if (const auto* h = sync_wanted_hook_.load(std::memory_order_acquire)) (*h)(why);
}

template <class Entity, class... Policies>
void sync_engine<Entity, Policies...>::set_online(bool online) {
    const bool was = online_.exchange(online);
    publish_state();
    if (online && !was) request_sync(sync_trigger::reconnect);
}

template <class Entity, class... Policies>
void sync_engine<Entity, Policies...>::set_authenticated(bool authenticated) {
    const bool was = authenticated_.exchange(authenticated);
    publish_state();
    if (authenticated && !was) request_sync(sync_trigger::reconnect);
}

template <class Entity, class... Policies>
void sync_engine<Entity, Policies...>::publish_state() {
    // The state is read and compared under the queue's lock, so watchers
    // hear states in the order they were reached, outside the engine's locks.
    state_order_.post([&]() -> std::function<void()> {
        const auto s = state();
        if (last_published_.exchange(s) == s) return {};
        return [w = state_watchers_, s] { w->notify(s); };
    });
}

template <class Entity, class... Policies>
result<health_report> sync_engine<Entity, Policies...>::health() const {
    auto counts = store_.counts();
    if (!counts) return unexpected{std::move(counts).error()};
    health_report h;
    static_cast<status_counts&>(h) = *counts;
    if (counts->oldest_pending) {
        const auto age = clock_.now() - *counts->oldest_pending;
        h.oldest_pending_age = age < std::chrono::milliseconds{0} ? std::chrono::milliseconds{0} : age;
    }
    h.state = state();
    h.cleanup_failures = cleanup_failures_.load(std::memory_order_relaxed);
    h.unapplied = counters_.unapplied.load(std::memory_order_relaxed);
    h.resyncs = counters_.resyncs.load(std::memory_order_relaxed);
    return h;
}

template <class Entity, class... Policies>
void sync_engine<Entity, Policies...>::report_unreadable() {
    if constexpr (reports_unreadable<store_type, Entity>) {
        auto found = store_.unreadable();
        if (!found) return;
        for (const auto& u : *found) {
            {
                std::lock_guard lock{state_mutex_};
                if (!reported_unreadable_.insert(u.id).second) continue;
            }
            log(log_level::warning, "record " + u.id.to_string() + " cannot be read and is skipped: " +
                                        u.why.message);
        }
    }
}

}  // namespace tether
