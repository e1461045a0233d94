#pragma once

#include <tether/backoff/backoff.hpp>
#include <tether/core/error.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>

namespace tether {

/// @brief How `exponential_backoff` randomises its delays, so that many devices
/// that failed together do not all retry in lockstep.
///
/// With `d` the capped exponential delay of the current attempt:
enum class jitter : std::uint8_t {
    none,          ///< exactly `d`
    full,          ///< uniform in `[0, d]`
    equal,         ///< `d/2` plus uniform in `[0, d/2]`, i.e. uniform in `[d/2, d]`
    decorrelated,  ///< uniform in `[base, min(cap, 3 * previous)]`, `previous` = the un-jittered delay of the attempt before (`base` for the first)
};

namespace detail {

/// @brief One step of splitmix64: advances `state` and returns 64 well-mixed bits.
[[nodiscard]] constexpr std::uint64_t splitmix64(std::uint64_t& state) noexcept {
    state += 0x9e3779b97f4a7c15ULL;
    std::uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/// @brief `min(base * factor^(n-1), cap)` in milliseconds, never overflowing.
///
/// Expects `0 <= base`, `0 <= cap` and `n >= 1`. A `factor` below 1 or NaN counts
/// as 1; a `base` above `cap` yields `cap`. The power is taken in `long double`
/// and compared with `cap` before any conversion back to an integer, so any `n`
/// up to `UINT32_MAX` and any `factor` (even infinity) is safe.
[[nodiscard]] inline std::int64_t capped_exponential(std::int64_t base, double factor,
                                                     std::int64_t cap, std::uint32_t n) noexcept {
    if (base >= cap) return cap;
    if (base == 0) return 0;
    if (!(factor > 1.0) || n <= 1) return base;
    const long double growth =
        std::pow(static_cast<long double>(factor), static_cast<long double>(n - 1));
    const long double delay = static_cast<long double>(base) * growth;
    if (!(delay < static_cast<long double>(cap))) return cap;
    // `cap` may round up when widened (when long double is only a double), so clamp again.
    return std::min(static_cast<std::int64_t>(delay), cap);
}

/// @brief The random source behind `exponential_backoff`'s jitter.
///
/// A splitmix64 stream, seeded on first use from the owner's `seed`, or from
/// `std::random_device` (mixed with the time and the object's address) when the
/// seed is 0. It is re-seeded whenever the owner's `seed` changes. Copies carry
/// the stream's position, so a copy continues the same sequence.
class backoff_rng {
public:
    /// @brief A uniform integer in `[lo, hi]` (expects `0 <= lo <= hi`).
    [[nodiscard]] std::int64_t uniform(std::uint64_t seed, std::int64_t lo, std::int64_t hi) {
        if (hi <= lo) return lo;
        const auto span = static_cast<std::uint64_t>(hi - lo);  // < 2^63: no overflow
        const std::uint64_t bound = span + 1;
        // Rejection sampling: drop the top `2^64 mod bound` values so every result is equally likely.
        const std::uint64_t threshold = (std::uint64_t{0} - bound) % bound;
        std::uint64_t r = next(seed);
        while (r < threshold) r = next(seed);
        return lo + static_cast<std::int64_t>(r % bound);
    }

private:
    std::uint64_t next(std::uint64_t seed) {
        if (!seeded_ || seed != seeded_with_) {
            state_ = seed != 0 ? seed : entropy();
            seeded_with_ = seed;
            seeded_ = true;
        }
        return splitmix64(state_);
    }

    std::uint64_t entropy() const {
        std::uint64_t e = static_cast<std::uint64_t>(
            std::chrono::steady_clock::now().time_since_epoch().count());
        e ^= static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(this)) * 0x9e3779b97f4a7c15ULL;
#if defined(__cpp_exceptions)
        try {
#endif
            std::random_device device;
            e ^= (static_cast<std::uint64_t>(device()) << 32) ^ device();
#if defined(__cpp_exceptions)
        } catch (...) {
            // No entropy device: the time and address above still decorrelate devices.
        }
#endif
        return e;
    }

    std::uint64_t state_ = 0;
    std::uint64_t seeded_with_ = 0;
    bool seeded_ = false;
};

}  // namespace detail

/// @brief The default backoff policy: capped exponential delays, optional jitter,
/// and a bounded number of attempts.
///
/// After the n-th failed attempt (n >= 1; 0 counts as 1) it returns:
/// - `std::nullopt` (give up) once `n >= max_attempts`; `max_attempts == 0` never gives up;
/// - otherwise `d = min(base * factor^(n-1), cap)`, randomised as `jitter` says;
/// - raised to the server's `e.retry_after` when that is longer (a Retry-After is
///   a lower bound): `cap` bounds our own backoff, not the server's explicit
///   instruction, which is clamped to `max_retry_after` instead (default 24 h);
///   a negative `retry_after` is ignored.
///
/// The result is always within `[0, max(cap, min(retry_after, max_retry_after))]`. Out-of-range settings are tamed rather
/// than trusted: a `factor` below 1 (or NaN) counts as 1, a negative `base` or `cap`
/// as 0, and a `base` above `cap` yields `cap`. No `n` up to `UINT32_MAX` and no
/// `factor` overflows.
///
/// It is an aggregate: set only what differs from the defaults.
///
/// @code
/// tether::exponential_backoff b;           // base 1 min, factor 2, cap 1 h, 5 attempts
/// tether::error e{tether::errc::transient, "timeout", std::nullopt, std::nullopt};
/// b.next_delay(1, e);                      // 1 min
/// b.next_delay(2, e);                      // 2 min
/// b.next_delay(3, e);                      // 4 min
/// b.next_delay(4, e);                      // 8 min
/// b.next_delay(5, e);                      // std::nullopt: give up, the record is failed
///
/// tether::exponential_backoff fast{.base = std::chrono::seconds{1},
///                                  .cap = std::chrono::seconds{30},
///                                  .jitter = tether::jitter::full};
/// @endcode
///
/// With a `seed` of 0 the jitter is seeded from `std::random_device` on first use,
/// so devices do not retry in lockstep; any other seed makes the sequence
/// reproducible (for tests and simulations).
struct exponential_backoff {
    using policy_kind = backoff_tag;

    std::chrono::milliseconds base{std::chrono::minutes{1}};  ///< the delay after the first failure
    double factor = 2.0;                                       ///< growth per further failure (>= 1)
    std::chrono::milliseconds cap{std::chrono::hours{1}};     ///< the longest delay ever returned
    std::uint32_t max_attempts = 5;                            ///< give up after this many failures; 0 = never
    tether::jitter jitter = tether::jitter::none;              ///< how delays are randomised
    std::uint64_t seed = 0;                                    ///< jitter seed; 0 = from `std::random_device`
    std::chrono::milliseconds max_retry_after{std::chrono::hours{24}};  ///< the longest server Retry-After honoured

    /// @brief Internal: the jitter's random stream. Leave it defaulted.
    detail::backoff_rng rng_{};

    /// @brief The delay before the next attempt after `failed_attempts` failures,
    /// or `std::nullopt` to give up. See the class documentation for the rules.
    [[nodiscard]] std::optional<std::chrono::milliseconds> next_delay(std::uint32_t failed_attempts,
                                                                      const error& e) {
        const std::uint32_t n = failed_attempts == 0 ? 1 : failed_attempts;
        if (max_attempts != 0 && n >= max_attempts) return std::nullopt;

        const std::int64_t c = std::max<std::int64_t>(cap.count(), 0);
        const std::int64_t b = std::max<std::int64_t>(base.count(), 0);
        std::int64_t d = detail::capped_exponential(b, factor, c, n);

        switch (jitter) {
            case tether::jitter::none: break;
            case tether::jitter::full: d = rng_.uniform(seed, 0, d); break;
            case tether::jitter::equal: d = rng_.uniform(seed, d / 2, d); break;
            case tether::jitter::decorrelated: {
                const std::int64_t previous = detail::capped_exponential(b, factor, c, n > 1 ? n - 1 : 1);
                const std::int64_t hi = previous > c / 3 ? c : 3 * previous;
                d = rng_.uniform(seed, std::min(b, c), hi);
                break;
            }
        }

        if (e.retry_after && e.retry_after->count() >= 0) {
            d = std::max(d, std::min<std::int64_t>(e.retry_after->count(), std::max<std::int64_t>(max_retry_after.count(), 0)));
        }
        return std::chrono::milliseconds{d};
    }
};

static_assert(backoff_policy<exponential_backoff>);

}  // namespace tether
