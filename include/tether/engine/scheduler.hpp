#pragma once

// The scheduler: the sync runs itself. It decides when a `sync_target` (an
// engine) syncs, and why: periodically, after local writes, when connectivity
// or login comes back, and when the earliest retry falls due; paused in the
// background, backing off while the server is unreachable.
#include <tether/backoff/backoff.hpp>
#include <tether/backoff/exponential.hpp>
#include <tether/clock/clock.hpp>
#include <tether/clock/system.hpp>
#include <tether/core/cause.hpp>
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/core/timestamp.hpp>
#include <tether/engine/report.hpp>
#include <tether/engine/sync_target.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

namespace tether {

/// @brief How a `scheduler` paces its runs.
///
/// @code
/// tether::scheduler_options o{.period = std::chrono::seconds{30}, .reconnect_spread = std::chrono::seconds{10}};
/// o.down_backoff.seed = 7;  // reproducible jitter (tests, simulations)
/// @endcode
struct scheduler_options {
    /// @brief The time between periodic runs while the server answers.
    std::chrono::milliseconds period{std::chrono::seconds{15}};
    /// @brief The delay before the periodic run after the n-th failed run in a
    /// row (offline, logged out, a network failure, 429/5xx): jittered, so a
    /// fleet does not hammer a dead server in step. `max_attempts = 0`: never
    /// gives up. Its `seed` makes the jitter reproducible.
    exponential_backoff down_backoff{.base = std::chrono::seconds{15},
                                     .factor = 2.0,
                                     .cap = std::chrono::minutes{5},
                                     .max_attempts = 0,
                                     .jitter = tether::jitter::equal};
    /// @brief A reconnect runs after a delay uniform in `[0, reconnect_spread]`,
    /// so that every device of a fleet does not sync in the same instant.
    std::chrono::milliseconds reconnect_spread{std::chrono::seconds{3}};
    /// @brief The seed of the reconnect spread; 0: from `std::random_device`.
    std::uint64_t spread_seed = 0;
    /// @brief The first periodic run comes at once (else after one `period`).
    bool run_at_start = true;
};

namespace detail {
/// The order in which triggers due together name their one run.
inline constexpr std::array<sync_trigger, 6> trigger_precedence{
    sync_trigger::user,        sync_trigger::event,     sync_trigger::reconnect,
    sync_trigger::after_write, sync_trigger::retry_due, sync_trigger::scheduled};

/// True if a run's outcome says the server cannot be reached now (offline,
/// logged out, network failure, rate limited, 5xx): the scheduler backs off.
inline bool says_down(const result<sync_report>& done) {
    auto down = [](errc c) {
        return c == errc::offline || c == errc::unauthorized || c == errc::transient || c == errc::rate_limited;
    };
    if (!done) return down(done.error().code);
    if (done->skipped) return *done->skipped != skip_reason::already_running;
    return done->failure && down(done->failure->code);
}
}  // namespace detail

/// @brief Runs `target.sync(trigger)` when it should run, and says why.
///
/// Triggers (each run carries the one that started it, see `sync_trigger`):
/// - **scheduled**: every `period` (the first at once, see `run_at_start`);
/// - **after_write**: `notify(sync_trigger::after_write)`, which an
///   `announcing_target` (an engine) sends after every successful local write.
///   Fire-and-forget: while a run is asked and not begun it costs the write one
///   atomic load, and a burst of writes shares one run;
/// - **reconnect**: `notify(sync_trigger::reconnect)` (an engine sends it from
///   `set_online(true)` / `set_authenticated(true)`), spread over
///   `reconnect_spread`; it ends the backoff, and writes queued while down
///   wait for it (a fleet's queued writes do not all arrive at once either);
/// - **retry_due**: the `retry_aware_target`'s `earliest_next_attempt()`,
///   asked after every run, is run when it arrives;
/// - **user**, **event**: `notify(...)`, run at once.
///
/// Rules:
/// - one run at a time; a trigger that arrives during a run is never lost: it
///   starts another run once this one ends (triggers already due share it);
/// - `pause()` (the app went to the background): nothing runs, triggers queue;
///   `resume()` runs at once, then periodically again;
/// - a run that finds the server unreachable (offline, unauthorized, a network
///   failure, 429/5xx) marks it down: periodic runs then back off along
///   `down_backoff`, and writes and retries wait for that run (nothing is sent
///   to a dead server per write); `user`, `event` and `reconnect` still run;
/// - all time comes from `Clock`.
///
/// Two ways to drive it: deterministically (`next_wakeup()`, `run_due()`:
/// tests with a `manual_clock`), or with its runner thread (`start()`,
/// `stop()`), which sleeps until the next wake-up and is woken by triggers.
///
/// The scheduler must outlive every call into the target that may notify it,
/// and be destroyed (which stops it and unsets `on_sync_wanted`) only when no
/// write is in progress.
///
/// @code
/// auto jobs = tether::make_engine<Job>(tether::manual_clock{});
/// tether::scheduler sched{jobs, jobs.clock()};
/// (void)jobs.create(Job{"memo.m4a", 0});  // notifies `after_write`
/// sched.run_due();                        // runs jobs.sync(sync_trigger::after_write)
/// @endcode
template <sync_target Target, clock_policy Clock = system_clock>
class scheduler {
public:
    /// @brief A scheduler of `target` by `clock`; sets `target.on_sync_wanted`
    /// when the target offers it.
    scheduler(Target& target, Clock clock, scheduler_options options = {})
        : target_(target), clock_(std::move(clock)), options_(std::move(options)), backoff_(options_.down_backoff) {
        const auto now = clock_.now();
        periodic_at_ = options_.run_at_start ? now : now + options_.period;
        if constexpr (announcing_target<Target>) {
            target_.on_sync_wanted([this](sync_trigger why) { notify(why); });
        }
    }

    scheduler(const scheduler&) = delete;
    scheduler& operator=(const scheduler&) = delete;

    /// @brief Stops the runner thread (waiting for a running sync) and unsets
    /// the target's `on_sync_wanted`.
    ~scheduler() {
        stop();
        if constexpr (announcing_target<Target>) target_.on_sync_wanted(nullptr);
    }

    // ---- triggers -------------------------------------------------------------

    /// @brief Asks for a run for the reason `why` (fire-and-forget, never
    /// blocks on a sync). `after_write` requests coalesce: while one waits, the
    /// next costs one atomic load. `reconnect` ends the backoff and runs
    /// within `reconnect_spread`; every other trigger runs at once.
    void notify(sync_trigger why) {
        // A run is asked and not begun: it will see this write (the store's lock
        // orders the write before the run's reads, or the run's begin before this load).
        if (why == sync_trigger::after_write && write_asked_.load(std::memory_order_acquire)) return;
        if (why == sync_trigger::after_write && write_asked_.exchange(true, std::memory_order_acq_rel)) return;
        std::lock_guard lock{mutex_};
        const auto now = clock_.now();
        auto at = now;
        if (why == sync_trigger::reconnect) {
            down_ = false;
            failures_ = 0;
            at = now + spread_();
            // What queued while down rides on the spread run, not before it.
            for (auto t : {sync_trigger::after_write, sync_trigger::retry_due, sync_trigger::scheduled}) {
                if (auto& queued = asked_[index(t)]; queued && *queued < at) queued = at;
            }
            if (retry_at_ && *retry_at_ < at) retry_at_ = at;
        }
        auto& slot = asked_[index(why)];
        if (!slot || at < *slot) slot = at;
        changed_();
    }

    /// @brief The app went to the background: no run until `resume()`; triggers queue.
    void pause() {
        std::lock_guard lock{mutex_};
        paused_ = true;
        changed_();
    }

    /// @brief The app is back: a run at once (`scheduled`, or the queued
    /// triggers'), then periodic runs again.
    void resume() {
        std::lock_guard lock{mutex_};
        if (!paused_) return;
        paused_ = false;
        periodic_at_ = clock_.now();
        changed_();
    }

    /// @brief True while paused.
    [[nodiscard]] bool paused() const {
        std::lock_guard lock{mutex_};
        return paused_;
    }

    /// @brief True while the last runs found the server unreachable (backing off).
    [[nodiscard]] bool down() const {
        std::lock_guard lock{mutex_};
        return down_;
    }

    // ---- deterministic driving -------------------------------------------------

    /// @brief When the next run falls due (it may be in the past: run it now);
    /// empty while paused or stopped (nothing will run until a call changes that).
    [[nodiscard]] std::optional<timestamp> next_wakeup() const {
        std::lock_guard lock{mutex_};
        return wakeup_();
    }

    /// @brief Runs, in this thread, what is due at the clock's `now`, and again
    /// while triggers arrive during the runs; returns how many runs it made.
    /// Returns 0 at once if another thread is running a sync (that one picks up
    /// what is due).
    std::size_t run_due() {
        std::unique_lock lock{mutex_};
        std::size_t runs = 0;
        while (!running_ && !stopping_) {
            const auto started = clock_.now();
            const auto why = due_(started);
            if (!why) break;
            begin_();
            lock.unlock();
            std::optional<result<sync_report>> done;
            std::optional<timestamp> retry;
            try {
                done.emplace(target_.sync(*why));
                retry = ask_retry_();
            } catch (...) {
                lock.lock();
                finish_(started, std::nullopt, std::nullopt);
                throw;
            }
            lock.lock();
            finish_(started, std::move(done), retry);
            ++runs;
        }
        return runs;
    }

    /// @brief The outcome of the last run, if any ran.
    [[nodiscard]] std::optional<result<sync_report>> last_result() const {
        std::lock_guard lock{mutex_};
        return last_;
    }

    // ---- the runner thread -------------------------------------------------------

    /// @brief Starts the runner thread (no-op if it runs): it waits on the
    /// system clock for `next_wakeup()` (the time left by `Clock`), is woken
    /// early by every trigger, `pause`, `resume` and `stop`, and runs `run_due()`.
    void start() {
        std::lock_guard lock{mutex_};
        if (runner_.joinable()) return;
        stopping_ = false;
        runner_ = std::thread{[this] { loop_(); }};
    }

    /// @brief Stops: no new run starts; waits for a running sync (in the runner
    /// or in a `run_due()` elsewhere) to end, then joins the runner thread.
    /// `start()` may follow.
    void stop() {
        std::thread runner;
        {
            std::unique_lock lock{mutex_};
            stopping_ = true;
            changed_();
            cv_.wait(lock, [&] { return !running_; });
            runner.swap(runner_);
        }
        if (runner.joinable()) runner.join();
    }

private:
    static constexpr std::size_t index(sync_trigger t) noexcept { return static_cast<std::size_t>(t); }

    /// Something a waiting runner must look at again (under the lock).
    void changed_() {
        ++generation_;
        cv_.notify_all();
    }

    /// When trigger `t` is due, if it is (under the lock).
    [[nodiscard]] std::optional<timestamp> due_at_(sync_trigger t) const {
        const bool waits_out_backoff = t == sync_trigger::after_write || t == sync_trigger::retry_due ||
                                       t == sync_trigger::scheduled;
        if (down_ && waits_out_backoff) {
            return t == sync_trigger::scheduled ? periodic_at_ : std::nullopt;  // the backoff run takes them along
        }
        std::optional<timestamp> at = asked_[index(t)];
        auto earlier = [&](const std::optional<timestamp>& other) {
            if (other && (!at || *other < *at)) at = other;
        };
        if (t == sync_trigger::scheduled) earlier(periodic_at_);
        if (t == sync_trigger::retry_due) earlier(retry_at_);
        return at;
    }

    [[nodiscard]] std::optional<timestamp> wakeup_() const {
        if (paused_ || stopping_) return std::nullopt;
        std::optional<timestamp> next;
        for (auto t : detail::trigger_precedence) {
            const auto at = due_at_(t);
            if (at && (!next || *at < *next)) next = at;
        }
        return next;
    }

    /// The trigger of the run due at `now`: the first, by precedence, that is due.
    [[nodiscard]] std::optional<sync_trigger> due_(timestamp now) const {
        if (paused_ || stopping_) return std::nullopt;
        for (auto t : detail::trigger_precedence) {
            if (const auto at = due_at_(t); at && *at <= now) return t;
        }
        return std::nullopt;
    }

    /// A run starts: it covers every trigger asked so far (one sync pushes and
    /// pulls everything); those asked from now on start another.
    void begin_() {
        running_ = true;
        asked_.fill(std::nullopt);
        retry_at_.reset();
        write_asked_.exchange(false, std::memory_order_acq_rel);  // pairs with notify's exchange
    }

    /// A run ended (`done` empty: it threw): the next periodic run, after
    /// `period` or the backoff, and the next retry.
    void finish_(timestamp started, std::optional<result<sync_report>> done, std::optional<timestamp> retry) {
        running_ = false;
        const auto now = clock_.now();
        if (done && detail::says_down(*done)) {
            down_ = true;
            ++failures_;
            const error why = *done ? done->value().failure.value_or(error{errc::offline, "down", {}, {}})
                                    : done->error();
            periodic_at_ = now + backoff_.next_delay(failures_, why).value_or(options_.down_backoff.cap);
        } else {
            down_ = false;
            failures_ = 0;
            periodic_at_ = now + options_.period;
            if (done && *done && (*done)->retry_at && *(*done)->retry_at > *periodic_at_) {
                periodic_at_ = (*done)->retry_at;  // the server said when to come back
            }
        }
        // A retry at or before this run's start was this run's to push: if it is
        // still there (a batch limit, a failure), the periodic run takes it, so
        // the scheduler never spins on it.
        if (retry && *retry > started) retry_at_ = retry;
        if (done) last_ = std::move(done);
        changed_();
    }

    std::optional<timestamp> ask_retry_() {
        if constexpr (retry_aware_target<Target>) {
            auto at = std::as_const(target_).earliest_next_attempt();
            if (at) return *at;
        }
        return std::nullopt;
    }

    std::chrono::milliseconds spread_() {
        const auto span = options_.reconnect_spread.count();
        if (span <= 0) return std::chrono::milliseconds{0};
        return std::chrono::milliseconds{spread_rng_.uniform(options_.spread_seed, 0, span)};
    }

    void loop_() {
        std::unique_lock lock{mutex_};
        while (!stopping_) {
            if (running_) {  // a run_due() in another thread: wait for it
                cv_.wait(lock, [&] { return stopping_ || !running_; });
                continue;
            }
            const auto next = wakeup_();
            const auto now = clock_.now();
            if (next && *next <= now) {
                lock.unlock();
                try {
                    (void)run_due();
                } catch (...) {
                    // The target threw: the scheduler goes on (the next run comes after `period`).
                }
                lock.lock();
                continue;
            }
            const auto seen = generation_;
            if (next) {
                cv_.wait_for(lock, *next - now, [&] { return stopping_ || generation_ != seen; });
            } else {
                cv_.wait(lock, [&] { return stopping_ || generation_ != seen; });
            }
        }
    }

    Target& target_;
    Clock clock_;
    scheduler_options options_;

    mutable std::mutex mutex_;  // guards everything below but write_asked_
    std::condition_variable cv_;
    std::array<std::optional<timestamp>, detail::trigger_precedence.size()> asked_{};
    std::optional<timestamp> periodic_at_;
    std::optional<timestamp> retry_at_;
    std::optional<result<sync_report>> last_;
    exponential_backoff backoff_;
    detail::backoff_rng spread_rng_;
    std::uint32_t failures_ = 0;
    std::uint64_t generation_ = 0;
    bool paused_ = false;
    bool down_ = false;
    bool running_ = false;
    bool stopping_ = false;
    std::thread runner_;
    std::atomic<bool> write_asked_{false};  // an after_write run is asked and not yet begun
};

}  // namespace tether
