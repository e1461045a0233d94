#pragma once

// tether::http_options: everything an HTTP transport is configured by.
#include <tether/transport/http/timeouts.hpp>
#include <tether/transport/http/token.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

namespace tether {

/// @brief The settings of an `http_transport` (docs/protocol.md describes the server side).
///
/// @code
/// tether::http_options o;
/// o.base_url = "https://sync.example.com";
/// o.token_provider = [&] { return auth.fresh_token(); };   // asked again once after a 401
/// tether::http_transport transport{o};
/// @endcode
struct http_options {
    /// `http://host[:port][/prefix]` or `https://...`; endpoints go after the prefix.
    std::string base_url;
    /// A fixed bearer token (`Authorization: Bearer <token>`); leave empty when a
    /// provider is set, or for a server that needs none. Never in any message.
    std::string token;
    /// Asked for the token on first use and once after a 401, after which the
    /// request is sent once more; takes the place of `token` (set one, not both).
    http::token_provider token_provider;
    /// Connect, read and write timeouts.
    http::timeouts timeouts;
    /// Request bodies longer than this are sent gzipped (`Content-Encoding:
    /// gzip`); `std::nullopt` never gzips. A server answering 415 to a gzipped
    /// body gets it again plain, and plain from then on. Gzipped answers are
    /// always accepted (`Accept-Encoding: gzip`).
    std::optional<std::size_t> gzip_above = 16 * 1024;
    /// The largest batch `push` sends (at least 1; keep it within the server's
    /// `max_ops`, 500 by default); a larger one is refused with
    /// `errc::too_large` without a request, and the engine splits it.
    std::size_t max_batch = 100;
    /// What `has_change_feed()` answers: false for a server whose `changes`
    /// lists everything in one page.
    bool has_change_feed = true;
    /// Keep-alive connections kept open, so this many requests run at once.
    std::size_t pool_size = 4;
    /// A push body over this (before gzip) is refused with `errc::too_large`
    /// without being sent, as the server would refuse it (its `max_body_bytes`).
    std::size_t max_request_bytes = 8u * 1024u * 1024u;
    /// An answer body over this (after gzip is undone) fails with `errc::protocol`.
    std::size_t max_answer_bytes = 64u * 1024u * 1024u;
    /// Answers nested deeper than this fail with `errc::protocol`.
    std::size_t max_answer_depth = 128;
    /// https: a PEM file of the CAs to trust instead of the system's.
    std::string ca_cert_path;
    /// https: check the server's certificate and host name (leave on outside tests).
    bool verify_tls = true;
    /// The live feed (`subscribe`): how long its stream may stay silent
    /// before it counts as lost (keep it above the server's heartbeat, 15 s
    /// by default).
    std::chrono::milliseconds live_read_timeout{std::chrono::seconds{45}};
    /// The live feed: the longest line, and event, of its stream.
    std::size_t max_live_event_bytes = 2u * 1024u * 1024u;
    /// The `User-Agent` header.
    std::string user_agent = "tether/0.1";
};

}  // namespace tether
