#pragma once

#include <tether/core/timestamp.hpp>

#include <chrono>
#include <concepts>

namespace tether {

/// @brief The kind tag of clock policies.
struct clock_tag {};

/// @brief A source of time for the engine: backoff, scheduling and timestamps.
///
/// Requirements on a type `C`:
/// 1. `C::policy_kind` is `tether::clock_tag`;
/// 2. `C` is copy constructible (copies may share one time, as `manual_clock`'s do);
/// 3. `c.now()` on a `const C` returns a `tether::timestamp`, is thread-safe and never throws.
///
/// @code
/// struct frozen_clock {
///     using policy_kind = tether::clock_tag;
///     tether::timestamp t;
///     tether::timestamp now() const noexcept { return t; }
/// };
/// static_assert(tether::clock_policy<frozen_clock>);
/// @endcode
template <class C>
concept clock_policy = std::same_as<typename C::policy_kind, clock_tag>
    && std::copy_constructible<C>
    && requires(const C& c) {
           { c.now() } -> std::same_as<timestamp>;
       };

}  // namespace tether
