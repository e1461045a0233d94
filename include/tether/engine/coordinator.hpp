#pragma once

/// @file
/// @brief `tether::coordinator`: several engines (entity types) synced as one.
///
/// An app with projects, jobs and comments has one engine per entity type. A
/// coordinator runs them in one pass: local changes go up across types in
/// record priority order — every type's `critical` records, then every type's
/// `high` ones, then `medium`, then `low` — and then each type pulls, each no
/// more often than its own minimum pull interval (projects at most every 15
/// minutes, comments at every pass). It also gives one engine state for a status
/// indicator and health figures across types.
///
/// @code
/// auto projects = tether::make_engine<Project>(...);
/// auto comments = tether::make_engine<Comment>(...);
/// tether::coordinator all{tether::coordinate(projects, {.min_pull_interval = 15min}),
///                         tether::coordinate(comments)};
/// auto sub = all.watch_state([](tether::engine_state s) { show(s); });
/// auto report = all.run();               // push by priority, then pull what is due
/// tether::scheduler<decltype(all)> sched{all, clock};  // or let the scheduler run the passes
/// auto h = all.health();                 // h.total.pending, h.types[0].health.failed, ...
/// @endcode
///
/// The engines must outlive the coordinator and share one clock (the first
/// engine's clock times the pull intervals). Each engine keeps its own single
/// flight: a pass meets an engine already syncing on its own as a skipped step.
/// The coordinator has a single flight of its own: a `sync()` while a pass runs
/// returns at once (`skip_reason::already_running`) and makes the running pass
/// go round once more, so no call is lost.
#include <tether/core/cause.hpp>
#include <tether/core/entity.hpp>
#include <tether/core/record.hpp>
#include <tether/core/result.hpp>
#include <tether/core/timestamp.hpp>
#include <tether/engine/detail/context.hpp>
#include <tether/engine/report.hpp>
#include <tether/engine/state.hpp>
#include <tether/engine/subscription.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace tether {

/// @brief How a coordinator treats one entity type.
struct type_options {
    /// The least time between two pulls of this type (0: it pulls at every
    /// pass). Pushes are never held back.
    std::chrono::milliseconds min_pull_interval{0};
};

/// @brief One engine of a coordinator and its options (see `coordinate`).
template <class Engine>
struct coordinated {
    Engine* engine;        ///< the engine; it must outlive the coordinator
    type_options options;  ///< how the coordinator treats its type
};

/// @brief Names an engine for a `coordinator`, with its type's options.
template <class Engine>
[[nodiscard]] coordinated<Engine> coordinate(Engine& engine, type_options options = {}) {
    return coordinated<Engine>{&engine, options};
}

/// @brief What one coordinator pass did, per type and in all.
struct coordinator_report {
    /// @brief One type's part of the pass.
    struct type_report {
        std::string collection;     ///< the type's collection name
        sync_report report;         ///< its pushes (every level) and its pull
        bool pulled = false;        ///< its pull ran in this pass (not held back by its interval)
    };
    std::vector<type_report> types;  ///< in the order the coordinator was given its engines
    sync_report total;               ///< the counts of every type added up; the first failure
    /// Set when the whole pass did not run: offline, logged out, or another pass running.
    std::optional<skip_reason> skipped;
};

/// @brief Health figures of one type and of all types (`coordinator::health`).
struct coordinator_health {
    /// @brief One type's figures.
    struct type_health {
        std::string collection;  ///< the type's collection name
        health_report health;    ///< its engine's `health()`
    };
    std::vector<type_health> types;  ///< in the order the coordinator was given its engines
    /// The counts added up; `oldest_pending_age` the largest; `state` the
    /// coordinator's (`coordinator::state`); the since-start counters added up.
    health_report total;
};

namespace detail {

/// The state a status indicator shows for several engines: syncing if any
/// syncs; else unauthorized, offline or error if any engine is so (in that
/// order: the one the user can act on first); else idle.
[[nodiscard]] inline engine_state combined_state(std::span<const engine_state> states) noexcept {
    bool offline = false, unauthorized = false, failed = false;
    for (const auto s : states) {
        switch (s) {
            case engine_state::syncing: return engine_state::syncing;
            case engine_state::offline: offline = true; break;
            case engine_state::unauthorized: unauthorized = true; break;
            case engine_state::error: failed = true; break;
            case engine_state::idle: break;
        }
    }
    if (unauthorized) return engine_state::unauthorized;
    if (offline) return engine_state::offline;
    if (failed) return engine_state::error;
    return engine_state::idle;
}

/// Adds one health report's counts to another (`into.state` is left alone).
inline void add_health(health_report& into, const health_report& h) {
    into.pending += h.pending;
    into.synced += h.synced;
    into.pending_deletion += h.pending_deletion;
    into.error += h.error;
    into.failed += h.failed;
    into.unreadable += h.unreadable;
    if (h.oldest_pending && (!into.oldest_pending || *h.oldest_pending < *into.oldest_pending))
        into.oldest_pending = h.oldest_pending;
    if (h.oldest_pending_age && (!into.oldest_pending_age || *h.oldest_pending_age > *into.oldest_pending_age))
        into.oldest_pending_age = h.oldest_pending_age;
    into.cleanup_failures += h.cleanup_failures;
    into.unapplied += h.unapplied;
    into.resyncs += h.resyncs;
}

}  // namespace detail

/// @brief Runs several engines (entity types) in one pass; see the file's docs.
template <class... Engines>
class coordinator {
    static_assert(sizeof...(Engines) > 0, "a coordinator needs at least one engine");

public:
    /// @brief A coordinator over the given engines, in this order (the order of
    /// the types within one priority level, and of the pulls).
    explicit coordinator(coordinated<Engines>... members)
        : members_{members...}, shared_{std::make_shared<shared>()} {
        std::size_t i = 0;
        for_each_member([&](auto& m) {
            shared_->states[i] = m.engine->state();
            subs_[i] = m.engine->watch_state([weak = std::weak_ptr<shared>{shared_}, i](engine_state s) {
                if (auto self = weak.lock()) self->set(i, s);
            });
            ++i;
        });
    }

    coordinator(const coordinator&) = delete;
    coordinator& operator=(const coordinator&) = delete;

    /// @brief One pass: every type's local changes go up, level by level of
    /// priority (critical first), then each type whose minimum pull interval
    /// has passed pulls. A failure that is the transport's (offline, a dead
    /// server, a 401) ends the pass after the step that met it: the remaining
    /// steps would meet it too. A store error of one engine is returned. `why`
    /// goes to every engine call (their reports and transitions carry it).
    result<coordinator_report> run(sync_trigger why = sync_trigger::user) {
        return single_flight(why, [this, why](coordinator_report& rep) -> result<void> {
            if (auto p = push_levels(rep, why); !p || rep.total.failure) return p;
            return pull_due(rep, why);
        });
    }

    /// @brief The same pass as `run`, answering only its total: what a
    /// `scheduler` drives (a coordinator is a `sync_target`).
    result<sync_report> sync(sync_trigger why = sync_trigger::user) {
        auto pass = run(why);
        if (!pass) return unexpected{std::move(pass).error()};
        auto total = std::move(pass->total);
        total.trigger = why;
        if (pass->skipped) total.skipped = pass->skipped;
        return total;
    }

    /// @brief Only the push half of `run()`: every type, by priority.
    result<coordinator_report> push(sync_trigger why = sync_trigger::user) {
        return single_flight(why, [this, why](coordinator_report& rep) { return push_levels(rep, why); });
    }

    /// @brief The earliest time a record of any type is due again after a
    /// failed attempt (none if no record waits): a `scheduler` runs a pass then.
    [[nodiscard]] result<std::optional<timestamp>> earliest_next_attempt() const {
        std::optional<timestamp> earliest;
        result<void> status;
        for_each_member([&](const auto& m) {
            if (!status) return;
            auto t = m.engine->earliest_next_attempt();
            if (!t) status = unexpected{std::move(t).error()};
            else if (*t && (!earliest || **t < *earliest)) earliest = *t;
        });
        if (!status) return unexpected{std::move(status).error()};
        return earliest;
    }

    /// @brief Sets every engine's sync-wanted hook to `fn` (a `scheduler`
    /// attached to the coordinator hears of every type's writes and reconnects).
    void on_sync_wanted(std::function<void(sync_trigger)> fn) {
        for_each_member([&](auto& m) { m.engine->on_sync_wanted(fn); });
    }

    /// @brief The state for a status indicator, across every type: `syncing`
    /// while a pass (or any engine on its own) runs; else unauthorized, offline
    /// or error if any engine is so, in that order; else idle.
    [[nodiscard]] engine_state state() const { return shared_->combined(); }

    /// @brief Calls `fn` with every new combined state (only when it changes).
    [[nodiscard]] subscription watch_state(std::function<void(engine_state)> fn) {
        return shared_->listeners->add(std::move(fn));
    }

    /// @brief Health per type and in all.
    [[nodiscard]] result<coordinator_health> health() const {
        coordinator_health out;
        result<void> status;
        for_each_member([&](const auto& m) {
            if (!status) return;
            auto h = m.engine->health();
            if (!h) {
                status = unexpected{std::move(h).error()};
                return;
            }
            detail::add_health(out.total, *h);
            out.types.push_back({std::string{collection_of_engine(m)}, std::move(*h)});
        });
        if (!status) return unexpected{std::move(status).error()};
        out.total.state = state();
        return out;
    }

    /// @brief When type `I` (in the order given) last pulled in a pass, if ever.
    template <std::size_t I>
    [[nodiscard]] std::optional<timestamp> last_pull() const {
        std::lock_guard lock{pull_mutex_};
        return last_pull_[I];
    }

private:
    static constexpr std::size_t count = sizeof...(Engines);
    static constexpr std::array<priority, 4> levels{priority::critical, priority::high, priority::medium,
                                                    priority::low};

    // The combined state and its listeners, shared with the engines' state
    // callbacks (which may run on any thread, and briefly outlive the coordinator).
    // Changes are queued under the lock and delivered outside it by one thread
    // at a time, in order; a listener may call back into the coordinator.
    struct shared {
        mutable std::mutex mutex;
        std::array<engine_state, count> states{};
        std::optional<engine_state> last_queued;
        std::deque<engine_state> queue;
        bool delivering = false;
        std::shared_ptr<detail::registry<engine_state>> listeners = std::make_shared<detail::registry<engine_state>>();

        bool pass = false;  // a coordinator pass runs: syncing throughout, between its steps too

        [[nodiscard]] engine_state combined() const {
            std::lock_guard lock{mutex};
            return current();
        }
        [[nodiscard]] engine_state current() const {  // under `mutex`
            return pass ? engine_state::syncing : detail::combined_state(states);
        }
        void set(std::size_t i, engine_state s) {
            change([&] { states[i] = s; });
        }
        void set_pass(bool running) {
            change([&] { pass = running; });
        }
        template <class Mutate>
        void change(Mutate mutate) {
            {
                std::lock_guard lock{mutex};
                mutate();
                const auto now = current();
                if (last_queued == now) return;
                last_queued = now;
                queue.push_back(now);
                if (delivering) return;  // the thread delivering now tells it, in order
                delivering = true;
            }
            for (;;) {
                engine_state next;
                {
                    std::lock_guard lock{mutex};
                    if (queue.empty()) {
                        delivering = false;
                        return;
                    }
                    next = queue.front();
                    queue.pop_front();
                }
                try {
                    listeners->notify(next);
                } catch (...) {
                    std::lock_guard lock{mutex};
                    delivering = false;
                    throw;
                }
            }
        }
    };

    template <class Fn>
    void for_each_member(Fn&& fn) {
        std::apply([&](auto&... m) { (fn(m), ...); }, members_);
    }
    template <class Fn>
    void for_each_member(Fn&& fn) const {
        std::apply([&](const auto&... m) { (fn(m), ...); }, members_);
    }
    template <class Fn>
    void for_each_indexed(Fn&& fn) {
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            (fn(std::integral_constant<std::size_t, I>{}, std::get<I>(members_)), ...);
        }(std::make_index_sequence<count>{});
    }

    template <class Member>
    static std::string_view collection_of_engine(const Member&) {
        using engine_type = std::remove_pointer_t<decltype(std::declval<Member>().engine)>;
        return collection_of<typename engine_type::entity_type>();
    }

    /// Runs `body` while a call arrived during it (at most a few rounds), unless
    /// another pass runs (then that one goes round once more).
    template <class Body>
    result<coordinator_report> single_flight(sync_trigger why, Body body) {
        coordinator_report rep;
        rep.total.trigger = why;
        for_each_member([&](const auto& m) {
            rep.types.push_back({std::string{collection_of_engine(m)}, {}, false});
        });
        if (running_.exchange(true)) {
            rerun_.store(true);
            rep.skipped = skip_reason::already_running;
            return rep;
        }
        result<void> outcome;
        int rounds = 0;
        shared_->set_pass(true);
        try {
            do {
                rerun_.store(false);
                outcome = body(rep);
            } while (outcome && !rep.total.failure && rerun_.load() && ++rounds < max_rounds);
        } catch (...) {
            running_.store(false);
            shared_->set_pass(false);
            throw;
        }
        running_.store(false);
        shared_->set_pass(false);
        if (!outcome) return unexpected{std::move(outcome).error()};
        if (all_skipped(rep)) rep.skipped = rep.types.front().report.skipped;
        return rep;
    }

    /// Every type's records of each priority level, the highest level first.
    result<void> push_levels(coordinator_report& rep, sync_trigger why) {
        for (const auto level : levels) {
            result<void> status;
            for_each_indexed([&](auto i, auto& m) {
                if (!status || rep.total.failure) return;
                status = take(rep, i.value, m.engine->push(level, why));
            });
            if (!status || rep.total.failure) return status;
        }
        return {};
    }

    /// Each type whose minimum pull interval has passed pulls.
    result<void> pull_due(coordinator_report& rep, sync_trigger why) {
        result<void> status;
        for_each_indexed([&](auto i, auto& m) {
            if (!status || rep.total.failure) return;
            const auto now = std::get<0>(members_).engine->clock().now();
            {
                std::lock_guard lock{pull_mutex_};
                const auto& last = last_pull_[i.value];
                if (last && now - *last < m.options.min_pull_interval) return;
            }
            auto pulled = m.engine->pull(why);
            if (pulled && !pulled->skipped && !pulled->failure) {
                std::lock_guard lock{pull_mutex_};
                last_pull_[i.value] = now;
            }
            rep.types[i.value].pulled = pulled && !pulled->skipped;
            status = take(rep, i.value, std::move(pulled));
        });
        return status;
    }

    /// Adds one engine call's report to type `i`'s and to the total; returns a
    /// store error. A skipped call (the engine offline, logged out or running
    /// on its own) is kept in the type's report and does not end the pass.
    static result<void> take(coordinator_report& rep, std::size_t i, result<sync_report> got) {
        if (!got) return unexpected{std::move(got).error()};
        auto& mine = rep.types[i].report;
        if (got->skipped) {
            if (!mine.skipped) mine.skipped = got->skipped;
            return {};
        }
        mine.skipped.reset();
        detail::add_report(mine, *got);
        detail::add_report(rep.total, *got);
        return {};
    }

    static bool all_skipped(const coordinator_report& rep) {
        for (const auto& t : rep.types)
            if (!t.report.skipped) return false;
        return true;
    }

    static constexpr int max_rounds = 8;

    std::tuple<coordinated<Engines>...> members_;
    std::shared_ptr<shared> shared_;
    std::array<subscription, count> subs_;
    mutable std::mutex pull_mutex_;
    std::array<std::optional<timestamp>, count> last_pull_{};
    std::atomic<bool> running_{false};
    std::atomic<bool> rerun_{false};
};

template <class... Engines>
coordinator(coordinated<Engines>...) -> coordinator<Engines...>;

}  // namespace tether
