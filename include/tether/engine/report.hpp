#pragma once

// What one sync(), push() or pull() call did.
#include <tether/core/cause.hpp>
#include <tether/core/error.hpp>
#include <tether/core/timestamp.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace tether {

/// @brief Why a sync call did nothing.
enum class skip_reason : std::uint8_t {
    offline,          ///< `set_online(false)` was called
    unauthorized,     ///< not authenticated (or paused by a 401)
    already_running,  ///< another sync was running; it goes round once more unless it failed or hit
                      ///< its round limit, in which case the sync-needed hook fires when it ends
};

/// @brief The canonical name of a skip reason.
[[nodiscard]] constexpr std::string_view to_string(skip_reason s) noexcept {
    switch (s) {
        case skip_reason::offline: return "offline";
        case skip_reason::unauthorized: return "unauthorized";
        case skip_reason::already_running: return "already_running";
    }
    return "unknown";
}

/// @brief What a `sync()`, `push()` or `pull()` did.
struct sync_report {
    std::size_t pushed = 0;               ///< ops the server applied
    std::size_t pulled = 0;               ///< server records and tombstones applied locally
    std::size_t conflicts = 0;            ///< conflicts settled by the conflict policy
    std::size_t retrying = 0;             ///< records moved to `error` (will retry after backoff)
    std::size_t failed = 0;               ///< records moved to `failed`
    std::size_t removed = 0;              ///< records deleted locally (confirmed or by the server)
    /// Pulled items that could not be applied (malformed: an empty, nil or
    /// duplicate id; a value that does not decode; an item the transport's
    /// decoder refused, `pull_page::refused`): each is skipped and logged,
    /// the rest of its page and the cursor commit, and one with a usable server
    /// id is fetched again at a later pull.
    std::size_t unapplied = 0;
    /// When the server said to come back (a 429/503's Retry-After, or the pull
    /// backoff after a failed pull): pulls before then are not sent.
    std::optional<timestamp> retry_at;
    std::optional<skip_reason> skipped;   ///< set if the call did nothing, and why
    std::optional<tether::error> failure; ///< a failure that cut the run short (e.g. offline mid-run)
    /// Why the call ran: `sync(trigger)`'s argument; `user` for a plain `sync()`, `push()` or `pull()`.
    sync_trigger trigger = sync_trigger::user;

    /// @brief True if the run did nothing because it was gated.
    [[nodiscard]] bool was_skipped() const noexcept { return skipped.has_value(); }
};

}  // namespace tether
