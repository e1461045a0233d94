#pragma once

/// @file
/// @brief `tether::server::restore_marks_at`: where a server store's epochs,
/// change numbers and server ids go on from after a restore from a backup.
///
/// A store put back from a backup knows nothing of what it handed out after
/// the backup was taken, so `mark_restored(now)` (`sqlite_store`,
/// `postgres_store`) moves every collection's epoch on to at least
/// `restore_marks_at(now).epoch` (every cursor handed out before answers
/// `errc::cursor_expired`) and makes change numbers and server ids go on from
/// at least `restore_marks_at(now).floor`: milliseconds since the Unix epoch
/// × 1024, above anything a store could have counted up to before, unless it
/// took over a thousand changes a millisecond for its whole life.
#include <tether/core/timestamp.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>

namespace tether::server {

/// @brief The lower bounds a restore at some instant sets (see the file).
struct restore_marks {
    /// @brief The least epoch of every collection after the restore:
    /// milliseconds since the Unix epoch (0 for an instant before it).
    std::int64_t epoch = 0;
    /// @brief The least last change number of every collection, and the least
    /// server-id counter, after the restore: `epoch` × 1024, or `epoch` itself
    /// where that product would not fit a signed 64-bit integer.
    std::int64_t floor = 0;

    /// @brief Field-wise equality.
    friend constexpr bool operator==(const restore_marks&, const restore_marks&) = default;
};

/// @brief The marks of a restore at `now` (see the file). Never negative;
/// never decreasing in `now`, except that past about 285 000 years after
/// 1970 the floor falls back to the milliseconds themselves.
[[nodiscard]] constexpr restore_marks restore_marks_at(timestamp now) noexcept {
    const std::int64_t ms = std::max<std::int64_t>(0, now.time_since_epoch().count());
    constexpr std::int64_t shift = 10;  // × 1024
    const std::int64_t floor = ms > (std::numeric_limits<std::int64_t>::max() >> shift) ? ms : ms << shift;
    return {ms, floor};
}

}  // namespace tether::server
