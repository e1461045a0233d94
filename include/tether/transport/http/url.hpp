#pragma once

// tether::http: the base URL a transport talks to, split into what a
// cpp-httplib client needs (scheme, host, port) and the path prefix put before
// every endpoint. Shared by every HTTP transport.
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace tether::http {

/// @brief A parsed base URL: `http://127.0.0.1:8080` or `https://api.example.com/sync`.
struct base_url {
    std::string scheme;  ///< `http` or `https`
    std::string host;    ///< a name, an IPv4 address, or an IPv6 address without brackets
    int port = 0;        ///< explicit, or 80 / 443
    std::string prefix;  ///< the path before `/v1/...`, without a trailing slash (often empty)

    /// @brief `scheme://host:port`, as a cpp-httplib client is made from.
    [[nodiscard]] std::string origin() const {
        const bool v6 = host.find(':') != std::string::npos;
        return scheme + "://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
    }
};

/// @brief Parses `scheme://host[:port][/prefix]`. The scheme is `http` or
/// `https` (either case); no user info, query or fragment; the port 1 to 65535;
/// the host letters, digits, `.` and `-`, or a bracketed IPv6 address. Anything
/// else is `errc::invalid_argument`.
[[nodiscard]] inline result<base_url> parse_base_url(std::string_view url) {
    auto bad = [&](std::string_view why) {
        return result<base_url>{unexpect, make_error(errc::invalid_argument, "base_url: " + std::string{why})};
    };
    base_url out;
    const auto sep = url.find("://");
    if (sep == std::string_view::npos) return bad("expected scheme://host");
    for (const char c : url.substr(0, sep)) out.scheme.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
    if (out.scheme != "http" && out.scheme != "https") return bad("the scheme must be http or https");
    std::string_view rest = url.substr(sep + 3);
    const auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
    if (authority.find('@') != std::string_view::npos) return bad("user info is not allowed (send a token)");
    if (path.find_first_of("?#") != std::string_view::npos || authority.find_first_of("?#") != std::string_view::npos)
        return bad("no query or fragment allowed");
    std::string_view port_text;
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) return bad("unclosed IPv6 bracket");
        out.host = std::string{authority.substr(1, close - 1)};
        for (const char c : out.host) {
            const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
                            c == '.';
            if (!ok) return bad("not an IPv6 address");
        }
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return bad("junk after the IPv6 address");
            port_text = after.substr(1);
            if (port_text.empty()) return bad("empty port");
        }
    } else {
        const auto colon = authority.find(':');
        out.host = std::string{authority.substr(0, colon)};
        if (colon != std::string_view::npos) {
            port_text = authority.substr(colon + 1);
            if (port_text.empty()) return bad("empty port");
        }
        for (const char c : out.host) {
            const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                            c == '-';
            if (!ok) return bad("the host has a character not allowed in a name");
        }
    }
    if (out.host.empty()) return bad("no host");
    if (port_text.empty()) {
        out.port = out.scheme == "https" ? 443 : 80;
    } else {
        int port = 0;
        for (const char c : port_text) {
            if (c < '0' || c > '9' || port > 65535) return bad("not a port number");
            port = port * 10 + (c - '0');
        }
        if (port < 1 || port > 65535) return bad("the port must be 1 to 65535");
        out.port = port;
    }
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    for (const char c : path) {
        if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7F)
            return bad("the path has a space, control or non-ASCII character");
    }
    out.prefix = std::string{path};
    return out;
}

}  // namespace tether::http
