#pragma once

#include <tether/clock/clock.hpp>

#include <atomic>
#include <chrono>
#include <memory>

namespace tether {

/// @brief A clock that moves only when told to: the clock of deterministic tests.
///
/// Copies share one time, so a test keeps a copy and advances the time an engine
/// sees: no sleeps, no flakiness.
///
/// @code
/// tether::manual_clock clock;                  // starts at 2024-01-01T00:00:00Z
/// auto engine = tether::make_engine<Job>(clock);
/// clock.advance(std::chrono::minutes{2});       // the engine sees two minutes pass
/// @endcode
class manual_clock {
public:
    using policy_kind = clock_tag;

    /// @brief The default start: 2024-01-01T00:00:00Z (a fixed, realistic epoch).
    static constexpr timestamp default_start{std::chrono::milliseconds{1704067200000}};

    /// @brief A clock at `start`.
    explicit manual_clock(timestamp start = default_start)
        : now_(std::make_shared<std::atomic<std::int64_t>>(start.time_since_epoch().count())) {}

    /// @brief The current (shared) time.
    [[nodiscard]] timestamp now() const noexcept {
        return timestamp{std::chrono::milliseconds{now_->load(std::memory_order_acquire)}};
    }

    /// @brief Moves every copy of this clock forward (or back, for a negative `d`).
    void advance(std::chrono::milliseconds d) noexcept {
        now_->fetch_add(d.count(), std::memory_order_acq_rel);
    }

    /// @brief Sets every copy of this clock to `t` (a jump in either direction).
    void set(timestamp t) noexcept {
        now_->store(t.time_since_epoch().count(), std::memory_order_release);
    }

private:
    std::shared_ptr<std::atomic<std::int64_t>> now_;
};

static_assert(clock_policy<manual_clock>);

}  // namespace tether
