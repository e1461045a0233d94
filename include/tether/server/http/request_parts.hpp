#pragma once

/// @file
/// @brief The small parts of an HTTP request the face reads besides its body:
/// the bearer token of an `Authorization` header and a page `limit`. Pure
/// functions of untrusted text, so they are tested and fuzzed on their own
/// (target `tether::server_http`).
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/transport/http/token.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace tether::server {

/// @brief The token of an `Authorization: Bearer <token>` header value (the
/// scheme in any case, one space, a token of visible ASCII as
/// `http::valid_token` says), or `errc::unauthorized` (HTTP 401) saying what is
/// wrong, never quoting the header.
[[nodiscard]] inline result<std::string_view> bearer_token(std::string_view header) {
    const auto refuse = [] {
        return unexpected{error{errc::unauthorized, "malformed Authorization header: expected Bearer <token>", 401,
                                std::nullopt}};
    };
    constexpr std::string_view scheme = "bearer ";
    if (header.size() <= scheme.size()) return refuse();
    for (std::size_t i = 0; i < scheme.size(); ++i) {
        const char c = header[i];
        if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != scheme[i]) return refuse();
    }
    const std::string_view token = header.substr(scheme.size());
    if (!http::valid_token(token)) return refuse();
    return token;
}

/// @brief The `limit` query value of `GET /v1/{collection}/changes`: 1 to
/// 999,999,999 in decimal digits (leading zeros allowed), or `errc::protocol`
/// (HTTP 400). The face then clamps it to its largest page.
[[nodiscard]] inline result<std::size_t> page_limit(std::string_view text) {
    std::size_t n = 0;
    const bool digits = !text.empty() && text.size() <= 9 && text.find_first_not_of("0123456789") == std::string_view::npos;
    if (digits)
        for (const char c : text) n = n * 10 + static_cast<std::size_t>(c - '0');
    if (n == 0) return unexpected{error{errc::protocol, "limit: expected a positive integer", 400, std::nullopt}};
    return n;
}

}  // namespace tether::server
