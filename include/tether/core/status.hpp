#pragma once

#include <tether/core/cause.hpp>
#include <tether/core/timestamp.hpp>
#include <tether/core/ids.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

namespace tether {

/// @brief Where a record stands with the server.
enum class sync_status : std::uint8_t {
    pending,           ///< has local changes waiting to go up
    synced,            ///< equal to the server's copy as last seen
    pending_deletion,  ///< deleted locally; the server's delete is not yet confirmed
    error,             ///< the last attempt failed; will retry after its backoff
    failed,            ///< gave up (permanent error or attempts exhausted); needs `reset_failed`
};

/// @brief Number of `sync_status` values.
inline constexpr std::size_t sync_status_count = 5;

/// @brief The canonical lower-case name of a status (`"pending_deletion"`, ...).
[[nodiscard]] constexpr std::string_view to_string(sync_status s) noexcept {
    switch (s) {
        case sync_status::pending: return "pending";
        case sync_status::synced: return "synced";
        case sync_status::pending_deletion: return "pending_deletion";
        case sync_status::error: return "error";
        case sync_status::failed: return "failed";
    }
    return "unknown";
}

/// @brief Parses a name produced by `to_string(sync_status)`.
[[nodiscard]] constexpr std::optional<sync_status> sync_status_from_string(std::string_view s) noexcept {
    for (std::size_t i = 0; i < sync_status_count; ++i) {
        const auto st = static_cast<sync_status>(i);
        if (to_string(st) == s) return st;
    }
    return std::nullopt;
}

inline std::ostream& operator<<(std::ostream& os, sync_status s) { return os << to_string(s); }

/// @brief The legal status transitions, as data: `legal_transitions[from][to]`.
///
/// Staying in the same status is always legal (and is not reported as a
/// transition). The table, row by row:
/// - `pending` → `synced` (push applied), `error` (retryable failure), `failed`
///   (permanent failure or attempts exhausted), `pending_deletion` (removed
///   before the change went up, record known to the server);
/// - `synced` → `pending` (local edit), `pending_deletion` (local remove);
/// - `pending_deletion` → `synced` (a conflict resolved in the server's favour
///   restores the record), `pending` (a merge that keeps local changes), `error`,
///   `failed`;
/// - `error` → `pending` (local edit), `synced`, `pending_deletion`, `failed`;
/// - `failed` → `pending` (`reset_failed`), `pending_deletion` (local remove),
///   `synced` (the server's copy replaces it, e.g. by a pull).
inline constexpr std::array<std::array<bool, sync_status_count>, sync_status_count> legal_transitions{{
    //             pending synced pend_del error  failed
    /* pending  */ {{true,  true,  true,    true,  true}},
    /* synced   */ {{true,  true,  true,    false, false}},
    /* pend_del */ {{true,  true,  true,    true,  true}},
    /* error    */ {{true,  true,  true,    true,  true}},
    /* failed   */ {{true,  true,  true,    false, true}},
}};

/// @brief True if the state machine allows `from` → `to`.
[[nodiscard]] constexpr bool is_legal_transition(sync_status from, sync_status to) noexcept {
    return legal_transitions[static_cast<std::size_t>(from)][static_cast<std::size_t>(to)];
}

/// @brief One change in a record's life, as reported to the transition hook.
///
/// `from` is empty when the record was created (locally or by a pull), `to`
/// is empty when it was deleted (locally or by the server). `legal` is false
/// for a transition the engine refused; the record then kept `from`.
struct transition {
    local_id id;                       ///< the record
    std::optional<sync_status> from;   ///< status before (empty: the record is new)
    std::optional<sync_status> to;     ///< status after (empty: the record is gone)
    timestamp at;                      ///< when, by the engine's clock
    std::string cause;                 ///< why: "create", "update", "push applied", "pull", ...
    bool legal = true;                 ///< false if the engine refused it as illegal
    /// Why the sync that made it ran; empty for a local write (create, update, ...).
    std::optional<sync_trigger> trigger{};
};

}  // namespace tether
