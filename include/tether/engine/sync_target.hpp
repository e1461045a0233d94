#pragma once

// What a `scheduler` drives: anything with a `sync(trigger)` call (an engine,
// a coordinator of several engines), and optionally a live feed to follow.
#include <tether/core/cause.hpp>
#include <tether/core/result.hpp>
#include <tether/core/timestamp.hpp>
#include <tether/engine/live.hpp>
#include <tether/engine/report.hpp>

#include <concepts>
#include <functional>
#include <optional>
#include <utility>

namespace tether {

/// @brief Something a `scheduler` can run: `t.sync(why)` with a
/// `tether::sync_trigger why` returns `result<sync_report>`, is safe to call
/// from the scheduler's thread while the app uses `t`, and is single-flight
/// itself (a call during a running one is absorbed into it, as
/// `sync_engine::sync` does).
///
/// Optional members make the scheduler do more, each used when present:
/// - `t.earliest_next_attempt()` returning `result<std::optional<timestamp>>`
///   (`retry_aware_target`): the scheduler runs a sync when it falls due;
/// - `t.on_sync_wanted(std::function<void(sync_trigger)>)`
///   (`announcing_target`): the scheduler sets it, and hears of every local
///   write and every reconnect without the app telling it;
/// - `t.follow(notify)`, `t.unfollow()`, `t.apply_live()` and
///   `t.live_status()` (`live_target`): `scheduler::follow()` keeps the
///   target on its live feed, applies events as they arrive and re-follows
///   after the feed ends.
///
/// @code
/// struct counter {
///     int runs = 0;
///     tether::result<tether::sync_report> sync(tether::sync_trigger why) {
///         ++runs;
///         tether::sync_report r;
///         r.trigger = why;
///         return r;
///     }
/// };
/// static_assert(tether::sync_target<counter>);
/// @endcode
template <class T>
concept sync_target = requires(T& t, sync_trigger why) {
    { t.sync(why) } -> std::same_as<result<sync_report>>;
};

/// @brief A `sync_target` that says when its next retry falls due.
template <class T>
concept retry_aware_target = sync_target<T> && requires(const T& t) {
    { t.earliest_next_attempt() } -> std::same_as<result<std::optional<timestamp>>>;
};

/// @brief A `sync_target` that announces when it wants a sync, and why.
template <class T>
concept announcing_target = sync_target<T> && requires(T& t, std::function<void(sync_trigger)> fn) {
    t.on_sync_wanted(std::move(fn));
};

/// @brief A `sync_target` with a live feed (`sync_engine` over a
/// `live_transport`): `follow(notify)` subscribes and calls `notify()` for each
/// event and for the end of the subscription, `apply_live()` applies the queued
/// events, `live_status()` says whether it still follows and how many events
/// came, `unfollow()` stops.
template <class T>
concept live_target = sync_target<T> && requires(T& t, const T& c, std::function<void()> notify) {
    { t.follow(std::move(notify)) } -> std::same_as<result<void>>;
    { t.apply_live() } -> std::same_as<result<sync_report>>;
    { c.live_status() } -> std::same_as<live_status>;
    t.unfollow();
};

}  // namespace tether
