#pragma once

/// @file
/// @brief `tether::server::rate_limiter`: at most N requests per second per
/// user, on a clock policy, so that tests move time instead of sleeping
/// (target `tether::server_http`).
#include <tether/clock/clock.hpp>
#include <tether/clock/system.hpp>
#include <tether/core/timestamp.hpp>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace tether::server {

/// @brief A token bucket per user: `per_second` requests a second on average,
/// in bursts of at most `per_second`.
///
/// Each user's bucket holds up to `per_second` requests and refills at
/// `per_second` a second (counted in thousandths of a request per
/// millisecond, so the arithmetic is exact). `admit(user)` takes one request
/// from the bucket, or says how long until one is there: the face answers
/// that with 429 and `Retry-After`. A rate of 0 admits everything. Time comes
/// from `Clock` (a `clock_policy`): `manual_clock` in tests. Thread-safe. A
/// clock that goes back refills nothing until it passes its old time again.
///
/// @code
/// tether::manual_clock clock;
/// tether::server::rate_limiter<tether::manual_clock> limit{2, clock};
/// limit.admit("alice");                              // admitted
/// limit.admit("alice");                              // admitted
/// auto wait = limit.admit("alice");                  // refused: wait 500 ms
/// clock.advance(*wait);
/// limit.admit("alice");                              // admitted again
/// @endcode
template <clock_policy Clock = system_clock>
class rate_limiter {
public:
    /// @brief A limiter of `per_second` requests a second per user (0: no limit), on `clock`.
    explicit rate_limiter(std::uint32_t per_second = 0, Clock clock = Clock{})
        : rate_(per_second), clock_(std::move(clock)) {}

    /// @brief Takes one request from `user`'s bucket: `std::nullopt` when it is
    /// admitted, else the wait until the next one would be (at least 1 ms).
    [[nodiscard]] std::optional<std::chrono::milliseconds> admit(std::string_view user) {
        if (rate_ == 0) return std::nullopt;
        const std::int64_t now = clock_.now().time_since_epoch().count();
        const std::int64_t full = static_cast<std::int64_t>(rate_) * cost_;
        std::lock_guard lock{mutex_};
        auto [it, fresh] = buckets_.try_emplace(std::string{user}, bucket{full, now});
        bucket& b = it->second;
        if (!fresh && now > b.at) {
            // `rate_` requests a second is `rate_` thousandths of a request a millisecond.
            const std::int64_t elapsed = now - b.at;
            const std::int64_t gained = elapsed > full ? full : elapsed * static_cast<std::int64_t>(rate_);
            b.level = b.level + gained > full ? full : b.level + gained;
            b.at = now;
        }
        if (b.level >= cost_) {
            b.level -= cost_;
            return std::nullopt;
        }
        const std::int64_t missing = cost_ - b.level;
        const std::int64_t wait = (missing + rate_ - 1) / rate_;
        return std::chrono::milliseconds{wait < 1 ? 1 : wait};
    }

    /// @brief The rate it was made with (requests a second per user; 0: no limit).
    [[nodiscard]] std::uint32_t per_second() const noexcept { return rate_; }

private:
    static constexpr std::int64_t cost_ = 1000;  // one request, in thousandths

    struct bucket {
        std::int64_t level;  // thousandths of a request
        std::int64_t at;     // ms since the epoch of the last refill
    };

    const std::uint32_t rate_;
    Clock clock_;
    std::mutex mutex_;
    std::unordered_map<std::string, bucket> buckets_;
};

}  // namespace tether::server
