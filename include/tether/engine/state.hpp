#pragma once

// The engine's state for a status indicator, and its health figures.
#include <tether/storage/storage.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string_view>

namespace tether {

/// @brief The engine's overall sync state, for a status indicator.
enum class engine_state : std::uint8_t {
    idle,          ///< nothing running; the last run had no failure
    syncing,       ///< a push or pull is running
    offline,       ///< `set_online(false)`: sync does nothing
    unauthorized,  ///< logged out or the server said 401: sync waits for `set_authenticated(true)`
    error,         ///< the last run met a failure (see its report); will retry
};

/// @brief The canonical name of an engine state.
[[nodiscard]] constexpr std::string_view to_string(engine_state s) noexcept {
    switch (s) {
        case engine_state::idle: return "idle";
        case engine_state::syncing: return "syncing";
        case engine_state::offline: return "offline";
        case engine_state::unauthorized: return "unauthorized";
        case engine_state::error: return "error";
    }
    return "unknown";
}

inline std::ostream& operator<<(std::ostream& os, engine_state s) { return os << to_string(s); }

/// @brief Health figures: the store's counts by status (`pending`, `synced`,
/// `pending_deletion`, `error`, `failed`, `unreadable`, `oldest_pending`: see
/// `status_counts`), the age of the oldest unsynced change, and what the engine
/// has met since it started.
struct health_report : status_counts {
    std::optional<std::chrono::milliseconds> oldest_pending_age;  ///< now − oldest unsynced change
    engine_state state = engine_state::idle;                ///< the engine's state
    std::uint64_t cleanup_failures = 0;                     ///< cleanup hook failures since start
    std::uint64_t unapplied = 0;      ///< pulled items refused or skipped since start (see `sync_report::unapplied`)
    std::uint64_t resyncs = 0;        ///< full resyncs since start (a server gone back in time, or a 410)
};

}  // namespace tether
