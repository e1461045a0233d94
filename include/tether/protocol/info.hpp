#pragma once

// tether::protocol: `GET /v1/info`, what a server says of itself: the protocol
// version it speaks, its limits and whether it has a change feed.
#include <tether/core/error.hpp>
#include <tether/core/result.hpp>
#include <tether/protocol/detail/read.hpp>
#include <tether/protocol/limits.hpp>
#include <tether/protocol/parse.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <utility>

namespace tether::protocol {

/// @brief A server's description of itself.
struct server_info {
    int protocol_version = version;  ///< the protocol version it speaks (1)
    limits server_limits;            ///< what it accepts in one request
    bool change_feed = true;         ///< false: `changes` lists everything in one page

    friend bool operator==(const server_info&, const server_info&) = default;
};

/// @brief Info as JSON: `{"protocol": 1, "limits": {...}, "change_feed": true}`.
[[nodiscard]] inline nlohmann::json to_json(const server_info& i) {
    nlohmann::json j = nlohmann::json::object();
    j["protocol"] = i.protocol_version;
    j["limits"] = {{"max_body_bytes", i.server_limits.max_body_bytes},
                   {"max_ops", i.server_limits.max_ops},
                   {"max_depth", i.server_limits.max_depth},
                   {"max_value_bytes", i.server_limits.max_value_bytes}};
    j["change_feed"] = i.change_feed;
    return j;
}

/// @brief The body of an info answer.
[[nodiscard]] inline result<std::string> encode_info(const server_info& i) { return dump_json(to_json(i)); }

/// @brief Decodes an info answer: `protocol` and every limit are required
/// positive integers, `change_feed` absent is true. Never throws.
[[nodiscard]] inline result<server_info> decode_info(std::string_view body,
                                                     const parse_limits& bounds = answer_parse_limits) {
    try {
        auto doc = parse_json(body, bounds);
        if (!doc) return unexpected{std::move(doc).error()};
        if (auto ok = detail::require_object(*doc, "info"); !ok) return unexpected{std::move(ok).error()};
        auto proto = detail::read_uint(*doc, "protocol", "info");
        if (!proto) return unexpected{std::move(proto).error()};
        if (*proto == 0 || *proto > 1000) return unexpected{detail::malformed("info", "protocol", "not a version")};
        nlohmann::json* l = detail::member(*doc, "limits");
        if (l == nullptr) return unexpected{detail::malformed("info", "limits", "missing")};
        if (auto ok = detail::require_object(*l, "info.limits"); !ok) return unexpected{std::move(ok).error()};
        server_info info;
        info.protocol_version = static_cast<int>(*proto);
        for (auto [key, field] : {std::pair{"max_body_bytes", &limits::max_body_bytes},
                                  std::pair{"max_ops", &limits::max_ops},
                                  std::pair{"max_depth", &limits::max_depth},
                                  std::pair{"max_value_bytes", &limits::max_value_bytes}}) {
            auto v = detail::read_uint(*l, key, "info.limits");
            if (!v) return unexpected{std::move(v).error()};
            if (*v == 0) return unexpected{detail::malformed("info.limits", key, "must be positive")};
            info.server_limits.*field = static_cast<std::size_t>(*v);
        }
        auto feed = detail::read_opt_bool(*doc, "change_feed", "info", true);
        if (!feed) return unexpected{std::move(feed).error()};
        info.change_feed = *feed;
        return info;
    } catch (const std::exception&) {
        return unexpected{make_error(errc::protocol, "info: cannot decode")};
    }
}

}  // namespace tether::protocol
