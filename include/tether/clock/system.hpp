#pragma once

#include <tether/clock/clock.hpp>

#include <chrono>

namespace tether {

/// @brief The default clock: wall-anchored timestamps that advance steadily.
///
/// `now()` is the system time at construction plus the steady time elapsed since:
/// timestamps stored in a database stay meaningful across restarts, while a wall
/// clock set back or forward during a run does not make backoff fire early or
/// late. Copies share the anchor of the instance they were copied from.
struct system_clock {
    using policy_kind = clock_tag;

    /// @brief The current time (thread-safe, never throws).
    [[nodiscard]] timestamp now() const noexcept {
        const auto elapsed = std::chrono::steady_clock::now() - steady_anchor_;
        return wall_anchor_ + std::chrono::duration_cast<std::chrono::milliseconds>(elapsed);
    }

private:
    timestamp wall_anchor_ = std::chrono::time_point_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now());
    std::chrono::steady_clock::time_point steady_anchor_ = std::chrono::steady_clock::now();
};

static_assert(clock_policy<system_clock>);

}  // namespace tether
