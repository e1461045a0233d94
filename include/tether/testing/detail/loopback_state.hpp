#pragma once

// What a `loopback_server` (testing/loopback_server.hpp) keeps and how a
// request begins: the state its handles share, the errors it answers with, and
// the request-level faults (`fail_next`, dropped requests and responses, seeded
// random faults), the token check, the value limit and the per-op screen
// (`poison`, random `reject_op`). Not a public entry point.
#include <tether/clock/clock.hpp>
#include <tether/core/error.hpp>
#include <tether/core/ids.hpp>
#include <tether/server/memory_store.hpp>
#include <tether/server/sync_service.hpp>
#include <tether/testing/loopback_events.hpp>
#include <tether/testing/loopback_faults.hpp>
#include <tether/transport/transport.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_set>
#include <utility>

namespace tether::detail {

/// Runs `f` in a read transaction of `store`; its value (the memory store never fails a read).
template <class F>
auto loopback_read(const server::memory_store& store, F&& f) {
    auto r = store.read(std::forward<F>(f));
    using value_type = std::remove_cvref_t<decltype(*r)>;
    return r ? std::move(*r) : value_type{};
}

/// A network failure or 5xx: `errc::transient`, HTTP 503.
inline error loopback_transient_error() { return error{errc::transient, "service unavailable", 503, std::nullopt}; }
/// Slow down: `errc::rate_limited`, HTTP 429, Retry-After `retry_after`.
inline error loopback_rate_limited_error(std::chrono::milliseconds retry_after) {
    return error{errc::rate_limited, "too many requests", 429, retry_after};
}
/// Bad credentials: `errc::unauthorized`, HTTP 401.
inline error loopback_unauthorized_error() { return error{errc::unauthorized, "unauthorized", 401, std::nullopt}; }
/// A permanent refusal: `errc::rejected`, HTTP 400.
inline error loopback_rejected_error() { return error{errc::rejected, "rejected", 400, std::nullopt}; }
/// An injected lost request (nothing applied).
inline error loopback_request_lost() { return error{errc::transient, "request lost", std::nullopt, std::nullopt}; }
/// An injected lost response (the request applied).
inline error loopback_response_lost() { return error{errc::transient, "response lost", std::nullopt, std::nullopt}; }

/// What the handles of one `loopback_server` share: the service (and its
/// store), the live feed, and the token, fault and configuration state, all
/// guarded by `mutex` (the service and the feed are thread-safe themselves).
struct loopback_state {
    using service_type = server::sync_service<server::memory_store>;  ///< the semantics it serves

    explicit loopback_state(std::function<timestamp()> now) : service(server::memory_store{}, {}, now), events(now) {
        service.set_observer([feed = events](std::string_view user, const live_event& e) mutable {
            feed.publish(user, e);
        });
    }

    mutable std::mutex mutex;
    mutable service_type service;  // thread-safe itself; used under `mutex` so requests apply in order
    loopback_events events;        // told of every commit by the service; delivers after the lock
    std::set<std::string, std::less<>> revoked;
    std::uint64_t requests = 0;
    std::size_t fail_next_count = 0;
    error fail_next_error;
    std::size_t drop_requests = 0;
    std::size_t drop_responses = 0;
    std::unordered_set<local_id> poisoned;
    std::optional<fault_rates> random;
    std::uint64_t rng = 0;
    fault_counts counts;
    std::function<void()> push_hook;
    bool omit_local_ids = false;
    std::size_t value_limit = 0;
    std::size_t bad_pages = 0;
    bad_item bad_kind = bad_item::nil_local_id;
    std::uint64_t decoys = 0;  // local ids handed out for duplicate_server_id items
};

/// A request's request-level fault, decided when it begins.
struct loopback_request_plan {
    std::optional<error> failure;  // fail before applying
    bool drop_response = false;    // apply, then lose the response
};

// Counts the request and decides its request-level fault (under the lock).
// With random faults on, every request draws once, so the sequence of draws
// depends only on the sequence of requests.
inline loopback_request_plan loopback_begin_request(loopback_state& s) {
    ++s.requests;
    const double u = s.random ? loopback_unit(s.rng) : 1.0;
    auto& c = s.counts;
    if (s.fail_next_count > 0) {
        --s.fail_next_count;
        ++c.failed_injected;
        return {s.fail_next_error, false};
    }
    if (s.drop_requests > 0) {
        --s.drop_requests;
        ++c.dropped_requests;
        return {loopback_request_lost(), false};
    }
    if (s.drop_responses > 0) {
        --s.drop_responses;
        ++c.dropped_responses;
        return {std::nullopt, true};
    }
    if (!s.random) return {};
    const auto& r = *s.random;
    double edge = r.drop_request;
    if (u < edge) {
        ++c.dropped_requests;
        return {loopback_request_lost(), false};
    }
    if (u < (edge += r.transient)) {
        ++c.transient;
        return {loopback_transient_error(), false};
    }
    if (u < (edge += r.rate_limited)) {
        ++c.rate_limited;
        return {loopback_rate_limited_error(r.retry_after), false};
    }
    if (u < (edge += r.unauthorized)) {
        ++c.unauthorized;
        return {loopback_unauthorized_error(), false};
    }
    if (u < (edge += r.drop_response)) {
        ++c.dropped_responses;
        return {std::nullopt, true};
    }
    return {};
}

// An empty or revoked token: 401.
inline std::optional<error> loopback_check_token(const loopback_state& s, std::string_view token) {
    if (token.empty()) return error{errc::unauthorized, "missing token", 401, std::nullopt};
    if (s.revoked.contains(token)) return error{errc::unauthorized, "token revoked", 401, std::nullopt};
    return std::nullopt;
}

// A push whose op value is over the value limit: 413, nothing applied.
inline std::optional<error> loopback_over_value_limit(const loopback_state& s, std::span<const push_op> ops) {
    if (s.value_limit == 0) return std::nullopt;
    for (const auto& op : ops) {
        if (op.value.is_null()) continue;
        const auto size = op.value.dump().size();
        if (size > s.value_limit)
            return error{errc::too_large,
                         "value of " + op.id.to_string() + " is " + std::to_string(size) +
                             " bytes, over the limit of " + std::to_string(s.value_limit),
                         413, std::nullopt};
    }
    return std::nullopt;
}


// Per op, before the service looks at it: `poison`, then a random `reject_op` draw.
inline std::optional<error> loopback_screen(loopback_state& s, const push_op& op) {
    if (s.poisoned.contains(op.id)) {
        ++s.counts.rejected_ops;
        return error{errc::rejected, "poisoned record " + op.id.to_string(), 400, std::nullopt};
    }
    if (s.random && s.random->reject_op > 0 && loopback_unit(s.rng) < s.random->reject_op) {
        ++s.counts.rejected_ops;
        return error{errc::rejected, "injected rejection", 400, std::nullopt};
    }
    return std::nullopt;
}

}  // namespace tether::detail
