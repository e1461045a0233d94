#pragma once

#include <tether/backoff/backoff.hpp>
#include <tether/backoff/exponential.hpp>
#include <tether/clock/clock.hpp>
#include <tether/clock/system.hpp>
#include <tether/conflict/conflict.hpp>
#include <tether/conflict/server_wins.hpp>
#include <tether/core/cause.hpp>
#include <tether/core/entity.hpp>
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/record.hpp>
#include <tether/core/result.hpp>
#include <tether/core/status.hpp>
#include <tether/core/transitions.hpp>
#include <tether/engine/detail/append.hpp>
#include <tether/engine/detail/context.hpp>
#include <tether/engine/detail/effects.hpp>
#include <tether/engine/detail/live.hpp>
#include <tether/engine/detail/policy_checks.hpp>
#include <tether/engine/detail/pull.hpp>
#include <tether/engine/detail/push.hpp>
#include <tether/engine/change.hpp>
#include <tether/engine/log.hpp>
#include <tether/engine/report.hpp>
#include <tether/engine/state.hpp>
#include <tether/engine/subscription.hpp>
#include <tether/engine/options.hpp>
#include <tether/engine/select.hpp>
#include <tether/storage/memory.hpp>
#include <tether/storage/storage.hpp>
#include <tether/transport/loopback.hpp>
#include <tether/transport/transport.hpp>

#include <atomic>
#include <cstdlib>
#include <concepts>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

namespace tether {

/// @brief Keeps `record<Entity>`s in a local store and syncs them with a server.
///
/// Composed from policies passed in any order; a missing kind takes its default:
/// | kind      | concept            | default              |
/// |-----------|--------------------|----------------------|
/// | storage   | `storage_policy`   | `memory_storage`     |
/// | transport | `transport_policy` | `loopback_transport` |
/// | backoff   | `backoff_policy`   | `exponential_backoff`|
/// | conflict  | `conflict_policy`  | `server_wins`        |
/// | clock     | `clock_policy`     | `system_clock`       |
/// | options   | `engine_options`   | `engine_options{}`   |
///
/// Writes (`create`, `update`, `remove`) are local-first: one storage
/// transaction, then watchers are told, then the sync-needed hook fires; their
/// result never depends on the network. All members are thread-safe; watchers
/// and hooks are called outside the engine's locks.
///
/// @code
/// auto jobs = tether::make_engine<Job>(tether::manual_clock{});
/// auto job = jobs.create(Job{"memo.m4a", 0}).value();
/// (void)jobs.update(job.id, [](Job& j) { j.progress = 50; });
/// auto sub = jobs.watch([](const tether::change<Job>& c) { std::cout << c.cause << '\n'; });
/// std::cout << jobs.health().value().pending << " pending\n";
/// @endcode
template <class Entity, class... Policies>
class sync_engine final : private detail::pass_shell<Entity> {
    static_assert(detail::policy_list_checks<Entity, Policies...>::ok);  // the messages: engine/detail/policy_checks.hpp

public:
    using entity_type = Entity;                                                        ///< the synced type
    using record_type = record<Entity>;                                                ///< a stored record
    using storage_policy_type = detail::select_t<storage_tag, memory_storage, Policies...>;     ///< chosen storage
    using transport_type = detail::select_t<transport_tag, loopback_transport, Policies...>;  ///< chosen transport
    using backoff_type = detail::select_t<backoff_tag, exponential_backoff, Policies...>;     ///< chosen backoff
    using conflict_type = detail::select_t<conflict_tag, server_wins, Policies...>;           ///< chosen conflict policy
    using clock_type = detail::select_t<clock_tag, system_clock, Policies...>;                ///< chosen clock
    using options_type = detail::select_t<options_tag, engine_options, Policies...>;          ///< engine options
    using store_type = store_for_t<storage_policy_type, Entity>;                              ///< the bound store

    static_assert(detail::chosen_policy_checks<Entity, storage_policy_type, transport_type, backoff_type, conflict_type,
                                               clock_type>::ok);

    /// @brief A watcher of record changes.
    using watch_fn = std::function<void(const change<Entity>&)>;
    /// @brief The transition hook (audit log, metrics).
    using transition_fn = std::function<void(const transition&)>;
    /// @brief The cleanup hook: runs when a record is deleted for good (e.g. to
    /// delete its attached file). An error result or an exception is logged and
    /// never blocks the deletion.
    using cleanup_fn = std::function<result<void>(const record<Entity>&)>;
    /// @brief The log hook (default: warnings and errors to `std::clog`).
    using log_fn = std::function<void(log_level, std::string_view)>;
    /// @brief Called after every successful local write and whenever sync
    /// should run again: connectivity or login restored, or a run that ended
    /// with a rerun pending (writes kept coming, or the run failed after a write
    /// asked for more). After a failure, records back off and pulls wait for
    /// `next_pull_at()`, so a sync started from the hook at once sends nothing
    /// to a server that is down.
    using sync_needed_fn = std::function<void()>;
    /// @brief As `sync_needed_fn`, told why: `after_write` for a local write,
    /// `reconnect` for connectivity or login restored, the run's own trigger
    /// for a run that ended with a rerun pending. What a `scheduler` listens to.
    using sync_wanted_fn = std::function<void(sync_trigger)>;

    /// @brief An engine over the given policies (any order; missing kinds take defaults).
    explicit sync_engine(Policies... policies)
        : storage_(detail::pick<storage_tag, memory_storage>(policies...)),
          store_(storage_),
          transport_(detail::pick<transport_tag, loopback_transport>(policies...)),
          backoff_(detail::pick<backoff_tag, exponential_backoff>(policies...)),
          conflict_(detail::pick<conflict_tag, server_wins>(policies...)),
          clock_(detail::pick<clock_tag, system_clock>(policies...)),
          options_(detail::pick<options_tag, engine_options>(policies...)),
          ids_(options_.id_seed ? local_id_generator{*options_.id_seed} : local_id_generator{}) {
        seed_ids();
    }

    sync_engine(const sync_engine&) = delete;
    sync_engine& operator=(const sync_engine&) = delete;

    // ---- local half: writes -------------------------------------------------

    /// @brief Creates a record (`pending`, no server id) and returns it.
    result<record_type> create(Entity value, tether::priority prio = tether::priority::medium);

    /// @brief Replaces the record's value. With no change it is a no-op (the
    /// record is returned as it is and stays in its status).
    result<record_type> update(const local_id& id, Entity value) {
        return update(id, [&](Entity& e) { e = std::move(value); });
    }

    /// @brief Changes the record's value in place: `fn(Entity&)` edits a copy,
    /// which is then stored as by `update(id, value)`.
    template <class F>
        requires std::invocable<F&, Entity&>
    result<record_type> update(const local_id& id, F&& fn);

    /// @brief Appends `chunk` (UTF-8) to the string member named `member`,
    /// locally at once, as `update` would write the longer text. Pushed, text
    /// appended alone since the last acknowledged state goes as an append op
    /// carrying the chunks (to a transport with `carries_append_ops`), else as
    /// an update (engine/detail/append.hpp). `errc::invalid_argument` if there
    /// is no such string member or the chunk is not UTF-8.
    result<record_type> append(const local_id& id, std::string_view member, std::string_view chunk) {
        return detail::append_text(*this, store_, id, member, chunk);
    }

    /// @brief Deletes the record. One the server never saw is removed at once
    /// (cleanup hook runs); otherwise it becomes `pending_deletion` until the
    /// server confirms. Removing a record already pending deletion is a no-op.
    result<void> remove(const local_id& id);

    /// @brief Puts a `failed` record back in line: `pending` (or
    /// `pending_deletion` for a failed delete) with no attempts counted.
    /// On a record that is not `failed` it is an `invalid_state` error.
    result<record_type> reset_failed(const local_id& id);

    // ---- local half: reads --------------------------------------------------

    /// @brief The record with `id` (`errc::not_found` if there is none).
    [[nodiscard]] result<record_type> get(const local_id& id) const {
        auto found = store_.get(id);
        if (!found) return unexpected{std::move(found).error()};
        if (!*found) return unexpected{not_found(id)};
        return std::move(**found);
    }

    /// @brief Every record (including those pending deletion), in `local_id` order.
    [[nodiscard]] result<std::vector<record_type>> list() const { return store_.list(); }

    /// @brief Counts by status, the oldest unsynced change's age, and the state.
    [[nodiscard]] result<health_report> health() const;

    // ---- observation ------------------------------------------------------------

    /// @brief Calls `fn` after every committed change to any record.
    [[nodiscard]] subscription watch(watch_fn fn) { return watchers_->add(std::move(fn)); }

    /// @brief Calls `fn` after every committed change to the record `id`.
    [[nodiscard]] subscription watch(const local_id& id, watch_fn fn) {
        return watchers_->add([id, fn = std::move(fn)](const change<Entity>& c) {
            if (c.id == id) fn(c);
        });
    }

    /// @brief Calls `fn` with every new engine state (for a status indicator).
    [[nodiscard]] subscription watch_state(std::function<void(engine_state)> fn) {
        return state_watchers_->add(std::move(fn));
    }

    /// @brief Sets the transition hook (every status change, with time and cause).
    void on_transition(transition_fn fn);
    /// @brief Sets the cleanup hook (a record deleted for good).
    void on_cleanup(cleanup_fn fn);
    /// @brief Sets the log hook (replaces the default, which writes warnings to `std::clog`).
    void on_log(log_fn fn) { set_hook(log_hook_, std::move(fn)); }
    /// @brief Sets the sync-needed hook (fire-and-forget: schedule a `sync()` from it).
    void on_sync_needed(sync_needed_fn fn);

    /// @brief Sets the sync-wanted hook (fire-and-forget, called where the
    /// sync-needed hook is, with the reason; a `scheduler` sets it on its target).
    /// A write calls it without taking a lock: the engine keeps every hook it
    /// was given until it is destroyed (a replaced one may still be running).
    void on_sync_wanted(sync_wanted_fn fn);

    // ---- gates ----------------------------------------------------------------

    /// @brief Tells the engine whether the network is reachable; coming back
    /// online fires the sync-needed hook.
    void set_online(bool online);

    /// @brief Tells the engine whether the user is logged in; logging in again
    /// (also after a 401 paused sync) fires the sync-needed hook.
    void set_authenticated(bool authenticated);

    /// @brief True unless `set_online(false)` is in force.
    [[nodiscard]] bool online() const noexcept { return online_.load(); }
    /// @brief True unless logged out or paused by a 401.
    [[nodiscard]] bool authenticated() const noexcept { return authenticated_.load(); }

    /// @brief When the next retry falls due: the least `next_attempt_at` among
    /// unsynced records (the store's `earliest_next_attempt()`); the scheduler
    /// runs a sync then.
    [[nodiscard]] result<std::optional<timestamp>> earliest_next_attempt() const {
        return store_.earliest_next_attempt();
    }

    /// @brief The engine's current state.
    [[nodiscard]] engine_state state() const noexcept {
        if (!online_.load()) return engine_state::offline;
        if (!authenticated_.load()) return engine_state::unauthorized;
        if (running_.load()) return engine_state::syncing;
        return last_run_failed_.load() ? engine_state::error : engine_state::idle;
    }

    /// @brief When the next pull may go out, if a failed pull (429, 503, a
    /// network failure) made the engine back off: pulls before then send nothing.
    /// Empty when pulls are not backing off.
    /// A clock set back before the failed pull ends the wait (as it makes a
    /// record in `error` due), so a clock change never stalls pulls for long.
    [[nodiscard]] std::optional<timestamp> next_pull_at() const { return pull_wait_.not_before(clock_.now()); }

    // ---- access to the policies -------------------------------------------------

    /// @brief The engine's clock.
    [[nodiscard]] const clock_type& clock() const noexcept { return clock_; }
    /// @brief The engine's store (for inspection; write through the engine).
    [[nodiscard]] const store_type& store() const noexcept { return store_; }
    /// @brief The engine's transport.
    [[nodiscard]] transport_type& transport() noexcept { return transport_; }
    /// @brief The engine's backoff policy.
    [[nodiscard]] const backoff_type& backoff() const noexcept { return backoff_; }

    // ---- sync half: the passes are in engine/detail/push.hpp and pull.hpp --------

    /// @brief Push local changes, then pull remote ones. Single-flight: while a
    /// sync runs, another call returns at once (`skip_reason::already_running`)
    /// and makes the running one go round once more before it ends.
    /// User-initiated: the same as `sync(sync_trigger::user)`.
    result<sync_report> sync() { return sync(sync_trigger::user); }

    /// @brief `sync()`, run for the reason `why`: carried in the report's
    /// `trigger` and in every transition the run causes (`transition::trigger`).
    result<sync_report> sync(sync_trigger why) {
        return single_flight(why, [this](sync_report& rep) -> result<void> {
            auto ctx = context();
            if (auto p = take(detail::run_push(ctx), rep); !p) return p;
            if (rep.failure) return {};
            return take(detail::run_pull_covering(ctx, live_.inbox()), rep);
        });
    }
    /// @brief Only the push half of `sync()` (same gating and single flight).
    result<sync_report> push() { return push(tether::priority::low); }
    /// @brief Only the push half, and only records of priority `at_least` or
    /// higher (a `coordinator` pushes several entity types level by level).
    result<sync_report> push(tether::priority at_least, sync_trigger why = sync_trigger::user) {
        return single_flight(why, [this, at_least](sync_report& rep) {
            auto ctx = context();
            return take(detail::run_push(ctx, at_least), rep);
        });
    }
    /// @brief Only the pull half of `sync()` (same gating and single flight),
    /// for the reason `why` (default: the user asked).
    result<sync_report> pull(sync_trigger why = sync_trigger::user) {
        return single_flight(why, [this](sync_report& rep) {
            auto ctx = context();
            return take(detail::run_pull_covering(ctx, live_.inbox()), rep);
        });
    }

    /// @brief Follows the live feed of this engine's collection from the pull
    /// cursor (a `live_transport` only; see engine/detail/live.hpp): events are
    /// queued on the feed's thread, then `notify()` is called there (it should
    /// only schedule `apply_live()`). Again: a fresh subscription. `errc::offline`,
    /// `unauthorized` or `busy` (a sync running) when gated, or the feed's error;
    /// a feed that refuses the credentials pauses the engine as a sync's 401 does
    /// (until `set_authenticated(true)`), so nothing follows again in a loop.
    result<void> follow(std::function<void()> notify = {}) requires live_transport<transport_type> {
        auto ran = single_flight(sync_trigger::user, [&](sync_report& rep) {
            auto ctx = context();
            auto followed = live_.follow(ctx, notify);
            if (!followed && followed.error().code == errc::unauthorized) pause_unauthorized(followed.error(), rep);
            return followed;
        });
        if (!ran) return unexpected{std::move(ran).error()};
        if (ran->skipped) return unexpected{detail::live_skipped(*ran->skipped)};
        return {};
    }
    /// @brief Stops following the live feed (queued events are dropped).
    void unfollow() { live_.stop(); }
    /// @brief Applies the queued live events with the pull's rules, in the
    /// order they came (single flight, like `sync()`; watchers hear cause
    /// "live"; the report's and transitions' trigger is `sync_trigger::event`).
    result<sync_report> apply_live() {
        return single_flight(sync_trigger::event, [this](sync_report& rep) {
            auto ctx = context();
            return take(detail::run_live(ctx, live_.inbox()), rep);
        });
    }
    /// @brief The live feed: whether it is followed, and what its events did.
    [[nodiscard]] tether::live_status live_status() const { return live_.status(); }

private:
    using context_type = detail::sync_context<Entity, store_type, transport_type, backoff_type, conflict_type,
                                              clock_type, options_type>;

    /// Runs `body` (one round of a sync call) while it asks for more, at most
    /// `max_sync_rounds` times, unless offline, logged out or already running
    /// (then the running call goes round once more). A run without failure that
    /// ends with a rerun pending, or a failed one with a write waiting, fires the
    /// sync-needed hook, so the app schedules another call.
    template <class Body>
    result<sync_report> single_flight(sync_trigger why, Body body) {
        sync_report rep;
        rep.trigger = why;
        if (!online_.load()) {
            rep.skipped = skip_reason::offline;
            return rep;
        }
        if (!authenticated_.load()) {
            rep.skipped = skip_reason::unauthorized;
            return rep;
        }
        if (running_.exchange(true)) {
            rerun_.store(true);
            rep.skipped = skip_reason::already_running;
            return rep;
        }
        run_trigger_.store(why, std::memory_order_relaxed);  // read by the passes' make_effects
        publish_state();
        result<void> outcome;
        int rounds = 0;
        try {
            do {
                rerun_.store(false);
                outcome = ensure_device_id();
                if (outcome) outcome = body(rep);
            } while (outcome && !rep.failure && rerun_.load() && online_.load() && authenticated_.load() &&
                     ++rounds < detail::max_sync_rounds);
        } catch (...) {
            running_.store(false);
            publish_state();
            throw;
        }
        last_run_failed_.store(!outcome || rep.failure.has_value());
        running_.store(false);
        publish_state();
        if (rerun_.load()) {
            // After a failure, records back off and pulls wait for `next_pull_at()`
            // (`rep.retry_at`), so a run the hook starts at once sends nothing to
            // a server that is down.
            if (auto h = hook(sync_needed_hook_)) (*h)();
            if (const auto* h = sync_wanted_hook_.load(std::memory_order_acquire)) (*h)(why);
        }
        if (!outcome) return unexpected{std::move(outcome).error()};
        return rep;
    }

    /// What the passes work with; built for each round, after the device id.
    context_type context() {
        return context_type{store_,    transport_,  backoff_,  conflict_, clock_,    options_,
                            device_id_, state_mutex_, in_flight_, counters_, pull_wait_, *this};
    }

    /// Adds what a pass did to the call's report: its counts, a rerun it asks
    /// for, a 401 that pauses sync; returns the store error that ended it.
    result<void> take(detail::pass_result done, sync_report& rep) {
        detail::add_report(rep, done.report);
        if (done.rerun) rerun_.store(true);
        if (done.unauthorized) pause_unauthorized(*done.unauthorized, rep);
        return std::move(done.status);
    }

    /// A 401: sync waits for `set_authenticated(true)`.
    void pause_unauthorized(const error& e, sync_report& rep) {
        authenticated_.store(false);
        rep.failure = e;
        log(log_level::warning, "server refused the credentials; sync paused until set_authenticated(true)");
        publish_state();
    }

    /// This device's id, the `origin` of its pushes: read from the store's
    /// metadata, or made and kept there, once, at the first sync.
    result<void> ensure_device_id();

    // ---- what the passes ask of the engine (detail::pass_shell) -----------------

    [[nodiscard]] bool may_sync() const override { return online_.load() && authenticated_.load(); }

    /// A local id for a pulled record the server gives none.
    [[nodiscard]] local_id fresh_id(timestamp now) override;

    /// The body of `update`: `after` starts as a copy of `before` (or is the
    /// stored record itself, changed in place, when `put` is false).
    template <class Tx, class F>
    result<void> apply_update(Tx& tx, detail::effects<Entity>& fx, const record_type& before, record_type& after,
                              F& fn, timestamp now, std::optional<record_type>& out, bool put);

    /// A fresh local id. A seeded generator is mixed, on first use, with a
    /// counter kept in the store's metadata, so an engine restarted with the same
    /// seed over the same store never hands out an id twice.
    result<local_id> next_id(timestamp now);

    /// A seeded generator is mixed with a restart counter kept in the store's
    /// metadata, once, at construction: no engine lock is held then, so the
    /// store's lock and the id lock are never taken in both orders.
    void seed_ids();

    /// `remove` of a record the store holds but cannot decode: it is erased
    /// without being read (the server, if it knows it, keeps its copy, which a
    /// later pull brings back in a form this app may read).
    template <class Tx>
    result<void> remove_unreadable(Tx& tx, detail::effects<Entity>& fx, const local_id& id, error why);

    /// Logs, once each, the records the store found it cannot decode.
    void report_unreadable() override;

    static error not_found(const local_id& id) {
        return make_error(errc::not_found, "no record " + id.to_string());
    }

    /// True if a push of the record may have reached the server: it has a
    /// server id, a push of it is in flight, or an attempt failed in a way that
    /// may have applied (a lost response looks like a transient failure).
    bool may_exist_on_server(const record_type& r) const;

    template <class Fn>
    void set_hook(std::shared_ptr<const Fn>& slot, Fn fn);

    template <class Fn>
    std::shared_ptr<const Fn> hook(const std::shared_ptr<const Fn>& slot) const;

    void log(log_level level, std::string_view message) const override;

    /// Delivers a transaction's effects: transition hook, cleanup hook, watchers.
    /// A transaction that rolled back changed nothing: only refused transitions
    /// and warnings are reported. A write that joined an enclosing transaction
    /// (a store offering `defer_until_commit`) is heard of when that commits,
    /// and never if it rolls back.
    void deliver(detail::effects<Entity>& fx, bool committed) override;

    /// Delivers now, or, when the transaction took a delivery number, once
    /// every transaction committed before it has been delivered (commit order
    /// per record and overall, still outside every lock).
    void deliver_in_order(detail::effects<Entity>& fx, bool committed);

    void deliver_now(detail::effects<Entity>& fx, bool committed);

    /// Effects for a transaction of a sync pass: its transitions carry the
    /// trigger of the running sync.
    [[nodiscard]] detail::effects<Entity> make_effects() const override;

    /// Effects for one transaction, building only what someone listens to.
    [[nodiscard]] detail::effects<Entity> write_effects() const;

    void request_sync(sync_trigger why = sync_trigger::after_write);

    void publish_state();

    storage_policy_type storage_;
    store_type store_;
    transport_type transport_;
    backoff_type backoff_;
    [[no_unique_address]] conflict_type conflict_;
    clock_type clock_;
    options_type options_;

    std::mutex ids_mutex_;
    local_id_generator ids_;
    std::optional<error> ids_error_;  // set once at construction: the restart counter could not be kept

    std::string device_id_;                   // this device's push origin: set once, at the first sync
    mutable std::mutex state_mutex_;          // guards in_flight_ and backoff_ (its jitter state)
    std::set<local_id> in_flight_;
    std::set<local_id> reported_unreadable_;  // logged once each (guarded by state_mutex_)
    std::atomic<bool> online_{true};
    std::atomic<bool> authenticated_{true};
    std::atomic<bool> running_{false};
    std::atomic<bool> rerun_{false};
    std::atomic<bool> last_run_failed_{false};
    std::atomic<engine_state> last_published_{engine_state::idle};
    std::atomic<std::uint64_t> cleanup_failures_{0};
    detail::sync_counters counters_;   // pulled items not applied, full resyncs: since start
    detail::pull_backoff pull_wait_;   // pulls wait after failed ones
    detail::live_follower live_;       // the live feed's inbox and subscription
    std::atomic<bool> has_transition_hook_{false};
    std::atomic<bool> has_cleanup_hook_{false};
    std::atomic<bool> has_sync_needed_hook_{false};
    std::atomic<sync_trigger> run_trigger_{sync_trigger::user};  // the running sync's (set under running_)

    mutable detail::ordered_delivery order_;        // record effects, in commit order
    detail::ordered_delivery state_order_;          // engine states, in the order reached
    mutable std::mutex hooks_mutex_;
    std::shared_ptr<const transition_fn> transition_hook_;
    std::shared_ptr<const cleanup_fn> cleanup_hook_;
    std::shared_ptr<const log_fn> log_hook_;
    std::shared_ptr<const sync_needed_fn> sync_needed_hook_;
    std::atomic<const sync_wanted_fn*> sync_wanted_hook_{nullptr};        // one of sync_wanted_kept_, or none
    std::vector<std::unique_ptr<const sync_wanted_fn>> sync_wanted_kept_;  // every one given (hooks_mutex_)

    std::shared_ptr<detail::registry<change<Entity>>> watchers_ = std::make_shared<detail::registry<change<Entity>>>();
    std::shared_ptr<detail::registry<engine_state>> state_watchers_ = std::make_shared<detail::registry<engine_state>>();
};

/// @brief Builds a `sync_engine<Entity, ...>` from policy values, in any order.
///
/// @code
/// auto jobs = tether::make_engine<Job>(tether::memory_storage{}, tether::exponential_backoff{.base = 30s});
/// @endcode
template <class Entity, class... Policies>
[[nodiscard]] sync_engine<Entity, std::remove_cvref_t<Policies>...> make_engine(Policies&&... policies) {
    return sync_engine<Entity, std::remove_cvref_t<Policies>...>(std::forward<Policies>(policies)...);
}

/// @brief An engine over memory storage and the loopback transport (for tests and demos).
template <class Entity>
using memory_engine = sync_engine<Entity, memory_storage, loopback_transport>;

}  // namespace tether

// The members defined out of the class, one concern per header.
#include <tether/engine/detail/engine_delivery.hpp>
#include <tether/engine/detail/engine_hooks.hpp>
#include <tether/engine/detail/engine_ids.hpp>
#include <tether/engine/detail/engine_writes.hpp>
