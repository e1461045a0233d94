#pragma once

#include <tether/core/error.hpp>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <optional>

namespace tether {

/// @brief The kind tag of backoff policies.
struct backoff_tag {};

/// @brief Decides when a failed attempt is tried again, and when to give up.
///
/// After the n-th failed attempt at a record (n >= 1), the engine asks the policy
/// for the delay until the next one; `std::nullopt` means "give up" and the
/// record becomes `failed`.
///
/// Requirements on a type `P`:
/// 1. `P::policy_kind` is `tether::backoff_tag`;
/// 2. `P` is copy constructible;
/// 3. `p.next_delay(failed_attempts, e)` on a non-const `P& p`, with a
///    `std::uint32_t failed_attempts` (the number of failed attempts so far) and
///    the last attempt's `const tether::error& e`, returns a
///    `std::optional<std::chrono::milliseconds>`: the delay before the next
///    attempt, or `std::nullopt` to give up. It is called on a non-const object
///    so that a policy may keep state (e.g. the random generator behind jitter).
///
/// @code
/// struct fixed_backoff {
///     using policy_kind = tether::backoff_tag;
///     std::chrono::milliseconds delay{std::chrono::seconds{30}};
///     std::uint32_t max_attempts = 3;
///     std::optional<std::chrono::milliseconds> next_delay(std::uint32_t n, const tether::error&) {
///         if (n >= max_attempts) return std::nullopt;
///         return delay;
///     }
/// };
/// static_assert(tether::backoff_policy<fixed_backoff>);
/// @endcode
///
/// @see tether::exponential_backoff, the default.
template <class P>
concept backoff_policy = std::same_as<typename P::policy_kind, backoff_tag>
    && std::copy_constructible<P>
    && requires(P& p, std::uint32_t failed_attempts, const error& e) {
           { p.next_delay(failed_attempts, e) } -> std::same_as<std::optional<std::chrono::milliseconds>>;
       };

}  // namespace tether
