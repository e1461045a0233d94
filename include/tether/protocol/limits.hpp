#pragma once

// tether::protocol: the version of the wire protocol and the limits a server
// enforces on what it is sent (docs/protocol.md, "Limits").
#include <cstddef>

namespace tether::protocol {

/// @brief The wire protocol version this code speaks (the `/v1/` in every path).
inline constexpr int version = 1;

/// @brief The longest server id, in bytes, either side accepts.
inline constexpr std::size_t max_server_id_bytes = 256;

/// @brief The longest pull cursor, in bytes, either side accepts.
inline constexpr std::size_t max_cursor_bytes = 1024;

/// @brief The longest `origin` (device id), in bytes, either side accepts.
inline constexpr std::size_t max_origin_bytes = 256;

/// @brief The longest error `message`, in bytes, either side accepts.
inline constexpr std::size_t max_error_message_bytes = 64u * 1024u;

/// @brief What a server accepts in one request; each is configurable on the
/// server and announced by `GET /v1/info`.
///
/// A request over `max_body_bytes`, `max_ops` or `max_depth` is refused whole
/// (HTTP 413, `errc::too_large`) and nothing of it is applied; one op whose
/// value is over `max_value_bytes` is rejected alone (`too_large`, inside the
/// 200 answer) and the other ops of the batch go on.
struct limits {
    std::size_t max_body_bytes = 8u * 1024u * 1024u;  ///< request body, after any gzip is undone
    std::size_t max_ops = 500;                        ///< ops in one push batch
    std::size_t max_depth = 64;                       ///< nesting of arrays and objects in a request body
    std::size_t max_value_bytes = 1024u * 1024u;      ///< one op's `value`, serialised compactly

    friend bool operator==(const limits&, const limits&) = default;
};

/// @brief Bounds on one JSON document about to be parsed.
struct parse_limits {
    std::size_t max_bytes = 64u * 1024u * 1024u;  ///< longest text accepted
    std::size_t max_depth = 128;                  ///< deepest nesting of arrays and objects accepted
};

/// @brief The bounds a server parses a request body with: its body and depth limits.
[[nodiscard]] constexpr parse_limits request_parse_limits(const limits& l) noexcept {
    return parse_limits{l.max_body_bytes, l.max_depth};
}

/// @brief The bounds a client parses an answer with by default. Answers nest a
/// record's value a few levels deeper than a push did (outcome, record), and a
/// page holds many records, so both bounds are above a request's.
inline constexpr parse_limits answer_parse_limits{64u * 1024u * 1024u, 128};

}  // namespace tether::protocol
