#pragma once

// What the sync passes are given and what they give back. The passes
// (push.hpp, outcome.hpp, conflict.hpp, pull.hpp, resync.hpp) are free
// function templates over a `sync_context`: they never see the engine, only
// the policies, the shared in-flight set with its lock, and the `pass_shell`
// through which effects are delivered and lines logged. Each returns a
// `pass_result`; the engine adds it to the call's report. Not a public entry
// point.
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/record.hpp>
#include <tether/core/result.hpp>
#include <tether/core/timestamp.hpp>
#include <tether/engine/detail/effects.hpp>
#include <tether/engine/log.hpp>
#include <tether/engine/report.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

namespace tether::detail {

/// The storage key of this device's id (the `origin` of its pushes).
inline constexpr std::string_view device_id_key = "device_id";
/// Rounds one sync call runs at most while writes keep asking for more.
inline constexpr int max_sync_rounds = 8;

/// What a pass asks of the engine that runs it: effects built for whoever
/// listens and delivered after their transaction, a log line, whether sync may
/// go on (online and authenticated), a fresh local id, and a report of the
/// records the store cannot read. Every call is made with no store lock held,
/// except `fresh_id` (inside the transaction that inserts the record).
template <class Entity>
class pass_shell {
public:
    [[nodiscard]] virtual effects<Entity> make_effects() const = 0;
    virtual void deliver(effects<Entity>& fx, bool committed) = 0;
    virtual void log(log_level level, std::string_view message) const = 0;
    [[nodiscard]] virtual bool may_sync() const = 0;
    [[nodiscard]] virtual local_id fresh_id(timestamp now) = 0;
    virtual void report_unreadable() = 0;

protected:
    pass_shell() = default;
    pass_shell(const pass_shell&) = default;
    pass_shell& operator=(const pass_shell&) = default;
    ~pass_shell() = default;
};

/// Figures the engine keeps since it started (`health()`), counted by the passes.
struct sync_counters {
    std::atomic<std::uint64_t> unapplied{0};  // pulled items not applied
    std::atomic<std::uint64_t> resyncs{0};    // full resyncs
};

/// The engine-wide "not before" of pulls after failed ones: read by
/// `next_pull_at()` from any thread, written by the pull pass.
class pull_backoff {
public:
    /// When the next pull may go out (empty: now). A clock set back before the
    /// failed pull ends the wait.
    [[nodiscard]] std::optional<timestamp> not_before(timestamp now) const noexcept {
        const auto at = not_before_.load(std::memory_order_relaxed);
        if (at == none) return std::nullopt;
        if (now.time_since_epoch().count() < failed_at_.load(std::memory_order_relaxed)) return std::nullopt;
        return timestamp{std::chrono::milliseconds{at}};
    }
    /// Counts a failed pull; returns how many failed in a row.
    std::uint32_t count_failure() noexcept { return failures_.fetch_add(1, std::memory_order_relaxed) + 1; }
    /// Pulls wait until `until`, from a failure at `failed_at`.
    void wait(timestamp failed_at, timestamp until) noexcept {
        failed_at_.store(failed_at.time_since_epoch().count(), std::memory_order_relaxed);
        not_before_.store(until.time_since_epoch().count(), std::memory_order_relaxed);
    }
    /// A pull succeeded: no wait, no failures in a row.
    void clear() noexcept {
        failures_.store(0, std::memory_order_relaxed);
        not_before_.store(none, std::memory_order_relaxed);
    }

private:
    static constexpr std::int64_t none = std::numeric_limits<std::int64_t>::min();
    std::atomic<std::int64_t> not_before_{none};  // ms since the epoch
    std::atomic<std::int64_t> failed_at_{0};      // ms since the epoch
    std::atomic<std::uint32_t> failures_{0};
};

/// Everything a pass works with, by reference; built by the engine for each
/// call. Lock discipline: the store's lock first, then `state_mutex`, which
/// guards `in_flight` and `backoff` (its jitter state); never the reverse, and
/// no lock across a transport call or a `shell` call.
template <class Entity, class Store, class Transport, class Backoff, class Conflict, class Clock, class Options>
struct sync_context {
    using entity_type = Entity;
    using record_type = record<Entity>;

    Store& store;
    Transport& transport;
    Backoff& backoff;
    const Conflict& conflict;
    const Clock& clock;
    const Options& options;
    std::string_view device_id;  // this device's push origin, established before any pass runs
    std::mutex& state_mutex;
    std::set<local_id>& in_flight;
    sync_counters& counters;
    detail::pull_backoff& pull_wait;
    pass_shell<Entity>& shell;
};

/// What a pass did: what it counted (added to the call's report), whether a
/// record it settled has a change to go up in another round of this call, a
/// refusal of the credentials that pauses sync, and an error of the store
/// that ended it (the pass's other results stand: what committed, committed).
struct pass_result {
    sync_report report;
    bool rerun = false;
    std::optional<error> unauthorized;
    result<void> status;
};

/// Adds one pass's report to the call's: counts add up, a failure and a
/// retry time replace the earlier ones.
inline void add_report(sync_report& into, const sync_report& from) {
    into.pushed += from.pushed;
    into.pulled += from.pulled;
    into.conflicts += from.conflicts;
    into.retrying += from.retrying;
    into.failed += from.failed;
    into.removed += from.removed;
    into.unapplied += from.unapplied;
    if (from.retry_at) into.retry_at = from.retry_at;
    if (from.failure) into.failure = from.failure;
}

/// True while a push of the record is on its way (under `state_mutex`).
template <class Ctx>
[[nodiscard]] bool is_in_flight(const Ctx& ctx, const local_id& id) {
    std::lock_guard lock{ctx.state_mutex};
    return ctx.in_flight.contains(id);
}

/// The backoff's delay before attempt `attempts + 1` (under `state_mutex`).
template <class Ctx>
[[nodiscard]] std::optional<std::chrono::milliseconds> backoff_delay(Ctx& ctx, std::uint32_t attempts,
                                                                     const error& e) {
    std::lock_guard lock{ctx.state_mutex};
    return ctx.backoff.next_delay(attempts, e);
}

/// Marks a push batch in flight for as long as it lives, whatever happens.
template <class Ctx, class Ids>
class in_flight_mark {
public:
    in_flight_mark(Ctx& ctx, const Ids& ids) : ctx_(ctx), ids_(ids) {
        std::lock_guard lock{ctx_.state_mutex};
        ctx_.in_flight.insert(ids_.begin(), ids_.end());
    }
    in_flight_mark(const in_flight_mark&) = delete;
    in_flight_mark& operator=(const in_flight_mark&) = delete;
    ~in_flight_mark() {
        std::lock_guard lock{ctx_.state_mutex};
        for (const auto& id : ids_) ctx_.in_flight.erase(id);
    }

private:
    Ctx& ctx_;
    const Ids& ids_;
};

}  // namespace tether::detail
