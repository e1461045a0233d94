#pragma once

// The scheduler: the sync runs itself. It decides when a `sync_target` (an
// engine) syncs, and why: periodically, after local writes, when connectivity
// or login comes back, and when the earliest retry falls due; paused in the
// background, backing off while the server is unreachable; and, for a target
// with a live feed, applying its events as they come and re-following it.
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
    /// @brief False: no periodic runs while the server answers (a live feed
    /// and the other triggers alone: writes, reconnects, retries, `resume`,
    /// the catch-up after each follow). The backoff run while down still comes.
    bool periodic = true;
    /// @brief The delay before following a live feed again after its n-th end
    /// (or failed follow) in a row, on `Clock`: jittered, so a fleet cut off
    /// at once does not come back at once; the count starts over once a
    /// subscription delivers an event. Its `seed` makes the jitter reproducible.
    exponential_backoff live_backoff{.base = std::chrono::seconds{1},
                                     .factor = 2.0,
                                     .cap = std::chrono::minutes{2},
                                     .max_attempts = 0,
                                     .jitter = tether::jitter::equal};
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

/// What one run of a scheduler does: a sync (push and pull), the live pass
/// (`apply_live`), or a follow of the live feed.
enum class scheduled_job : std::uint8_t { sync, live, follow };

/// One run of a scheduler: what it does, and the trigger it carries.
struct scheduled_run {
    scheduled_job job = scheduled_job::sync;
    sync_trigger why = sync_trigger::scheduled;
};

/// What a run gave back: its report (a sync or live pass), its follow error,
/// the next retry, and the live feed's status after it (a `live_target`).
struct run_outcome {
    std::optional<result<sync_report>> done;
    std::optional<error> follow_failed;
    std::optional<timestamp> retry;
    std::optional<live_status> live;
};
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
/// - **user**, **event**: `notify(...)`, run at once. For a `live_target`
///   an `event` run is the live pass (`apply_live()`), not a sync.
///
/// Live feeds (a `live_target`, after `follow()`): the scheduler follows the
/// feed in its next run; each event (and the end of the subscription) asks an
/// `event` run at once, which applies the queued events. Each follow that
/// succeeds asks a catch-up sync (trigger `reconnect`, no spread): the feed
/// carries only what changes after it subscribed. When the feed ends (or a
/// follow fails) it follows again after `live_backoff` (jittered, on
/// `Clock`), whose count starts over once a subscription delivers; a
/// `reconnect` brings a waiting re-follow forward to its own run. Paused: no
/// re-follow. A sync does not apply queued events: the `event` run does.
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
/// - all time comes from `Clock`, re-follows' backoff included; a clock set
///   back before the last time the scheduler set a wait makes what waits due.
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
        set_at_ = now;
        if (options_.run_at_start) periodic_at_ = now;
        else if (options_.periodic) periodic_at_ = now + options_.period;
        if constexpr (announcing_target<Target>) {
            target_.on_sync_wanted([this](sync_trigger why) { notify(why); });
        }
    }

    scheduler(const scheduler&) = delete;
    scheduler& operator=(const scheduler&) = delete;

    /// @brief Stops the runner thread (waiting for a running sync), unfollows
    /// the live feed it followed, and unsets the target's `on_sync_wanted`.
    ~scheduler() {
        stop();
        if constexpr (live_target<Target>) {
            if (following()) target_.unfollow();  // the feed's notify points here
        }
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
        set_at_ = std::max(set_at_, now);
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
            if (refollow_at_ && *refollow_at_ > at) {  // the network is back: so may the feed be
                refollow_at_ = at;
                live_failures_ = 0;
            }
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

    /// @brief Keeps the target on its live feed (see the class): follows it in
    /// the next run, applies its events as they come, follows again after it ends.
    void follow() requires live_target<Target> {
        std::lock_guard lock{mutex_};
        live_wanted_ = true;
        live_failures_ = 0;
        refollow_at_ = clock_.now();
        changed_();
    }

    /// @brief Stops following the live feed: the target unfollows, no re-follow.
    void unfollow() requires live_target<Target> {
        {
            std::lock_guard lock{mutex_};
            live_wanted_ = false;
            refollow_at_.reset();
            changed_();
        }
        target_.unfollow();
    }

    /// @brief True between `follow()` and `unfollow()` (whether or not the
    /// feed is connected now: see the target's `live_status()`).
    [[nodiscard]] bool following() const {
        std::lock_guard lock{mutex_};
        return live_wanted_;
    }

    /// @brief When the live feed is followed again (empty: no follow planned).
    [[nodiscard]] std::optional<timestamp> next_follow() const {
        std::lock_guard lock{mutex_};
        return live_wanted_ ? refollow_at_ : std::nullopt;
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
            const auto next = due_(started);
            if (!next) break;
            begin_(*next);
            lock.unlock();
            detail::run_outcome out;
            try {
                run_(*next, out);
            } catch (...) {
                lock.lock();
                finish_(*next, started, {});
                throw;
            }
            lock.lock();
            finish_(*next, started, std::move(out));
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

    /// `at`, or now if the clock was set back before the moment the scheduler
    /// last set a time (a wait measured from then would stall it for as long).
    [[nodiscard]] std::optional<timestamp> waited_(std::optional<timestamp> at) const {
        const auto now = clock_.now();
        return at && now < set_at_ ? std::optional<timestamp>{now} : at;
    }

    /// The waits are measured from `now` from here on (under the lock). If the
    /// clock was set back before the last time the scheduler set one, every
    /// wait still ahead of `now` is due now, as `waited_` has said since the
    /// clock went back: once `set_at_` moves back to `now` that rule no longer
    /// applies, and a wait set an hour "ahead" before the clock went back an
    /// hour would stall the scheduler for as long (a backoff run, a re-follow,
    /// a queued trigger). A run then sets its own waits again.
    void rebase_(timestamp now) {
        if (now < set_at_) {
            auto due_now = [now](std::optional<timestamp>& at) {
                if (at && *at > now) at = now;
            };
            due_now(periodic_at_);
            due_now(retry_at_);
            due_now(refollow_at_);
            for (auto& at : asked_) due_now(at);
        }
        set_at_ = now;
    }

    /// When trigger `t` is due, if it is (under the lock).
    [[nodiscard]] std::optional<timestamp> due_at_(sync_trigger t) const {
        return waited_(due_at_as_set_(t));
    }

    [[nodiscard]] std::optional<timestamp> due_at_as_set_(sync_trigger t) const {
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
        std::optional<timestamp> next = live_wanted_ ? waited_(refollow_at_) : std::nullopt;
        for (auto t : detail::trigger_precedence) {
            const auto at = due_at_(t);
            if (at && (!next || *at < *next)) next = at;
        }
        return next;
    }

    /// The run due at `now`: a re-follow of the live feed first, then the
    /// first trigger, by precedence, that is due (`event`: the live pass of a `live_target`).
    [[nodiscard]] std::optional<detail::scheduled_run> due_(timestamp now) const {
        using detail::scheduled_job;
        if (paused_ || stopping_) return std::nullopt;
        if (const auto at = waited_(refollow_at_); live_wanted_ && at && *at <= now) {
            return detail::scheduled_run{scheduled_job::follow, sync_trigger::user};
        }
        for (auto t : detail::trigger_precedence) {
            if (const auto at = due_at_(t); at && *at <= now) {
                const bool live = live_target<Target> && t == sync_trigger::event;
                return detail::scheduled_run{live ? scheduled_job::live : scheduled_job::sync, t};
            }
        }
        return std::nullopt;
    }

    /// A run starts. A sync covers every trigger asked so far (one sync pushes
    /// and pulls everything) but a live target's `event` (a sync does not apply
    /// queued events); the live pass covers `event`; a follow, nothing else.
    /// Those asked from now on start another.
    void begin_(const detail::scheduled_run& r) {
        running_ = true;
        if (r.job == detail::scheduled_job::follow) {
            refollow_at_.reset();
            return;
        }
        auto& event = asked_[index(sync_trigger::event)];
        if (r.job == detail::scheduled_job::live) {
            event.reset();
            return;
        }
        const auto kept = live_target<Target> ? event : std::nullopt;
        asked_.fill(std::nullopt);
        event = kept;
        retry_at_.reset();
        write_asked_.exchange(false, std::memory_order_acq_rel);  // pairs with notify's exchange
    }

    /// Runs `r` in the calling thread, no lock held; fills `out`.
    void run_(const detail::scheduled_run& r, detail::run_outcome& out) {
        if constexpr (live_target<Target>) {
            if (r.job == detail::scheduled_job::follow) {
                if (auto f = target_.follow([this] { notify(sync_trigger::event); }); !f) out.follow_failed = f.error();
                if (!following()) target_.unfollow();  // unfollow() came during the follow
            } else {
                out.done.emplace(r.job == detail::scheduled_job::live ? target_.apply_live() : target_.sync(r.why));
            }
            out.live = std::as_const(target_).live_status();
        } else {
            out.done.emplace(target_.sync(r.why));
        }
        if (r.job == detail::scheduled_job::sync) out.retry = ask_retry_();
    }

    /// A run ended (`out.done` and `out.live` empty: it threw): a sync sets
    /// the next periodic run and retry; every run, the live feed's next step.
    void finish_(const detail::scheduled_run& r, timestamp started, detail::run_outcome out) {
        running_ = false;
        rebase_(clock_.now());
        if (r.job == detail::scheduled_job::sync) finish_sync_(started, std::move(out.done), out.retry);
        else if (out.done) last_ = std::move(out.done);
        if (out.live) finish_live_(r, *out.live, out.follow_failed);
        changed_();
    }

    /// After a sync (`done` empty: it threw): the next periodic run, after
    /// `period` or the backoff, and the next retry.
    void finish_sync_(timestamp started, std::optional<result<sync_report>> done, std::optional<timestamp> retry) {
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
            periodic_at_.reset();
            if (options_.periodic) periodic_at_ = now + options_.period;
            if (done && *done && (*done)->retry_at && (!periodic_at_ || *(*done)->retry_at > *periodic_at_)) {
                periodic_at_ = (*done)->retry_at;  // the server said when to come back
            }
        }
        // A retry at or before this run's start was this run's to push: if it is
        // still there (a batch limit, a failure), the periodic run takes it, so
        // the scheduler never spins on it.
        if (retry && *retry > started) retry_at_ = retry;
        if (done) last_ = std::move(done);
    }

    /// After any run of a live target: a subscription that delivered starts
    /// the backoff over; a follow that worked asks its catch-up sync; a feed
    /// not followed (ended, or the follow failed) is followed again after the
    /// backoff; events left queued after a sync ask the live pass.
    void finish_live_(const detail::scheduled_run& r, const live_status& st, const std::optional<error>& failed) {
        if (!live_wanted_) return;
        const auto now = clock_.now();
        if (st.received > live_seen_) {
            live_seen_ = st.received;
            live_failures_ = 0;
        }
        if (r.job == detail::scheduled_job::follow && !failed) {
            auto& catch_up = asked_[index(sync_trigger::reconnect)];
            if (!catch_up || *catch_up > now) catch_up = now;
        }
        if (!st.following && !refollow_at_) {
            ++live_failures_;
            const error why = failed ? *failed : st.ended.value_or(error{errc::transient, "live feed ended", {}, {}});
            refollow_at_ = now + live_backoff_.next_delay(live_failures_, why).value_or(options_.live_backoff.cap);
        }
        if (r.job == detail::scheduled_job::sync && st.queued > 0) {
            auto& event = asked_[index(sync_trigger::event)];
            if (!event) event = now;
        }
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
    timestamp set_at_{};  // the clock when a time was last set (a clock set back before it ends the waits)
    std::optional<timestamp> retry_at_;
    std::optional<result<sync_report>> last_;
    exponential_backoff backoff_;
    exponential_backoff live_backoff_{options_.live_backoff};
    detail::backoff_rng spread_rng_;
    std::optional<timestamp> refollow_at_;  // when the live feed is followed (again)
    std::uint64_t live_seen_ = 0;           // events the feed had delivered at the last look
    std::uint32_t live_failures_ = 0;       // ends and failed follows in a row
    bool live_wanted_ = false;              // follow() and no unfollow() since
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
