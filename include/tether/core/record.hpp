#pragma once

#include <tether/core/timestamp.hpp>
#include <tether/core/error.hpp>
#include <tether/core/field_set.hpp>
#include <tether/core/ids.hpp>
#include <tether/core/status.hpp>

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

namespace tether {

/// @brief How urgently a record should go up: pushes take higher priorities first.
enum class priority : std::uint8_t { low = 0, medium = 1, high = 2, critical = 3 };

/// @brief The canonical name of a priority (`"low"`, ..., `"critical"`).
[[nodiscard]] constexpr std::string_view to_string(priority p) noexcept {
    switch (p) {
        case priority::low: return "low";
        case priority::medium: return "medium";
        case priority::high: return "high";
        case priority::critical: return "critical";
    }
    return "unknown";
}

/// @brief One entity in the local store, with everything sync needs to know.
///
/// @tparam Entity the app's type (see `tether::entity`).
///
/// @code
/// tether::record<Job> r = engine.create(Job{"memo.m4a", 0}).value();
/// assert(r.status == tether::sync_status::pending && !r.server_id);
/// @endcode
template <class Entity>
struct record {
    local_id id;                                ///< client id (UUID v7), never changes
    std::optional<std::string> server_id;       ///< the server's id, once it has one
    Entity value{};                             ///< the app's data
    sync_status status = sync_status::pending;  ///< where the record stands with the server
    bool deleted = false;                       ///< removed locally: the pending change is a delete
    std::uint64_t version = 0;                  ///< server version last seen (0: never synced)
    std::uint64_t local_rev = 0;                ///< bumped by every local write
    field_set dirty;                            ///< fields changed locally since the last sync
    std::uint32_t attempts = 0;                 ///< failed push attempts since the last success
    std::optional<timestamp> last_attempt_at;   ///< when a push of it was last attempted (set before a first create goes out)
    std::optional<timestamp> next_attempt_at;   ///< not pushed again before this time
    std::optional<error> last_error;            ///< why the last attempt failed
    tether::priority priority = tether::priority::medium;  ///< push order: higher first
    timestamp created_at{};                     ///< when the record was created here (or pulled)
    timestamp updated_at{};                     ///< last local write or applied server value

    friend bool operator==(const record&, const record&) = default;
};

/// @brief True if a push may pick the record up at `now`: a `pending`,
/// `pending_deletion` or `error` record whose `next_attempt_at` is unset or has
/// come (only `error` records normally carry one). An `error` record whose last
/// attempt lies in the future (the clock was set back) is due at once, so a
/// backward clock jump never stretches a wait beyond the backoff.
template <class Entity>
[[nodiscard]] constexpr bool is_due(const record<Entity>& r, timestamp now) noexcept {
    switch (r.status) {
        case sync_status::pending:
        case sync_status::pending_deletion: return !r.next_attempt_at || *r.next_attempt_at <= now;
        case sync_status::error:
            // A clock that went back past the last attempt would stretch the wait beyond the backoff.
            return !r.next_attempt_at || *r.next_attempt_at <= now || (r.last_attempt_at && now < *r.last_attempt_at);
        default: return false;
    }
}

}  // namespace tether
