#pragma once

// tether::protocol: where each exchange lives: the collection-name rule, the
// path of every endpoint, and the percent-encoding of path segments and query
// values (docs/protocol.md, "Endpoints").
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace tether::protocol {

/// @brief True for a valid collection name: 1 to 64 of `A-Z a-z 0-9 _ . -`, not
/// starting with a dot (so `.` and `..` are never path segments). Such a name
/// needs no escaping in a URL.
[[nodiscard]] constexpr bool valid_collection(std::string_view name) noexcept {
    if (name.empty() || name.size() > 64 || name.front() == '.') return false;
    for (const char c : name) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                        c == '.' || c == '-';
        if (!ok) return false;
    }
    return true;
}

/// @brief `s` with every byte outside the URL-unreserved set (`A-Z a-z 0-9 - . _ ~`)
/// written as `%XX` (upper-case hex), as a path segment or a query value.
[[nodiscard]] inline std::string percent_encode(std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size());
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                                c == '-' || c == '.' || c == '_' || c == '~';
        if (unreserved) {
            out.push_back(ch);
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 0x0F]);
        }
    }
    return out;
}

/// @brief Undoes `percent_encode` (either hex case); `std::nullopt` for a `%`
/// not followed by two hex digits. `+` stays `+`.
[[nodiscard]] inline std::optional<std::string> percent_decode(std::string_view s) {
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out.push_back(s[i]);
            continue;
        }
        if (i + 2 >= s.size()) return std::nullopt;
        const int hi = hex(s[i + 1]);
        const int lo = hex(s[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out.push_back(static_cast<char>((hi << 4) | lo));
        i += 2;
    }
    return out;
}

/// @brief `/v1/{collection}/push`.
[[nodiscard]] inline std::string push_path(std::string_view collection) {
    return "/v1/" + std::string{collection} + "/push";
}

/// @brief `/v1/{collection}/changes`, with `?cursor=` (when not empty) and
/// `limit=` (when not 0), the cursor percent-encoded.
[[nodiscard]] inline std::string changes_path(std::string_view collection, std::string_view cursor,
                                              std::size_t limit) {
    std::string p = "/v1/" + std::string{collection} + "/changes";
    char sep = '?';
    if (!cursor.empty()) {
        p += sep;
        p += "cursor=" + percent_encode(cursor);
        sep = '&';
    }
    if (limit != 0) {
        p += sep;
        p += "limit=" + std::to_string(limit);
    }
    return p;
}

/// @brief `/v1/{collection}/records/{server_id}`, the server id percent-encoded.
[[nodiscard]] inline std::string record_path(std::string_view collection, std::string_view server_id) {
    return "/v1/" + std::string{collection} + "/records/" + percent_encode(server_id);
}

/// @brief `/v1/info`.
inline constexpr std::string_view info_path = "/v1/info";

/// @brief `/healthz` (no version: a load balancer's probe, never authenticated).
inline constexpr std::string_view health_path = "/healthz";

}  // namespace tether::protocol
