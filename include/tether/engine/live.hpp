#pragma once

/// @file
/// @brief `tether::live_status`: what an engine following the live feed knows
/// of it (`sync_engine::live_status()`).
#include <tether/core/error.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>

namespace tether {

/// @brief An engine's live feed: whether it follows it, and what it did with its events.
///
/// The counts are since the engine started (every `follow` included).
struct live_status {
    bool following = false;             ///< subscribed, and the feed has not ended the subscription
    std::optional<error> ended;         ///< why the feed ended the last subscription (cleared by `follow`)
    std::size_t queued = 0;             ///< events received and not yet applied (`apply_live`)
    std::uint64_t received = 0;         ///< events the feed delivered
    std::uint64_t applied = 0;          ///< events applied to the local store as they came
    std::uint64_t duplicates = 0;       ///< events at or below the local version, dropped
    std::uint64_t fetches = 0;          ///< records fetched because an event showed a gap or a missing record
    std::uint64_t covered = 0;          ///< events settled by a fetch (of their record, in the same drain)
    std::uint64_t unrepaired = 0;       ///< events whose fetch failed: left to the next pull
    std::uint64_t ignored = 0;          ///< events not applied: another collection, no server id, a full resync under way
    std::uint64_t cursor_advances = 0;  ///< times an event moved the pull cursor (contiguous, see `live_event`)
    std::uint64_t overflows = 0;        ///< times the queue passed `engine_options::live_inbox_limit` (dropped, pulled instead)
    std::uint64_t overflow_dropped = 0; ///< events dropped by those overflows (their changes come by the catch-up pull)
    bool catching_up = false;           ///< an overflow that no pull has repaired yet (the next live pass pulls)
};

}  // namespace tether
