#pragma once

#include <chrono>

namespace tether {

/// @brief Every time tether reads or stores: milliseconds on the system clock's epoch.
///
/// Record timestamps (`created_at`, `next_attempt_at`, ...) are persisted, so they
/// are wall-anchored; the stock `system_clock` policy advances them with a steady
/// clock so that a wall-clock jump does not reorder a running process's schedule.
using timestamp = std::chrono::time_point<std::chrono::system_clock, std::chrono::milliseconds>;

}  // namespace tether
