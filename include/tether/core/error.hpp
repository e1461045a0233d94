#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

namespace tether {

/// @brief What went wrong, as a category a caller can act on.
///
/// Every fallible call in tether returns `result<T>`; its error carries one of
/// these codes. `is_retryable()` tells which ones a later attempt may cure.
enum class errc : std::uint8_t {
    not_found,         ///< no record (or server object) with that id
    invalid_argument,  ///< the caller passed something malformed (e.g. bad id text)
    invalid_state,     ///< the call is not legal in the record's/engine's state
    conflict,          ///< the server holds a newer version than the one edited
    offline,           ///< the engine is offline; nothing was sent
    unauthorized,      ///< the server refused the credentials (HTTP 401)
    rate_limited,      ///< the server asked to slow down (HTTP 429, maybe Retry-After)
    transient,         ///< network failure, timeout or 5xx: try again later
    rejected,          ///< the server refused the operation for good (permanent 4xx)
    storage,           ///< the local store failed (I/O, corruption, constraint)
    protocol,          ///< a malformed payload from the other side
    busy,              ///< the operation is already running (e.g. a sync in flight)
    too_large,         ///< a request, batch or value over the other side's size limit (HTTP 413)
    cursor_expired,    ///< the server no longer knows the pull cursor (HTTP 410: restored from a
                       ///< backup, or past retention): the engine pulls everything again
};

/// @brief The canonical lower-case name of an error code (`"not_found"`, ...).
[[nodiscard]] constexpr std::string_view to_string(errc code) noexcept {
    switch (code) {
        case errc::not_found: return "not_found";
        case errc::invalid_argument: return "invalid_argument";
        case errc::invalid_state: return "invalid_state";
        case errc::conflict: return "conflict";
        case errc::offline: return "offline";
        case errc::unauthorized: return "unauthorized";
        case errc::rate_limited: return "rate_limited";
        case errc::transient: return "transient";
        case errc::rejected: return "rejected";
        case errc::storage: return "storage";
        case errc::protocol: return "protocol";
        case errc::busy: return "busy";
        case errc::too_large: return "too_large";
        case errc::cursor_expired: return "cursor_expired";
    }
    return "unknown";
}

/// @brief Parses a name produced by `to_string(errc)`.
[[nodiscard]] constexpr std::optional<errc> errc_from_string(std::string_view s) noexcept {
    for (auto c : {errc::not_found, errc::invalid_argument, errc::invalid_state, errc::conflict,
                   errc::offline, errc::unauthorized, errc::rate_limited, errc::transient,
                   errc::rejected, errc::storage, errc::protocol, errc::busy, errc::too_large,
                   errc::cursor_expired}) {
        if (to_string(c) == s) return c;
    }
    return std::nullopt;
}

/// @brief The error side of every `tether::result`.
///
/// @code
/// tether::error e{tether::errc::rate_limited, "slow down", 429, std::chrono::seconds{30}};
/// if (tether::is_retryable(e)) { /* the engine schedules another attempt */ }
/// @endcode
struct error {
    errc code = errc::transient;                            ///< what kind of failure
    std::string message;                                    ///< human-readable detail
    std::optional<int> http_status;                         ///< the HTTP status, when one was seen
    std::optional<std::chrono::milliseconds> retry_after;   ///< the server's Retry-After, if any

    friend bool operator==(const error&, const error&) = default;
};

/// @brief True for failures a later attempt may cure: `offline`, `transient`,
/// `rate_limited` and `busy`. Everything else (a rejected op, a conflict, bad
/// input, a storage failure) needs a decision, not a retry.
[[nodiscard]] constexpr bool is_retryable(const error& e) noexcept {
    switch (e.code) {
        case errc::offline:
        case errc::transient:
        case errc::rate_limited:
        case errc::busy: return true;
        default: return false;
    }
}

/// @brief Builds an error in one expression: `tether::make_error(errc::not_found, "no such job")`.
[[nodiscard]] inline error make_error(errc code, std::string message = {}) {
    return error{code, std::move(message), std::nullopt, std::nullopt};
}

inline std::ostream& operator<<(std::ostream& os, errc code) { return os << to_string(code); }

inline std::ostream& operator<<(std::ostream& os, const error& e) {
    os << to_string(e.code);
    if (!e.message.empty()) os << ": " << e.message;
    if (e.http_status) os << " (HTTP " << *e.http_status << ')';
    return os;
}

}  // namespace tether
