#pragma once

/// @file
/// @brief `tether::server::http_face_options`: what an HTTP face of the sync
/// service is configured by (target `tether::server_http`).
#include <tether/protocol/limits.hpp>
#include <tether/server/http/access_log.hpp>
#include <tether/server/http/auth.hpp>
#include <tether/server/http/events.hpp>
#include <tether/server/http/tokens.hpp>
#include <tether/server/sync_service.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace tether::server {

/// @brief The `service_limits` that agree with the protocol limits `l`: make the
/// service with these, so that what `GET /v1/info` announces is what applies.
[[nodiscard]] constexpr service_limits service_limits_for(const protocol::limits& l) noexcept {
    return service_limits{l.max_ops, l.max_value_bytes};
}

/// @brief The settings of an `http_face`.
struct http_face_options {
    /// What one request may hold (docs/protocol.md, "Limits"): over
    /// `max_body_bytes` (after gzip is undone), `max_ops` or `max_depth`, a
    /// push is refused whole with 413 and nothing applies; an op whose value
    /// is over `max_value_bytes` is rejected alone inside the 200 answer.
    /// Announced by `GET /v1/info`.
    protocol::limits limits{};
    /// Items per changes page when the request names no `limit`.
    std::size_t default_page = 100;
    /// The most items a changes page holds, whatever `limit` asks.
    std::size_t max_page = 1000;
    /// Requests a second per user (bursts of as many); over it, 429 with
    /// `Retry-After`. 0: no limit. Unauthenticated requests are refused
    /// before they count.
    std::uint32_t rate_limit = 0;
    /// Where the access log goes (one entry per request); empty: nowhere.
    access_sink access_log{};
    /// Requests one keep-alive connection serves before the server closes it
    /// (cpp-httplib's own default is 5: a syncing device would reconnect every
    /// fifth batch, each time on another worker thread). An idle connection
    /// still closes after cpp-httplib's keep-alive timeout (5 s).
    std::size_t keep_alive_requests = 10'000;
    /// The live events (`GET /v1/{collection}/events`): streams open at
    /// once, heartbeat, history, per-stream queue (see `event_options`).
    event_options events{};
};

}  // namespace tether::server
